//! Item photos: the seller's uploads, their processing by the `images` workers, and what buyers see.
//!
//! The web only stores the upload and records a [`ProcessPhoto`](crate::jobs::process_photo::ProcessPhoto)
//! job in the same transaction as the photo row; it never decodes an image. The worker renders the
//! upload ([`render`]) and settles the photo `ready` or `rejected` ([`processing`]). A photo row
//! always says what work it still needs, so lost jobs are re-derived by the sweep.

pub mod processing;
pub mod render;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

use crate::auctions::{AuctionError, Status};
use crate::events::{self, EventType, StoredEvent};
use crate::ids::{AuctionId, PhotoId, UserId};
use crate::jobs::process_photo::ProcessPhoto;
use crate::media::MediaKey;
use crate::outbox;

/// The most photos (pending or ready) one auction may carry.
pub const MAX_PHOTOS_PER_AUCTION: i64 = 10;
/// The largest upload accepted, in bytes (10 MiB).
pub const MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;

crate::auctions::text_enum!(
    /// Where a photo is in its processing.
    PhotoStatus {
        /// Uploaded; a worker has not looked at it yet.
        Pending = "pending",
        /// Rendered and shown.
        Ready = "ready",
        /// Not an image we can show; `reason` says why.
        Rejected = "rejected",
    }
);

/// A photo as its seller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Photo {
    pub id: PhotoId,
    pub auction_id: AuctionId,
    /// Display order: 0 is the cover.
    pub position: i32,
    pub status: PhotoStatus,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub thumb_key: Option<String>,
    pub large_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A ready photo as an auction carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyPhoto {
    pub id: PhotoId,
    pub position: i32,
    pub width: i32,
    pub height: i32,
    pub thumb_key: String,
    pub large_key: String,
    pub created_at: DateTime<Utc>,
}

/// Why a photo operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The auction refused: unknown, not the caller's, or no longer open.
    #[error(transparent)]
    Auction(#[from] AuctionError),
    /// No such photo (or not one the caller may see).
    #[error("photo not found")]
    NotFound,
    /// Photos are added only while the auction is scheduled or active.
    #[error("photos can only be added while the auction is scheduled or active")]
    AuctionClosed,
    /// The auction has as many photos as allowed.
    #[error("an auction carries at most {MAX_PHOTOS_PER_AUCTION} photos")]
    TooMany,
}

impl From<sqlx::Error> for PhotoError {
    fn from(err: sqlx::Error) -> Self {
        Self::Auction(err.into())
    }
}

