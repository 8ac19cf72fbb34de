//! Notifications: the feed of what happened to a user (outbid, won, sold, unsold, a message, a
//! question answered), recorded in the transaction that causes them with their `notification`
//! event on the user's own stream, and the emails some of them call for, sent by the `send_email`
//! job at most once across retries and redeliveries (a message's is a digest, sent only while it
//! stays unread; see the SQL function `notification_email_due`).
//!
//! A sender takes a lease on the notification row before sending and marks it sent afterwards; a
//! second delivery finds it sent or leased and does nothing. The emails waiting to go out at one
//! moment share one lease statement and one mark statement ([`send`]; the worker gathers them,
//! see `jobs::send_email`). Only a crash between the SMTP exchange and the mark can repeat an email
//! (after the lease expires), and the message's fixed Message-ID lets mail systems discard that
//! copy.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::email::{Contact, MailError, Mailer, Notification, NotificationKind, UnreadMessage, compose};
use crate::events::UserEvent;
use crate::ids::{AuctionId, ConversationId, NotificationId, UserId};
use crate::pagination::{Cursor, next_page};
use crate::talk::TalkError;

/// A notification about to be recorded.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// What happened.
    pub kind: NotificationKind,
    /// The auction concerned.
    pub auction_id: AuctionId,
    /// Who is told.
    pub recipient_id: UserId,
    /// The conversation, for a message.
    pub conversation_id: Option<ConversationId>,
    /// The message or question it is about; one notification per subject (none: one per auction).
    pub subject_id: Option<i64>,
    /// What the feed shows beside the ids (a title, a price, an excerpt).
    pub data: Value,
}

impl NewNotification {
    /// A notification about an auction as a whole: one per kind, auction and recipient.
    pub fn about_auction(kind: NotificationKind, auction_id: AuctionId, recipient_id: UserId, data: Value) -> Self {
        Self { kind, auction_id, recipient_id, conversation_id: None, subject_id: None, data }
    }
}

/// Records `notification`, its event on the recipient's stream and its email as their preferences
/// say; returns the event to publish once committed, or `None` when it was recorded before.
pub async fn record(conn: &mut PgConnection, notification: &NewNotification) -> Result<Option<UserEvent>, sqlx::Error> {
    sqlx::query_as!(
        UserEvent,
        r#"SELECT user_id AS "user_id!: UserId", type AS "kind!", seq AS "seq!", at AS "at!", data AS "data!"
           FROM record_notification($1, $2, $3, $4, $5, $6)"#,
        notification.kind as NotificationKind,
        notification.auction_id as AuctionId,
        notification.recipient_id as UserId,
        notification.conversation_id as Option<ConversationId>,
        notification.subject_id,
        &notification.data,
    )
    .fetch_optional(conn)
    .await
}

/// A leased notification with what its email says.
struct Row {
    id: NotificationId,
    kind: NotificationKind,
    auction_id: AuctionId,
    recipient_id: UserId,
    conversation_id: Option<ConversationId>,
    title: String,
    price: i64,
    recipient_username: String,
    recipient_email: String,
    counterpart_username: Option<String>,
    counterpart_email: Option<String>,
}

