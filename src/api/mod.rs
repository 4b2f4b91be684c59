//! HTTP surfaces: `mlflow/` (MLflow's wire format) and operations (`/health`, `/metrics`).
//! Handlers parse, call the ledger or queries, and map; errors map in `error`.

pub mod auth;
pub mod error;
pub mod mlflow;
pub mod openapi;
mod ops;
pub mod v1;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpResponse};

use crate::artifacts::ArtifactStore;
use crate::auth::rate_limit::RateLimits;
use crate::auth::{AuthConfig, Authenticator};
use crate::jobs::Jobs;
use crate::ledger::Ledger;
use crate::log::SharedLog;
use crate::projection::Projection;
use crate::query::Queries;
use crate::telemetry::{Ingestor, TelemetryConfig};

pub use ops::HttpMetrics;

/// Largest JSON request body (a dataset profile may be 16 MiB).
const MAX_JSON_BODY: usize = 32 << 20;

pub struct AppState {
    pub log: SharedLog,
    pub ledger: Arc<Ledger>,
    pub projection: Arc<Projection>,
    pub queries: Arc<Queries>,
    pub artifacts: Arc<ArtifactStore>,
    pub http_metrics: Arc<HttpMetrics>,
    pub started: Instant,
    pub ingestor: Arc<Ingestor>,
    /// Telemetry ingest limits: per device key and per IP.
    pub limits: Arc<RateLimits>,
    /// Every other route: per token and per IP.
    pub api_limits: Arc<RateLimits>,
    pub auth: Arc<Authenticator>,
    pub auth_config: AuthConfig,
    pub telemetry: TelemetryConfig,
    pub jobs: Arc<Jobs>,
}

/// Every route of the server.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_JSON_BODY))
        .configure(mlflow::configure)
        .configure(v1::configure)
        .configure(openapi::configure)
        .route("/ws/telemetry", web::get().to(ws::telemetry))
        .route("/ws/jobs/{id}", web::get().to(ws::job))
        .route("/health", web::get().to(ops::health))
        .route("/metrics", web::get().to(ops::metrics));
}

/// Unknown routes answer MLflow's JSON 404 instead of an HTML page.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    error::MlflowError::new(
        error::ErrorCode::EndpointNotFound,
        format!("No endpoint {} {}", req.method(), req.path()),
    )
    .error_response()
}
