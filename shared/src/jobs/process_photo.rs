//! `process_photo`: whatever a photo's row says it still needs. Turn an upload into the renditions
//! buyers see or reject it with a reason, delete a settled photo's upload, or purge a removed photo's
//! files and then its row.

use serde::{Deserialize, Serialize};

use super::{Job, JobContext, JobError, Queue};
use crate::events;
use crate::ids::{AuctionId, PhotoId};
use crate::media::{MediaError, MediaKey, Rendition};
use crate::photos::processing::{self, Work};

/// Bring one photo's files in line with its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessPhoto {
    /// The photo.
    pub photo_id: PhotoId,
}

impl Job for ProcessPhoto {
    const NAME: &'static str = "process_photo";
    const QUEUE: Queue = Queue::Images;
    /// Photos still holding their upload (not yet settled, or settled with the upload not yet
    /// deleted), and removed photos not yet purged.
    const OVERDUE: &'static str = "INSERT INTO outbox (kind, payload) \
         SELECT 'process_photo', jsonb_build_object('photo_id', p.id) \
         FROM photos p \
         WHERE (p.original_key IS NOT NULL OR p.removed_at IS NOT NULL) \
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'process_photo' \
                           AND (o.payload ->> 'photo_id')::bigint = p.id \
                           AND coalesce(o.relayed_at, now()) > now() - make_interval(secs => $1))";

    fn subject(&self) -> i64 {
        self.photo_id.0
    }

    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let original = match processing::work(&mut *ctx.pool.acquire().await?, self.photo_id).await? {
            Work::Render { auction_id, original } => {
                self.render(ctx, auction_id, &original).await?;
                original
            }
            Work::DropOriginal { original } => original,
            Work::Purge { files } => return self.purge(ctx, &files).await,
            Work::None => return Ok(()),
        };
        ctx.media.delete(&original).await?;
        processing::forget_original(&mut *ctx.pool.acquire().await?, self.photo_id, &original).await?;
        Ok(())
    }
}

impl ProcessPhoto {
    async fn purge(self, ctx: &JobContext, files: &[MediaKey]) -> Result<(), JobError> {
        for file in files {
            ctx.media.delete(file).await?;
        }
        processing::forget_removed(&mut *ctx.pool.acquire().await?, self.photo_id).await?;
        tracing::info!(photo.id = self.photo_id.0, files = files.len(), "photo purged");
        Ok(())
    }

    async fn render(self, ctx: &JobContext, auction_id: AuctionId, original: &MediaKey) -> Result<(), JobError> {
        let upload = ctx.media.read(original).await?;
        let upload_bytes = upload.len();
        let rendered = ctx.render_slots.render(upload).await.map_err(|e| JobError::Abandon(format!("render: {e}")))?;
        let mut rendered = match rendered {
            Ok(rendered) => rendered,
            Err(rejection) => {
                processing::mark_rejected(&mut *ctx.pool.acquire().await?, self.photo_id, rejection).await?;
                tracing::info!(photo.id = self.photo_id.0, upload_bytes, reason = rejection.code(), "photo rejected");
                return Ok(());
            }
        };
        let thumb = MediaKey::rendition(self.photo_id, &rendered.thumb.content_hash, Rendition::Thumb);
        let large = MediaKey::rendition(self.photo_id, &rendered.large.content_hash, Rendition::Large);
        ctx.media.put(&thumb, std::mem::take(&mut rendered.thumb.bytes).into()).await?;
        ctx.media.put(&large, std::mem::take(&mut rendered.large.bytes).into()).await?;
        let mut conn = ctx.pool.acquire().await?;
        let events = processing::mark_ready(&mut conn, self.photo_id, auction_id, &rendered, &thumb, &large).await?;
        tracing::info!(
            photo.id = self.photo_id.0,
            upload_bytes,
            width = rendered.width,
            height = rendered.height,
            "photo ready"
        );
        events::publish(&mut ctx.redis.clone(), &ctx.prefix, &events).await;
        Ok(())
    }
}

impl From<MediaError> for JobError {
    fn from(err: MediaError) -> Self {
        Self::Retry(err.to_string())
    }
}
