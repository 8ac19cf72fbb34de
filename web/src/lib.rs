//! NeighborBid's web front: a thin poem-openapi REST API (Swagger UI at `/docs`, spec at
//! `/openapi.json`) that validates, writes to PostgreSQL and leaves follow-up work to jobs.

pub mod api;
mod bid_line;
mod body_limit;
pub mod client_ip;
mod console;
pub mod demo;
mod health;
mod http_metrics;
pub mod live;
mod media;
pub mod state;

use std::time::Duration;

use anyhow::Context;
use neighborbid_shared::config::Config;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Endpoint, EndpointExt, Response, Route, Server};
use sqlx::PgPool;

use crate::body_limit::BodyLimit;
use crate::client_ip::ResolveClientIp;
use crate::http_metrics::HttpMetrics;
use crate::state::AppState;

/// The largest photo upload body: the 10 MiB file and room for the multipart framing around it.
const UPLOAD_BODY_BYTES: usize = neighborbid_shared::photos::MAX_UPLOAD_BYTES as usize + 64 * 1024;

/// The whole HTTP application: API, spec, Swagger UI, health checks, the operator console and
/// `/metrics` (for Prometheus, outside the API and its spec; keep it off the public proxy).
pub fn app(state: AppState) -> impl Endpoint<Output = Response> {
    let api = api::service();
    let max_body_bytes = state.config.max_body_bytes;
    let trusted_proxies = std::sync::Arc::new(state.config.limits.trusted_proxies.clone());
    Route::new()
        .nest("/api/v1", api)
        .at("/openapi.json", poem::get(openapi_document))
        .at("/docs", poem::get(swagger_ui))
        .at("/healthz", poem::get(health::healthz))
        .at("/readyz", poem::get(health::readyz))
        .at("/ws/auctions/:id", poem::get(live::watch_auction))
        .at("/ws/me", poem::get(live::watch_me))
        .at("/media/*path", poem::get(media::serve).head(media::serve))
        .at("/metrics", poem::get(neighborbid_shared::metrics::endpoint))
        .at("/ops", poem::get(console::page))
        .at("/ops/console.js", poem::get(console::script))
        .at("/ops/console.css", poem::get(console::style))
        .with(BodyLimit { json: max_body_bytes, upload: UPLOAD_BODY_BYTES })
        .with(ResolveClientIp(trusted_proxies))
        // A panicking handler answers 500 like any other failure of ours, instead of dropping the
        // connection; the panic hook has reported it already.
        .with(poem::middleware::CatchPanic::new().with_handler(api::error::panic_response))
        .around(api::routing::explain)
        .with(poem::middleware::Tracing)
        .with(HttpMetrics::new(api::document::path_templates()))
        .data(state)
        .catch_all_error(api::error::render_poem_error)
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi_json() -> String {
    api::document::json().to_owned()
}

#[poem::handler]
fn openapi_document() -> poem::Response {
    poem::Response::builder().content_type("application/json; charset=utf-8").body(api::document::json())
}

#[poem::handler]
fn swagger_ui() -> poem::web::Html<&'static str> {
    poem::web::Html(api::document::swagger_ui_html())
}

/// Binds `WEB_ADDR` and serves until SIGINT or SIGTERM, then finishes in-flight requests.
pub async fn serve(config: Config, pool: PgPool) -> anyhow::Result<()> {
    let acceptor = TcpListener::bind(config.web_addr)
        .into_acceptor()
        .await
        .with_context(|| format!("failed to listen on {}", config.web_addr))?;
    let state = AppState::new(config, pool)?;
    run(acceptor, state, neighborbid_shared::shutdown::signal()).await
}

/// Serves on an already bound acceptor until `shutdown` completes; tests bind port 0 and call this.
pub async fn run(
    acceptor: TcpAcceptor,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let addr = acceptor.local_addr().first().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, "listening");
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state), shutdown, Some(Duration::from_secs(10)))
        .await
        .context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}
