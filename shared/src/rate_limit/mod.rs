//! Rate limits: how often one client (an IP address, an account name, a user) may do one thing.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, as in ATM networks and `redis-cell`): a
//! key stores one timestamp, the "theoretical arrival time" of its next request. A quota of `N` per
//! `period` lets a burst of `N` through at once and then one every `period / N`. The state lives in
//! Redis so that every web replica enforces one shared limit ([`Limiter`]); while Redis is
//! unreachable each process falls back to its own table with the same quota, so a Redis blip never
//! locks anyone out (fail open, per process).

mod limiter;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use limiter::{Limiter, Throttled};

/// At most `count` requests per `period`, in bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period (and the largest burst).
    pub count: u32,
    /// The period.
    pub period: Duration,
}

impl Quota {
    /// `count` per `period`.
    pub const fn new(count: u32, period: Duration) -> Self {
        Self { count, period }
    }

    /// The steady spacing between two requests: `period / count`, in microseconds.
    fn emission_micros(self) -> i64 {
        (self.period.as_micros() / u128::from(self.count.max(1))).max(1) as i64
    }

    /// How far ahead of now the next arrival time may run: one period.
    fn window_micros(self) -> i64 {
        self.period.as_micros().min(i64::MAX as u128) as i64
    }
}

/// Parses `N/s`, `N/min` or `N/h` (also `N/sec`, `N/second`, `N/minute`, `N/hour`).
impl FromStr for Quota {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (count, unit) = text.trim().split_once('/').ok_or("expected N/s, N/min or N/h")?;
        let count: u32 = count.trim().parse().map_err(|_| format!("{count:?} is not a whole number"))?;
        if count == 0 {
            return Err("the count must be at least 1 (use RATE_LIMITS=off to turn limits off)".into());
        }
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("unknown unit {other:?}; use s, min or h")),
        };
        Ok(Self { count, period })
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            secs => return write!(f, "{}/{secs}s", self.count),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// One GCRA decision over a key's stored arrival time `tat` (microseconds; `None` for a new key) at
/// `now`: `Ok(new_tat)` to admit and store, or `Err(wait)` with the microseconds until admission.
/// The Redis script in [`Limiter`] is the same function written in Lua.
pub fn gcra(tat: Option<i64>, now: i64, quota: Quota) -> Result<i64, i64> {
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(quota.emission_micros());
    let allowed_at = new_tat - quota.window_micros();
    if allowed_at > now { Err(allowed_at - now) } else { Ok(new_tat) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    #[test]
    fn quotas_parse_from_the_environment_format() {
        assert_eq!("30/min".parse(), Ok(Quota::new(30, Duration::from_secs(60))));
        assert_eq!(" 5 / s ".parse(), Ok(Quota::new(5, Duration::from_secs(1))));
        assert_eq!("100/h".parse::<Quota>().unwrap().to_string(), "100/h");
        for bad in ["", "30", "0/min", "x/min", "3/week", "-1/s"] {
            assert!(bad.parse::<Quota>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_burst_of_the_quota_passes_then_one_per_spacing() {
        let quota = Quota::new(3, Duration::from_secs(3));
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(gcra(tat, 0, quota).expect("the burst is admitted"));
        }
        assert_eq!(gcra(tat, 0, quota), Err(SECOND), "the fourth waits one spacing");
        assert!(gcra(tat, SECOND, quota).is_ok(), "and passes once it has elapsed");
    }

    #[test]
    fn an_idle_key_starts_afresh() {
        let quota = Quota::new(2, Duration::from_secs(60));
        let busy = gcra(gcra(None, 0, quota).ok(), 0, quota).unwrap();
        assert!(gcra(Some(busy), 0, quota).is_err());
        assert!(gcra(Some(busy), 3600 * SECOND, quota).is_ok());
    }
}
