//! Subscription tiers: what each allows, and the checks against a tenant's usage. Usage is
//! counted from the log (the `JobQueued` events of the tenant), never from a counter that
//! could drift from it.

use serde::Serialize;

use super::{DomainError, State};
use crate::events::{TechniqueSpec, Tier};

/// Techniques that compensate the error they introduce (GPTQ, SparseGPT, least-squares
/// refits): pro and enterprise only.
pub const COMPENSATED_TECHNIQUES: &[&str] = &[
    "int4-weight",
    "prune-unstructured",
    "prune-structured",
    "hybrid",
];

/// What a tier allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Limits {
    /// Optimization jobs per calendar month (UTC); `None` is unlimited.
    pub jobs_per_month: Option<u64>,
    /// Largest model upload in bytes; `None` is unlimited (the server's own cap still holds).
    pub max_model_bytes: Option<u64>,
    /// May run the error-compensated techniques.
    pub compensated_techniques: bool,
    /// Its jobs go first in the queue.
    pub priority: bool,
}

const MB: u64 = 1_000_000;

pub fn limits(tier: Tier) -> Limits {
    match tier {
        Tier::Free => Limits {
            jobs_per_month: Some(5),
            max_model_bytes: Some(10 * MB),
            compensated_techniques: false,
            priority: false,
        },
        Tier::Basic => Limits {
            jobs_per_month: Some(50),
            max_model_bytes: Some(100 * MB),
            compensated_techniques: false,
            priority: false,
        },
        Tier::Pro => Limits {
            jobs_per_month: Some(200),
            max_model_bytes: Some(500 * MB),
            compensated_techniques: true,
            priority: false,
        },
        Tier::Enterprise => Limits {
            jobs_per_month: None,
            max_model_bytes: None,
            compensated_techniques: true,
            priority: true,
        },
    }
}

/// Queue priority of a tier's jobs.
pub fn job_priority(tier: Tier) -> i32 {
    if limits(tier).priority {
        10
    } else {
        0
    }
}

