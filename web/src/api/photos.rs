//! Item photos: the seller uploads (stored as sent, answered 202 `pending`), the `images` workers
//! validate and render, everyone sees the ready ones.

use chrono::{DateTime, Utc};
use neighborbid_shared::ids::{AuctionId, PhotoId, UserId};
use neighborbid_shared::media::{MediaError, MediaKey};
use neighborbid_shared::photos::{self, MAX_UPLOAD_BYTES, Photo, PhotoStatus, ReadyPhoto};
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiResponse, Enum, Multipart, Object, OpenApi, SecurityScheme};

use super::ApiTags;
use super::auth::BearerAuth;
use super::error::{ApiError, ErrorSet, error_set};
use crate::state::AppState;

error_set!(
    /// Errors of uploading a photo.
    UploadErrors {
        400 => "malformed multipart body, or no part named `file`",
        401 => "missing, invalid, expired or revoked token",
        403 => "`not_seller`: only the auction's seller adds photos",
        404 => "`auction_not_found`",
        409 => "`too_many_photos` (10 per auction) or `auction_not_open` (photos are added while `scheduled` or `active`)",
        411 => "`length_required`: uploads must declare their `Content-Length`",
        413 => "`photo_too_large`: the file is over 10 MiB",
        415 => "`unsupported_content_type`: send `multipart/form-data`",
        422 => "`empty_file`",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database or the photo storage is unavailable",
    }
);
error_set!(
    /// Errors of reading photos.
    PhotoReadErrors {
        400 => "malformed parameter",
        404 => "`auction_not_found` or `photo_not_found`",
        503 => "the database is unavailable",
    }
);
error_set!(
    /// Errors of removing a photo.
    PhotoRemoveErrors {
        400 => "malformed parameter",
        401 => "missing, invalid, expired or revoked token",
        403 => "`not_seller`",
        404 => "`photo_not_found`",
        429 => "`rate_limited`: too many writes by this user; see `Retry-After`",
        503 => "the database is unavailable",
    }
);

/// A photo's processing state.
#[derive(Enum)]
#[oai(rename_all = "snake_case")]
pub enum PhotoStatusView {
    /// Uploaded; validation and rendering are queued.
    Pending,
    /// Shown; `urls` are set.
    Ready,
    /// Not shown; `reason` says why.
    Rejected,
}

impl From<PhotoStatus> for PhotoStatusView {
    fn from(status: PhotoStatus) -> Self {
        match status {
            PhotoStatus::Pending => Self::Pending,
            PhotoStatus::Ready => Self::Ready,
            PhotoStatus::Rejected => Self::Rejected,
        }
    }
}

/// Where a ready photo's renditions are served (paths on this host): re-encoded JPEGs, never the
/// uploaded file, immutable and cacheable for a year.
#[derive(Object)]
pub struct PhotoUrls {
    /// Longest side at most 640 pixels.
    pub thumb: String,
    /// Longest side at most 1,600 pixels.
    pub large: String,
}

/// An item photo.
#[derive(Object)]
pub struct PhotoView {
    pub id: i64,
    pub auction_id: i64,
    /// Display order; 0 is the cover.
    pub position: i32,
    pub status: PhotoStatusView,
    /// Why it was rejected: `unsupported_format`, `corrupt_image`, `dimensions_too_large` or `too_small`.
    pub reason: Option<String>,
    /// Width of the upright photo in pixels, once ready.
    pub width: Option<i32>,
    /// Its height, once ready.
    pub height: Option<i32>,
    /// Set once ready.
    pub urls: Option<PhotoUrls>,
    pub created_at: DateTime<Utc>,
}

impl PhotoView {
    fn urls(thumb: Option<String>, large: Option<String>) -> Option<PhotoUrls> {
        Some(PhotoUrls { thumb: MediaKey::stored(thumb?).url(), large: MediaKey::stored(large?).url() })
    }

    /// A ready photo of an auction.
    pub fn ready(auction_id: AuctionId, photo: ReadyPhoto) -> Self {
        Self {
            id: photo.id.0,
            auction_id: auction_id.0,
            position: photo.position,
            status: PhotoStatusView::Ready,
            reason: None,
            width: Some(photo.width),
            height: Some(photo.height),
            urls: Self::urls(Some(photo.thumb_key), Some(photo.large_key)),
            created_at: photo.created_at,
        }
    }
}

impl From<Photo> for PhotoView {
    fn from(photo: Photo) -> Self {
        Self {
            id: photo.id.0,
            auction_id: photo.auction_id.0,
            position: photo.position,
            status: photo.status.into(),
            reason: photo.reason,
            width: photo.width,
            height: photo.height,
            urls: Self::urls(photo.thumb_key, photo.large_key),
            created_at: photo.created_at,
        }
    }
}

