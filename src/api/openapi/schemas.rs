//! Schemas of bodies that the handlers build as JSON values or read without a typed struct:
//! telemetry events as devices send them, analytics results, the health document.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::events::{FieldValue, Severity};

/// One telemetry event as a device sends it. Any other key is a typed field (a snake_case
/// name with a number, boolean or string); fields may also be nested under `fields`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "event_id": "5b0e7c1e-8a4f-4c1b-9d51-0c8f2b6b1a27",
    "ts": "2026-03-01T12:00:00.250Z",
    "kind": "inference",
    "latency_ms": 12.5,
    "confidence": 0.93,
    "is_drowsy": false
}))]
pub struct TelemetryEvent {
    /// Client-made UUID; an id already accepted is counted once (a duplicate, not an error).
    pub event_id: uuid::Uuid,
    pub ts: DeviceTime,
    /// Lowercase a-z, 0-9, `_ . -`, 1 to 64 characters: `detection`, `inference`, `heartbeat`.
    #[schema(pattern = "^[a-z0-9_.-]{1,64}$")]
    pub kind: String,
    /// Default: the device's registered model.
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    /// A floor: the server's severity rules may raise it.
    pub severity: Option<Severity>,
    /// Typed fields, as an alternative to top-level keys.
    pub fields: Option<BTreeMap<String, FieldValue>>,
    /// At most 64 typed fields; texts at most 1,024 bytes.
    #[serde(flatten)]
    pub extra: BTreeMap<String, FieldValue>,
}

/// Device time: RFC 3339, or epoch milliseconds (not before 2000, at most a day ahead).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DeviceTime {
    #[schema(format = DateTime)]
    Rfc3339(String),
    EpochMillis(i64),
}

/// A named query's result: one array of row objects per section (e.g. `summary`, `hourly`),
/// with the query's name and its parameters as understood. Telemetry field columns of a row
/// are gathered into its `fields` object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "query": "device-health",
    "params": {"from": null, "to": null, "limit": 100, "offset": 0, "silent_after": 900},
    "devices": [{"device_id": "9c1f", "events": 1200, "last_seen_ms": 1772366400000_i64}]
}))]
pub struct AnalyticsResult {
    pub query: String,
    /// The parameters as the server resolved them (times in epoch milliseconds).
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// `dashboard` only: `{log_head, projection_position, projection_lag_events}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub system: Option<serde_json::Value>,
    #[serde(flatten)]
    #[schema(value_type = BTreeMap<String, Vec<Object>>)]
    pub sections: BTreeMap<String, Vec<serde_json::Value>>,
}

/// `GET /health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "status": "OK", "version": "0.1.0", "uptime_seconds": 12.5,
    "log_position": 1042, "projection_position": 1042
}))]
pub struct Health {
    /// Always `OK` when the server answers.
    pub status: String,
    pub version: String,
    pub uptime_seconds: f64,
    /// Next position of the event log.
    pub log_position: u64,
    /// Next position the read model will apply.
    pub projection_position: u64,
}

/// Raw bytes (a file, an Arrow IPC stream).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .description(Some("Raw bytes."))
            .into()
    }
}

impl utoipa::ToSchema for Binary {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Binary")
    }
}
