//! `runs/*` and `metrics/get-history` requests and answers.

use serde::Serialize;

use super::{KeyValueInput, MlflowDouble, ViewType};
use crate::query::{Metric, Run, RunInfo};

/// A run's status (numbers 1 to 5 are accepted too, in this order).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

/// `POST runs/create`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateRun {
    /// An integer, as a string.
    pub experiment_id: String,
    pub user_id: Option<String>,
    /// Default: a generated `adjective-animal-NNN` name (also stored as tag `mlflow.runName`).
    pub run_name: Option<String>,
    /// Epoch milliseconds; default now.
    pub start_time: Option<i64>,
    pub tags: Option<Vec<KeyValueInput>>,
}

/// `runs/create` and `runs/get`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunResponse {
    pub run: Run,
}

/// `POST runs/update`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpdateRun {
    pub run_id: String,
    /// Deprecated alias of `run_id`.
    #[schema(deprecated)]
    pub run_uuid: Option<String>,
    pub status: Option<RunStatus>,
    /// Epoch milliseconds.
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpdateRunResponse {
    pub run_info: RunInfo,
}

/// Query of `GET runs/get`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetRunParams {
    /// 32 hexadecimal characters.
    pub run_id: String,
    /// Deprecated alias of `run_id`.
    #[deprecated = "use run_id"]
    pub run_uuid: Option<String>,
}

/// `POST runs/search`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchRuns {
    /// Integers, as strings.
    pub experiment_ids: Vec<String>,
    /// E.g. `metrics.loss < 0.1 AND params.lr = '0.01' AND tags.`mlflow.runName` LIKE 'a%'`
    /// (clauses joined with AND).
    pub filter: Option<String>,
    /// Default `ACTIVE_ONLY`.
    pub run_view_type: Option<ViewType>,
    /// 1 to 50,000; default 1,000.
    pub max_results: Option<i64>,
    /// E.g. `["metrics.loss ASC"]`; default `start_time DESC, run_id`.
    pub order_by: Option<Vec<String>>,
    pub page_token: Option<String>,
}

/// A page of runs; `next_page_token` only when more follow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchRunsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_page_token: Option<String>,
}

/// `POST runs/delete` and `runs/restore`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunIdRequest {
    pub run_id: String,
}

/// `POST runs/log-metric`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogMetric {
    pub run_id: String,
    #[schema(deprecated)]
    pub run_uuid: Option<String>,
    pub key: String,
    #[schema(value_type = MlflowDouble)]
    pub value: f64,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// Default 0.
    pub step: Option<i64>,
}

/// `POST runs/log-parameter`. Re-logging a key with another value is refused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogParam {
    pub run_id: String,
    #[schema(deprecated)]
    pub run_uuid: Option<String>,
    pub key: String,
    /// At most 6,000 characters (longer values are truncated).
    pub value: String,
}

/// `POST runs/set-tag`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetTag {
    pub run_id: String,
    #[schema(deprecated)]
    pub run_uuid: Option<String>,
    pub key: String,
    /// At most 8,000 characters (longer values are truncated).
    pub value: String,
}

/// `POST runs/delete-tag`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeleteTag {
    pub run_id: String,
    pub key: String,
}

/// One metric value of `runs/log-batch`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricInput {
    pub key: String,
    #[schema(value_type = MlflowDouble)]
    pub value: f64,
    pub timestamp: i64,
    /// Default 0.
    pub step: Option<i64>,
}

/// `POST runs/log-batch`: at most 1,000 metrics, 100 params and 100 tags, validated before
/// anything is written.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogBatch {
    pub run_id: String,
    pub metrics: Option<Vec<MetricInput>>,
    pub params: Option<Vec<KeyValueInput>>,
    pub tags: Option<Vec<KeyValueInput>>,
}

/// A dataset of `runs/log-inputs`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogDataset {
    pub name: String,
    /// At most 36 characters.
    pub digest: String,
    pub source_type: Option<String>,
    pub source: Option<String>,
    /// JSON text.
    pub schema: Option<String>,
    /// JSON text, at most 16 MiB.
    pub profile: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogDatasetInput {
    pub dataset: LogDataset,
    /// E.g. `mlflow.data.context = training`.
    pub tags: Option<Vec<KeyValueInput>>,
}

/// `POST runs/log-inputs`. Logging the same dataset with the same tags twice stores it once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogInputs {
    pub run_id: String,
    pub datasets: Vec<LogDatasetInput>,
}

/// Query of `GET metrics/get-history`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetMetricHistoryParams {
    pub run_id: String,
    #[deprecated = "use run_id"]
    pub run_uuid: Option<String>,
    pub metric_key: String,
    /// Positive; default: the whole history.
    pub max_results: Option<i64>,
    pub page_token: Option<String>,
}

/// Ordered by (timestamp, step, value); `next_page_token` only when more follow. An unknown run
/// answers `{}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricHistoryResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_page_token: Option<String>,
}
