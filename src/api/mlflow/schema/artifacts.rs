//! Artifact listings, logged models and server information.

use serde::Serialize;

use crate::query::artifacts::FileInfo;

/// Query of `GET artifacts/list`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRunArtifactsParams {
    pub run_id: String,
    #[deprecated = "use run_id"]
    pub run_uuid: Option<String>,
    /// A directory relative to the run's artifact root; default the root.
    pub path: Option<String>,
}

/// A run's artifacts, paths relative to its artifact root.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListRunArtifactsResponse {
    pub root_uri: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileInfo>,
}

/// Query of `GET /api/2.0/mlflow-artifacts/artifacts`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListArtifactsParams {
    /// A directory relative to the artifact root, e.g. `1/<run_id>/artifacts/plots`; default
    /// the root.
    pub path: Option<String>,
}

/// The immediate children of a directory, directories first; `{}` for an unknown directory
/// or a file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListArtifactsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileInfo>,
}

/// `POST logged-models/search`: accepted for the client's `list_artifacts`; logged models are
/// not tracked, so the answer is always empty.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchLoggedModels {
    pub experiment_ids: Option<Vec<String>>,
    pub filter: Option<String>,
    pub max_results: Option<i64>,
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchLoggedModelsResponse {
    /// Always empty.
    #[schema(value_type = Vec<Object>)]
    pub models: Vec<serde_json::Value>,
}

/// `GET /api/3.0/mlflow/server-info`: the artifact repository's capabilities.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "store_type": "SqlStore",
    "workspaces_enabled": false,
    "multipart_uploads_enabled": false,
    "multipart_downloads_enabled": false
}))]
pub struct ServerInfo {
    pub store_type: String,
    pub workspaces_enabled: bool,
    pub multipart_uploads_enabled: bool,
    pub multipart_downloads_enabled: bool,
}
