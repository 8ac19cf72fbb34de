//! The operator console at `/ops`: one static page (HTML, JS and CSS compiled into the binary) that
//! signs an operator in and polls the admin endpoints of `/api/v1`. Not part of the API, so not in
//! the OpenAPI document.

use poem::http::header;
use poem::{Response, handler};

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Only our own script, style and API; no inline code, no frames, no form posts elsewhere. The
/// page shows attacker-influenced text (dead jobs' payloads, auction titles), so even a rendering
/// mistake must not be able to run script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
}

/// `GET /ops`: the page.
#[handler]
pub fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /ops/console.js`.
#[handler]
pub fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /ops/console.css`.
#[handler]
pub fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
