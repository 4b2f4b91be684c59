//! `/api/2.0/mlflow/runs/*`: create, update, read, search, delete and restore runs (what is
//! logged into a run is in `logging`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{execute, ok, page_response, Fields, Scope};
use crate::api::error::MlflowError;
use crate::api::AppState;
use crate::auth::Principal;
use crate::domain::{run_names, Command};
use crate::ledger::now_ms;
use crate::query::runs::{self, RunSearch};
use crate::query::search::{decode_page_token, ViewType};
use crate::query::{Run, RunData, RunInfo, RunInputs, Tag};

const MAX_SEARCH_RESULTS: u64 = 50_000;

/// MLflow's status enum accepts names or their numbers.
fn status(raw: Option<String>) -> Option<String> {
    raw.map(|s| match s.as_str() {
        "1" => "RUNNING".into(),
        "2" => "SCHEDULED".into(),
        "3" => "FINISHED".into(),
        "4" => "FAILED".into(),
        "5" => "KILLED".into(),
        _ => s,
    })
}

fn run_info(r: &crate::domain::Run) -> RunInfo {
    RunInfo {
        run_id: r.id.clone(),
        run_uuid: r.id.clone(),
        run_name: r.run_name.clone(),
        experiment_id: r.experiment_id.to_string(),
        user_id: r.user_id.clone(),
        status: r.status.clone(),
        start_time: r.start_time,
        end_time: r.end_time,
        artifact_uri: r.artifact_uri.clone(),
        lifecycle_stage: r.lifecycle.as_str().to_string(),
    }
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/create", tag = "mlflow", operation_id = "createRun",
    summary = "Create a run",
    request_body(content = super::schema::CreateRun, example = json!({"experiment_id": "1", "run_name": "baseline", "start_time": 1772366400000_i64, "tags": [{"key": "mlflow.user", "value": "ana"}]})),
    responses(
        (status = 200, description = "The new run", body = super::schema::RunResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn create(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    let f = Fields::from_body(&req, &body)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let cmd = Command::CreateRun {
        run_id: run_id.clone(),
        experiment_id: Scope { st: &st, p: &p }.experiment_id(&f)?,
        generated_name: run_names::generate(),
        run_name: f.opt_str("run_name")?,
        user_id: f
            .opt_str("user_id")?
            .or_else(|| p.caller.username.clone())
            .unwrap_or_default(),
        start_time: f.opt_i64("start_time")?.unwrap_or_else(now_ms),
        tags: f.key_values("tags")?,
    };
    st.ledger.execute(cmd, &p.caller).await?;
    // The response is built from command-side state: no need to wait for the projection.
    let run = st.ledger.read(|s| {
        s.run(&run_id).map(|r| {
            let mut tags: Vec<Tag> = r
                .tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
            tags.sort_by(|a, b| a.key.cmp(&b.key));
            Run {
                info: run_info(r),
                data: RunData {
                    tags,
                    ..RunData::default()
                },
                inputs: RunInputs::default(),
            }
        })
    });
    match run {
        Some(run) => ok(json!({ "run": run })),
        None => Err(MlflowError::not_found(format!(
            "Run with id={run_id} not found"
        ))),
    }
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/update", tag = "mlflow", operation_id = "updateRun",
    summary = "Update a run's status, end time or name",
    request_body(content = super::schema::UpdateRun, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21", "status": "FINISHED", "end_time": 1772370000000_i64})),
    responses(
        (status = 200, description = "The run's info", body = super::schema::UpdateRunResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn update(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    let f = Fields::from_body(&req, &body)?;
    let run_id = f.run_id()?;
    let cmd = Command::UpdateRun {
        run_id: run_id.clone(),
        status: status(f.opt_str("status")?),
        end_time: f.opt_i64("end_time")?,
        run_name: f.opt_str("run_name")?,
    };
    st.ledger.execute(cmd, &p.caller).await?;
    let info = st.ledger.read(|s| s.run(&run_id).map(run_info));
    match info {
        Some(info) => ok(json!({ "run_info": info })),
        None => Err(MlflowError::not_found(format!(
            "Run with id={run_id} not found"
        ))),
    }
}

#[utoipa::path(
    get, path = "/api/2.0/mlflow/runs/get", tag = "mlflow", operation_id = "getRun",
    summary = "Get a run",
    params(super::schema::GetRunParams),
    responses(
        (status = 200, description = "The run; `data.metrics` holds the latest value per key", body = super::schema::RunResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn get(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let run_id = Fields::from_query(&req)?.run_id()?;
    Scope { st: &st, p: &p }.readable_run(&run_id)?;
    let run = st.queries.read(move |c| runs::get(c, &run_id)).await?;
    ok(json!({ "run": run }))
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/search", tag = "mlflow", operation_id = "searchRuns",
    summary = "Search runs",
    request_body(content = super::schema::SearchRuns, example = json!({"experiment_ids": ["1"], "filter": "metrics.accuracy > 0.9 AND params.lr = '0.01'", "order_by": ["metrics.accuracy DESC"], "max_results": 50})),
    responses(
        (status = 200, description = "A page of runs", body = super::schema::SearchRunsResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn search(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    let f = Fields::from_body(&req, &body)?;
    let scope = Scope { st: &st, p: &p };
    let experiment_ids = f
        .str_list("experiment_ids")?
        .iter()
        .map(|id| {
            let id = id
                .trim()
                .parse()
                .map_err(|_| MlflowError::invalid(format!("Invalid experiment id '{id}'")))?;
            let id = scope.resolve_experiment(id);
            // Another tenant's experiment is searched like a missing one: it has no runs.
            Ok(match scope.readable_experiment(id) {
                Ok(()) => id,
                Err(_) => -1,
            })
        })
        .collect::<Result<Vec<i64>, MlflowError>>()?;
    let s = RunSearch {
        experiment_ids,
        filter: f.opt_str("filter")?.unwrap_or_default(),
        view: ViewType::parse(f.opt_str("run_view_type")?.as_deref())?,
        order_by: f.str_list("order_by")?,
        max_results: super::max_results(&f, 1000, MAX_SEARCH_RESULTS)?,
        offset: decode_page_token(f.opt_str("page_token")?.as_deref())?,
    };
    let page = st.queries.search_runs(s).await?;
    page_response("runs", &page)
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/delete", tag = "mlflow", operation_id = "deleteRun",
    summary = "Delete a run",
    request_body(content = super::schema::RunIdRequest, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21"})),
    responses(
        (status = 200, description = "Deleted", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn delete(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        Ok(Command::DeleteRun {
            run_id: f.run_id()?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/restore", tag = "mlflow", operation_id = "restoreRun",
    summary = "Restore a deleted run",
    request_body(content = super::schema::RunIdRequest, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21"})),
    responses(
        (status = 200, description = "Restored", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn restore(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        Ok(Command::RestoreRun {
            run_id: f.run_id()?,
        })
    })
    .await
}
