//! Payloads of the optimization events: uploaded models and datasets, jobs and what each
//! technique produced, registered model versions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Inputs and optional labels (`.npy`, stored by SHA-256) with their preprocessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct DatasetInfo {
    pub dataset_id: String,
    pub name: String,
    /// `upload` or `preset:<name>`.
    pub source: String,
    pub inputs_sha256: String,
    pub labels_sha256: Option<String>,
    #[schema(value_type = Object)]
    pub preprocess: serde_json::Value,
    pub samples: u64,
    pub sample_shape: Vec<u64>,
    /// Owning tenant (events before tenancy: the default tenant).
    #[serde(default = "super::default_tenant")]
    pub tenant: String,
}

/// One technique to try, with its parameters; `label` tells two runs of one technique apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TechniqueSpec {
    /// int8-weight, int8-static, fp16, int4-weight, prune-unstructured, prune-structured, hybrid.
    pub name: String,
    /// Key of this variant in results and URLs; default: `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Share of weights to zero (prune-unstructured; hybrid with unstructured pruning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<f32>,
    /// Share of channels to remove (prune-structured; hybrid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f32>,
    /// int4 block size: 32, 64 or 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<usize>,
}

impl TechniqueSpec {
    pub fn key(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

/// A board to estimate for, optionally with a runtime (default: the board's first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoardTarget {
    pub board: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

/// Everything a job needs, as submitted (ids refer to uploaded models and datasets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct JobSpec {
    pub name: String,
    pub model_id: String,
    pub calibration_dataset_id: String,
    pub evaluation_dataset_id: String,
    pub techniques: Vec<TechniqueSpec>,
    pub boards: Vec<BoardTarget>,
    /// The recommender's constraints (see `GET /api/v1/jobs/{id}/recommendation`).
    #[schemars(with = "serde_json::Value")]
    pub constraints: crate::optimize::recommend::Constraints,
    #[schemars(with = "String")]
    pub goal: crate::optimize::recommend::Goal,
    /// MLflow experiment holding the job's run tree.
    pub experiment_id: i64,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
}

/// What the estimator says about a variant on one board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct BoardEstimate {
    pub runtime: String,
    pub dtype: String,
    pub latency_ms: f64,
    pub ram_kb: f64,
    pub flash_kb: f64,
    pub energy_uj: f64,
    pub fits: bool,
}

/// Measured quality, size and speed of a variant (or of the original model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct VariantResult {
    pub sha256: String,
    pub size_bytes: u64,
    /// Top-1 accuracy on the evaluation data, when it has labels.
    pub accuracy: Option<f64>,
    /// Share of samples whose top-1 class equals the original's.
    pub agreement: Option<f64>,
    pub sqnr_db: Option<f64>,
    /// Median single-sample latency in tract on the server, ms.
    pub host_latency_ms: Option<f64>,
    /// Estimates per board id.
    pub estimates: BTreeMap<String, BoardEstimate>,
    /// Artifact path of the variant in the technique's tracking run.
    pub artifact_path: Option<String>,
    /// Wall time of the technique and its evaluation, s.
    pub seconds: f64,
}

/// The final state of a job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            other => {
                return Err(format!(
                    "unknown status '{other}' (expected queued, running, completed, failed or cancelled)"
                ))
            }
        })
    }
}

pub fn model_stream(id: &str) -> String {
    format!("model-{id}")
}

pub fn dataset_stream(id: &str) -> String {
    format!("dataset-{id}")
}

pub fn job_stream(id: &str) -> String {
    format!("job-{id}")
}

/// Registered model names are per tenant.
pub fn registered_model_stream(tenant: &str, name: &str) -> String {
    format!("registered-model-{tenant}:{name}")
}
