//! Events: what watchers are told, stored in the transaction that causes them, in two kinds of
//! stream with one design: an auction's (anyone may watch) and a user's own (`/ws/me`).
//!
//! Each stream's events carry `seq` = 1, 2, 3, … with no gaps: the auction row's `seq` column is
//! advanced under the row lock that every change to an auction already holds, and a user's
//! `event_seq` under their row's lock (the SQL function `append_user_event`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgConnection;

use crate::ids::{AuctionId, UserId};

/// What happened to an auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A bid was accepted.
    BidPlaced,
    /// A late bid pushed the end back.
    AuctionExtended,
    /// Ended with a winner.
    AuctionClosed,
    /// Withdrawn by the seller.
    AuctionCancelled,
    /// The winner's money reached the seller.
    AuctionSettled,
    /// Ended without a valid winner.
    AuctionUnsold,
    /// A photo passed validation and is shown.
    PhotoAdded,
    /// The seller removed a shown photo.
    PhotoRemoved,
    /// Someone asked the seller a public question.
    QuestionAsked,
    /// The seller answered a public question.
    QuestionAnswered,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BidPlaced => "bid_placed",
            Self::AuctionExtended => "auction_extended",
            Self::AuctionClosed => "auction_closed",
            Self::AuctionCancelled => "auction_cancelled",
            Self::AuctionSettled => "auction_settled",
            Self::AuctionUnsold => "auction_unsold",
            Self::PhotoAdded => "photo_added",
            Self::PhotoRemoved => "photo_removed",
            Self::QuestionAsked => "question_asked",
            Self::QuestionAnswered => "question_answered",
        }
    }
}

/// An event as stored and as sent to watchers: `{"type", "auction_id", "seq", "at", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// `bid_placed`, `auction_extended`, `auction_closed`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The auction.
    pub auction_id: AuctionId,
    /// 1, 2, 3, … per auction, without gaps.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub data: Value,
}

/// Appends events to an auction whose row the caller has locked, advancing its `seq`; returns them
/// as stored.
pub async fn append(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    events: &[(EventType, Value)],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    let data: Vec<Value> = events.iter().map(|(_, d)| d.clone()).collect();
    sqlx::query_as!(
        StoredEvent,
        r#"WITH bumped AS (UPDATE auctions SET seq = seq + cardinality($2::text[]) WHERE id = $1 RETURNING seq),
         inserted AS (
             INSERT INTO auction_events (auction_id, seq, type, data)
             SELECT $1, bumped.seq - cardinality($2::text[]) + e.n, e.type, e.data
             FROM bumped, unnest($2::text[], $3::jsonb[]) WITH ORDINALITY AS e(type, data, n)
             RETURNING type, auction_id, seq, at, data)
         SELECT type AS "kind!", auction_id AS "auction_id!: AuctionId", seq AS "seq!", at AS "at!", data AS "data!"
         FROM inserted ORDER BY seq"#,
        auction_id as AuctionId,
        &types as &[&str],
        &data,
    )
    .fetch_all(conn)
    .await
}

/// The auction's events with `seq` above `after_seq`, in order, at most `limit`.
pub async fn after(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as!(
        StoredEvent,
        r#"SELECT type AS kind, auction_id AS "auction_id: AuctionId", seq, at, data FROM auction_events
           WHERE auction_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"#,
        auction_id as AuctionId,
        after_seq,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// An event of a user's own stream, as sent on `/ws/me`: `{"type", "seq", "at", "data"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserEvent {
    /// Whose stream.
    #[serde(skip)]
    pub user_id: UserId,
    /// `message_received`, `notification`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// 1, 2, 3, … per user, without gaps.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub data: Value,
}

/// What happened to a user, on their own stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserEventType {
    /// A message arrived in one of their conversations.
    MessageReceived,
    /// A notification (also in the feed): outbid, won, sold, a question answered, …
    Notification,
    /// A session of theirs was logged out: sockets opened with it close.
    SessionRevoked,
}

impl UserEventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageReceived => "message_received",
            Self::Notification => "notification",
            Self::SessionRevoked => "session_revoked",
        }
    }
}

/// Appends an event to `user_id`'s stream in the caller's transaction, locking the user's row for
/// its `seq` (hold no other user's row lock taken after an auction's: auction, then user).
pub async fn append_user_event(
    conn: &mut PgConnection,
    user_id: UserId,
    kind: UserEventType,
    data: &Value,
) -> Result<UserEvent, sqlx::Error> {
    sqlx::query_as!(
        UserEvent,
        r#"SELECT user_id AS "user_id!: UserId", type AS "kind!", seq AS "seq!", at AS "at!", data AS "data!"
           FROM append_user_event($1, $2, $3)"#,
        user_id as UserId,
        kind.as_str(),
        data,
    )
    .fetch_one(conn)
    .await
}

/// A stream of events that clients watch: one auction's, or one user's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// `/ws/auctions/{id}`.
    Auction(AuctionId),
    /// `/ws/me`.
    User(UserId),
}

