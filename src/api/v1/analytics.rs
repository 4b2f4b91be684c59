//! `GET /api/v1/analytics/{name}`: a named query of `analytics/` with typed parameters, as
//! JSON, or as an Arrow IPC stream when the client accepts
//! `application/vnd.apache.arrow.stream` (one section: `?section=`, default the first).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use crate::api::AppState;
use crate::auth::Principal;
use crate::query::analytics::{self, Param, Params};

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;
const MAX_BUCKET_MS: i64 = 31 * 86_400_000;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Start of the device-time range (inclusive): RFC 3339 or epoch milliseconds.
    pub from: Option<String>,
    /// End of the device-time range (exclusive): RFC 3339 or epoch milliseconds.
    pub to: Option<String>,
    pub device: Option<String>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub kind: Option<String>,
    /// `info`, `warning` or `critical` (recent-events).
    pub severity: Option<String>,
    /// Bucket width for `hourly`: `minute`, `hour`, `day`, or `15m`, `6h`, `1d`, `30s`.
    pub bucket: Option<String>,
    /// Group `hourly` by `device` (default) or `model_version`.
    pub by: Option<String>,
    /// Rows per page for `recent-events` (1 to 10,000; default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// Seconds without events after which `device-health` calls a device silent (default 900).
    pub silent_after: Option<i64>,
    /// The section to return as Arrow.
    pub section: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/analytics/{name}",
    tag = "analytics",
    operation_id = "runAnalyticsQuery",
    summary = "Run a named analytics query",
    description = "Times filter by device time; `from` is inclusive, `to` exclusive. An unknown query name answers 404 listing the known ones.",
    params(("name" = String, Path, description = "The query (see the enum)."), AnalyticsQuery, ("Accept" = Option<String>, Header, description = "`application/vnd.apache.arrow.stream` for Arrow output.")),
    responses(
        (status = 200, description = "Every section as JSON rows, or with `Accept: application/vnd.apache.arrow.stream` one section (`section`, default the first) as an Arrow IPC stream", content((crate::api::openapi::schemas::AnalyticsResult = "application/json"), (crate::api::openapi::schemas::Binary = "application/vnd.apache.arrow.stream"))),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 404, response = crate::api::openapi::errors::NotFound),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn run(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    name: web::Path<String>,
    q: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let query = analytics::find(&name).ok_or_else(|| {
        let names: Vec<_> = analytics::catalog().iter().map(|q| q.name).collect();
        ApiError::new(
            Code::NotFound,
            format!(
                "No analytics query '{name}'; available: {}",
                names.join(", ")
            ),
        )
    })?;
    let q = q.into_inner();
    let (params, echo) = params(&q, p.tenant(), crate::ledger::now_ms())?;
    if wants_arrow(&req) {
        let section = match &q.section {
            None => query.sections.first(),
            Some(s) => query.sections.iter().find(|x| &x.name == s),
        }
        .cloned()
        .ok_or_else(|| {
            let names: Vec<_> = query.sections.iter().map(|s| s.name.as_str()).collect();
            ApiError::invalid(format!(
                "Parameter 'section' must be one of: {}",
                names.join(", ")
            ))
        })?;
        let body = st
            .queries
            .read(move |c| analytics::run_arrow(c, &section, &params))
            .await?;
        return Ok(HttpResponse::Ok().content_type(ARROW_STREAM).body(body));
    }
    if q.section.is_some() {
        return Err(ApiError::invalid(
            "Parameter 'section' applies to Arrow output only",
        ));
    }
    let mut out = st
        .queries
        .read(move |c| analytics::run_json(c, query, &params))
        .await?;
    out.insert("query".into(), json!(name));
    out.insert("params".into(), echo);
    if name == "dashboard" {
        let head = st.log.head();
        let applied = st.projection.position();
        out.insert(
            "system".into(),
            json!({
                "log_head": head,
                "projection_position": applied,
                "projection_lag_events": head.saturating_sub(applied),
            }),
        );
    }
    Ok(HttpResponse::Ok().json(Value::Object(out)))
}

fn wants_arrow(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|a| a.split(',').any(|m| m.trim().starts_with(ARROW_STREAM)))
}

