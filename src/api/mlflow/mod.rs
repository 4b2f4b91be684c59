//! MLflow's REST API, wire format exactly (see the reference in the design's shared docs).

pub(crate) mod artifacts;
pub(crate) mod experiments;
mod fields;
pub(crate) mod logging;
pub(crate) mod runs;
pub mod schema;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::MlflowError;
use super::AppState;
use crate::auth::Principal;
use crate::domain::{tenancy, Command};
pub use fields::{parse_double, Fields};

/// Version of the MLflow REST surface we implement (what `/version` reports).
pub const MLFLOW_VERSION: &str = "3.17.2";

pub fn configure(cfg: &mut web::ServiceConfig) {
    for base in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        cfg.service(
            web::scope(base)
                .route("/experiments/create", web::post().to(experiments::create))
                .route("/experiments/get", web::get().to(experiments::get))
                .route(
                    "/experiments/get-by-name",
                    web::get().to(experiments::get_by_name),
                )
                .route("/experiments/search", web::post().to(experiments::search))
                .route(
                    "/experiments/search",
                    web::get().to(experiments::search_get),
                )
                .route("/experiments/delete", web::post().to(experiments::delete))
                .route("/experiments/restore", web::post().to(experiments::restore))
                .route("/experiments/update", web::post().to(experiments::update))
                .route(
                    "/experiments/set-experiment-tag",
                    web::post().to(experiments::set_tag),
                )
                .route(
                    "/experiments/delete-experiment-tag",
                    web::post().to(experiments::delete_tag),
                )
                .route("/runs/create", web::post().to(runs::create))
                .route("/runs/update", web::post().to(runs::update))
                .route("/runs/get", web::get().to(runs::get))
                .route("/runs/search", web::post().to(runs::search))
                .route("/runs/delete", web::post().to(runs::delete))
                .route("/runs/restore", web::post().to(runs::restore))
                .route("/runs/log-metric", web::post().to(logging::log_metric))
                .route("/runs/log-parameter", web::post().to(logging::log_param))
                .route("/runs/set-tag", web::post().to(logging::set_tag))
                .route("/runs/delete-tag", web::post().to(logging::delete_tag))
                .route("/runs/log-batch", web::post().to(logging::log_batch))
                .route("/runs/log-inputs", web::post().to(logging::log_inputs))
                .route("/metrics/get-history", web::get().to(logging::get_history))
                .route("/artifacts/list", web::get().to(artifacts::list_for_run))
                .route(
                    "/logged-models/search",
                    web::post().to(search_logged_models),
                ),
        );
    }
    cfg.service(
        web::resource("/api/2.0/mlflow-artifacts/artifacts").route(web::get().to(artifacts::list)),
    )
    .service(
        web::resource("/api/2.0/mlflow-artifacts/artifacts/{path:.*}")
            .route(web::put().to(artifacts::upload))
            .route(web::get().to(artifacts::download))
            .route(web::delete().to(artifacts::delete)),
    )
    .route("/api/3.0/mlflow/server-info", web::get().to(server_info))
    .route("/version", web::get().to(version));
}

pub(super) fn ok(v: Value) -> Result<HttpResponse, MlflowError> {
    Ok(HttpResponse::Ok().json(v))
}

/// A page as MLflow sends it: `{"<field>": [...], "next_page_token": ...}`, empty parts
/// omitted. Serialised straight from the typed items (a long metric history is 10,000 of them),
/// without building a `serde_json::Value` tree first.
pub(super) fn page_response<T: serde::Serialize>(
    field: &str,
    page: &crate::query::Page<T>,
) -> Result<HttpResponse, MlflowError> {
    page_body(field, page, 96, |out| {
        serde_json::to_writer(out, &page.items)
    })
}

