//! Live auctions: every event reaches every watcher, in order, with nothing missed.
//!
//! Writers publish committed events to Redis (one channel per auction); every web replica
//! subscribes to all of them and fans them out to its own WebSocket connections. Redis is only the
//! fast path: each connection replays stored events from PostgreSQL on connect, fills any `seq` gap
//! from it, and the hub polls PostgreSQL for the auctions it serves so that an event whose publish
//! was lost (Redis down, a crash after commit) still arrives.

mod caps;
mod hub;
mod socket;

pub use caps::ConnectionCaps;
pub use hub::{CONNECTION_BUFFER, Hub};
pub use socket::{SUBPROTOCOL, watch_auction, watch_me};
