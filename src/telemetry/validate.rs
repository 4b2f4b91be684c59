//! Judging one raw event: required keys, types, names and limits. A valid event becomes a
//! [`TelemetryRecord`]; an invalid one yields every problem found, each naming its field.

use serde::Serialize;
use uuid::Uuid;

use super::severity::{self, Rule};
use super::wire::{RawEvent, Scalar};
use crate::events::{FieldValue, Severity, TelemetryRecord};

pub const MAX_FIELDS: usize = 64;
pub const MAX_TEXT_LEN: usize = 1024;
const MAX_NAME_LEN: usize = 63;
const MAX_KIND_LEN: usize = 64;
/// 2000-01-01T00:00:00Z: anything earlier is a clock that was never set, or seconds sent as
/// milliseconds.
const MIN_TS_MS: i64 = 946_684_800_000;
/// Device clocks drift; a day ahead of the server is still believable.
const MAX_FUTURE_MS: i64 = 86_400_000;

/// One problem with one event of a request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventError {
    /// Position of the event in the request (line number, from 0, for NDJSON).
    pub index: usize,
    /// The key at fault, or `(event)` for the event as a whole.
    pub field: String,
    pub reason: String,
}

/// What a record inherits from the device that sent it.
pub struct Context<'a> {
    pub device_id: &'a str,
    pub model_name: Option<&'a str>,
    pub model_version: Option<&'a str>,
    pub rules: &'a [Rule],
    pub now_ms: i64,
}

/// Validate one event; `Err` lists every problem found (index 0: the caller re-indexes).
/// Takes the event by value so names and texts move into the record instead of being copied.
pub fn validate(raw: RawEvent, ctx: &Context) -> Result<TelemetryRecord, Vec<EventError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, reason: String| {
        errors.push(EventError {
            index: 0,
            field: field.to_string(),
            reason,
        })
    };
    if let Some(kind) = raw.not_an_object {
        err("(event)", format!("must be a JSON object, got {kind}"));
        return Err(errors);
    }
    let mut event_id = None;
    let mut ts = None;
    let mut kind = None;
    let (mut saw_id, mut saw_ts, mut saw_kind) = (false, false, false);
    let mut model_name = ctx.model_name.map(str::to_string);
    let mut model_version = ctx.model_version.map(str::to_string);
    let mut floor = Severity::Info;
    let mut fields: Vec<(String, FieldValue)> = Vec::with_capacity(raw.entries.len());
    for (key, value) in raw.entries {
        match key.as_str() {
            "event_id" => {
                saw_id = true;
                match &value {
                    Scalar::Text(s) => match Uuid::parse_str(s) {
                        Ok(id) => event_id = Some(id),
                        Err(_) => err(&key, format!("'{}' is not a UUID", clip(s))),
                    },
                    other => err(&key, format!("must be a UUID string, got {}", kind_of(other))),
                }
            }
            "ts" => {
                saw_ts = true;
                match parse_ts(&value, ctx.now_ms) {
                    Ok(t) => ts = Some(t),
                    Err(reason) => err(&key, reason),
                }
            }
            "kind" => {
                saw_kind = true;
                match value {
                    Scalar::Text(s) if valid_kind(&s) => kind = Some(s),
                    Scalar::Text(s) => err(
                        &key,
                        format!(
                            "'{}' must be 1 to {MAX_KIND_LEN} characters of a-z, 0-9, _ . -",
                            clip(&s)
                        ),
                    ),
                    other => err(&key, format!("must be a string, got {}", kind_of(&other))),
                }
            }
            "model_name" => match name_value(value) {
                Ok(v) => model_name = Some(v),
                Err(reason) => err(&key, reason),
            },
            "model_version" => match name_value(value) {
                Ok(v) => model_version = Some(v),
                Err(reason) => err(&key, reason),
            },
            "severity" => match &value {
                Scalar::Text(s) => match s.as_str() {
                    "info" => floor = Severity::Info,
                    "warning" => floor = Severity::Warning,
                    "critical" => floor = Severity::Critical,
                    _ => err(
                        &key,
                        format!("'{}' is not one of info, warning, critical", clip(s)),
                    ),
                },
                other => err(&key, format!("must be a string, got {}", kind_of(other))),
            },
            "device_id" => match &value {
                Scalar::Text(s) if s == ctx.device_id => {}
                _ => err(
                    &key,
                    "does not match the device of the API key; omit it (events are attributed to the key's device)".into(),
                ),
            },
            name if !valid_field_name(name) => err(
                &key,
                format!(
                    "field names are snake_case: a lowercase letter, then a-z, 0-9 or _, at most {} characters",
                    MAX_NAME_LEN + 1
                ),
            ),
            _ => match value {
                Scalar::Null => {}
                Scalar::Bool(b) => fields.push((key, FieldValue::Bool(b))),
                Scalar::Number(n) if n.is_finite() => fields.push((key, FieldValue::Number(n))),
                Scalar::Number(_) => err(&key, "must be a finite number".into()),
                Scalar::Text(s) if s.len() <= MAX_TEXT_LEN => {
                    fields.push((key, FieldValue::Text(s)))
                }
                Scalar::Text(s) => err(
                    &key,
                    format!("is {} bytes long; at most {MAX_TEXT_LEN} are allowed", s.len()),
                ),
                Scalar::Nested(what) => err(
                    &key,
                    format!("must be a number, boolean or string, got {what}"),
                ),
            },
        }
    }
    if !saw_id {
        err("event_id", "is required (a client-made UUID)".into());
    }
    if !saw_ts {
        err("ts", "is required (RFC 3339 or epoch milliseconds)".into());
    }
    if !saw_kind {
        err(
            "kind",
            "is required (e.g. detection, inference, heartbeat)".into(),
        );
    }
    fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = fields.windows(2).find(|w| w[0].0 == w[1].0) {
        err(&w[0].0, "is given twice".into());
    }
    if fields.len() > MAX_FIELDS {
        err(
            "(event)",
            format!(
                "has {} fields; at most {MAX_FIELDS} are allowed",
                fields.len()
            ),
        );
    }
    match (event_id, ts, kind) {
        (Some(event_id), Some(ts), Some(kind)) if errors.is_empty() => {
            let severity = severity::derive(ctx.rules, &kind, &fields, floor);
            Ok(TelemetryRecord {
                event_id,
                ts,
                kind,
                model_name,
                model_version,
                severity,
                fields,
            })
        }
        _ => Err(errors),
    }
}

