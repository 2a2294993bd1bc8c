//! Per-tenant submission limits: a token bucket for the rate, and a count of unfinished jobs.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Config;
use crate::api_error::ApiError;

/// Each tenant's rate and queue limits, from the configuration.
#[derive(Debug)]
pub(crate) struct TenantLimits {
    default_rate: f64,
    burst: f64,
    default_queued: u32,
    per_tenant: HashMap<String, (Option<f64>, Option<u32>)>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl TenantLimits {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            default_rate: config.limits.submissions_per_second,
            burst: f64::from(config.limits.burst),
            default_queued: config.limits.queued_per_tenant,
            per_tenant: config
                .tenants
                .iter()
                .map(|t| (t.name.clone(), (t.submissions_per_second, t.queued)))
                .collect(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate(&self, tenant: &str) -> f64 {
        self.per_tenant
            .get(tenant)
            .and_then(|(rate, _)| *rate)
            .unwrap_or(self.default_rate)
    }

    /// How many unfinished jobs `tenant` may have.
    pub(crate) fn queued(&self, tenant: &str) -> u32 {
        self.per_tenant
            .get(tenant)
            .and_then(|(_, queued)| *queued)
            .unwrap_or(self.default_queued)
    }

    /// Takes one submission from `tenant`'s bucket, or says when one will be there.
    pub(crate) fn take(&self, tenant: &str) -> Result<(), ApiError> {
        let rate = self.rate(tenant);
        let burst = self.burst.max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(tenant.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64(((1.0 - bucket.tokens) / rate).min(86_400.0));
        Err(ApiError::RateLimited {
            retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: f64, burst: u32) -> TenantLimits {
        let mut config = Config::for_embedding("an-admin-key-long-enough");
        config.limits.submissions_per_second = rate;
        config.limits.burst = burst;
        TenantLimits::new(&config)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_the_rate_holds_with_a_retry_time() {
        let limits = limits(2.0, 3);
        for _ in 0..3 {
            limits.take("a").unwrap();
        }
        assert_eq!(
            limits.take("a"),
            Err(ApiError::RateLimited { retry_after: 1 })
        );
        limits.take("b").expect("another tenant has its own bucket");
        tokio::time::advance(Duration::from_millis(500)).await;
        limits.take("a").expect("half a second refills one at 2/s");
        assert!(limits.take("a").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn slow_rates_ask_for_longer_waits() {
        let limits = limits(0.1, 1);
        limits.take("a").unwrap();
        assert_eq!(
            limits.take("a"),
            Err(ApiError::RateLimited { retry_after: 10 })
        );
    }
}