/// An auction's photos, in display order.
#[derive(Object)]
pub struct PhotoList {
    pub items: Vec<PhotoView>,
}

/// The upload.
#[derive(Multipart)]
pub struct PhotoUpload {
    /// A JPEG, PNG or WebP file of at most 10 MiB (the format is read from the bytes, not the name).
    pub file: Upload,
}

#[derive(ApiResponse)]
enum AcceptedPhoto {
    /// Stored and queued for validation: `status` is `pending`. Watch the auction's WebSocket for
    /// `photo_added`, or read the photo again, to learn whether it became `ready` or `rejected`.
    #[oai(status = 202)]
    Accepted(Json<PhotoView>),
}

#[derive(ApiResponse)]
enum RemovedPhoto {
    /// Removed: no longer shown; its files are deleted shortly.
    #[oai(status = 204)]
    Removed,
}

/// A bearer token when one is sent: sellers see their pending and rejected photos too.
#[derive(SecurityScheme)]
enum MaybeSeller {
    Seller(BearerAuth),
    #[oai(fallback)]
    Anyone,
}

impl MaybeSeller {
    fn user_id(&self) -> Option<UserId> {
        match self {
            Self::Seller(auth) => Some(auth.0.user.id),
            Self::Anyone => None,
        }
    }
}

/// Photo endpoints.
pub struct PhotosApi;

#[OpenApi(tag = "ApiTags::Auctions")]
impl PhotosApi {
    /// Add a photo to your auction (while it is scheduled or active; up to 10). The answer comes
    /// as soon as the file is stored: a worker then checks it is really a JPEG, PNG or WebP image
    /// and renders it, or rejects it with a `reason`.
    #[oai(path = "/auctions/:id/photos", method = "post", operation_id = "upload_photo")]
    async fn upload(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
        upload: PhotoUpload,
    ) -> Result<AcceptedPhoto, ApiError<UploadErrors>> {
        let size = upload.file.size() as u64;
        if size > MAX_UPLOAD_BYTES {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "photo_too_large", "a photo is at most 10 MiB"));
        }
        if size == 0 {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "empty_file", "the file is empty")
                .with_details(serde_json::json!({ "field": "file" })));
        }
        let seller = auth.0.user.id;
        photos::check_upload(&mut *state.pool.acquire().await?, AuctionId(id.0), seller).await?;
        let original = MediaKey::original();
        state.media.put_stream(&original, upload.file.into_file()).await?;
        let bytes = i64::try_from(size).unwrap_or(i64::MAX);
        match photos::record_upload(&mut *state.pool.acquire().await?, AuctionId(id.0), seller, &original, bytes).await
        {
            Ok(photo) => Ok(AcceptedPhoto::Accepted(Json(photo.into()))),
            Err(err) => {
                if let Err(cleanup) = state.media.delete(&original).await {
                    tracing::warn!(key = original.as_str(), error = %cleanup, "refused upload not deleted");
                }
                Err(err.into())
            }
        }
    }

    /// An auction's photos in display order: the ready ones, and for its seller (signed in) the
    /// pending and rejected ones too.
    #[oai(path = "/auctions/:id/photos", method = "get", operation_id = "list_photos")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: MaybeSeller,
        id: Path<i64>,
    ) -> Result<Json<PhotoList>, ApiError<PhotoReadErrors>> {
        let photos = photos::list(&mut *state.pool.acquire().await?, AuctionId(id.0), auth.user_id()).await?;
        Ok(Json(PhotoList { items: photos.into_iter().map(Into::into).collect() }))
    }

    /// One photo: any ready one, and for its seller (signed in) a pending or rejected one, with
    /// the `reason` it was rejected.
    #[oai(path = "/photos/:id", method = "get", operation_id = "get_photo")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: MaybeSeller,
        id: Path<i64>,
    ) -> Result<Json<PhotoView>, ApiError<PhotoReadErrors>> {
        let photo = photos::find(&mut *state.pool.acquire().await?, PhotoId(id.0), auth.user_id()).await?;
        Ok(Json(photo.into()))
    }

    /// Remove a photo of your auction.
    #[oai(path = "/photos/:id", method = "delete", operation_id = "delete_photo")]
    async fn remove(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<i64>,
    ) -> Result<RemovedPhoto, ApiError<PhotoRemoveErrors>> {
        let events = photos::remove(&mut *state.pool.acquire().await?, PhotoId(id.0), auth.0.user.id).await?;
        state.hub.publish(&events);
        Ok(RemovedPhoto::Removed)
    }
}

impl<E: ErrorSet> From<MediaError> for ApiError<E> {
    fn from(err: MediaError) -> Self {
        tracing::error!(error = %err, "photo storage failed");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "photo storage is unavailable; please retry")
    }
}