/// Typed parameters for every query (a query binds the ones it names), and their echo.
/// `tenant` is the caller's, never a request parameter.
pub fn params(q: &AnalyticsQuery, tenant: &str, now_ms: i64) -> Result<(Params, Value), ApiError> {
    let from = q.from.as_deref().map(|v| time("from", v)).transpose()?;
    let to = q.to.as_deref().map(|v| time("to", v)).transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::invalid("Parameter 'from' must be before 'to'"));
        }
    }
    let severity = match q.severity.as_deref() {
        None => None,
        Some(s @ ("info" | "warning" | "critical")) => Some(s.to_string()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Parameter 'severity' must be info, warning or critical, not '{other}'"
            )))
        }
    };
    let bucket_ms = q
        .bucket
        .as_deref()
        .map(bucket)
        .transpose()?
        .unwrap_or(3_600_000);
    let by = match q.by.as_deref().unwrap_or("device") {
        b @ ("device" | "model_version") => b.to_string(),
        other => {
            return Err(ApiError::invalid(format!(
                "Parameter 'by' must be device or model_version, not '{other}'"
            )))
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "Parameter 'limit' must be between 1 and {MAX_LIMIT}"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid("Parameter 'offset' must not be negative"));
    }
    let silent_after = q.silent_after.unwrap_or(900);
    if silent_after <= 0 {
        return Err(ApiError::invalid(
            "Parameter 'silent_after' must be positive",
        ));
    }
    let text = |v: &Option<String>| v.clone().map(Param::Text).unwrap_or(Param::Null);
    let params: Params = [
        ("tenant", Param::Text(tenant.to_string())),
        ("from", Param::Int(from.unwrap_or(i64::MIN))),
        ("to", Param::Int(to.unwrap_or(i64::MAX))),
        ("device", text(&q.device)),
        ("model_name", text(&q.model_name)),
        ("model_version", text(&q.model_version)),
        ("kind", text(&q.kind)),
        ("severity", text(&severity)),
        ("bucket_ms", Param::Int(bucket_ms)),
        ("by", Param::Text(by.clone())),
        ("limit", Param::Int(limit)),
        ("offset", Param::Int(offset)),
        ("now_ms", Param::Int(now_ms)),
        (
            "silent_after_ms",
            Param::Int(silent_after.saturating_mul(1000)),
        ),
    ]
    .into_iter()
    .collect();
    let echo = json!({
        "from": from, "to": to, "device": q.device, "model_name": q.model_name,
        "model_version": q.model_version, "kind": q.kind, "severity": severity,
        "bucket_ms": bucket_ms, "by": by, "limit": limit, "offset": offset,
        "now_ms": now_ms, "silent_after": silent_after,
    });
    Ok((params, echo))
}

fn time(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::invalid(format!(
                "Parameter '{name}' must be RFC 3339 or epoch milliseconds, not '{v}'"
            ))
        })
}

fn bucket(v: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "Parameter 'bucket' must be minute, hour, day or a width like 15m, 6h, 1d, 30s (at most 31d), not '{v}'"
        ))
    };
    let ms = match v {
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => {
            let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let (n, unit) = v.split_at(split);
            let n: i64 = n.parse().map_err(|_| bad())?;
            let unit_ms = match unit {
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            n.checked_mul(unit_ms).ok_or_else(bad)?
        }
    };
    if ms <= 0 || ms > MAX_BUCKET_MS {
        return Err(bad());
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_times() {
        assert_eq!(bucket("15m").unwrap(), 900_000);
        assert_eq!(bucket("hour").unwrap(), 3_600_000);
        assert!(bucket("0h").is_err());
        assert!(bucket("40d").is_err());
        assert!(bucket("h").is_err());
        assert_eq!(time("from", "1000").unwrap(), 1000);
        assert_eq!(time("from", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(time("from", "yesterday").is_err());
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let q = AnalyticsQuery {
            from: Some("2000".into()),
            to: Some("1000".into()),
            ..Default::default()
        };
        assert!(params(&q, "t", 0).unwrap_err().message.contains("'from'"));
        let q = AnalyticsQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert!(params(&q, "t", 0).unwrap_err().message.contains("'limit'"));
        let (p, _) = params(&AnalyticsQuery::default(), "t", 5).unwrap();
        assert_eq!(p["from"], Param::Int(i64::MIN));
        assert_eq!(p["device"], Param::Null);
    }
}
