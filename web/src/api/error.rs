//! One JSON error shape for every failure, with a stable snake_case `code`.
//!
//! Handlers return `Result<_, ApiError<E>>` where `E` names the statuses that endpoint can answer
//! with, so the OpenAPI document lists exactly those. Errors raised by poem itself (malformed JSON,
//! bad parameters, missing tokens, unknown routes, oversized bodies) are rendered into the same shape
//! by [`render_poem_error`].

use std::marker::PhantomData;

use neighborbid_shared::rate_limit::Throttled;
use poem::http::StatusCode;
use poem::http::header::RETRY_AFTER;
use poem::web::Json as PoemJson;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object};
use serde_json::Value;

/// The body of every error response.
#[derive(Debug, Object, serde::Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and for people (`message`).
#[derive(Debug, Object, serde::Deserialize)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `username_taken`; safe to branch on.
    pub code: String,
    /// A sentence for people; may change between versions.
    pub message: String,
    /// Structured context such as the offending `field` or the `minimum` acceptable amount.
    pub details: Value,
}

/// A set of statuses one endpoint can answer with, and what each means there.
pub trait ErrorSet: Send + Sync + 'static {
    /// (status, description) pairs in the order the spec lists them.
    const STATUSES: &'static [(u16, &'static str)];
}

/// An error answer. `E` only documents which statuses are possible; any status renders the same way.
pub struct ApiError<E: ErrorSet> {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    retry_after_secs: Option<u64>,
    endpoint: PhantomData<E>,
}

impl<E: ErrorSet> std::fmt::Debug for ApiError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl<E: ErrorSet> ApiError<E> {
    /// An error with `status`, `code` and a human `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Value::Object(Default::default()),
            retry_after_secs: None,
            endpoint: PhantomData,
        }
    }

    /// 429 `rate_limited`: the client asked too often; `Retry-After` says when to ask again.
    pub fn throttled(throttled: Throttled) -> Self {
        let secs = throttled.retry_after_secs();
        let mut err =
            Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", format!("too many requests; retry in {secs} s"))
                .with_details(serde_json::json!({ "retry_after_seconds": secs }));
        err.retry_after_secs = Some(secs);
        err
    }

    /// 503 `overloaded`: too much work is queued already; retry in a second.
    pub fn overloaded() -> Self {
        let mut err =
            Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the service is busy; please retry shortly");
        err.retry_after_secs = Some(1);
        err
    }

    /// The stable code the client gets, e.g. `bid_too_low`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Adds structured context.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// A failure that is ours, not the client's: logged in full, reported without internals.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side; please retry")
    }
}

impl<E: ErrorSet> From<neighborbid_shared::validation::ValidationError> for ApiError<E> {
    fn from(err: neighborbid_shared::validation::ValidationError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, err.code, err.to_string())
            .with_details(serde_json::json!({ "field": err.field }))
    }
}

impl<E: ErrorSet> From<sqlx::Error> for ApiError<E> {
    /// Losing the database is a 503; a value PostgreSQL refuses to store or compute with (SQLSTATE
    /// class 22: a NUL byte, an out-of-range number or date) came from the client and is a 400,
    /// whatever check upstream missed it. Anything else is our bug: a 500.
    fn from(err: sqlx::Error) -> Self {
        match DatabaseFault::of(&err) {
            DatabaseFault::Unavailable => {
                tracing::warn!(error = %err, "database unavailable");
                let mut unavailable = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable; please retry",
                );
                unavailable.retry_after_secs = Some(1);
                unavailable
            }
            DatabaseFault::BadValue => {
                tracing::info!(error = %err, "the database refused a value from the request");
                Self::new(StatusCode::BAD_REQUEST, "invalid_value", "the request carries a value that cannot be stored")
            }
            DatabaseFault::Bug => Self::internal(err),
        }
    }
}

