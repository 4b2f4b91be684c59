//! `/api/2.0/mlflow/runs/*` and `metrics/get-history`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{execute, ok, page_response, Fields, Scope};
use crate::api::error::MlflowError;
use crate::api::AppState;
use crate::auth::Principal;
use crate::domain::{run_names, Command};
use crate::events::{Dataset, DatasetInput, KeyValue, MetricPoint};
use crate::ledger::now_ms;
use crate::query::runs::{self, RunSearch};
use crate::query::search::{decode_page_token, ViewType};
use crate::query::{metrics, Run, RunData, RunInfo, RunInputs, Tag};

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
    let page = st.queries.read(move |c| runs::search(c, &s)).await?;
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

fn metric(f: &Fields) -> Result<MetricPoint, MlflowError> {
    let key = f.str("key")?;
    let value = f.f64("value")?;
    Ok(MetricPoint {
        key,
        value: (!value.is_nan()).then_some(value),
        timestamp: f.i64("timestamp")?,
        step: f.opt_i64("step")?.unwrap_or(0),
    })
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/log-metric", tag = "mlflow", operation_id = "logMetric",
    summary = "Log one metric value",
    request_body(content = super::schema::LogMetric, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21", "key": "loss", "value": 0.125, "timestamp": 1772366460000_i64, "step": 3})),
    responses(
        (status = 200, description = "Logged", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn log_metric(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        Ok(Command::LogBatch {
            run_id: f.run_id()?,
            metrics: vec![metric(f)?],
            params: vec![],
            tags: vec![],
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/log-parameter",
    tag = "mlflow", operation_id = "logParameter",
    summary = "Log a parameter",
    request_body(content = super::schema::LogParam, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21", "key": "lr", "value": "0.01"})),
    responses(
        (status = 200, description = "Logged", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn log_param(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        Ok(Command::LogBatch {
            run_id: f.run_id()?,
            metrics: vec![],
            params: vec![KeyValue {
                key: f.str("key")?,
                value: f.opt_str("value")?.unwrap_or_default(),
            }],
            tags: vec![],
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/set-tag", tag = "mlflow", operation_id = "setTag",
    summary = "Set a tag on a run",
    request_body(content = super::schema::SetTag, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21", "key": "stage", "value": "candidate"})),
    responses(
        (status = 200, description = "Set", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn set_tag(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        Ok(Command::LogBatch {
            run_id: f.run_id()?,
            metrics: vec![],
            params: vec![],
            tags: vec![KeyValue {
                key: f.str("key")?,
                value: f.opt_str("value")?.unwrap_or_default(),
            }],
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/delete-tag", tag = "mlflow", operation_id = "deleteTag",
    summary = "Delete a tag of a run",
    description = "A tag the run does not have answers 404.",
    request_body(content = super::schema::DeleteTag, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21", "key": "stage"})),
    responses(
        (status = 200, description = "Deleted", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn delete_tag(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        Ok(Command::DeleteTag {
            run_id: f.run_id()?,
            key: f.str("key")?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/log-batch", tag = "mlflow", operation_id = "logBatch",
    summary = "Log metrics, params and tags at once",
    request_body(content = super::schema::LogBatch, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21", "metrics": [{"key": "loss", "value": 0.125, "timestamp": 1772366460000_i64, "step": 3}, {"key": "val_loss", "value": "NaN", "timestamp": 1772366460000_i64, "step": 3}], "params": [{"key": "lr", "value": "0.01"}], "tags": [{"key": "stage", "value": "candidate"}]})),
    responses(
        (status = 200, description = "Logged (all or nothing)", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn log_batch(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        Ok(Command::LogBatch {
            run_id: f.run_id()?,
            metrics: f
                .objects("metrics")?
                .iter()
                .map(metric)
                .collect::<Result<_, _>>()?,
            params: f
                .objects("params")?
                .iter()
                .map(|p| {
                    Ok(KeyValue {
                        key: p.str("key")?,
                        value: p.opt_str("value")?.unwrap_or_default(),
                    })
                })
                .collect::<Result<_, MlflowError>>()?,
            tags: f.key_values("tags")?,
        })
    })
    .await
}

#[utoipa::path(
    post, path = "/api/2.0/mlflow/runs/log-inputs", tag = "mlflow", operation_id = "logInputs",
    summary = "Log a run's input datasets",
    request_body(content = super::schema::LogInputs, example = json!({"run_id": "7f2c4c0de0b94c3e8a0d1f6f3a5b9e21", "datasets": [{"dataset": {"name": "mnist-calibration", "digest": "4f1c2a9b", "source_type": "local", "source": "{\"uri\": \"/data/mnist\"}"}, "tags": [{"key": "mlflow.data.context", "value": "training"}]}]})),
    responses(
        (status = 200, description = "Logged", body = super::schema::Empty),
        (status = 400, response = super::schema::MlflowBadRequest),
        (status = 404, response = super::schema::MlflowNotFound),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn log_inputs(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Bytes,
) -> Result<HttpResponse, MlflowError> {
    execute(st, req, p, body, |f, _| {
        let inputs = f
            .objects("datasets")?
            .iter()
            .map(|i| {
                let d = i.object("dataset")?;
                Ok(DatasetInput {
                    dataset: Dataset {
                        name: d.str("name")?,
                        digest: d.str("digest")?,
                        source_type: d.opt_str("source_type")?.unwrap_or_default(),
                        source: d.opt_str("source")?.unwrap_or_default(),
                        schema: d.opt_str("schema")?,
                        profile: d.opt_str("profile")?,
                    },
                    tags: i.key_values("tags")?,
                })
            })
            .collect::<Result<_, MlflowError>>()?;
        Ok(Command::LogInputs {
            run_id: f.run_id()?,
            inputs,
        })
    })
    .await
}

#[utoipa::path(
    get, path = "/api/2.0/mlflow/metrics/get-history",
    tag = "mlflow", operation_id = "getMetricHistory",
    summary = "Get a metric's history",
    params(super::schema::GetMetricHistoryParams),
    responses(
        (status = 200, description = "A page of the history", body = super::schema::MetricHistoryResponse),
        (status = 400, response = super::schema::MlflowBadRequest),
        super::schema::MlflowAuthErrors,
    )
)]
pub async fn get_history(
    st: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, MlflowError> {
    let f = Fields::from_query(&req)?;
    let run_id = f.run_id()?;
    Scope { st: &st, p: &p }.readable_run(&run_id)?;
    let key = f.str("metric_key")?;
    // Without max_results MLflow returns the whole history.
    let max_results = match f.opt_i64("max_results")? {
        Some(n) if n >= 1 => n as u64,
        Some(n) => {
            return Err(MlflowError::invalid(format!(
                "Invalid value {n} for parameter 'max_results': must be positive"
            )))
        }
        None => 1 << 40,
    };
    let offset = decode_page_token(f.opt_str("page_token")?.as_deref())?;
    let page = st
        .queries
        .read(move |c| metrics::history(c, &run_id, &key, max_results, offset))
        .await?;
    page_response("metrics", &page)
}
