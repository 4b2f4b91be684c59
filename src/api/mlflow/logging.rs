//! What is logged into a run: `runs/log-metric`, `log-parameter`, `set-tag`, `delete-tag`,
//! `log-batch`, `log-inputs`, and `metrics/get-history` to read metrics back.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{execute, page_body, Fields, Scope};
use crate::api::error::MlflowError;
use crate::api::AppState;
use crate::auth::Principal;
use crate::domain::Command;
use crate::events::{Dataset, DatasetInput, MetricPoint};
use crate::query::entities::mlflow_double;
use crate::query::metrics::Point;
use crate::query::search::decode_page_token;
use crate::query::Page;

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
            params: vec![f.key_value()?],
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
            tags: vec![f.key_value()?],
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
                .map(Fields::key_value)
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
        .history(run_id, key.clone(), max_results, offset)
        .await?;
    history_response(&key, &page)
}

/// `{"metrics": [{"key", "value", "timestamp", "step"}...], "next_page_token"}` written
/// directly: a history is often 10,000 points, and serialising each as a struct with its own
/// key, escaped again every time, was a quarter of the server's time for the request.
fn history_response(key: &str, page: &Page<Point>) -> Result<HttpResponse, MlflowError> {
    let mut prefix = b"{\"key\":".to_vec();
    serde_json::to_writer(&mut prefix, key)
        .map_err(|e| MlflowError::invalid(format!("cannot encode response: {e}")))?;
    prefix.extend_from_slice(b",\"value\":");
    page_body("metrics", page, prefix.len() + 64, |out| {
        for (i, p) in page.items.iter().enumerate() {
            out.push(if i == 0 { b'[' } else { b',' });
            out.extend_from_slice(&prefix);
            mlflow_double(&p.value, &mut serde_json::Serializer::new(&mut *out))?;
            out.extend_from_slice(b",\"timestamp\":");
            out.extend_from_slice(itoa::Buffer::new().format(p.timestamp).as_bytes());
            out.extend_from_slice(b",\"step\":");
            out.extend_from_slice(itoa::Buffer::new().format(p.step).as_bytes());
            out.push(b'}');
        }
        out.push(b']');
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::page_response;
    use super::*;
    use crate::query::Metric;

    #[test]
    fn history_is_written_as_serde_writes_metrics() {
        let key = "loss \"val\"/ü";
        let values = [0.25, f64::NAN, f64::INFINITY, -f64::INFINITY, -1e-300, 3.0];
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                value,
                timestamp: 1_700_000_000_000 - i as i64,
                step: -(i as i64),
            })
            .collect();
        let metrics: Vec<Metric> = points
            .iter()
            .map(|p| Metric {
                key: key.into(),
                value: p.value,
                timestamp: p.timestamp,
                step: p.step,
            })
            .collect();
        for token in [None, Some("MTA=".to_string())] {
            for n in [0, 1, points.len()] {
                let body = |r: HttpResponse| {
                    let b = actix_web::body::to_bytes(r.into_body());
                    futures_util::FutureExt::now_or_never(b).unwrap().unwrap()
                };
                let ours = history_response(
                    key,
                    &Page {
                        items: points[..n].to_vec(),
                        next_page_token: token.clone(),
                    },
                )
                .unwrap();
                let serde = page_response(
                    "metrics",
                    &Page {
                        items: metrics[..n].to_vec(),
                        next_page_token: token.clone(),
                    },
                )
                .unwrap();
                assert_eq!(body(ours), body(serde));
            }
        }
    }
}
