//! Answers poem's router gives without our handlers, made to say what the spec says: a 405 lists
//! the allowed methods in `Allow` (RFC 9110), and a path parameter that does not parse is a 400
//! `invalid_parameter` naming the parameter as documented (`id`), not poem-openapi's `param0`.

use std::sync::Arc;

use poem::error::MethodNotAllowedError;
use poem::http::StatusCode;
use poem::http::header::ALLOW;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::error::ParsePathError;

use super::document::routes;
use super::error::json_response;

/// Where the API is mounted; routes outside it (`/openapi.json`, `/docs`, `/healthz`, `/readyz`,
/// `/ws/…`, `/media/…`) are all `GET` routes, which poem also answers for `HEAD`.
const API_PREFIX: &str = "/api/v1";

/// Middleware (use with `around`) that rewrites those two answers; everything else passes through.
pub async fn explain<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let err = match next.call(req).await {
        Ok(response) => return Ok(response.into_response()),
        Err(err) => err,
    };
    let route = path.strip_prefix(API_PREFIX).and_then(routes::find);
    if err.is::<MethodNotAllowedError>() {
        let allow = route.map_or_else(|| "GET, HEAD".to_owned(), routes::Route::allow);
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("method not allowed; this resource allows {allow}"),
            serde_json::json!({ "allow": allow }),
        );
        response.headers_mut().insert(ALLOW, allow.parse().expect("method names are a valid header value"));
        return Ok(response);
    }
    if let Some(parse) = err.downcast_ref::<ParsePathError>() {
        let index = parse.name.strip_prefix("param").and_then(|n| n.parse().ok());
        let name = route.zip(index).and_then(|(route, index)| route.parameter(index)).unwrap_or(parse.name);
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("path parameter `{name}` is malformed: {}", parse.reason),
            serde_json::json!({ "field": name }),
        ));
    }
    Err(err)
}
