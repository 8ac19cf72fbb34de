//! The per-process hub between Redis pub/sub, the database and the WebSocket connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use neighborbid_shared::events::{self, StoredEvent};
use neighborbid_shared::ids::AuctionId;
use sqlx::PgPool;
use tokio::sync::mpsc;

/// Events queued for one connection before it counts as too slow and is cut off.
pub const CONNECTION_BUFFER: usize = 256;
/// How often the hub checks PostgreSQL for events that Redis did not bring.
const CATCH_UP_EVERY: Duration = Duration::from_millis(500);
/// Events the subscriber hands out before letting the connections run.
const YIELD_EVERY: usize = 16;
/// Committed events waiting to be published; beyond this they are left to the catch-up.
const PUBLISH_BUFFER: usize = 10_000;

/// An event as its watchers receive it: serialized once, whatever the number of connections.
pub struct LiveEvent {
    /// The event's position in its auction's stream.
    pub seq: i64,
    /// The event, as the JSON text every watcher is sent.
    pub text: String,
}

struct Watcher {
    id: u64,
    tx: mpsc::Sender<Arc<LiveEvent>>,
}

#[derive(Default)]
struct Watchers {
    by_auction: HashMap<AuctionId, Vec<Watcher>>,
    /// The highest `seq` handed to this auction's watchers.
    delivered: HashMap<AuctionId, i64>,
}

/// Fans events out to the connections of this process.
pub struct Hub {
    watchers: Mutex<Watchers>,
    next_id: AtomicU64,
    publish: mpsc::Sender<Vec<StoredEvent>>,
}

/// Keeps a connection registered; unregisters it when dropped (a closed tab frees everything).
pub struct Watch {
    hub: Arc<Hub>,
    auction_id: AuctionId,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = self.hub.watchers.lock().expect("hub lock");
        if let Some(list) = watchers.by_auction.get_mut(&self.auction_id) {
            list.retain(|w| w.id != self.id);
            if list.is_empty() {
                watchers.by_auction.remove(&self.auction_id);
                watchers.delivered.remove(&self.auction_id);
            }
        }
    }
}

impl Hub {
    /// Starts the hub's Redis subscriber, publisher and database catch-up tasks.
    pub fn start(pool: PgPool, redis: redis::Client, prefix: String) -> Arc<Self> {
        let (publish, to_publish) = mpsc::channel(PUBLISH_BUFFER);
        let hub = Arc::new(Self { watchers: Mutex::default(), next_id: AtomicU64::new(1), publish });
        tokio::spawn(publisher(redis.clone(), prefix.clone(), to_publish));
        tokio::spawn(subscriber(Arc::downgrade(&hub), redis, prefix));
        tokio::spawn(catch_up(Arc::downgrade(&hub), pool));
        hub
    }

    /// Hands committed events to the publisher without waiting for Redis.
    pub fn publish(&self, events: Vec<StoredEvent>) {
        if !events.is_empty() && self.publish.try_send(events).is_err() {
            tracing::warn!("publish queue full; watchers will catch up from the database");
        }
    }

    /// Registers a connection for `auction_id`.
    pub fn watch(self: &Arc<Self>, auction_id: AuctionId) -> (Watch, mpsc::Receiver<Arc<LiveEvent>>) {
        let (tx, rx) = mpsc::channel(CONNECTION_BUFFER);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut watchers = self.watchers.lock().expect("hub lock");
        watchers.by_auction.entry(auction_id).or_default().push(Watcher { id, tx });
        (Watch { hub: self.clone(), auction_id, id }, rx)
    }

    /// Records that watchers of `auction_id` have everything up to `seq` (from their replay).
    pub fn seen(&self, auction_id: AuctionId, seq: i64) {
        let mut watchers = self.watchers.lock().expect("hub lock");
        let delivered = watchers.delivered.entry(auction_id).or_default();
        *delivered = (*delivered).max(seq);
    }

