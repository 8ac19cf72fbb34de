//! Serves photo renditions at `/media/photos/{photo id}/{content hash}-{thumb|large}.jpg` from the
//! media store (local or S3), for every backend alike. Only renditions are reachable: the path must be
//! exactly a rendition's name ([`MediaKey::public`]), so neither originals nor anything outside the
//! store can be asked for. Names are content hashes, so the files are immutable: a year-long cache,
//! the hash as a strong `ETag`, and `Range` and `HEAD` for clients that resume or probe.

use std::ops::Range;

use futures::TryStreamExt;
use neighborbid_shared::media::{MediaError, MediaKey};
use poem::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, IF_RANGE, RANGE,
    X_CONTENT_TYPE_OPTIONS,
};
use poem::http::{HeaderMap, Method, StatusCode};
use poem::web::{Data, Path};
use poem::{Body, Request, Response};

use crate::state::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[poem::handler]
pub async fn serve(req: &Request, Path(path): Path<String>, state: Data<&AppState>) -> poem::Result<Response> {
    let Some(key) = MediaKey::public(&path) else {
        return Err(StatusCode::NOT_FOUND.into());
    };
    let etag = format!("\"{}\"", key.etag().unwrap_or_default());
    let headers = req.headers();
    if header_lists(headers, IF_NONE_MATCH, &etag) {
        return Ok(with_file_headers(Response::builder().status(StatusCode::NOT_MODIFIED), &etag).finish());
    }
    let size = state.media.size(&key).await.map_err(storage_error)?;
    let wanted = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) if range_applies(headers, &etag) => match parse_range(range, size) {
            RangeRequest::Whole => None,
            RangeRequest::Part(range) => Some(range),
            RangeRequest::Unsatisfiable => {
                return Ok(Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(CONTENT_RANGE, format!("bytes */{size}"))
                    .finish());
            }
        },
        _ => None,
    };
    let range = wanted.clone().unwrap_or(0..size);
    let mut response = with_file_headers(Response::builder(), &etag)
        .header(CONTENT_TYPE, "image/jpeg")
        .header(CONTENT_LENGTH, range.end - range.start);
    if wanted.is_some() {
        response = response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(CONTENT_RANGE, format!("bytes {}-{}/{size}", range.start, range.end - 1));
    }
    if req.method() == Method::HEAD || range.is_empty() {
        return Ok(response.finish());
    }
    let stream = state.media.read_range(&key, range).await.map_err(storage_error)?;
    Ok(response.body(Body::from_bytes_stream(stream.map_err(std::io::Error::other))))
}

fn with_file_headers(builder: poem::ResponseBuilder, etag: &str) -> poem::ResponseBuilder {
    builder
        .header(ETAG, etag)
        .header(CACHE_CONTROL, IMMUTABLE)
        .header(X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(ACCEPT_RANGES, "bytes")
}

fn storage_error(err: MediaError) -> poem::Error {
    match err {
        MediaError::NotFound => StatusCode::NOT_FOUND.into(),
        other => {
            tracing::error!(error = %other, "photo storage failed");
            StatusCode::SERVICE_UNAVAILABLE.into()
        }
    }
}

/// True when the header `name` lists `etag` (or `*`).
fn header_lists(headers: &HeaderMap, name: poem::http::HeaderName, etag: &str) -> bool {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|tag| {
        let tag = tag.trim();
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
    })
}

/// `If-Range` makes a range conditional on the file being the one the client has.
fn range_applies(headers: &HeaderMap, etag: &str) -> bool {
    headers.get(IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|tag| tag.trim() == etag)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No usable range (absent, malformed or several ranges): send the whole file.
    Whole,
    /// These bytes.
    Part(Range<u64>),
    /// A range that starts past the end.
    Unsatisfiable,
}

/// One `bytes=` range of a file of `size` bytes; several ranges are answered with the whole file,
/// as RFC 9110 allows.
fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let (start, end) = (start.trim(), end.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let range = match (start.is_empty(), end.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parse(end) {
            Some(0) => return RangeRequest::Unsatisfiable,
            Some(n) => size.saturating_sub(n)..size,
            None => return RangeRequest::Whole,
        },
        (false, true) => match parse(start) {
            Some(from) => from..size,
            None => return RangeRequest::Whole,
        },
        (false, false) => match (parse(start), parse(end)) {
            (Some(from), Some(to)) if from <= to => from..to.saturating_add(1).min(size),
            _ => return RangeRequest::Whole,
        },
        (true, true) => return RangeRequest::Whole,
    };
    if range.start >= size { RangeRequest::Unsatisfiable } else { RangeRequest::Part(range) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-99", 1000), RangeRequest::Part(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), RangeRequest::Part(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), RangeRequest::Part(900..1000));
        assert_eq!(parse_range("bytes=-5000", 1000), RangeRequest::Part(0..1000));
        assert_eq!(parse_range("bytes=990-5000", 1000), RangeRequest::Part(990..1000));
        assert_eq!(parse_range("bytes=1000-", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=9-1", 1000), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 1000), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=x-1", 1000), RangeRequest::Whole);
    }
}
