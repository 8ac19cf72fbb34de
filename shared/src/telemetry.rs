//! Logging and error tracking, set up the same way by every binary.

use sentry::integrations::tracing::ErrorLayer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

/// Keeps Sentry flushing until the process ends; hold it in `main`.
pub struct TelemetryGuard {
    _sentry: Option<sentry::ClientInitGuard>,
}

/// Makes `ring` the process's TLS crypto provider. sentry and reqwest are built without one of
/// their own so that only `ring` is compiled in; without this, the first TLS client panics.
pub fn install_crypto_provider() {
    // Already installed (by an earlier call) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the global `tracing` subscriber (text or JSON on stderr, filtered by `RUST_LOG`) and, when
/// `SENTRY_DSN` is set, Sentry hooked into the same subscriber.
pub fn init(service_name: &'static str, config: &Config) -> TelemetryGuard {
    install_crypto_provider();
    let sentry = config.sentry_dsn.as_ref().map(|dsn| {
        sentry::init(
            sentry::ClientOptions::new()
                .dsn(dsn.expose())
                .maybe_release(sentry::release_name!())
                .server_name(service_name),
        )
    });
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,apalis=info,poem=info"));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(sentry.as_ref().map(|_| ErrorLayer::new().with_filter(LevelFilter::ERROR)));
    let result = match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
        // Colour codes only for a person at a terminal: `scripts/up > file` must stay readable.
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
    if result.is_ok() {
        tracing::info!(service = service_name, "telemetry initialised");
    }
    TelemetryGuard { _sentry: sentry }
}
