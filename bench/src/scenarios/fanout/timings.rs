//! When each bid was sent and accepted, shared by the bidders (writers) and every WebSocket client
//! (readers).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

/// Thousands of clients look bids up at once; sharding keeps them off one lock.
const SHARDS: usize = 64;

/// Send instants keyed by (auction id, amount) — amounts on an auction's ladder are never reused —
/// and accept instants keyed by bid id.
pub struct Timings {
    sent: Vec<RwLock<HashMap<(i64, i64), Instant>>>,
    accepted: Vec<RwLock<HashMap<i64, Instant>>>,
}

impl Timings {
    pub fn new() -> Self {
        Self {
            sent: (0..SHARDS).map(|_| RwLock::default()).collect(),
            accepted: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    pub fn record_sent(&self, auction_id: i64, amount: i64, at: Instant) {
        self.sent[shard(auction_id ^ amount)].write().unwrap().insert((auction_id, amount), at);
    }

    pub fn record_accepted(&self, bid_id: i64, at: Instant) {
        self.accepted[shard(bid_id)].write().unwrap().insert(bid_id, at);
    }

    pub fn sent_at(&self, auction_id: i64, amount: i64) -> Option<Instant> {
        self.sent[shard(auction_id ^ amount)].read().unwrap().get(&(auction_id, amount)).copied()
    }

    pub fn accepted_at(&self, bid_id: i64) -> Option<Instant> {
        self.accepted[shard(bid_id)].read().unwrap().get(&bid_id).copied()
    }
}

fn shard(key: i64) -> usize {
    // Amounts are multiples of 1,000 and ids are sequential: mix before taking the remainder.
    (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) as usize % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_what_was_recorded() {
        let t = Timings::new();
        let now = Instant::now();
        t.record_sent(7, 12_000, now);
        t.record_accepted(42, now);
        assert_eq!(t.sent_at(7, 12_000), Some(now));
        assert_eq!(t.sent_at(7, 13_000), None);
        assert_eq!(t.accepted_at(42), Some(now));
    }
}
