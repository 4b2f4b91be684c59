//! `experiments/*` requests and answers.

use serde::Serialize;

use super::{KeyValueInput, ViewType};
use crate::query::Experiment;

/// `POST experiments/create`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateExperiment {
    /// Unique among all experiments, deleted ones included; 1 to 500 characters.
    pub name: String,
    /// Root of the runs' artifacts; default `mlflow-artifacts:/<experiment_id>`.
    pub artifact_location: Option<String>,
    pub tags: Option<Vec<KeyValueInput>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateExperimentResponse {
    /// An integer, as a string.
    pub experiment_id: String,
}

/// `experiments/get` and `experiments/get-by-name`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentResponse {
    pub experiment: Experiment,
}

/// Query of `GET experiments/get`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetExperimentParams {
    /// An integer, as a string.
    pub experiment_id: String,
}

/// Query of `GET experiments/get-by-name`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetExperimentByNameParams {
    pub experiment_name: String,
}

/// `POST experiments/search` (the GET form takes the same fields as query parameters).
#[derive(Debug, Serialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchExperiments {
    /// 1 to 50,000; default 1,000.
    pub max_results: Option<i64>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// E.g. `name LIKE 'prod-%' AND tags.team = 'vision'`: attributes `name`,
    /// `creation_time`, `last_update_time`, `experiment_id`, and `tags.<key>`.
    pub filter: Option<String>,
    /// E.g. `["name ASC", "creation_time DESC"]`; default `creation_time DESC, experiment_id`.
    pub order_by: Option<Vec<String>>,
    /// Default `ACTIVE_ONLY`.
    #[param(inline)]
    pub view_type: Option<ViewType>,
}

/// A page of experiments; `next_page_token` only when more follow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchExperimentsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<Experiment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_page_token: Option<String>,
}

/// `POST experiments/delete` and `experiments/restore`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentIdRequest {
    /// An integer, as a string.
    pub experiment_id: String,
}

/// `POST experiments/update` (rename).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpdateExperiment {
    pub experiment_id: String,
    pub new_name: String,
}

/// `POST experiments/set-experiment-tag`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetExperimentTag {
    pub experiment_id: String,
    /// At most 250 characters.
    pub key: String,
    /// At most 20,000 characters; may be empty.
    pub value: String,
}

/// `POST experiments/delete-experiment-tag`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeleteExperimentTag {
    pub experiment_id: String,
    pub key: String,
}
