//! The worker's side of a photo: settling it `ready` or `rejected` once, dropping its original, and
//! purging a removed photo's files. Every step is conditional on the row's state, so a repeated or
//! concurrent job changes nothing.

use sqlx::{Connection, PgConnection};

use super::PhotoStatus;
use super::render::{Rejection, Rendered};
use crate::events::{self, EventType, StoredEvent};
use crate::ids::{AuctionId, PhotoId};
use crate::media::MediaKey;

/// What a photo still needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Nothing: processed and tidied, or gone.
    None,
    /// Render the upload and settle the photo.
    Render { auction_id: AuctionId, original: MediaKey },
    /// Settled already; delete the upload.
    DropOriginal { original: MediaKey },
    /// Removed by the seller: delete every file, then the row.
    Purge { files: Vec<MediaKey> },
}

/// What photo `photo_id` still needs.
pub async fn work(conn: &mut PgConnection, photo_id: PhotoId) -> Result<Work, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT auction_id AS "auction_id: AuctionId", status AS "status: PhotoStatus", original_key, thumb_key,
                  large_key, removed_at IS NOT NULL AS "removed!"
           FROM photos WHERE id = $1"#,
        photo_id as PhotoId,
    )
    .fetch_optional(conn)
    .await?
    else {
        return Ok(Work::None);
    };
    if row.removed {
        let files = [row.original_key, row.thumb_key, row.large_key].into_iter().flatten().map(MediaKey::stored);
        return Ok(Work::Purge { files: files.collect() });
    }
    Ok(match (row.status, row.original_key) {
        (_, None) => Work::None,
        (PhotoStatus::Pending, Some(key)) => {
            Work::Render { auction_id: row.auction_id, original: MediaKey::stored(key) }
        }
        (_, Some(key)) => Work::DropOriginal { original: MediaKey::stored(key) },
    })
}

/// Settles a pending photo as ready with its stored renditions, and tells the auction's watchers.
/// Returns the `photo_added` event, or nothing when the photo was settled or removed meanwhile.
#[tracing::instrument(skip_all, fields(photo.id = photo_id.0, auction.id = auction_id.0))]
pub async fn mark_ready(
    conn: &mut PgConnection,
    photo_id: PhotoId,
    auction_id: AuctionId,
    rendered: &Rendered,
    thumb: &MediaKey,
    large: &MediaKey,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let settled = sqlx::query!(
        r#"UPDATE photos SET status = 'ready', width = $2, height = $3, thumb_key = $4, large_key = $5,
                             processed_at = now()
           WHERE id = $1 AND status = 'pending' AND removed_at IS NULL
           RETURNING position, created_at"#,
        photo_id as PhotoId,
        i32::try_from(rendered.width).unwrap_or(i32::MAX),
        i32::try_from(rendered.height).unwrap_or(i32::MAX),
        thumb.as_str(),
        large.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(settled) = settled else {
        return Ok(Vec::new());
    };
    let data = serde_json::json!({
        "photo_id": photo_id,
        "position": settled.position,
        "width": rendered.width,
        "height": rendered.height,
        "urls": { "thumb": thumb.url(), "large": large.url() },
        "created_at": settled.created_at,
    });
    let events = events::append(&mut tx, auction_id, &[(EventType::PhotoAdded, data)]).await?;
    tx.commit().await?;
    Ok(events)
}

/// Settles a pending photo as rejected for `rejection`; false when it was settled meanwhile.
#[tracing::instrument(skip_all, fields(photo.id = photo_id.0, reason = rejection.code()))]
pub async fn mark_rejected(
    conn: &mut PgConnection,
    photo_id: PhotoId,
    rejection: Rejection,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "UPDATE photos SET status = 'rejected', reason = $2, processed_at = now() WHERE id = $1 AND status = 'pending'",
        photo_id as PhotoId,
        rejection.code(),
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Forgets a settled photo's upload once its file is deleted.
pub async fn forget_original(
    conn: &mut PgConnection,
    photo_id: PhotoId,
    original: &MediaKey,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE photos SET original_key = NULL WHERE id = $1 AND original_key = $2 AND status <> 'pending'",
        photo_id as PhotoId,
        original.as_str(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a removed photo's row once its files are deleted.
pub async fn forget_removed(conn: &mut PgConnection, photo_id: PhotoId) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM photos WHERE id = $1 AND removed_at IS NOT NULL", photo_id as PhotoId)
        .execute(conn)
        .await?;
    Ok(())
}