    /// Gives an event to every watcher of its auction. A watcher whose buffer is full is dropped:
    /// its connection then closes as too slow instead of holding anyone else back.
    fn deliver(&self, event: StoredEvent) {
        let auction_id = event.auction_id;
        let live =
            Arc::new(LiveEvent { seq: event.seq, text: serde_json::to_string(&event).expect("events serialize") });
        let mut watchers = self.watchers.lock().expect("hub lock");
        let delivered = watchers.delivered.entry(auction_id).or_default();
        *delivered = (*delivered).max(live.seq);
        if let Some(list) = watchers.by_auction.get_mut(&auction_id) {
            list.retain(|w| match w.tx.try_send(live.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::info!(auction.id = auction_id.0, "watcher too slow; disconnecting it");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
    }

    fn watched(&self) -> Vec<(AuctionId, i64)> {
        let watchers = self.watchers.lock().expect("hub lock");
        watchers.by_auction.keys().map(|id| (*id, watchers.delivered.get(id).copied().unwrap_or(0))).collect()
    }
}

/// Publishes committed events, reconnecting to Redis as needed. Whatever queued up while one
/// round trip was in flight goes out together in the next.
async fn publisher(redis: redis::Client, prefix: String, mut to_publish: mpsc::Receiver<Vec<StoredEvent>>) {
    const MAX_BATCH: usize = 1_000;
    let mut conn = None;
    while let Some(mut events) = to_publish.recv().await {
        while events.len() < MAX_BATCH {
            match to_publish.try_recv() {
                Ok(more) => events.extend(more),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            conn =
                redis.get_connection_manager().await.map_err(|e| tracing::warn!(error = %e, "redis unavailable")).ok();
        }
        if let Some(conn) = conn.as_mut() {
            events::publish(conn, &prefix, &events).await;
        }
    }
}

/// Subscribes to every auction channel and delivers what arrives; resubscribes after any failure.
async fn subscriber(hub: std::sync::Weak<Hub>, redis: redis::Client, prefix: String) {
    let pattern = events::channel(&prefix, AuctionId(0)).trim_end_matches('0').to_owned() + "*";
    loop {
        match redis.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&pattern).await {
                Ok(()) => {
                    tracing::info!(%pattern, "subscribed to auction events");
                    let mut messages = pubsub.on_message();
                    let mut since_yield = 0;
                    while let Some(message) = messages.next().await {
                        let Some(hub) = hub.upgrade() else { return };
                        match message.get_payload::<String>().ok().and_then(|p| serde_json::from_str(&p).ok()) {
                            Some(event) => hub.deliver(event),
                            None => tracing::warn!("unreadable event on {}", message.get_channel_name()),
                        }
                        drop(hub);
                        // Let the connections drain their buffers during a burst (well before 256
                        // events pile up), so only a client that really stops reading falls behind.
                        since_yield += 1;
                        if since_yield == YIELD_EVERY {
                            since_yield = 0;
                            tokio::task::yield_now().await;
                        }
                    }
                    tracing::warn!("auction event subscription lost; resubscribing");
                }
                Err(err) => tracing::warn!(error = %err, "subscribing to auction events failed"),
            },
            Err(err) => tracing::warn!(error = %err, "redis unavailable for auction events"),
        }
        if hub.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Brings watchers every stored event Redis did not. Each pass reads the `seq` of every watched
/// auction in one query; an auction is repaired from PostgreSQL only when events that were already
/// committed at the previous pass have still not been delivered, so events merely in flight through
/// Redis cost nothing.
async fn catch_up(hub: std::sync::Weak<Hub>, pool: PgPool) {
    let mut every = tokio::time::interval(CATCH_UP_EVERY);
    let mut committed_at_last_pass: HashMap<AuctionId, i64> = HashMap::new();
    loop {
        every.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let watched = hub.watched();
        if watched.is_empty() {
            committed_at_last_pass.clear();
            continue;
        }
        let ids: Vec<AuctionId> = watched.iter().map(|(id, _)| *id).collect();
        let committed = sqlx::query!(
            r#"SELECT id AS "id: AuctionId", seq FROM auctions WHERE id = ANY($1)"#,
            &ids as &[AuctionId],
        )
        .fetch_all(&pool)
        .await;
        let committed: Vec<(AuctionId, i64)> = match committed {
            Ok(rows) => rows.into_iter().map(|row| (row.id, row.seq)).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "catch-up query failed");
                continue;
            }
        };
        for (auction_id, delivered) in &watched {
            let overdue = committed_at_last_pass.get(auction_id).is_some_and(|seq| seq > delivered);
            if !overdue {
                continue;
            }
            let Ok(mut conn) = pool.acquire().await else { continue };
            match events::after(&mut conn, *auction_id, *delivered, 1_000).await {
                Ok(missed) => missed.into_iter().for_each(|event| hub.deliver(event)),
                Err(err) => tracing::warn!(error = %err, "catch-up read failed"),
            }
        }
        committed_at_last_pass = committed.into_iter().collect();
    }
}
