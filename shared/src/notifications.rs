//! The emails an auction's outcome calls for: recorded in the transaction of that outcome, then
//! sent by the `send_email` job, at most once across retries and redeliveries.
//!
//! A sender takes a lease on the notification row before sending and marks it sent afterwards; a
//! second delivery finds it sent or leased and does nothing. Only a crash between the SMTP
//! exchange and the mark can repeat an email (after the lease expires), and the message's fixed
//! Message-ID lets mail systems discard that copy.

use lettre::message::Mailbox;
use sqlx::PgConnection;

use crate::email::{Contact, MailError, Mailer, Notification, NotificationKind, compose};
use crate::ids::{AuctionId, NotificationId, UserId};
use crate::jobs::send_email::SendEmail;
use crate::outbox;

/// Records that `recipient_id` must be told `kind` about `auction_id`, and the follow-up that
/// sends it; recording the same (kind, auction, recipient) again does nothing.
pub async fn record(
    conn: &mut PgConnection,
    kind: NotificationKind,
    auction_id: AuctionId,
    recipient_id: UserId,
) -> Result<(), sqlx::Error> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO notifications (kind, auction_id, recipient_id) VALUES ($1, $2, $3)
           ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING RETURNING id AS "id: NotificationId""#,
        kind as NotificationKind,
        auction_id as AuctionId,
        recipient_id as UserId,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(notification_id) = id {
        outbox::record(conn, &SendEmail { notification_id }).await?;
    }
    Ok(())
}

/// A leased notification with what its email says.
struct Row {
    id: NotificationId,
    kind: NotificationKind,
    auction_id: AuctionId,
    title: String,
    price: i64,
    recipient_username: String,
    recipient_email: String,
    counterpart_username: Option<String>,
    counterpart_email: Option<String>,
}

/// Takes a sender's lease on an unsent notification and loads what its email says. `None` when it
/// was sent already, or another delivery of the job is sending it right now.
async fn lease(
    conn: &mut PgConnection,
    id: NotificationId,
    lease_secs: i32,
) -> Result<Option<Notification>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        r#"WITH leased AS (
             UPDATE notifications SET sending_until = now() + make_interval(secs => $2), attempts = attempts + 1
             WHERE id = $1 AND sent_at IS NULL AND (sending_until IS NULL OR sending_until < now())
             RETURNING id, kind, auction_id, recipient_id)
         SELECT l.id AS "id!: NotificationId", l.kind AS "kind!: NotificationKind", l.auction_id AS "auction_id!: AuctionId",
                a.title, a.current_price AS price,
                r.username AS recipient_username, r.email AS recipient_email,
                c.username AS "counterpart_username?", c.email AS "counterpart_email?"
         FROM leased l
         JOIN auctions a ON a.id = l.auction_id
         JOIN users r ON r.id = l.recipient_id
         LEFT JOIN users c ON c.id = CASE l.kind WHEN 'won' THEN a.seller_id WHEN 'sold' THEN a.winner_id END"#,
        id as NotificationId,
        f64::from(lease_secs),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Notification {
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
    }))
}

/// Marks a leased notification sent.
async fn mark_sent(conn: &mut PgConnection, id: NotificationId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET sent_at = now(), sending_until = NULL, last_error = NULL WHERE id = $1",
        id as NotificationId,
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

/// Sends notification `id` through `mailer` unless it was sent already.
#[tracing::instrument(skip_all, fields(notification.id = id.0))]
pub async fn send(
    conn: &mut PgConnection,
    mailer: &Mailer,
    from: &Mailbox,
    id: NotificationId,
) -> Result<DeliveryOutcome, DeliveryError> {
    let Some(notification) = lease(conn, id, LEASE_SECS).await? else {
        return Ok(DeliveryOutcome::NotDue);
    };
    let sent = match compose(&notification, from) {
        Ok(message) => mailer.send(message).await,
        Err(err) => Err(err),
    };
    match sent {
        Ok(()) => {
            mark_sent(conn, id).await?;
            Ok(DeliveryOutcome::Sent)
        }
        Err(err) => {
            mark_failed(conn, id, &err.to_string()).await?;
            Err(match err {
                MailError::Transient(e) => DeliveryError::Transient(e),
                MailError::Permanent(e) => DeliveryError::Permanent(e),
            })
        }
    }
}
