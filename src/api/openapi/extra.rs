//! Operations whose handler serves several routes: one `ingest` handler takes three body
//! shapes, so the array and NDJSON routes are described here.

#![allow(dead_code)]

use crate::api::openapi::errors::{
    BadRequest, NativeAuthErrors, PayloadTooLarge, UnsupportedMediaType,
};
use crate::api::openapi::schemas::TelemetryEvent;
use crate::api::v1::telemetry::IngestQuery;
use crate::telemetry::Accepted;

#[utoipa::path(
    post,
    path = "/api/v1/telemetry/batch",
    tag = "telemetry",
    operation_id = "ingestTelemetryBatch",
    summary = "Ingest a JSON array of telemetry events",
    description = "As `POST /api/v1/telemetry`, with an array body. In `all_or_nothing` mode (the default) one invalid event rejects the batch; in `partial` mode the valid ones are written and the others reported.",
    security(("device_key" = [])),
    params(
        IngestQuery,
        ("Content-Encoding" = Option<String>, Header, description = "`gzip` or none."),
    ),
    request_body(content = Vec<TelemetryEvent>, example = json!([
        {"event_id": "5b0e7c1e-8a4f-4c1b-9d51-0c8f2b6b1a27", "ts": 1772366400250_i64, "kind": "inference", "latency_ms": 12.5},
        {"event_id": "0f3a2d9e-7c61-4b8e-a3f5-2d4c6e8b1a90", "ts": 1772366401250_i64, "kind": "heartbeat", "battery_pct": 81}
    ])),
    responses(
        (status = 200, description = "Acknowledged once durable", body = Accepted),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        NativeAuthErrors,
    )
)]
fn ingest_batch() {}

#[utoipa::path(
    post,
    path = "/api/v1/telemetry/ndjson",
    tag = "telemetry",
    operation_id = "ingestTelemetryNdjson",
    summary = "Ingest newline-delimited JSON telemetry events",
    description = "As `POST /api/v1/telemetry/batch`, one event per non-empty line; a line that is not JSON is reported at its index (from 0) like any other invalid event.",
    security(("device_key" = [])),
    params(
        IngestQuery,
        ("Content-Encoding" = Option<String>, Header, description = "`gzip` or none."),
    ),
    request_body(content = String, content_type = "application/x-ndjson", description = "One `TelemetryEvent` JSON object per line.", example = json!("{\"event_id\": \"5b0e7c1e-8a4f-4c1b-9d51-0c8f2b6b1a27\", \"ts\": 1772366400250, \"kind\": \"inference\", \"latency_ms\": 12.5}\n")),
    responses(
        (status = 200, description = "Acknowledged once durable", body = Accepted),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        NativeAuthErrors,
    )
)]
fn ingest_ndjson() {}
