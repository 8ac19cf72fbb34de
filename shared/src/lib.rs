//! NeighborBid's core: the domain rules, the ledger, database access, jobs, events, configuration and
//! telemetry shared by the web front, the workers and the scheduler.

pub mod auctions;
pub mod config;
pub mod db;
pub mod email;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod jobs;
pub mod ledger;
pub mod media;
pub mod metrics;
pub mod money;
pub mod notifications;
pub mod outbox;
pub mod pagination;
pub mod photos;
pub mod rate_limit;
pub mod reference;
pub mod retention;
pub mod shutdown;
pub mod talk;
pub mod telemetry;
pub mod users;
pub mod validation;
