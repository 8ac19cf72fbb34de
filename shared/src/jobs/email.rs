//! Email: send one recorded notification, at most once across retries and duplicate deliveries.
//!
//! A sender takes a lease on the notification row before sending and marks it sent afterwards; a
//! second delivery finds it sent or leased and does nothing. Only a crash between the SMTP
//! exchange and the mark can repeat an email (after the lease expires), and the message's fixed
//! Message-ID lets mail systems discard that copy.

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::email::{MailError, Mailer, compose};
use crate::notifications;

/// How long a sender may take before another delivery may try the same email: well past the SMTP
/// timeout, so a live sender never loses its lease.
const LEASE_SECS: i32 = 3 * crate::email::SMTP_TIMEOUT.as_secs() as i32;

/// The email job's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    /// The notification to send.
    pub notification_id: i64,
}

/// What an email run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailOutcome {
    /// Handed to the mail server (or written to the mail folder).
    Sent,
    /// Sent before, or being sent by another delivery right now.
    NotDue,
}

/// Why an email was not sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailJobError {
    /// Worth retrying: the mail server or the database is unavailable.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (a refused address, an unbuildable message).
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for EmailJobError {
    fn from(err: sqlx::Error) -> Self {
        Self::Transient(err.to_string())
    }
}

/// Sends notification `id` through `mailer` unless it was sent already.
pub async fn send_notification(
    conn: &mut PgConnection,
    mailer: &Mailer,
    from: &Mailbox,
    id: i64,
) -> Result<EmailOutcome, EmailJobError> {
    let Some(notification) = notifications::lease(conn, id, LEASE_SECS).await? else {
        return Ok(EmailOutcome::NotDue);
    };
    let sent = match compose(&notification, from) {
        Ok(message) => mailer.send(message).await,
        Err(err) => Err(err),
    };
    match sent {
        Ok(()) => {
            notifications::mark_sent(conn, id).await?;
            Ok(EmailOutcome::Sent)
        }
        Err(err) => {
            notifications::mark_failed(conn, id, &err.to_string()).await?;
            Err(match err {
                MailError::Transient(e) => EmailJobError::Transient(e),
                MailError::Permanent(e) => EmailJobError::Permanent(e),
            })
        }
    }
}