/// The body of [`page_response`], with the items array written by `items` (called only
/// when there are items), for pages that serialise their items by hand.
pub(super) fn page_body<T>(
    field: &str,
    page: &crate::query::Page<T>,
    bytes_per_item: usize,
    items: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Result<HttpResponse, MlflowError> {
    let encode =
        |e: serde_json::Error| MlflowError::invalid(format!("cannot encode response: {e}"));
    let mut out = Vec::with_capacity(64 + page.items.len() * bytes_per_item);
    out.push(b'{');
    if !page.items.is_empty() {
        serde_json::to_writer(&mut out, field).map_err(encode)?;
        out.push(b':');
        items(&mut out).map_err(encode)?;
    }
    if let Some(token) = &page.next_page_token {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"next_page_token\":");
        serde_json::to_writer(&mut out, token).map_err(encode)?;
    }
    out.push(b'}');
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(out))
}

pub(super) fn ok_empty() -> Result<HttpResponse, MlflowError> {
    ok(json!({}))
}

/// A request's caller and what it may see.
pub(super) struct Scope<'a> {
    pub st: &'a AppState,
    pub p: &'a Principal,
}

impl Scope<'_> {
    pub fn tenant(&self) -> &str {
        self.p.tenant()
    }

    /// The `experiment_id` field; `0` is each tenant's own default experiment.
    pub fn experiment_id(&self, f: &Fields) -> Result<i64, MlflowError> {
        Ok(self.resolve_experiment(f.experiment_id()?))
    }

    pub fn resolve_experiment(&self, id: i64) -> i64 {
        let t = self.tenant();
        self.st.ledger.read(|s| s.resolve_experiment(t, id))
    }

    /// Another tenant's experiment reads as a missing one.
    pub fn readable_experiment(&self, id: i64) -> Result<(), MlflowError> {
        let t = self.tenant();
        Ok(self
            .st
            .ledger
            .read(|s| tenancy::readable_experiment(s, t, id))?)
    }

    pub fn readable_run(&self, run_id: &str) -> Result<(), MlflowError> {
        let t = self.tenant();
        Ok(self
            .st
            .ledger
            .read(|s| tenancy::readable_run(s, t, run_id))?)
    }
}

/// Parse the body, build a command, execute it as the caller, answer `{}`.
pub(super) async fn execute(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
    make: impl FnOnce(&Fields, &Scope) -> Result<Command, MlflowError>,
) -> Result<HttpResponse, MlflowError> {
    let f = Fields::from_body(&req, &body)?;
    let cmd = make(&f, &Scope { st: &st, p: &p })?;
    st.ledger.execute(cmd, &p.caller).await?;
    ok_empty()
}

/// `max_results` within `1..=limit`, `default` when absent.
pub(super) fn max_results(f: &Fields, default: u64, limit: u64) -> Result<u64, MlflowError> {
    match f.opt_i64("max_results")? {
        None => Ok(default),
        Some(n) if n >= 1 && n as u64 <= limit => Ok(n as u64),
        Some(n) => Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most {limit} and positive."
        ))),
    }
}

/// Logged models are not tracked yet; the client's `list_artifacts` needs an empty answer.
#[utoipa::path(
    post, path = "/api/2.0/mlflow/logged-models/search",
    tag = "mlflow", operation_id = "searchLoggedModels",
    summary = "Search logged models (always empty)",
    request_body(content = schema::SearchLoggedModels, example = json!({"experiment_ids": ["1"], "filter": "name = 'model'"})),
    responses(
        (status = 200, description = "No models", body = schema::SearchLoggedModelsResponse),
        schema::MlflowAuthErrors,
    )
)]
async fn search_logged_models() -> Result<HttpResponse, MlflowError> {
    ok(json!({ "models": [] }))
}

#[utoipa::path(
    get, path = "/api/3.0/mlflow/server-info", tag = "mlflow", operation_id = "getServerInfo",
    summary = "Artifact repository capabilities",
    responses(
        (status = 200, description = "Capabilities", body = schema::ServerInfo),
        schema::MlflowAuthErrors,
    )
)]
async fn server_info() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
    }))
}

#[utoipa::path(
    get, path = "/version", tag = "mlflow", operation_id = "getVersion",
    summary = "Version of the MLflow REST API served",
    security(()),
    responses(
        (status = 200, description = "The MLflow version, e.g. `3.17.2`", body = String, content_type = "text/plain", example = json!("3.17.2")),
    )
)]
async fn version() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(MLFLOW_VERSION)
}