/// Takes a sender's lease on each unsent notification of `ids` and loads what its email says, in one
/// statement. Those sent already, or being sent by another delivery right now, are left out.
async fn lease(
    conn: &mut PgConnection,
    ids: &[NotificationId],
    lease_secs: i32,
) -> Result<Vec<Notification>, sqlx::Error> {
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let rows = sqlx::query_as!(
        Row,
        r#"WITH leased AS (
             UPDATE notifications SET sending_until = now() + make_interval(secs => $2), attempts = attempts + 1
             WHERE id = ANY($1) AND sent_at IS NULL AND (sending_until IS NULL OR sending_until < now())
               AND email_due_at <= now() AND (kind <> 'message' OR read_at IS NULL)
             RETURNING id, kind, auction_id, recipient_id, conversation_id)
         SELECT l.id AS "id!: NotificationId", l.kind AS "kind!: NotificationKind", l.auction_id AS "auction_id!: AuctionId",
                l.recipient_id AS "recipient_id!: UserId", l.conversation_id AS "conversation_id: ConversationId",
                a.title, a.current_price AS price,
                r.username AS recipient_username, r.email AS recipient_email,
                c.username AS "counterpart_username?", c.email AS "counterpart_email?"
         FROM leased l
         JOIN auctions a ON a.id = l.auction_id
         JOIN users r ON r.id = l.recipient_id
         LEFT JOIN conversations cv ON cv.id = l.conversation_id
         LEFT JOIN users c ON c.id = CASE l.kind WHEN 'won' THEN a.seller_id WHEN 'sold' THEN a.winner_id
                                     WHEN 'message' THEN CASE cv.buyer_id WHEN l.recipient_id THEN cv.seller_id
                                                                          ELSE cv.buyer_id END END"#,
        &ids,
        f64::from(lease_secs),
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut leased = Vec::with_capacity(rows.len());
    for r in rows {
        let unread = match r.conversation_id {
            Some(conversation_id) => unread_messages(conn, conversation_id, r.recipient_id).await?,
            None => Vec::new(),
        };
        leased.push(Notification {
            id: r.id,
            kind: r.kind,
            auction_id: r.auction_id,
            auction_title: r.title,
            price: r.price,
            recipient: Contact { username: r.recipient_username, email: r.recipient_email },
            counterpart: r
                .counterpart_username
                .zip(r.counterpart_email)
                .map(|(username, email)| Contact { username, email }),
            unread,
        });
    }
    Ok(leased)
}

/// How many unread messages a digest quotes at most.
const DIGEST_MESSAGES: i64 = 20;

/// The oldest messages of a conversation that `reader` has not read, for their digest.
async fn unread_messages(
    conn: &mut PgConnection,
    conversation_id: ConversationId,
    reader: UserId,
) -> Result<Vec<UnreadMessage>, sqlx::Error> {
    sqlx::query_as!(
        UnreadMessage,
        r#"SELECT coalesce(u.username, 'NeighborBid') AS "sender!", m.body
           FROM messages m JOIN conversations cv ON cv.id = m.conversation_id LEFT JOIN users u ON u.id = m.sender_id
           WHERE m.conversation_id = $1 AND m.sender_id IS DISTINCT FROM $2
             AND m.id > CASE cv.buyer_id WHEN $2 THEN cv.buyer_read_up_to ELSE cv.seller_read_up_to END
           ORDER BY m.id LIMIT $3"#,
        conversation_id as ConversationId,
        reader as UserId,
        DIGEST_MESSAGES,
    )
    .fetch_all(conn)
    .await
}