/// Checks that `seller_id` may add a photo to the auction now; called before the upload is stored
/// so a refused request costs no storage, and again by [`record_upload`] under a lock.
pub async fn check_upload(conn: &mut PgConnection, auction_id: AuctionId, seller_id: UserId) -> Result<(), PhotoError> {
    let auction = sqlx::query!(
        r#"SELECT a.seller_id AS "seller_id: UserId", a.status AS "status: Status",
                  (SELECT count(*) FROM photos p WHERE p.auction_id = a.id AND p.removed_at IS NULL
                     AND p.status <> 'rejected') AS "photos!"
           FROM auctions a WHERE a.id = $1"#,
        auction_id as AuctionId,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(AuctionError::NotFound)?;
    if auction.seller_id != seller_id {
        return Err(AuctionError::NotSeller.into());
    }
    if !matches!(auction.status, Status::Scheduled | Status::Active) {
        return Err(PhotoError::AuctionClosed);
    }
    if auction.photos >= MAX_PHOTOS_PER_AUCTION {
        return Err(PhotoError::TooMany);
    }
    Ok(())
}

/// Records a stored upload as a pending photo at the end of the auction's photos, with its
/// processing job, in one transaction.
#[tracing::instrument(skip_all, fields(auction.id = auction_id.0, user.id = seller_id.0))]
pub async fn record_upload(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    seller_id: UserId,
    original: &MediaKey,
    original_bytes: i64,
) -> Result<Photo, PhotoError> {
    let mut tx = conn.begin().await?;
    // Only the seller adds photos, so the seller's row lock serialises count-then-insert (as when
    // creating auctions).
    sqlx::query!("SELECT id FROM users WHERE id = $1 FOR UPDATE", seller_id as UserId).fetch_optional(&mut *tx).await?;
    check_upload(&mut tx, auction_id, seller_id).await?;
    let photo = sqlx::query_as!(
        Photo,
        r#"INSERT INTO photos (auction_id, position, original_key, original_bytes)
           VALUES ($1, (SELECT coalesce(max(position) + 1, 0) FROM photos WHERE auction_id = $1 AND removed_at IS NULL),
                   $2, $3)
           RETURNING id AS "id: PhotoId", auction_id AS "auction_id: AuctionId", position,
                     status AS "status: PhotoStatus", reason, width, height, thumb_key, large_key, created_at"#,
        auction_id as AuctionId,
        original.as_str(),
        original_bytes,
    )
    .fetch_one(&mut *tx)
    .await?;
    outbox::record(&mut tx, &ProcessPhoto { photo_id: photo.id }).await?;
    tx.commit().await?;
    Ok(photo)
}

/// The auction's photos in display order: all of them for its seller, the ready ones for anyone else.
pub async fn list(
    conn: &mut PgConnection,
    auction_id: AuctionId,
    viewer: Option<UserId>,
) -> Result<Vec<Photo>, PhotoError> {
    let seller_id = sqlx::query_scalar!(
        r#"SELECT seller_id AS "seller_id: UserId" FROM auctions WHERE id = $1"#,
        auction_id as AuctionId
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AuctionError::NotFound)?;
    let everything = viewer == Some(seller_id);
    Ok(sqlx::query_as!(
        Photo,
        r#"SELECT id AS "id: PhotoId", auction_id AS "auction_id: AuctionId", position,
                  status AS "status: PhotoStatus", reason, width, height, thumb_key, large_key, created_at
           FROM photos WHERE auction_id = $1 AND removed_at IS NULL AND ($2 OR status = 'ready')
           ORDER BY position, id"#,
        auction_id as AuctionId,
        everything,
    )
    .fetch_all(conn)
    .await?)
}

/// One photo: any ready one, or any of the viewer's own.
pub async fn find(conn: &mut PgConnection, photo_id: PhotoId, viewer: Option<UserId>) -> Result<Photo, PhotoError> {
    sqlx::query_as!(
        Photo,
        r#"SELECT p.id AS "id: PhotoId", p.auction_id AS "auction_id: AuctionId", p.position,
                  p.status AS "status: PhotoStatus", p.reason, p.width, p.height, p.thumb_key, p.large_key, p.created_at
           FROM photos p JOIN auctions a ON a.id = p.auction_id
           WHERE p.id = $1 AND p.removed_at IS NULL AND (p.status = 'ready' OR a.seller_id = $2)"#,
        photo_id as PhotoId,
        viewer as Option<UserId>,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(PhotoError::NotFound)
}

/// Removes a photo at its seller's request: hidden at once, its files purged by its job. Returns the
/// `photo_removed` event when watchers could see it.
#[tracing::instrument(skip_all, fields(photo.id = photo_id.0, user.id = seller_id.0))]
pub async fn remove(
    conn: &mut PgConnection,
    photo_id: PhotoId,
    seller_id: UserId,
) -> Result<Vec<StoredEvent>, PhotoError> {
    let mut tx = conn.begin().await?;
    let photo = sqlx::query!(
        r#"SELECT p.auction_id AS "auction_id: AuctionId", p.status AS "status: PhotoStatus",
                  a.seller_id AS "seller_id: UserId"
           FROM photos p JOIN auctions a ON a.id = p.auction_id
           WHERE p.id = $1 AND p.removed_at IS NULL FOR UPDATE OF p"#,
        photo_id as PhotoId,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(PhotoError::NotFound)?;
    if photo.seller_id != seller_id {
        // Others may know a ready photo exists; telling them it is not theirs is no leak.
        return Err(if photo.status == PhotoStatus::Ready {
            AuctionError::NotSeller.into()
        } else {
            PhotoError::NotFound
        });
    }
    sqlx::query!("UPDATE photos SET removed_at = now() WHERE id = $1", photo_id as PhotoId).execute(&mut *tx).await?;
    outbox::record(&mut tx, &ProcessPhoto { photo_id }).await?;
    let events = if photo.status == PhotoStatus::Ready {
        let data = serde_json::json!({ "photo_id": photo_id });
        events::append(&mut tx, photo.auction_id, &[(EventType::PhotoRemoved, data)]).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    Ok(events)
}
