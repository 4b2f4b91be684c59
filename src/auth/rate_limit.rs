//! Rate limits per key (device key, later tokens) and per client IP, with governor's GCRA.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

pub struct RateLimits {
    by_key: DefaultKeyedRateLimiter<String>,
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

/// Over the limit: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header (at least 1).
    pub fn seconds(self) -> u64 {
        self.0.as_secs_f64().ceil().max(1.0) as u64
    }
}

fn quota(rate: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(rate.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(key_rate: u32, key_burst: u32, ip_rate: u32, ip_burst: u32) -> RateLimits {
        RateLimits {
            by_key: DefaultKeyedRateLimiter::keyed(quota(key_rate, key_burst)),
            by_ip: DefaultKeyedRateLimiter::keyed(quota(ip_rate, ip_burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Count one request from `ip` (when known) using `key` (when authenticated).
    pub fn check(&self, key: Option<&str>, ip: Option<IpAddr>) -> Result<(), RetryAfter> {
        if let Some(ip) = ip {
            self.by_ip
                .check_key(&ip)
                .map_err(|n| RetryAfter(n.wait_time_from(self.clock.now())))?;
        }
        if let Some(key) = key {
            self.by_key
                .check_key(&key.to_string())
                .map_err(|n| RetryAfter(n.wait_time_from(self.clock.now())))?;
        }
        Ok(())
    }

    /// Drop the state of keys that are back to a full burst, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.by_key.retain_recent();
        self.by_ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_limit_is_refused_with_a_wait() {
        let limits = RateLimits::new(1, 3, 1000, 1000);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.check(Some("dev1"), Some(ip)).is_ok());
        }
        let refused = limits.check(Some("dev1"), Some(ip)).unwrap_err();
        assert_eq!(refused.seconds(), 1);
        // Another key has its own budget.
        assert!(limits.check(Some("dev2"), Some(ip)).is_ok());
    }

    #[test]
    fn ip_limit_applies_across_keys() {
        let limits = RateLimits::new(1000, 1000, 1, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(limits.check(Some("a"), Some(ip)).is_ok());
        assert!(limits.check(Some("b"), Some(ip)).is_ok());
        assert!(limits.check(Some("c"), Some(ip)).is_err());
        assert!(limits.check(Some("c"), None).is_ok());
    }
}
