//! `purge_photo`: delete a removed photo's files, then its row.

use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError, Queue};
use crate::ids::PhotoId;
use crate::photos::processing::{self, Work};

/// Delete the files of a photo its seller removed, then forget it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgePhoto {
    /// The removed photo.
    pub photo_id: PhotoId,
}

impl Job for PurgePhoto {
    const NAME: &'static str = "purge_photo";
    const QUEUE: Queue = Queue::Images;
    /// Removed photos whose row is still there.
    const OVERDUE: &'static str = "INSERT INTO outbox (kind, payload) \
         SELECT 'purge_photo', jsonb_build_object('photo_id', p.id) \
         FROM photos p \
         WHERE p.removed_at IS NOT NULL \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'purge_photo' \
                           AND (o.payload ->> 'photo_id')::bigint = p.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))";

    fn subject(&self) -> i64 {
        self.photo_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let Work::Purge { files } = processing::work(&mut *ctx.pool.acquire().await?, self.photo_id).await? else {
            return Ok(());
        };
        for file in &files {
            ctx.media.delete(file).await?;
        }
        processing::forget_removed(&mut *ctx.pool.acquire().await?, self.photo_id).await?;
        tracing::info!(photo.id = self.photo_id.0, files = files.len(), "photo purged");
        Ok(())
    }
}
