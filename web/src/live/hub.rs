//! The per-process hub between Redis pub/sub, the database and the WebSocket connections, for
//! every stream alike: auctions' and users' own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use neighborbid_shared::events::{self, Published, Stream, Streamed};
use neighborbid_shared::metrics::WS_EVENTS_DROPPED;
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

struct Watcher {
    id: u64,
    tx: mpsc::Sender<Arc<Published>>,
}

#[derive(Default)]
struct Watchers {
    by_stream: HashMap<Stream, Vec<Watcher>>,
    /// The highest `seq` handed to this stream's watchers.
    delivered: HashMap<Stream, i64>,
}

/// Fans events out to the connections of this process.
pub struct Hub {
    watchers: Mutex<Watchers>,
    next_id: AtomicU64,
    publish: mpsc::Sender<Vec<Published>>,
}

/// Keeps a connection registered; unregisters it when dropped (a closed tab frees everything).
pub struct Watch {
    hub: Arc<Hub>,
    stream: Stream,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = self.hub.watchers.lock().expect("hub lock");
        if let Some(list) = watchers.by_stream.get_mut(&self.stream) {
            list.retain(|w| w.id != self.id);
            if list.is_empty() {
                watchers.by_stream.remove(&self.stream);
                watchers.delivered.remove(&self.stream);
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
    pub fn publish<E: Streamed>(&self, events: &[E]) {
        if !events.is_empty() && self.publish.try_send(events.iter().map(Streamed::published).collect()).is_err() {
            metrics::counter!(WS_EVENTS_DROPPED, "reason" => "publish_queue_full").increment(events.len() as u64);
            tracing::warn!("publish queue full; watchers will catch up from the database");
        }
    }

    /// Registers a connection for `stream` that starts after `from` (its `after_seq`, never past
    /// the stream's last stored `seq`). The first watcher of a stream on this process starts the
    /// record of what was delivered there: no one else here can be owed anything before `from`, and
    /// the catch-up would otherwise take the stream's whole stored history for undelivered events
    /// and pour it into the connection's buffer at once, cutting it off as too slow.
    pub fn watch(self: &Arc<Self>, stream: Stream, from: i64) -> (Watch, mpsc::Receiver<Arc<Published>>) {
        let (tx, rx) = mpsc::channel(CONNECTION_BUFFER);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.watchers.lock().expect("hub lock");
        let watchers = &mut *guard;
        let list = watchers.by_stream.entry(stream).or_default();
        if list.is_empty() {
            watchers.delivered.insert(stream, from);
        }
        list.push(Watcher { id, tx });
        (Watch { hub: self.clone(), stream, id }, rx)
    }

    /// Records that watchers of `stream` have everything up to `seq` (from their replay).
    pub fn seen(&self, stream: Stream, seq: i64) {
        let mut watchers = self.watchers.lock().expect("hub lock");
        if let Some(delivered) = watchers.delivered.get_mut(&stream) {
            *delivered = (*delivered).max(seq);
        }
    }

    /// Gives an event to every watcher of its stream, sharing its text instead of serializing it per
    /// watcher. A watcher whose buffer is full is dropped: its connection then closes as too slow
    /// instead of holding anyone else back.
    fn deliver(&self, event: Published) {
        let event = Arc::new(event);
        let mut guard = self.watchers.lock().expect("hub lock");
        let watchers = &mut *guard;
        // A stream no one here watches is not recorded: the record would outlive every stream.
        if let Some(list) = watchers.by_stream.get_mut(&event.stream) {
            let delivered = watchers.delivered.entry(event.stream).or_default();
            *delivered = (*delivered).max(event.seq);
            list.retain(|w| match w.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    metrics::counter!(WS_EVENTS_DROPPED, "reason" => "slow_consumer").increment(1);
                    tracing::info!(stream = ?event.stream, "watcher too slow; disconnecting it");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
    }

    fn watched(&self) -> Vec<(Stream, i64)> {
        let watchers = self.watchers.lock().expect("hub lock");
        watchers.by_stream.keys().map(|s| (*s, watchers.delivered.get(s).copied().unwrap_or(0))).collect()
    }
}

/// Publishes committed events, reconnecting to Redis as needed. Whatever queued up while one
/// round trip was in flight goes out together in the next.
async fn publisher(redis: redis::Client, prefix: String, mut to_publish: mpsc::Receiver<Vec<Published>>) {
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
            events::publish_serialized(conn, &prefix, &events).await;
        }
    }
}

/// The one field the hub reads of an event on its way through.
#[derive(serde::Deserialize)]
struct Seq {
    seq: i64,
}

/// An event as it arrived from Redis: its stream from the channel, its text as published.
fn received(prefix: &str, message: &redis::Msg) -> Option<Published> {
    let stream = events::stream_of_channel(prefix, message.get_channel_name())?;
    let text: String = message.get_payload().ok()?;
    let Seq { seq } = serde_json::from_str(&text).ok()?;
    Some(Published { stream, seq, text })
}

/// Subscribes to every stream's channel and delivers what arrives; resubscribes after any failure.
async fn subscriber(hub: std::sync::Weak<Hub>, redis: redis::Client, prefix: String) {
    let patterns = events::channel_patterns(&prefix);
    loop {
        match redis.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&patterns).await {
                Ok(()) => {
                    tracing::info!(?patterns, "subscribed to events");
                    let mut messages = pubsub.on_message();
                    let mut since_yield = 0;
                    while let Some(message) = messages.next().await {
                        let Some(hub) = hub.upgrade() else { return };
                        match received(&prefix, &message) {
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
                    tracing::warn!("event subscription lost; resubscribing");
                }
                Err(err) => tracing::warn!(error = %err, "subscribing to events failed"),
            },
            Err(err) => tracing::warn!(error = %err, "redis unavailable for events"),
        }
        if hub.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Brings watchers every stored event Redis did not. Each pass reads the `seq` of every watched
/// stream in one query; a stream is repaired from PostgreSQL only when events that were already
/// committed at the previous pass have still not been delivered, so events merely in flight through
/// Redis cost nothing.
async fn catch_up(hub: std::sync::Weak<Hub>, pool: PgPool) {
    let mut every = tokio::time::interval(CATCH_UP_EVERY);
    let mut committed_at_last_pass: HashMap<Stream, i64> = HashMap::new();
    loop {
        every.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        let watched = hub.watched();
        if watched.is_empty() {
            committed_at_last_pass.clear();
            continue;
        }
        let streams: Vec<Stream> = watched.iter().map(|(stream, _)| *stream).collect();
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "catch-up found no database connection");
                continue;
            }
        };
        let committed = match events::committed_seqs(&mut conn, &streams).await {
            Ok(committed) => committed,
            Err(err) => {
                tracing::warn!(error = %err, "catch-up query failed");
                continue;
            }
        };
        for (stream, delivered) in &watched {
            let overdue = committed_at_last_pass.get(stream).is_some_and(|seq| seq > delivered);
            if !overdue {
                continue;
            }
            match events::stored_after(&mut conn, *stream, *delivered, 1_000).await {
                Ok(missed) => missed.into_iter().for_each(|event| hub.deliver(event)),
                Err(err) => tracing::warn!(error = %err, "catch-up read failed"),
            }
        }
        committed_at_last_pass = committed.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use neighborbid_shared::ids::AuctionId;

    use super::*;

    fn hub() -> Arc<Hub> {
        let (publish, _) = mpsc::channel(1);
        Arc::new(Hub { watchers: Mutex::default(), next_id: AtomicU64::new(1), publish })
    }

    fn event(auction: i64, seq: i64) -> Published {
        Published { stream: Stream::Auction(AuctionId(auction)), seq, text: format!(r#"{{"seq":{seq}}}"#) }
    }

    #[test]
    fn the_hub_keeps_no_record_of_streams_no_one_here_watches() {
        let hub = hub();
        let (watch, mut live) = hub.watch(Stream::Auction(AuctionId(1)), 0);
        for auction in 1..=1_000 {
            hub.deliver(event(auction, 7));
        }
        assert_eq!(live.try_recv().expect("the watched stream's event arrives").seq, 7);
        assert_eq!(hub.watched(), [(Stream::Auction(AuctionId(1)), 7)]);
        assert_eq!(hub.watchers.lock().unwrap().delivered.len(), 1, "only the watched stream is recorded");
        drop(watch);
        assert!(hub.watchers.lock().unwrap().delivered.is_empty(), "nothing is left once its last watcher leaves");
    }
}