/// Start of the UTC calendar month containing `now_ms`, in epoch ms.
pub fn month_start_ms(now_ms: i64) -> i64 {
    use chrono::{Datelike, TimeZone, Utc};
    let now = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_default();
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// Jobs the tenant queued in the month containing `now_ms`.
pub fn jobs_this_month(state: &State, tenant: &str, now_ms: i64) -> u64 {
    let start = month_start_ms(now_ms);
    state
        .job_starts
        .get(tenant)
        .map(|t| t.iter().filter(|&&ms| ms >= start).count() as u64)
        .unwrap_or(0)
}

pub fn tier_of(state: &State, tenant: &str) -> Tier {
    state
        .tenants
        .get(tenant)
        .map(|t| t.info.tier)
        .unwrap_or(Tier::Free)
}

/// May the tenant queue one more job with these techniques now?
pub fn check_job(
    state: &State,
    tenant: &str,
    techniques: &[TechniqueSpec],
    now_ms: i64,
) -> Result<(), DomainError> {
    let tier = tier_of(state, tenant);
    let l = limits(tier);
    if !l.compensated_techniques {
        if let Some(t) = techniques
            .iter()
            .find(|t| COMPENSATED_TECHNIQUES.contains(&t.name.as_str()))
        {
            return Err(DomainError::NotInTier(format!(
                "Field 'techniques': '{}' needs the pro or enterprise tier; this tenant is on '{}' (allowed: int8-weight, int8-static, fp16)",
                t.name,
                tier.as_str()
            )));
        }
    }
    if let Some(limit) = l.jobs_per_month {
        let used = jobs_this_month(state, tenant, now_ms);
        if used >= limit {
            return Err(DomainError::QuotaExceeded(format!(
                "The '{}' tier allows {limit} optimization jobs a month; {used} were started this month. Upgrade the tier or wait for next month",
                tier.as_str()
            )));
        }
    }
    Ok(())
}

/// May the tenant store a model of `size_bytes`?
pub fn check_model_size(state: &State, tenant: &str, size_bytes: u64) -> Result<(), DomainError> {
    let tier = tier_of(state, tenant);
    match limits(tier).max_model_bytes {
        Some(max) if size_bytes > max => Err(model_too_large(tier, Some(size_bytes), max)),
        _ => Ok(()),
    }
}

/// The refusal of a model over the tier's size (`size` unknown while it is still streaming).
pub fn model_too_large(tier: Tier, size: Option<u64>, max: u64) -> DomainError {
    let size = size.map_or_else(
        || format!("more than {max} bytes"),
        |s| format!("{s} bytes"),
    );
    DomainError::NotInTier(format!(
        "The model is {size}; the '{}' tier allows models up to {max} bytes",
        tier.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_start_is_the_first_at_midnight_utc() {
        // 2026-11-22T10:00:00Z
        let now = 1_795_341_600_000;
        assert_eq!(month_start_ms(now), 1_793_491_200_000); // 2026-11-01T00:00:00Z
        assert_eq!(month_start_ms(1_793_491_200_000), 1_793_491_200_000);
    }

    fn state(tier: Tier, jobs_at: &[i64]) -> State {
        let mut s = State::default();
        crate::domain::apply(
            &mut s,
            &crate::events::Event::TenantCreated(crate::events::TenantInfo {
                tenant_id: "t".into(),
                name: "t".into(),
                tier,
            }),
            0,
        );
        s.job_starts.insert("t".into(), jobs_at.to_vec());
        s
    }

    fn technique(name: &str) -> TechniqueSpec {
        serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
    }

    #[test]
    fn the_monthly_quota_counts_this_month_only() {
        let now = 1_795_341_600_000; // 2026-11-22
        let last_month = 1_793_491_200_000 - 1;
        let fp16 = [technique("fp16")];
        // Four this month and many last month: the fifth is allowed, the sixth is not.
        let mut jobs = vec![last_month; 20];
        jobs.extend([now - 10; 4]);
        let s = state(Tier::Free, &jobs);
        assert_eq!(jobs_this_month(&s, "t", now), 4);
        assert!(check_job(&s, "t", &fp16, now).is_ok());
        jobs.push(now - 5);
        let s = state(Tier::Free, &jobs);
        let e = check_job(&s, "t", &fp16, now).unwrap_err();
        assert!(matches!(e, DomainError::QuotaExceeded(_)), "{e:?}");
        assert!(e.to_string().contains("allows 5"), "{e}");
        assert!(check_job(&state(Tier::Enterprise, &jobs), "t", &fp16, now).is_ok());
    }

    #[test]
    fn compensated_techniques_and_big_models_need_a_higher_tier() {
        let s = state(Tier::Basic, &[]);
        let e = check_job(&s, "t", &[technique("int4-weight")], 0).unwrap_err();
        assert!(matches!(e, DomainError::NotInTier(_)), "{e:?}");
        assert!(check_job(&state(Tier::Pro, &[]), "t", &[technique("hybrid")], 0).is_ok());
        let free = state(Tier::Free, &[]);
        assert!(check_model_size(&free, "t", 10 * MB).is_ok());
        let e = check_model_size(&free, "t", 10 * MB + 1).unwrap_err();
        assert!(e.to_string().contains("10000000"), "{e}");
    }

    #[test]
    fn tiers_grow_monotonically() {
        let order = [Tier::Free, Tier::Basic, Tier::Pro, Tier::Enterprise];
        for w in order.windows(2) {
            let (a, b) = (limits(w[0]), limits(w[1]));
            assert!(b.jobs_per_month.unwrap_or(u64::MAX) > a.jobs_per_month.unwrap_or(0));
            assert!(b.max_model_bytes.unwrap_or(u64::MAX) > a.max_model_bytes.unwrap_or(0));
        }
        assert!(job_priority(Tier::Enterprise) > job_priority(Tier::Pro));
    }
}