/// Whose fault a database error is.
enum DatabaseFault {
    /// The database is down, restarting or unreachable.
    Unavailable,
    /// It refused a value (SQLSTATE class 22, data exception).
    BadValue,
    /// Our SQL or our data is wrong.
    Bug,
}

impl DatabaseFault {
    fn of(err: &sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                Self::Unavailable
            }
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some(code) if code.starts_with("22") => Self::BadValue,
                Some(code) if code.starts_with("08") || code.starts_with("57P") => Self::Unavailable,
                _ => Self::Bug,
            },
            _ => Self::Bug,
        }
    }
}

/// The error shape as a response.
pub(crate) fn json_response(status: StatusCode, code: &str, message: String, details: Value) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message, "details": details } });
    PoemJson(body).with_status(status).into_response()
}

impl<E: ErrorSet> IntoResponse for ApiError<E> {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, self.code, self.message, self.details);
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(RETRY_AFTER, secs.into());
        }
        response
    }
}

impl<E: ErrorSet> From<ApiError<E>> for poem::Error {
    fn from(err: ApiError<E>) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

impl<E: ErrorSet> ApiResponse for ApiError<E> {
    fn meta() -> MetaResponses {
        // Every endpoint can fail on our side; generated clients then still get the error model.
        let internal = (500, "`internal_error`: a fault on our side, logged; retry later");
        let responses = E::STATUSES
            .iter()
            .chain(E::STATUSES.iter().all(|&(status, _)| status != 500).then_some(&internal))
            .map(|&(status, description)| MetaResponse {
                description,
                status: Some(status),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: <ErrorBody as poem_openapi::types::Type>::schema_ref(),
                }],
                headers: if matches!(status, 429 | 503) { vec![retry_after_header()] } else { vec![] },
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        <ErrorBody as poem_openapi::types::Type>::register(registry);
    }
}

fn retry_after_header() -> MetaHeader {
    MetaHeader {
        name: "Retry-After".into(),
        description: Some("Seconds to wait before trying again.".into()),
        required: false,
        deprecated: false,
        schema: <u64 as poem_openapi::types::Type>::schema_ref(),
    }
}

/// The answer to a request whose handler panicked: the panic itself is reported by the panic hook
/// (standard error and, when configured, Sentry); the client gets the usual 500.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send>) -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "something went wrong on our side; please retry".into(),
        Value::Null,
    )
}

/// Renders any error that reached the top of the app in the JSON shape. Errors our handlers built
/// are already JSON and pass through; poem's own get a code by their kind.
pub async fn render_poem_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    if status.is_server_error() {
        tracing::error!(error = %err, status = status.as_u16(), "request failed");
        return json_response(
            status,
            "internal_error",
            "something went wrong on our side; please retry".into(),
            Value::Object(Default::default()),
        );
    }
    let code = poem_error_code(&err, status);
    let details = match err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        Some(param) => serde_json::json!({ "field": param.name }),
        None => Value::Object(Default::default()),
    };
    json_response(status, code, err.to_string(), details)
}

fn poem_error_code(err: &poem::Error, status: StatusCode) -> &'static str {
    use poem_openapi::error::{AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError};
    if err.is::<ParseRequestPayloadError>() {
        "malformed_body"
    } else if err.is::<ContentTypeError>() {
        "unsupported_content_type"
    } else if err.is::<ParseParamError>() {
        "invalid_parameter"
    } else if err.is::<AuthorizationError>() {
        "unauthorized"
    } else {
        match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::LENGTH_REQUIRED => "length_required",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_content_type",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            _ => "bad_request",
        }
    }
}

/// Declares an [`ErrorSet`] for a group of endpoints.
macro_rules! error_set {
    ($(#[$meta:meta])* $name:ident { $($status:literal => $description:literal),+ $(,)? }) => {
        $(#[$meta])*
        pub struct $name;
        impl $crate::api::error::ErrorSet for $name {
            const STATUSES: &'static [(u16, &'static str)] = &[$(($status, $description)),+];
        }
    };
}
pub(crate) use error_set;
