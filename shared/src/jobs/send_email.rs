//! `send_email`: send one recorded notification, at most once across retries and redeliveries.

use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError, Queue};
use crate::ids::NotificationId;
use crate::notifications::{self, DeliveryError};

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

    fn subject(&self) -> i64 {
        self.notification_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let mut conn = ctx.pool.acquire().await?;
        match notifications::send(&mut conn, &ctx.mailer, &ctx.from, self.notification_id).await {
            Ok(outcome) => {
                tracing::info!(notification.id = self.notification_id.0, ?outcome, "email");
                Ok(())
            }
            Err(DeliveryError::Transient(e)) => Err(JobError::Retry(e)),
            Err(DeliveryError::Permanent(e)) => Err(JobError::Abandon(e)),
        }
    }
}
