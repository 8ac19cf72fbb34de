//! Turning an upload into the two files we serve, from decoded pixels only: nothing of the upload's
//! bytes survives (no EXIF, so no GPS position; no payload glued after the image data).
//!
//! CPU-bound and synchronous: callers run it on the blocking pool, bounded by [`RenderSlots`].

use std::io::Cursor;
use std::sync::Arc;

use fast_image_resize as fr;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// The most pixels an upload may decode to: a 40-megapixel camera's full frame.
pub const MAX_PIXELS: u64 = 40_000_000;
/// The longest side an upload may declare; checked from the header, before any pixel is allocated.
pub const MAX_SIDE: u32 = 16_384;
/// The shortest side a photo must have to show anything useful.
pub const MIN_SIDE: u32 = 100;
/// What one decode may allocate: a 40-megapixel RGBA frame and some slack.
pub const MAX_DECODE_BYTES: u64 = 192 * 1024 * 1024;
/// Longest side of the list and gallery rendition.
pub const THUMB_SIDE: u32 = 640;
/// Longest side of the full-size rendition.
pub const LARGE_SIDE: u32 = 1_600;
const JPEG_QUALITY: u8 = 82;

/// Why an upload is not a photo we can show. The codes are the API's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not JPEG, PNG or WebP, judged by the bytes (the name and declared type are ignored).
    #[error("unsupported_format")]
    UnsupportedFormat,
    /// A known format whose data is truncated or damaged.
    #[error("corrupt_image")]
    CorruptImage,
    /// More than 40 megapixels, or a side over 16,384 pixels.
    #[error("dimensions_too_large")]
    DimensionsTooLarge,
    /// A side under 100 pixels.
    #[error("too_small")]
    TooSmall,
}

impl Rejection {
    /// The snake_case reason code.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnsupportedFormat => "unsupported_format",
            Self::CorruptImage => "corrupt_image",
            Self::DimensionsTooLarge => "dimensions_too_large",
            Self::TooSmall => "too_small",
        }
    }
}

/// One encoded file.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// JPEG bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, first 32 hex digits: the file's name and `ETag`.
    pub content_hash: String,
}

/// What an accepted upload becomes.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Width of the upright photo (after EXIF orientation), in pixels.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// Longest side ≤ [`THUMB_SIDE`].
    pub thumb: Encoded,
    /// Longest side ≤ [`LARGE_SIDE`].
    pub large: Encoded,
}

/// Decodes `upload` under hard limits, turns it upright and encodes the two renditions.
pub fn render(upload: &[u8]) -> Result<Rendered, Rejection> {
    let upright = decode_upright(upload)?;
    let (width, height) = (upright.width(), upright.height());
    let large = resize_within(&upright, LARGE_SIDE);
    let thumb = resize_within(&large, THUMB_SIDE);
    Ok(Rendered { width, height, thumb: encode(&thumb), large: encode(&large) })
}

fn decode_upright(upload: &[u8]) -> Result<RgbImage, Rejection> {
    let format = image::guess_format(upload).map_err(|_| Rejection::UnsupportedFormat)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) {
        return Err(Rejection::UnsupportedFormat);
    }
    let mut reader = ImageReader::with_format(Cursor::new(upload), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    // The header is read here, and the limits checked against it, before any pixel buffer exists.
    let mut decoder = reader.into_decoder().map_err(rejection)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Rejection::DimensionsTooLarge);
    }
    if width.min(height) < MIN_SIDE {
        return Err(Rejection::TooSmall);
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(rejection)?;
    image.apply_orientation(orientation);
    Ok(flatten(image))
}

fn rejection(err: ImageError) -> Rejection {
    match err {
        ImageError::Limits(_) => Rejection::DimensionsTooLarge,
        ImageError::Unsupported(_) => Rejection::UnsupportedFormat,
        _ => Rejection::CorruptImage,
    }
}

/// RGB pixels; transparent areas become white, as they look on our white pages.
fn flatten(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for pixel in rgba.pixels() {
        let [r, g, b, a] = pixel.0;
        let over_white = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        rgb.extend([over_white(r), over_white(g), over_white(b)]);
    }
    RgbImage::from_raw(width, height, rgb).expect("buffer sized for the image")
}

/// `image` scaled down (never up) so that its longest side is at most `side`.
fn resize_within(image: &RgbImage, side: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    if width.max(height) <= side {
        return image.clone();
    }
    let scale = f64::from(side) / f64::from(width.max(height));
    let target_width = ((f64::from(width) * scale).round() as u32).max(1);
    let target_height = ((f64::from(height) * scale).round() as u32).max(1);
    let src = fr::images::ImageRef::new(width, height, image.as_raw(), fr::PixelType::U8x3)
        .expect("buffer sized for the image");
    let mut dst = fr::images::Image::new(target_width, target_height, fr::PixelType::U8x3);
    let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom));
    fr::Resizer::new().resize(&src, &mut dst, &options).expect("same pixel type on both sides");
    RgbImage::from_raw(target_width, target_height, dst.into_vec()).expect("buffer sized for the image")
}

fn encode(image: &RgbImage) -> Encoded {
    let mut bytes = Vec::new();
    // Sides are at most LARGE_SIDE, well inside the encoder's u16.
    jpeg_encoder::Encoder::new(&mut bytes, JPEG_QUALITY)
        .encode(image.as_raw(), image.width() as u16, image.height() as u16, jpeg_encoder::ColorType::Rgb)
        .expect("an in-memory JPEG of valid dimensions");
    let digest = Sha256::digest(&bytes);
    let content_hash = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Encoded { bytes, content_hash }
}

/// How many renders one process runs at once: one per core, so a burst of uploads queues instead of
/// multiplying memory and stealing the cores from everything else.
#[derive(Debug, Clone)]
pub struct RenderSlots(Arc<Semaphore>);

impl RenderSlots {
    /// One slot per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// `slots` renders at once.
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(Semaphore::new(slots.max(1))))
    }

    /// Renders `upload` on the blocking pool once a slot is free.
    pub async fn render(&self, upload: bytes::Bytes) -> Result<Result<Rendered, Rejection>, tokio::task::JoinError> {
        let _slot = self.0.acquire().await.expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || render(&upload)).await
    }
}
