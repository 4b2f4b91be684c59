//! `/health` and `/metrics` (Prometheus text), and the request-metrics middleware state.

use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use serde_json::json;

use super::AppState;

/// Reads one gauge's value from the server state at scrape time.
type GaugeFn = fn(&AppState) -> i64;

pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    gauges: Vec<(IntGauge, GaugeFn)>,
}

impl HttpMetrics {
    pub fn new() -> Result<HttpMetrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("runledger".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        let defs: [(&str, &str, GaugeFn); 7] = [
            (
                "log_appends_total",
                "Appends acknowledged by the event log",
                |s| s.log.stats().appends as i64,
            ),
            ("log_events_total", "Events in the event log", |s| {
                s.log.stats().events as i64
            }),
            ("log_fsyncs_total", "fdatasync calls (group commits)", |s| {
                s.log.stats().syncs as i64
            }),
            ("log_bytes_total", "Bytes appended to the event log", |s| {
                s.log.stats().bytes as i64
            }),
            ("log_head_position", "Next log position", |s| {
                s.log.head() as i64
            }),
            (
                "projection_position",
                "Next position the projection will apply",
                |s| s.projection.position() as i64,
            ),
            (
                "projection_lag_events",
                "Committed events not yet projected",
                |s| s.log.head().saturating_sub(s.projection.position()) as i64,
            ),
        ];
        let mut gauges = Vec::new();
        for (name, help, f) in defs {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            gauges.push((g, f));
        }
        Ok(HttpMetrics {
            registry,
            requests,
            latency,
            gauges,
        })
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "ops",
    operation_id = "health",
    summary = "Liveness, version and log positions",
    security(()),
    responses(
        (status = 200, description = "The server is up", body = super::openapi::schemas::Health),
    )
)]
pub async fn health(st: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "OK",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": st.started.elapsed().as_secs_f64(),
        "log_position": st.log.head(),
        "projection_position": st.projection.position(),
    }))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4: HTTP requests by route and status, latencies, event-log and projection gauges", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, response = super::openapi::errors::Unauthenticated),
        (status = 403, response = super::openapi::errors::Forbidden),
    )
)]
pub async fn metrics(st: web::Data<AppState>) -> HttpResponse {
    let m = &st.http_metrics;
    for (g, f) in &m.gauges {
        g.set(f(&st));
    }
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut buf) {
        return HttpResponse::InternalServerError().body(e.to_string());
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(buf)
}
