//! Refuses request bodies over a size limit with 413, whether or not they declare their length.
//!
//! poem's own `SizeLimit` answers 411 to every request without `Content-Length` (every GET), and
//! poem-openapi's JSON payload reads bodies without a bound, hence this middleware.

use poem::error::SizedLimitError;
use poem::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use poem::{Body, Endpoint, Middleware, Request};

/// Caps request bodies at the given number of bytes.
pub struct BodyLimit(pub usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint { inner, max: self.0 }
    }
}

/// The endpoint [`BodyLimit`] wraps.
pub struct BodyLimitEndpoint<E> {
    inner: E,
    max: usize,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        let declared =
            req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len > self.max as u64 => {
                return Err(SizedLimitError::PayloadTooLarge.into());
            }
            Some(_) => {}
            None if req.headers().contains_key(TRANSFER_ENCODING) => {
                // A streamed body: read at most `max` bytes, then hand the buffered body on.
                let bytes = req.take_body().into_bytes_limit(self.max).await?;
                req.set_body(Body::from(bytes));
            }
            None => {}
        }
        self.inner.call(req).await
    }
}
