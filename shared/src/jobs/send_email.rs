//! `send_email`: send one recorded notification, at most once across retries and redeliveries.
//!
//! An email took two commits of its own (its lease, then its mark), and under load those commits,
//! not the sending, were the work. So each delivery hands its notification to the process's
//! [`EmailBatcher`] and waits: one task sends every email waiting at that moment with one lease
//! statement and one mark statement ([`notifications::send`]) and answers each delivery with its
//! own email's outcome. Under light load a batch is one email and adds no wait; under load batches
//! grow by themselves. Delivery, retry and the dead set stay per email. A worker killed while a
//! batch is out leaves those emails leased but not marked sent: they go out again once their leases
//! expire, so a crash may repeat up to [`MAX_BATCH`] emails (each copy with the same Message-ID).

use std::sync::Arc;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{Job, JobContext, JobError, Queue};
use crate::email::Mailer;
use crate::ids::NotificationId;
use crate::notifications::{self, DeliveryError, DeliveryOutcome};

/// Send one notification's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmail {
    /// The notification row.
    pub notification_id: NotificationId,
}

impl Job for SendEmail {
    const NAME: &'static str = "send_email";
    const QUEUE: Queue = Queue::Email;
    /// Emails recorded but not sent, not being sent right now, and not given up on.
    const OVERDUE: &'static str = "INSERT INTO outbox (kind, payload) \
         SELECT 'send_email', jsonb_build_object('notification_id', n.id) \
         FROM notifications n \
         WHERE n.sent_at IS NULL AND n.email_due_at < now() - make_interval(secs => $1) \
           AND (n.kind <> 'message' OR n.read_at IS NULL) \
           AND (n.sending_until IS NULL OR n.sending_until < now()) AND n.attempts < 10 \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'send_email' \
                           AND (o.payload ->> 'notification_id')::bigint = n.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))";
    /// A delivery waits on the shared batch, not on a connection of its own.
    const IN_FLIGHT_PER_SLOT: usize = MAX_BATCH;

    fn subject(&self) -> i64 {
        self.notification_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        match ctx.emails.send(self.notification_id).await {
            Ok(outcome) => {
                tracing::info!(notification.id = self.notification_id.0, ?outcome, "email");
                Ok(())
            }
            Err(DeliveryError::Transient(e)) => Err(JobError::Retry(e)),
            Err(DeliveryError::Permanent(e)) => Err(JobError::Abandon(e)),
        }
    }
}

/// The most emails one batch sends: they go out at once, over the SMTP pool's connections.
pub const MAX_BATCH: usize = 32;

type Reply = oneshot::Sender<Result<DeliveryOutcome, DeliveryError>>;

/// Gathers the emails this process's deliveries are waiting to send into one batch at a time.
#[derive(Debug, Clone)]
pub struct EmailBatcher {
    waiting: mpsc::Sender<(NotificationId, Reply)>,
}

impl EmailBatcher {
    /// Starts the batching task; it ends when the last clone of the batcher is dropped.
    pub fn start(pool: PgPool, mailer: Arc<Mailer>, from: Mailbox) -> Self {
        let (waiting, queue) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(email_batches(pool, mailer, from, queue));
        Self { waiting }
    }

    /// Sends `notification_id`'s email in the next batch and returns what happened to it.
    pub async fn send(&self, notification_id: NotificationId) -> Result<DeliveryOutcome, DeliveryError> {
        let (reply, outcome) = oneshot::channel();
        self.waiting
            .send((notification_id, reply))
            .await
            .map_err(|_| DeliveryError::Transient("the email batcher stopped".into()))?;
        outcome.await.map_err(|_| DeliveryError::Transient("the email batch was dropped".into()))?
    }
}

/// Takes every email waiting (up to [`MAX_BATCH`]), sends them as one batch and answers each
/// waiter; repeats until every batcher is gone.
async fn email_batches(
    pool: PgPool,
    mailer: Arc<Mailer>,
    from: Mailbox,
    mut queue: mpsc::Receiver<(NotificationId, Reply)>,
) {
    let mut arrived = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut arrived, MAX_BATCH).await > 0 {
        let (ids, replies): (Vec<NotificationId>, Vec<Reply>) = arrived.drain(..).unzip();
        let outcomes = match pool.acquire().await {
            Ok(mut conn) => notifications::send(&mut conn, &mailer, &from, &ids).await,
            Err(err) => Err(err),
        };
        // A waiter that gave up (its delivery timed out) is retried by the queue.
        match outcomes {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                for reply in replies {
                    let _ = reply.send(Err(DeliveryError::Transient(err.to_string())));
                }
            }
        }
    }
}
