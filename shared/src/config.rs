//! One typed configuration, read from environment variables (and `.env` in development).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A value that must never reach logs or error messages.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Whether the process runs on a developer's machine or in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local defaults are allowed.
    Development,
    /// Secrets must be given explicitly.
    Production,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything a NeighborBid process needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_ENV`: `development` (default) or `production`.
    pub environment: Environment,
    /// `DATABASE_URL`: PostgreSQL, the source of truth.
    pub database_url: Secret,
    /// `DATABASE_MAX_CONNECTIONS`: pool size per process.
    pub database_max_connections: u32,
    /// `REDIS_URL`: job transport and live-event relay.
    pub redis_url: Secret,
    /// `WEB_ADDR`: where `neighborbid-web` listens.
    pub web_addr: SocketAddr,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `SENTRY_DSN`: error tracking; off when empty.
    pub sentry_dsn: Option<Secret>,
    /// `SESSION_TTL_HOURS`: how long a login token is valid.
    pub session_ttl: Duration,
    /// `MAX_BODY_BYTES`: the largest request body the API reads.
    pub max_body_bytes: usize,
    /// `QUEUE_PREFIX`: the namespace of the job queues in Redis.
    pub queue_prefix: String,
    /// `MAIL_URL`: SMTP server (`smtp://host:port`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://…`); without it emails are written as `.eml` files to `MAIL_DIR`.
    pub mail_url: Option<Secret>,
    /// `MAIL_DIR`: where emails go without `MAIL_URL`.
    pub mail_dir: std::path::PathBuf,
    /// `MAIL_FROM`: the sender of every email.
    pub mail_from: String,
    /// `PLATFORM_FEE_BPS`: the platform's share of each sale in basis points (0–9,999).
    pub platform_fee_bps: u16,
}

/// A setting that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    name: &'static str,
    reason: String,
}

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/neighborbid";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

impl Config {
    /// Reads `.env` (when present, without overriding the real environment) and then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing `.env` is the normal case outside development.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Builds the configuration from any variable source; tests pass a closure over a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let environment = match lookup("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") | Some("test") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(invalid("APP_ENV", format!("unknown environment {other:?}")));
            }
        };
        let required_in_production = |name: &'static str, default: &str| match lookup(name) {
            Some(value) => Ok(Secret::new(value)),
            None if environment == Environment::Production => {
                Err(invalid(name, "must be set when APP_ENV=production".into()))
            }
            None => Ok(Secret::new(default)),
        };
        Ok(Self {
            environment,
            database_url: required_in_production("DATABASE_URL", DEFAULT_DATABASE_URL)?,
            database_max_connections: parse(&lookup, "DATABASE_MAX_CONNECTIONS", 20)?,
            redis_url: required_in_production("REDIS_URL", DEFAULT_REDIS_URL)?,
            web_addr: parse(&lookup, "WEB_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            log_format: match lookup("LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(invalid("LOG_FORMAT", format!("expected text or json, got {other:?}")));
                }
            },
            sentry_dsn: match lookup("SENTRY_DSN") {
                None => None,
                Some(dsn) => match dsn.parse::<sentry::types::Dsn>() {
                    Ok(_) => Some(Secret::new(dsn)),
                    Err(e) => return Err(invalid("SENTRY_DSN", e.to_string())),
                },
            },
            session_ttl: Duration::from_secs(3600 * parse::<u64>(&lookup, "SESSION_TTL_HOURS", 168)?),
            max_body_bytes: parse(&lookup, "MAX_BODY_BYTES", 64 * 1024)?,
            queue_prefix: lookup("QUEUE_PREFIX").unwrap_or_else(|| "neighborbid".into()),
            mail_url: lookup("MAIL_URL").map(Secret::new),
            mail_dir: lookup("MAIL_DIR").unwrap_or_else(|| "var/mail".into()).into(),
            mail_from: lookup("MAIL_FROM").unwrap_or_else(|| "NeighborBid <no-reply@neighborbid.local>".into()),
            platform_fee_bps: match parse(&lookup, "PLATFORM_FEE_BPS", 0_u16)? {
                fee if fee < 10_000 => fee,
                fee => return Err(invalid("PLATFORM_FEE_BPS", format!("{fee} is not below 10,000"))),
            },
        })
    }
}

fn parse<T>(lookup: &impl Fn(&str) -> Option<String>, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    match lookup(name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e| invalid(name, format!("{raw:?}: {e}"))),
    }
}

fn invalid(name: &'static str, reason: String) -> ConfigError {
    ConfigError { name, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn local_defaults_point_at_the_machines_own_services() {
        let config = config(&[]).unwrap();
        assert_eq!(config.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(config.redis_url.expose(), DEFAULT_REDIS_URL);
        assert_eq!(config.web_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.session_ttl, Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn production_refuses_to_guess_where_the_database_is() {
        let err = config(&[("APP_ENV", "production"), ("REDIS_URL", "redis://r")]).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let config = config(&[("DATABASE_URL", "postgres://u:hunter2@db/x")]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn malformed_numbers_name_the_variable() {
        let err = config(&[("SESSION_TTL_HOURS", "soon")]).unwrap_err();
        assert!(err.to_string().contains("SESSION_TTL_HOURS"), "{err}");
    }
}
