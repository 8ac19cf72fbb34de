//! One typed configuration, read from environment variables (and `.env` in development).

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use ipnet::IpNet;

use crate::rate_limit::Quota;

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
    /// `METRICS_ADDR`: where the worker and the scheduler serve `GET /metrics`; none when unset
    /// (the web serves it on `WEB_ADDR`).
    pub metrics_addr: Option<SocketAddr>,
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
    /// `MEDIA_URL`: S3-compatible object storage for photos (`s3://bucket`, with `AWS_ENDPOINT`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`); without it
    /// photos are files under `MEDIA_DIR`.
    pub media_url: Option<String>,
    /// `MEDIA_DIR`: where photos go without `MEDIA_URL`.
    pub media_dir: std::path::PathBuf,
    /// The `AWS_*` variables that are set, for `MEDIA_URL`'s object storage.
    pub media_s3_options: Vec<(&'static str, Secret)>,
    /// `PLATFORM_FEE_BPS`: the platform's share of each sale in basis points (0–9,999).
    pub platform_fee_bps: u16,
    /// Rate limits and the other per-client bounds.
    pub limits: Limits,
    /// How long records that are not the ledger's are kept.
    pub retention: Retention,
}

/// How much one client may ask of the service.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `RATE_LIMITS`: `on` (default) or `off`, which turns every rate limit off (for load tests).
    pub rate_limits: bool,
    /// `RATE_LIMIT_LOGIN_IP`: logins per client IP address.
    pub login_per_ip: Quota,
    /// `RATE_LIMIT_LOGIN_ACCOUNT`: logins per account name, whoever tries them.
    pub login_per_account: Quota,
    /// `RATE_LIMIT_SIGNUP_IP`: sign-ups per client IP address.
    pub signup_per_ip: Quota,
    /// `RATE_LIMIT_WRITES_USER`: writes (bids, deposits, new auctions, …) per signed-in user.
    pub writes_per_user: Quota,
    /// `RATE_LIMIT_MESSAGES_USER`: conversation messages per signed-in user.
    pub messages_per_user: Quota,
    /// `RATE_LIMIT_QUESTIONS_USER`: public questions per signed-in user.
    pub questions_per_user: Quota,
    /// `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges whose `X-Forwarded-For` is
    /// believed; empty by default, so the peer address is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// `HASHING_QUEUE`: password checks that may wait for a hashing slot; beyond it, 503.
    pub hashing_queue: usize,
    /// `WS_MAX_CONNECTIONS`: WebSockets one web process serves at once.
    pub ws_max_connections: usize,
    /// `WS_MAX_CONNECTIONS_PER_IP`: WebSockets one client IP address may hold at once.
    pub ws_max_connections_per_ip: usize,
    /// `MAX_OPEN_AUCTIONS_PER_USER`: scheduled and active auctions one seller may have at once.
    pub max_open_auctions_per_user: i64,
    /// `BID_CONCURRENCY`: runners that take one web process's bids and buy-nows to PostgreSQL, in
    /// arrival order and one batch per auction at a time (the web's bid line).
    pub bid_concurrency: NonZeroUsize,
}

/// Retention periods of the records that are not the record of what happened (the ledger, bids and
/// auction events are kept forever).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// `RETENTION_OUTBOX_DAYS`: relayed outbox rows.
    pub outbox: Duration,
    /// `RETENTION_IDEMPOTENCY_HOURS`: stored answers to `Idempotency-Key` requests.
    pub idempotency_keys: Duration,
    /// `RETENTION_SESSIONS_DAYS`: sessions after they expired or were revoked.
    pub ended_sessions: Duration,
    /// `RETENTION_EMAILS_DAYS`: sent email notifications.
    pub sent_emails: Duration,
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
            metrics_addr: lookup("METRICS_ADDR")
                .map(|raw| raw.parse().map_err(|e| invalid("METRICS_ADDR", format!("{raw:?}: {e}"))))
                .transpose()?,
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
            media_url: lookup("MEDIA_URL"),
            media_dir: lookup("MEDIA_DIR").unwrap_or_else(|| "var/media".into()).into(),
            media_s3_options: crate::media::S3_VARIABLES
                .iter()
                .filter_map(|&name| lookup(name).map(|value| (name, Secret::new(value))))
                .collect(),
            mail_from: lookup("MAIL_FROM").unwrap_or_else(|| "NeighborBid <no-reply@neighborbid.local>".into()),
            platform_fee_bps: match parse(&lookup, "PLATFORM_FEE_BPS", 0_u16)? {
                fee if fee < 10_000 => fee,
                fee => return Err(invalid("PLATFORM_FEE_BPS", format!("{fee} is not below 10,000"))),
            },
            limits: Limits::from_lookup(&lookup)?,
            retention: Retention {
                outbox: days(parse(&lookup, "RETENTION_OUTBOX_DAYS", 7)?),
                idempotency_keys: Duration::from_secs(3600 * parse::<u64>(&lookup, "RETENTION_IDEMPOTENCY_HOURS", 48)?),
                ended_sessions: days(parse(&lookup, "RETENTION_SESSIONS_DAYS", 30)?),
                sent_emails: days(parse(&lookup, "RETENTION_EMAILS_DAYS", 90)?),
            },
        })
    }
}

