//! The shared limiter: GCRA state in Redis, with a per-process table while Redis is away.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use super::{Quota, gcra};

/// How long one Redis decision may take before the local table decides instead.
const REDIS_DEADLINE: Duration = Duration::from_millis(100);
/// After a Redis failure, how long the local table decides without trying Redis again, so an
/// outage costs one slow request per second rather than one per request.
const REDIS_BACKOFF: Duration = Duration::from_secs(1);
/// Local keys kept before idle ones are dropped.
const LOCAL_KEYS: usize = 100_000;

/// [`gcra`] in Lua, with Redis's clock so that replicas with skewed clocks agree. Returns 0 when
/// admitted (and stores the new arrival time, expiring when it no longer matters), else the
/// microseconds to wait.
const GCRA_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + emission
local allowed_at = new_tat - window
if allowed_at > now then return allowed_at - now end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
"#;

/// A refusal: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// How long until the same request would be admitted.
    pub retry_after: Duration,
}

impl Throttled {
    /// The `Retry-After` header's value: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(self) -> u64 {
        (self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)).max(1)
    }
}

/// Decides whether a request may pass. Cheap to share: one per process.
pub struct Limiter {
    redis: ConnectionManager,
    prefix: String,
    script: redis::Script,
    local: Mutex<Local>,
}

#[derive(Default)]
struct Local {
    arrivals: HashMap<String, i64>,
    /// Keys refused recently, until when: GCRA refuses every request of a key until its wait is
    /// over, so a flooding client is answered from memory instead of with a Redis round trip each.
    refused_until: HashMap<String, Instant>,
    redis_failed_at: Option<Instant>,
}

impl Limiter {
    /// A limiter keeping its state under `{prefix}:ratelimit:` in Redis.
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}:ratelimit:"),
            script: redis::Script::new(GCRA_SCRIPT),
            local: Mutex::default(),
        }
    }

    /// Admits one request of `key` under `quota`, or says how long to wait. `key` names the limit
    /// and its subject, e.g. `login-ip:203.0.113.7`.
    pub async fn check(&self, key: &str, quota: Quota) -> Result<(), Throttled> {
        if let Some(refused) = self.still_refused(key) {
            return Err(refused);
        }
        if !self.redis_resting() {
            match self.check_redis(key, quota).await {
                Ok(Err(refused)) => {
                    self.remember_refusal(key, refused);
                    return Err(refused);
                }
                Ok(decision) => return decision,
                Err(err) => {
                    tracing::warn!(error = %err, "rate limits fall back to this process while Redis is unavailable");
                    self.local.lock().expect("limiter lock").redis_failed_at = Some(Instant::now());
                }
            }
        }
        self.check_local(key, quota)
    }

    fn still_refused(&self, key: &str) -> Option<Throttled> {
        let local = self.local.lock().expect("limiter lock");
        let until = *local.refused_until.get(key)?;
        let now = Instant::now();
        (until > now).then(|| Throttled { retry_after: until - now })
    }

    fn remember_refusal(&self, key: &str, refused: Throttled) {
        let now = Instant::now();
        let mut local = self.local.lock().expect("limiter lock");
        if local.refused_until.len() >= LOCAL_KEYS {
            local.refused_until.retain(|_, until| *until > now);
        }
        local.refused_until.insert(key.to_owned(), now + refused.retry_after);
    }

    fn redis_resting(&self) -> bool {
        let local = self.local.lock().expect("limiter lock");
        local.redis_failed_at.is_some_and(|at| at.elapsed() < REDIS_BACKOFF)
    }

    async fn check_redis(&self, key: &str, quota: Quota) -> Result<Result<(), Throttled>, String> {
        let mut conn = self.redis.clone();
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation.arg(quota.emission_micros()).arg(quota.window_micros());
        let wait: i64 = match tokio::time::timeout(REDIS_DEADLINE, invocation.invoke_async(&mut conn)).await {
            Ok(Ok(wait)) => wait,
            Ok(Err(err)) => return Err(err.to_string()),
            Err(_) => return Err("timed out".into()),
        };
        Ok(throttled_after(wait))
    }

    fn check_local(&self, key: &str, quota: Quota) -> Result<(), Throttled> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        let mut local = self.local.lock().expect("limiter lock");
        if local.arrivals.len() >= LOCAL_KEYS {
            local.arrivals.retain(|_, tat| *tat > now);
        }
        match gcra(local.arrivals.get(key).copied(), now, quota) {
            Ok(tat) => {
                local.arrivals.insert(key.to_owned(), tat);
                Ok(())
            }
            Err(wait) => throttled_after(wait),
        }
    }
}

fn throttled_after(wait_micros: i64) -> Result<(), Throttled> {
    if wait_micros <= 0 { Ok(()) } else { Err(Throttled { retry_after: Duration::from_micros(wait_micros as u64) }) }
}