/// An event ready for the wire: its stream, its place there and its JSON text, serialized once.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Whose stream.
    pub stream: Stream,
    /// Its `seq` there.
    pub seq: i64,
    /// Exactly what watchers are sent.
    pub text: String,
}

/// An event of either stream.
pub trait Streamed {
    /// The event as watchers get it.
    fn published(&self) -> Published;
}

impl Streamed for StoredEvent {
    fn published(&self) -> Published {
        Published {
            stream: Stream::Auction(self.auction_id),
            seq: self.seq,
            text: serde_json::to_string(self).expect("events serialize"),
        }
    }
}

impl Streamed for UserEvent {
    fn published(&self) -> Published {
        Published {
            stream: Stream::User(self.user_id),
            seq: self.seq,
            text: serde_json::to_string(self).expect("events serialize"),
        }
    }
}

/// `stream`'s stored events with `seq` above `after_seq`, in order, at most `limit`.
pub async fn stored_after(
    conn: &mut PgConnection,
    stream: Stream,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Published>, sqlx::Error> {
    Ok(match stream {
        Stream::Auction(auction_id) => {
            after(conn, auction_id, after_seq, limit).await?.iter().map(Streamed::published).collect()
        }
        Stream::User(user_id) => sqlx::query_as!(
            UserEvent,
            r#"SELECT user_id AS "user_id: UserId", type AS kind, seq, at, data FROM user_events
               WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"#,
            user_id as UserId,
            after_seq,
            limit,
        )
        .fetch_all(conn)
        .await?
        .iter()
        .map(Streamed::published)
        .collect(),
    })
}

/// The last `seq` of each of `streams` that exists (auctions and users).
pub async fn committed_seqs(conn: &mut PgConnection, streams: &[Stream]) -> Result<Vec<(Stream, i64)>, sqlx::Error> {
    let (mut auctions, mut users) = (Vec::new(), Vec::new());
    for stream in streams {
        match *stream {
            Stream::Auction(id) => auctions.push(id),
            Stream::User(id) => users.push(id),
        }
    }
    let rows = sqlx::query!(
        r#"SELECT true AS "auction!", id AS "id!", seq AS "seq!" FROM auctions WHERE id = ANY($1)
           UNION ALL SELECT false, id, event_seq FROM users WHERE id = ANY($2)"#,
        &auctions as &[AuctionId],
        &users as &[UserId],
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let stream = if row.auction { Stream::Auction(AuctionId(row.id)) } else { Stream::User(UserId(row.id)) };
            (stream, row.seq)
        })
        .collect())
}

/// The `seq` of `user_id`'s last event: `/ws/me?after_seq=` this sends only what happens next.
pub async fn user_seq(conn: &mut PgConnection, user_id: UserId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!("SELECT event_seq FROM users WHERE id = $1", user_id as UserId).fetch_one(conn).await
}

/// The Redis pub/sub channel of `stream` under `prefix`.
pub fn channel(prefix: &str, stream: Stream) -> String {
    match stream {
        Stream::Auction(id) => format!("{prefix}:auction:{id}"),
        Stream::User(id) => format!("{prefix}:user:{id}"),
    }
}

/// The stream whose channel is `name`, the inverse of [`channel`].
pub fn stream_of_channel(prefix: &str, name: &str) -> Option<Stream> {
    let rest = name.strip_prefix(prefix)?.strip_prefix(':')?;
    if let Some(id) = rest.strip_prefix("auction:") {
        return id.parse().ok().map(|id| Stream::Auction(AuctionId(id)));
    }
    rest.strip_prefix("user:")?.parse().ok().map(|id| Stream::User(UserId(id)))
}

/// The channel patterns that cover every stream under `prefix`.
pub fn channel_patterns(prefix: &str) -> [String; 2] {
    [format!("{prefix}:auction:*"), format!("{prefix}:user:*")]
}

/// Publishes committed events to their streams' channels in one round trip. Best effort: a lost
/// publish only delays watchers, whose servers catch up from the database.
pub async fn publish<E: Streamed>(redis: &mut redis::aio::ConnectionManager, prefix: &str, events: &[E]) {
    let events: Vec<Published> = events.iter().map(Streamed::published).collect();
    publish_serialized(redis, prefix, &events).await;
}

/// [`publish`] for events already serialized.
pub async fn publish_serialized(redis: &mut redis::aio::ConnectionManager, prefix: &str, events: &[Published]) {
    if events.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for event in events {
        pipe.cmd("PUBLISH").arg(channel(prefix, event.stream)).arg(&event.text).ignore();
    }
    if let Err(err) = pipe.query_async::<()>(redis).await {
        tracing::warn!(events = events.len(), error = %err, "events not published; watchers will catch up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_name_gives_back_its_stream() {
        for stream in [Stream::Auction(AuctionId(42)), Stream::User(UserId(7))] {
            assert_eq!(stream_of_channel("nb", &channel("nb", stream)), Some(stream));
        }
        assert_eq!(stream_of_channel("nb", "other:auction:1"), None);
        assert_eq!(stream_of_channel("nb", "nb:auction:x"), None);
        assert_eq!(stream_of_channel("nb", "nb:bids:1"), None);
    }
}