impl Limits {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let minute = Duration::from_secs(60);
        Ok(Self {
            rate_limits: match lookup("RATE_LIMITS").as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => return Err(invalid("RATE_LIMITS", format!("expected on or off, got {other:?}"))),
            },
            login_per_ip: parse(lookup, "RATE_LIMIT_LOGIN_IP", Quota::new(30, minute))?,
            login_per_account: parse(lookup, "RATE_LIMIT_LOGIN_ACCOUNT", Quota::new(10, minute))?,
            signup_per_ip: parse(lookup, "RATE_LIMIT_SIGNUP_IP", Quota::new(20, Duration::from_secs(3600)))?,
            writes_per_user: parse(lookup, "RATE_LIMIT_WRITES_USER", Quota::new(600, minute))?,
            messages_per_user: parse(lookup, "RATE_LIMIT_MESSAGES_USER", Quota::new(30, minute))?,
            questions_per_user: parse(lookup, "RATE_LIMIT_QUESTIONS_USER", Quota::new(20, Duration::from_secs(3600)))?,
            trusted_proxies: match lookup("TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(parse_network)
                    .collect::<Result<_, _>>()
                    .map_err(|reason| invalid("TRUSTED_PROXIES", reason))?,
            },
            hashing_queue: parse(lookup, "HASHING_QUEUE", 32)?,
            ws_max_connections: parse(lookup, "WS_MAX_CONNECTIONS", 20_000)?,
            ws_max_connections_per_ip: parse(lookup, "WS_MAX_CONNECTIONS_PER_IP", 100)?,
            max_open_auctions_per_user: parse(lookup, "MAX_OPEN_AUCTIONS_PER_USER", 100)?,
            bid_concurrency: parse(lookup, "BID_CONCURRENCY", NonZeroUsize::new(4).expect("not zero"))?,
        })
    }
}

/// `203.0.113.7`, `10.0.0.0/8` or `::1`: a single address is a network of one.
fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))
}

fn days(n: u64) -> Duration {
    Duration::from_secs(86_400 * n)
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
        assert_eq!(config.metrics_addr, None, "no metrics listener unless asked: workers on one host would collide");
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
    fn limits_have_safe_defaults_and_can_be_turned_off() {
        let limits = config(&[]).unwrap().limits;
        assert!(limits.rate_limits);
        assert_eq!(limits.login_per_ip.to_string(), "30/min");
        assert!(limits.trusted_proxies.is_empty());
        let off = config(&[("RATE_LIMITS", "off"), ("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).unwrap().limits;
        assert!(!off.rate_limits);
        assert_eq!(off.trusted_proxies.len(), 2);
        let err = config(&[("TRUSTED_PROXIES", "proxy.local")]).unwrap_err();
        assert!(err.to_string().contains("TRUSTED_PROXIES"), "{err}");
    }

    #[test]
    fn bids_take_turns_and_at_least_one_runs() {
        assert_eq!(config(&[]).unwrap().limits.bid_concurrency.get(), 4);
        assert_eq!(config(&[("BID_CONCURRENCY", "16")]).unwrap().limits.bid_concurrency.get(), 16);
        let err = config(&[("BID_CONCURRENCY", "0")]).unwrap_err();
        assert!(err.to_string().contains("BID_CONCURRENCY"), "no bid could ever run: {err}");
    }

    #[test]
    fn malformed_numbers_name_the_variable() {
        let err = config(&[("SESSION_TTL_HOURS", "soon")]).unwrap_err();
        assert!(err.to_string().contains("SESSION_TTL_HOURS"), "{err}");
    }
}
