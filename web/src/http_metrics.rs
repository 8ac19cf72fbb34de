//! Counts every HTTP request by method, route template and status, and times it.
//!
//! The route is the template poem matched (`/api/v1/auctions/{id}/bids`), never the raw path, and
//! a path no route matched is `unmatched`; methods outside the standard ones are `other`. So the
//! label sets stay few, and each one's handles are registered once and then reused: a request costs
//! a read lock, a hash lookup and two atomic updates, with nothing allocated.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use metrics::{Counter, Histogram};
use neighborbid_shared::metrics::{HTTP_DURATION, HTTP_REQUESTS};
use poem::PathPattern;
use poem::http::Method;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// The label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// Records request counts and latencies.
#[derive(Clone)]
pub struct HttpMetrics {
    handles: Arc<RwLock<HashMap<Series, Handles>>>,
    /// The API's path templates as its OpenAPI document names them, by [`shape`]: poem-openapi
    /// routes with positional names (`:param0`), the spec with the real ones (`{id}`).
    templates: Arc<HashMap<String, String>>,
}

impl HttpMetrics {
    /// Labels routes with `templates` (`/api/v1/auctions/{id}/bids`) where they match, and with
    /// poem's own pattern otherwise.
    pub fn new(templates: impl IntoIterator<Item = String>) -> Self {
        let templates = templates.into_iter().map(|t| (shape(&t), t)).collect();
        Self { handles: Arc::default(), templates: Arc::new(templates) }
    }
}

/// One label set: method, poem's route pattern (`None`: unmatched) and status.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Series {
    method: Method,
    pattern: Option<Arc<str>>,
    status: u16,
}

#[derive(Clone)]
struct Handles {
    requests: Counter,
    duration: Histogram,
}

impl<E: Endpoint> Middleware<E> for HttpMetrics {
    type Output = HttpMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HttpMetricsEndpoint { inner, metrics: self.clone() }
    }
}

/// The endpoint [`HttpMetrics`] wraps.
pub struct HttpMetricsEndpoint<E> {
    inner: E,
    metrics: HttpMetrics,
}

impl<E: Endpoint> Endpoint for HttpMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let method = known_method(req.method());
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        let (status, pattern) = match &result {
            Ok(resp) => (resp.status(), resp.data::<PathPattern>()),
            Err(err) => (err.status(), err.data::<PathPattern>()),
        };
        let series = Series { method, pattern: pattern.map(|p| p.0.clone()), status: status.as_u16() };
        let handles = self.metrics.handles(series);
        handles.requests.increment(1);
        handles.duration.record(started.elapsed());
        result
    }
}

impl HttpMetrics {
    fn handles(&self, series: Series) -> Handles {
        if let Some(handles) = self.handles.read().expect("metrics lock").get(&series) {
            return handles.clone();
        }
        let route = match series.pattern.as_deref() {
            None => UNMATCHED.to_owned(),
            Some(pattern) => self.templates.get(&shape(pattern)).cloned().unwrap_or_else(|| template(pattern)),
        };
        let method = series.method.as_str().to_owned();
        let handles = Handles {
            requests: metrics::counter!(
                HTTP_REQUESTS,
                "method" => method.clone(),
                "route" => route.clone(),
                "status" => series.status.to_string()
            ),
            duration: metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route),
        };
        self.handles.write().expect("metrics lock").entry(series).or_insert(handles).clone()
    }
}

/// Standard methods as they are; anything else is one `other`, so clients cannot mint label values.
fn known_method(method: &Method) -> Method {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if KNOWN.contains(method) { method.clone() } else { Method::from_bytes(b"OTHER").expect("a valid method token") }
}

/// poem's pattern with OpenAPI-style parameters: `/auctions/:id` → `/auctions/{id}`, `/media/*path`
/// → `/media/{path}`.
fn template(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix(':').or_else(|| segment.strip_prefix('*')) {
            Some(name) => format!("{{{name}}}"),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A path with every parameter written `{}`, whatever its name or syntax.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|segment| if segment.starts_with([':', '*', '{']) { "{}" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poem_openapi_patterns_find_their_spec_template() {
        let metrics = HttpMetrics::new(["/api/v1/auctions/{id}/bids".to_owned()]);
        assert_eq!(
            metrics.templates.get(&shape("/api/v1/auctions/:param0/bids")).unwrap(),
            "/api/v1/auctions/{id}/bids"
        );
    }

    #[test]
    fn templates_name_parameters_the_openapi_way() {
        assert_eq!(template("/api/v1/auctions/:id/bids"), "/api/v1/auctions/{id}/bids");
        assert_eq!(template("/media/*path"), "/media/{path}");
        assert_eq!(template("/healthz"), "/healthz");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(known_method(&Method::from_bytes(b"BREW").unwrap()).as_str(), "OTHER");
        assert_eq!(known_method(&Method::PATCH), Method::PATCH);
    }
}
