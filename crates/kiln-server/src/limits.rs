//! Per-user request budgets for the expensive routes (agent turns, tool calls, search, merges,
//! exports, imports): a token bucket per user, refilled at `expensive_per_minute`, holding at
//! most `expensive_burst`. An import costs [`IMPORT_COST`] calls. A user over budget gets 429
//! `rate_limited` (recoverable) with `Retry-After`, and nobody else notices. On SQLite (one
//! server) the buckets are in memory; on PostgreSQL they are rows in the database, so every
//! server sharing it draws from the same budget (one statement per expensive call).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kiln_session::{Caller, Error, LimitsConfig, SessionManager};
use kiln_types::ErrorKind;
use serde_json::json;

/// What an import costs, in expensive calls: it writes a whole session at once.
pub const IMPORT_COST: f64 = 10.0;

/// Buckets past this many users are pruned of the full ones (idle users).
const PRUNE_AT: usize = 10_000;

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// The store the buckets live in when servers share one (PostgreSQL).
    shared: Option<SessionManager>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A limiter from `[limits]`; `expensive_per_minute = 0` turns it off.
    pub fn new(cfg: &LimitsConfig) -> Self {
        RateLimiter {
            per_second: f64::from(cfg.expensive_per_minute) / 60.0,
            burst: f64::from(cfg.expensive_burst.max(1)),
            buckets: Mutex::default(),
            shared: None,
        }
    }

    /// A limiter from `[limits]` whose buckets live in `mgr`'s store when that store is shared
    /// by several servers (PostgreSQL); in memory otherwise.
    pub fn for_store(cfg: &LimitsConfig, mgr: &SessionManager) -> Self {
        RateLimiter {
            shared: mgr.store_is_shared().then(|| mgr.clone()),
            ..Self::new(cfg)
        }
    }

    /// Takes `cost` from the caller's bucket, or says how long until it holds that much.
    pub async fn charge(&self, caller: &Caller, cost: f64) -> Result<(), Error> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let outcome = match &self.shared {
            Some(mgr) => {
                match mgr
                    .take_rate_tokens(&caller.user_id, cost, self.per_second, self.burst)
                    .await
                {
                    Ok(None) => Ok(()),
                    Ok(Some(wait)) => Err(wait),
                    // The database is failing: the request will say so itself; the budget
                    // falls back to this server's own bucket meanwhile.
                    Err(e) => {
                        tracing::warn!(error = %e, "shared rate limit unavailable; using this server's");
                        self.charge_at(&caller.user_id, cost, Instant::now())
                    }
                }
            }
            None => self.charge_at(&caller.user_id, cost, Instant::now()),
        };
        outcome.map_err(|wait| {
            let secs = wait.as_secs().saturating_add(1);
            Error::new(
                ErrorKind::TooManyRequests,
                "rate_limited",
                format!(
                    "too many expensive requests (searches, turns, tool calls, merges, \
                         exports, imports); retry in {secs} s"
                ),
            )
            .with_details(json!({"retry_after_secs": secs}))
        })
    }

    fn charge_at(&self, user: &str, cost: f64, now: Instant) -> Result<(), Duration> {
        let cost = cost.min(self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > PRUNE_AT {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + rate * (now - b.at).as_secs_f64() < burst);
        }
        let b = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.at = now;
        if b.tokens >= cost {
            b.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((cost - b.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(&LimitsConfig {
            expensive_per_minute: per_minute,
            expensive_burst: burst,
            ..LimitsConfig::default()
        })
    }

    #[test]
    fn a_burst_is_allowed_then_the_rate_and_users_do_not_share_buckets() {
        let l = limiter(60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            l.charge_at("a", 1.0, t0).unwrap();
        }
        let wait = l.charge_at("a", 1.0, t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Someone else is untouched.
        l.charge_at("b", 1.0, t0).unwrap();
        // One second refills one call at 60 a minute.
        l.charge_at("a", 1.0, t0 + Duration::from_millis(1001))
            .unwrap();
        assert!(
            l.charge_at("a", 1.0, t0 + Duration::from_millis(1002))
                .is_err()
        );
        // An import costs more than a burst of 3 holds: it waits for a full bucket.
        let later = t0 + Duration::from_secs(60);
        l.charge_at("a", IMPORT_COST, later).unwrap();
        assert!(l.charge_at("a", 1.0, later).is_err());
    }

    #[tokio::test]
    async fn a_zero_rate_turns_the_limit_off() {
        let l = limiter(0, 1);
        let c = Caller {
            user_id: "u".into(),
            name: "u".into(),
            is_owner: false,
            client: None,
        };
        for _ in 0..1000 {
            l.charge(&c, IMPORT_COST).await.unwrap();
        }
    }
}