/// Marks leased notifications sent, in one statement.
async fn mark_sent(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET sent_at = now(), sending_until = NULL, last_error = NULL WHERE id = ANY($1)",
        ids,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives the lease back after a failed attempt, noting why, so a retry may send it.
async fn mark_failed(conn: &mut PgConnection, id: NotificationId, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET sending_until = NULL, last_error = $2 WHERE id = $1 AND sent_at IS NULL",
        id as NotificationId,
        error,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How long a sender may take before another delivery may try the same email: well past the SMTP
/// timeout, so a live sender never loses its lease.
const LEASE_SECS: i32 = 3 * crate::email::SMTP_TIMEOUT.as_secs() as i32;

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Handed to the mail server (or written to the mail folder).
    Sent,
    /// Sent before, or being sent by another delivery right now.
    NotDue,
}

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: the mail server or the database is unavailable.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (a refused address, an unbuildable message).
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for DeliveryError {
    fn from(err: sqlx::Error) -> Self {
        Self::Transient(err.to_string())
    }
}

/// Sends each of `ids` through `mailer` unless it was sent already: one statement leases them all,
/// the emails go out at once, and one statement marks those sent (a failed one gets its lease back
/// with the error noted, alone). Answers each element of `ids` in order; an id given twice is
/// answered [`DeliveryOutcome::NotDue`] the second time, as a second delivery would find it. An
/// error of the database fails the whole batch; its leases then expire and a retry sends again
/// only what was not marked sent.
#[tracing::instrument(skip_all, fields(notifications = ids.len()))]
pub async fn send(
    conn: &mut PgConnection,
    mailer: &Mailer,
    from: &Mailbox,
    ids: &[NotificationId],
) -> Result<Vec<Result<DeliveryOutcome, DeliveryError>>, sqlx::Error> {
    let leased = lease(conn, ids, LEASE_SECS).await?;
    let attempts = leased.iter().map(|notification| async move {
        let sent = match compose(notification, from) {
            Ok(message) => mailer.send(message).await,
            Err(err) => Err(err),
        };
        (notification.id, sent)
    });
    let attempts = futures::future::join_all(attempts).await;
    let sent: Vec<i64> = attempts.iter().filter(|(_, sent)| sent.is_ok()).map(|(id, _)| id.0).collect();
    if !sent.is_empty() {
        mark_sent(conn, &sent).await?;
    }
    let mut outcomes = HashMap::with_capacity(attempts.len());
    for (id, sent) in attempts {
        let outcome = match sent {
            Ok(()) => Ok(DeliveryOutcome::Sent),
            Err(err) => {
                mark_failed(conn, id, &err.to_string()).await?;
                Err(match err {
                    MailError::Transient(e) => DeliveryError::Transient(e),
                    MailError::Permanent(e) => DeliveryError::Permanent(e),
                })
            }
        };
        outcomes.insert(id, outcome);
    }
    Ok(ids.iter().map(|id| outcomes.remove(id).unwrap_or(Ok(DeliveryOutcome::NotDue))).collect())
}

/// A notification as its recipient's feed shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// Its id; the feed is newest first by it.
    pub id: NotificationId,
    /// What happened.
    pub kind: NotificationKind,
    /// The auction concerned.
    pub auction_id: AuctionId,
    /// The conversation, for a message.
    pub conversation_id: Option<ConversationId>,
    /// What the feed shows beside the ids.
    pub data: Value,
    /// When the recipient read it.
    pub read_at: Option<DateTime<Utc>>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// `recipient`'s notifications, newest first; only the unread ones with `unread_only`.
pub async fn feed(
    pool: &PgPool,
    recipient: UserId,
    unread_only: bool,
    cursor: Option<&str>,
    limit: u8,
) -> Result<(Vec<FeedItem>, Option<Cursor>), TalkError> {
    let before = cursor.map(Cursor::decode).transpose()?.map(Cursor::id);
    let rows = sqlx::query_as!(
        FeedItem,
        r#"SELECT id AS "id: NotificationId", kind AS "kind: NotificationKind", auction_id AS "auction_id: AuctionId",
                  conversation_id AS "conversation_id: ConversationId", data, read_at, created_at
           FROM notifications
           WHERE recipient_id = $1 AND (NOT $2 OR read_at IS NULL) AND ($3::bigint IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $4"#,
        recipient as UserId,
        unread_only,
        before,
        i64::from(limit) + 1,
    )
    .fetch_all(pool)
    .await?;
    Ok(next_page(rows, limit, |n| Cursor::for_id(n.id.0)))
}

/// Marks `recipient`'s notifications up to `up_to` read (a message's digest is then not sent).
pub async fn mark_read(pool: &PgPool, recipient: UserId, up_to: NotificationId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET read_at = now() WHERE recipient_id = $1 AND id <= $2 AND read_at IS NULL",
        recipient as UserId,
        up_to as NotificationId,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// How many of `recipient`'s notifications are unread.
pub async fn unread_count(conn: &mut PgConnection, recipient: UserId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM notifications WHERE recipient_id = $1 AND read_at IS NULL"#,
        recipient as UserId
    )
    .fetch_one(conn)
    .await
}

/// Which emails a user wants besides those about their sales and wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailPreferences {
    /// An email when outbid.
    pub outbid: bool,
    /// A digest of messages left unread for ten minutes.
    pub messages: bool,
}

/// Changes the preferences given (`None` keeps one; with none given nothing is written) and
/// returns them all.
pub async fn email_preferences(
    conn: &mut PgConnection,
    user_id: UserId,
    outbid: Option<bool>,
    messages: Option<bool>,
) -> Result<EmailPreferences, sqlx::Error> {
    if outbid.is_none() && messages.is_none() {
        return sqlx::query_as!(
            EmailPreferences,
            "SELECT email_outbid AS outbid, email_messages AS messages FROM users WHERE id = $1",
            user_id as UserId,
        )
        .fetch_one(conn)
        .await;
    }
    sqlx::query_as!(
        EmailPreferences,
        r#"UPDATE users SET email_outbid = coalesce($2, email_outbid), email_messages = coalesce($3, email_messages)
           WHERE id = $1 RETURNING email_outbid AS outbid, email_messages AS messages"#,
        user_id as UserId,
        outbid,
        messages,
    )
    .fetch_one(conn)
    .await
}