fn parse_ts(value: &Scalar, now_ms: i64) -> Result<i64, String> {
    let ms = match value {
        Scalar::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => *n as i64,
        Scalar::Number(n) => return Err(format!("{n} is not a whole number of milliseconds")),
        Scalar::Text(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|_| format!("'{}' is not an RFC 3339 time", clip(s)))?
            .timestamp_millis(),
        other => {
            return Err(format!(
                "must be an RFC 3339 string or epoch milliseconds, got {}",
                kind_of(other)
            ))
        }
    };
    if ms < MIN_TS_MS {
        return Err(format!(
            "{ms} is before 2000-01-01; send epoch milliseconds (not seconds) or RFC 3339"
        ));
    }
    if ms > now_ms + MAX_FUTURE_MS {
        return Err(format!(
            "{ms} is more than a day ahead of the server's clock"
        ));
    }
    Ok(ms)
}

fn name_value(value: Scalar) -> Result<String, String> {
    match value {
        Scalar::Text(s) if !s.is_empty() && s.len() <= 256 => Ok(s),
        Scalar::Number(n) if n.fract() == 0.0 => Ok(format!("{}", n as i64)),
        Scalar::Text(_) => Err("must be 1 to 256 characters".into()),
        other => Err(format!("must be a string, got {}", kind_of(&other))),
    }
}

fn valid_kind(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_KIND_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Field names become DuckDB column names, which are case-insensitive: lowercase only.
pub fn valid_field_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN + 1
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn kind_of(s: &Scalar) -> &'static str {
    match s {
        Scalar::Null => "null",
        Scalar::Bool(_) => "a boolean",
        Scalar::Number(_) => "a number",
        Scalar::Text(_) => "a string",
        Scalar::Nested(what) => what,
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::wire::parse_single;

    const NOW: i64 = 1_763_800_000_000;

    fn ctx(rules: &[Rule]) -> Context<'_> {
        Context {
            device_id: "dev1",
            model_name: Some("drowsiness"),
            model_version: Some("3"),
            rules,
            now_ms: NOW,
        }
    }

    fn check(json: &str) -> Result<TelemetryRecord, Vec<EventError>> {
        let rules = severity::default_rules();
        validate(parse_single(json.as_bytes()).unwrap(), &ctx(&rules))
    }

    #[test]
    fn a_valid_detection_inherits_the_device_model() {
        let r = check(
            r#"{"event_id":"6f1c2b1e-8d3a-4f7e-9a52-0c1d2e3f4a5b","ts":"2025-11-22T10:00:00Z",
                "kind":"detection","ear_value":0.18,"is_drowsy":true,"duration_ms":2600,"note":"cab"}"#,
        )
        .unwrap();
        assert_eq!(r.ts, 1_763_805_600_000);
        assert_eq!(r.model_name.as_deref(), Some("drowsiness"));
        assert_eq!(r.severity, Severity::Critical);
        let names: Vec<_> = r.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["duration_ms", "ear_value", "is_drowsy", "note"]);
    }

    #[test]
    fn every_problem_is_named() {
        let errs = check(
            r#"{"event_id":"nope","ts":1700000000,"kind":"Bad Kind","EarValue":1,"x":{"a":1},"model_version":4}"#,
        )
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event_id", "ts", "kind", "EarValue", "x"]);
        assert!(errs[1].reason.contains("seconds"));
        let missing = check(r#"{}"#).unwrap_err();
        let fields: Vec<_> = missing.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event_id", "ts", "kind"]);
    }

    #[test]
    fn times_and_foreign_devices() {
        let id = "6f1c2b1e-8d3a-4f7e-9a52-0c1d2e3f4a5b";
        let future = format!(
            r#"{{"event_id":"{id}","ts":{},"kind":"k"}}"#,
            NOW + 2 * 86_400_000
        );
        assert_eq!(check(&future).unwrap_err()[0].field, "ts");
        let other = format!(r#"{{"event_id":"{id}","ts":{NOW},"kind":"k","device_id":"dev2"}}"#);
        assert_eq!(check(&other).unwrap_err()[0].field, "device_id");
        let ok = format!(
            r#"{{"event_id":"{id}","ts":{NOW},"kind":"k","model_version":7,"severity":"warning"}}"#
        );
        let r = check(&ok).unwrap();
        assert_eq!(r.model_version.as_deref(), Some("7"));
        assert_eq!(r.severity, Severity::Warning);
    }
}
