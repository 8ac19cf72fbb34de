//! Refuses request bodies over a size limit with 413, whether or not they declare their length.
//!
//! poem's own `SizeLimit` answers 411 to every request without `Content-Length` (every GET), and
//! poem-openapi's JSON payload reads bodies without a bound, hence this middleware.
//!
//! Photo uploads (`POST …/photos`) get a larger limit and must declare their length: they are
//! streamed to disk, never buffered, so the length is the one bound checked before reading.

use poem::error::SizedLimitError;
use poem::http::Method;
use poem::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use poem::{Body, Endpoint, Middleware, Request};

/// Caps request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    /// Bytes of any body but an upload's.
    pub json: usize,
    /// Bytes of a photo upload's multipart body.
    pub upload: usize,
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint { inner, limits: *self }
    }
}

/// The endpoint [`BodyLimit`] wraps.
pub struct BodyLimitEndpoint<E> {
    inner: E,
    limits: BodyLimit,
}

fn is_upload(req: &Request) -> bool {
    req.method() == Method::POST && req.uri().path().ends_with("/photos")
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        let upload = is_upload(&req);
        let max = if upload { self.limits.upload } else { self.limits.json };
        let declared =
            req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len > max as u64 => {
                return Err(SizedLimitError::PayloadTooLarge.into());
            }
            Some(_) => {}
            None if upload => return Err(SizedLimitError::MissingContentLength.into()),
            None if req.headers().contains_key(TRANSFER_ENCODING) => {
                // A streamed body: read at most `max` bytes, then hand the buffered body on.
                let bytes = req.take_body().into_bytes_limit(max).await?;
                req.set_body(Body::from(bytes));
            }
            None => {}
        }
        self.inner.call(req).await
    }
}
