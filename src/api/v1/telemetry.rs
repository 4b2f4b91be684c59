//! Telemetry ingest: `POST /api/v1/telemetry` (one event), `/telemetry/batch` (JSON array),
//! `/telemetry/ndjson`; gzip accepted on all three. Checks run cheapest first: IP rate limit,
//! device key, key rate limit, queue place, then the body (size-capped before and after
//! decompression), then per-event validation.

use std::io::Read;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use super::error::{ApiError, Code};
use crate::api::AppState;
use crate::auth::keys::bearer;
use crate::domain::device::Device;
use crate::telemetry::wire::{self, RawEvent, SyntaxError};
use crate::telemetry::Mode;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IngestQuery {
    /// `all_or_nothing` (default) rejects a batch with any invalid event; `partial` accepts
    /// the valid ones and reports the rest.
    #[serde(default)]
    pub mode: Mode,
}

/// The body shapes, as the const parameter of [`ingest`] (one handler, three routes).
pub const SINGLE: u8 = 0;
pub const ARRAY: u8 = 1;
pub const NDJSON: u8 = 2;

#[utoipa::path(
    post,
    path = "/api/v1/telemetry",
    tag = "telemetry",
    operation_id = "ingestTelemetryEvent",
    summary = "Ingest one telemetry event",
    description = "Authenticated with the device's API key (`Authorization: Bearer <key>`). Nothing is written when any event is invalid in `all_or_nothing` mode (400 `INVALID_EVENTS`, each problem in `details.rejected`).",
    security(("device_key" = [])),
    params(IngestQuery, ("Content-Encoding" = Option<String>, Header, description = "`gzip` or none.")),
    request_body(content = crate::api::openapi::schemas::TelemetryEvent, description = "One event; `Content-Encoding: gzip` is accepted."),
    responses(
        (status = 200, description = "Acknowledged once durable: counts of accepted and duplicate events, and in `partial` mode the rejected ones", body = crate::telemetry::Accepted),
        (status = 400, response = crate::api::openapi::errors::BadRequest),
        (status = 413, response = crate::api::openapi::errors::PayloadTooLarge),
        (status = 415, response = crate::api::openapi::errors::UnsupportedMediaType),
        crate::api::openapi::errors::NativeAuthErrors,
    )
)]
pub async fn ingest<const SHAPE: u8>(
    st: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<IngestQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let ip = req.peer_addr().map(|a| a.ip());
    st.limits.check(None, ip).map_err(rate_limited)?;
    let device = authenticate(&st, &req)?;
    st.limits
        .check(Some(&device.id), None)
        .map_err(rate_limited)?;
    let Some(_permit) = st.ingestor.enter() else {
        return Err(
            ApiError::new(Code::RateLimited, "the ingest queue is full; retry shortly")
                .retry_after(1),
        );
    };
    let max = st.telemetry.max_body_bytes;
    let raw = read_capped(body, max).await?;
    let bytes = decode(&req, raw, max)?;
    let events = parse(&bytes, SHAPE)?;
    let accepted = st.ingestor.ingest(&device, events, q.mode).await?;
    if accepted.accepted == 0 && accepted.duplicates == 0 && !accepted.rejected.is_empty() {
        return Err(crate::telemetry::IngestError::Invalid(accepted.rejected).into());
    }
    Ok(HttpResponse::Ok().json(accepted))
}

fn rate_limited(r: crate::auth::rate_limit::RetryAfter) -> ApiError {
    ApiError::new(Code::RateLimited, "rate limit exceeded").retry_after(r.seconds())
}

fn authenticate(st: &AppState, req: &HttpRequest) -> Result<Device, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let key = bearer(header).ok_or_else(|| {
        ApiError::new(
            Code::Unauthenticated,
            "missing device API key: send 'Authorization: Bearer <key>'",
        )
    })?;
    st.ingestor
        .device_for_key(key)
        .ok_or_else(|| ApiError::new(Code::Unauthenticated, "unknown or revoked device API key"))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("request body exceeds {max} bytes"),
    )
}

async fn read_capped(mut body: web::Payload, max: usize) -> Result<web::BytesMut, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("cannot read body: {e}")))?;
        if buf.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Undo `Content-Encoding: gzip`, refusing output beyond `max` (a small gzip body can
/// inflate enormously).
fn decode(req: &HttpRequest, raw: web::BytesMut, max: usize) -> Result<web::Bytes, ApiError> {
    let encoding = req
        .headers()
        .get(actix_web::http::header::CONTENT_ENCODING)
        .and_then(|h| h.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") | Some("") => Ok(raw.freeze()),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            let mut reader = flate2::read::MultiGzDecoder::new(&raw[..]).take(max as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| ApiError::invalid(format!("body is not valid gzip: {e}")))?;
            if out.len() > max {
                return Err(too_large(max));
            }
            Ok(out.into())
        }
        Some(other) => Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!("Content-Encoding '{other}' is not supported; use gzip or none"),
        )),
    }
}

fn parse(bytes: &[u8], shape: u8) -> Result<Vec<Result<RawEvent, SyntaxError>>, ApiError> {
    let syntax = |e: SyntaxError| ApiError::invalid(e.to_string());
    Ok(match shape {
        SINGLE => vec![Ok(wire::parse_single(bytes).map_err(syntax)?)],
        NDJSON => wire::parse_ndjson(bytes),
        _ => wire::parse_array(bytes)
            .map_err(syntax)?
            .into_iter()
            .map(Ok)
            .collect(),
    })
}
