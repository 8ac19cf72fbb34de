//! Where photo files live, behind one small interface: the local filesystem (`MEDIA_DIR`) by
//! default, or S3-compatible object storage (`MEDIA_URL=s3://bucket`), through which web and worker
//! replicas on different machines share files.
//!
//! Keys are made here and nowhere else. Uploaded originals live under `originals/` and are never
//! served; renditions are `photos/{photo id}/{content hash}-{thumb|large}.jpg`, immutable, so the web
//! serves them with year-long cache headers and their hash as the `ETag`.

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::config::{Config, Secret};
use crate::ids::PhotoId;

/// The variables read for S3-compatible storage, as the AWS tools name them.
pub const S3_VARIABLES: [&str; 8] = [
    "AWS_ENDPOINT",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
];

/// A file's name in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaKey(String);

/// Which rendition of a photo a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    /// Longest side at most 640 pixels: lists and galleries.
    Thumb,
    /// Longest side at most 1,600 pixels: the photo itself.
    Large,
}

impl Rendition {
    fn as_str(self) -> &'static str {
        match self {
            Self::Thumb => "thumb",
            Self::Large => "large",
        }
    }
}

impl MediaKey {
    /// Where a new upload goes: a fresh random name, private.
    pub fn original() -> Self {
        Self(format!("originals/{}", uuid::Uuid::new_v4().simple()))
    }

    /// A rendition of photo `photo_id` whose bytes hash to `content_hash` (32 hex digits).
    pub fn rendition(photo_id: PhotoId, content_hash: &str, rendition: Rendition) -> Self {
        Self(format!("photos/{photo_id}/{content_hash}-{}.jpg", rendition.as_str()))
    }

    /// A key read back from the database.
    pub fn stored(key: String) -> Self {
        Self(key)
    }

    /// The key of a servable file, from the path a client asked for; `None` for anything that is
    /// not exactly a rendition's name (originals, traversal attempts, other files).
    pub fn public(path: &str) -> Option<Self> {
        let mut parts = path.split('/');
        let (Some("photos"), Some(id), Some(file), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let id_ok = !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit());
        let (hash, rest) = file.split_once('-')?;
        let hash_ok = hash.len() == 32 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        (id_ok && hash_ok && matches!(rest, "thumb.jpg" | "large.jpg")).then(|| Self(path.to_owned()))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The strong validator of a rendition's bytes: its content hash.
    pub fn etag(&self) -> Option<&str> {
        self.0.rsplit('/').next()?.split_once('-').map(|(hash, _)| hash)
    }

    /// The URL path the web serves this file at.
    pub fn url(&self) -> String {
        format!("/media/{}", self.0)
    }

    fn path(&self) -> Path {
        Path::from(self.0.as_str())
    }
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// No file has that key.
    #[error("no such file")]
    NotFound,
    /// The store failed (disk, network, credentials).
    #[error("media storage: {0}")]
    Storage(object_store::Error),
    /// Reading the upload failed.
    #[error("reading the upload: {0}")]
    Io(#[from] std::io::Error),
}

impl From<object_store::Error> for MediaError {
    fn from(err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Storage(other),
        }
    }
}

/// Bytes of a stored file, as they arrive.
pub type MediaStream = BoxStream<'static, Result<Bytes, object_store::Error>>;

/// The photo store.
#[derive(Debug, Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    /// The most of an upload held in memory at once: a multipart part.
    part_bytes: usize,
}

/// Local files are written as they arrive, a small buffer at a time.
const LOCAL_PART_BYTES: usize = 256 * 1024;
/// S3's smallest multipart part (every part but the last must be at least this).
const S3_PART_BYTES: usize = 5 * 1024 * 1024;

impl MediaStore {
    /// The store `config` names: `MEDIA_URL` (`s3://bucket`, with the `AWS_*` variables) when set,
    /// else the directory `MEDIA_DIR`, created if missing.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        match &config.media_url {
            Some(url) => Self::s3(url, &config.media_s3_options),
            None => Self::local(&config.media_dir),
        }
    }

    /// Files under `dir`.
    pub fn local(dir: &FsPath) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), part_bytes: LOCAL_PART_BYTES })
    }

    /// Objects in the S3-compatible bucket of `url` (`s3://bucket`), with `options` from
    /// [`S3_VARIABLES`].
    pub fn s3(url: &str, options: &[(&str, Secret)]) -> anyhow::Result<Self> {
        let mut builder = AmazonS3Builder::new().with_url(url);
        for (name, value) in options {
            builder = builder.with_config(name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()?, value.expose());
        }
        Ok(Self { store: Arc::new(builder.build()?), part_bytes: S3_PART_BYTES })
    }

    /// Stores `bytes` under `key`.
    pub async fn put(&self, key: &MediaKey, bytes: Bytes) -> Result<(), MediaError> {
        self.store.put(&key.path(), bytes.into()).await?;
        Ok(())
    }

    /// Streams `reader` into `key` one part at a time (256 KiB locally, S3's 5 MiB minimum on S3), so a
    /// file larger than a part is never held whole.
    pub async fn put_stream(&self, key: &MediaKey, mut reader: impl AsyncRead + Unpin) -> Result<(), MediaError> {
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store), key.path(), self.part_bytes);
        if let Err(err) = tokio::io::copy(&mut reader, &mut writer).await {
            writer.abort().await.ok();
            return Err(err.into());
        }
        writer.shutdown().await?;
        Ok(())
    }

    /// The whole file.
    pub async fn read(&self, key: &MediaKey) -> Result<Bytes, MediaError> {
        Ok(self.store.get(&key.path()).await?.bytes().await?)
    }

    /// The file's size in bytes.
    pub async fn size(&self, key: &MediaKey) -> Result<u64, MediaError> {
        Ok(self.store.head(&key.path()).await?.size)
    }

    /// The bytes `range` of the file, streamed; the range must lie within the file.
    pub async fn read_range(&self, key: &MediaKey, range: Range<u64>) -> Result<MediaStream, MediaError> {
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
        Ok(self.store.get_opts(&key.path(), options).await?.into_stream())
    }

    /// Deletes the file; deleting a missing file succeeds, so a retried cleanup is harmless.
    pub async fn delete(&self, key: &MediaKey) -> Result<(), MediaError> {
        match self.store.delete(&key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(MediaError::Storage(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_renditions_are_public() {
        let hash = "0123456789abcdef0123456789abcdef";
        let thumb = MediaKey::rendition(PhotoId(42), hash, Rendition::Thumb);
        assert_eq!(MediaKey::public(thumb.as_str()), Some(thumb.clone()));
        assert_eq!(thumb.etag(), Some(hash));
        for path in [
            "originals/0123456789abcdef0123456789abcdef",
            "photos/42/../../originals/x",
            "photos/42/0123456789ABCDEF0123456789ABCDEF-thumb.jpg",
            "photos/42/0123456789abcdef0123456789abcdef-thumb.jpg/x",
            "photos//0123456789abcdef0123456789abcdef-thumb.jpg",
            "photos/42/0123456789abcdef0123456789abcdef-original.jpg",
            "/etc/passwd",
            "",
        ] {
            assert_eq!(MediaKey::public(path), None, "{path}");
        }
    }
}
