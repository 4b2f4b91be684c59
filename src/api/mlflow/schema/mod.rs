//! MLflow's wire messages as OpenAPI schemas. The handlers read requests field by field
//! (see `fields`) and answer with `serde_json` values, so these types only describe the wire
//! format for the spec; the entities they contain (`Experiment`, `Run`, ...) are the ones the
//! handlers serialise.

mod artifacts;
mod experiments;
mod runs;

use serde::Serialize;

pub use artifacts::*;
pub use experiments::*;
pub use runs::*;

pub use crate::query::MlflowDouble;

/// The `{}` answer of a write.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({}))]
pub struct Empty {}

/// A `{key, value}` pair as sent in requests (tags, params).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyValueInput {
    /// At most 250 characters of letters, digits, `_ - . / :` and space.
    pub key: String,
    /// May be empty.
    pub value: String,
}

/// Which lifecycle stages a search returns (numbers 1, 2, 3 are accepted too).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    ActiveOnly,
    DeletedOnly,
    All,
}

/// The error responses MLflow operations list, for short paths in their attributes.
pub use crate::api::openapi::errors::{MlflowAuthErrors, MlflowBadRequest, MlflowNotFound};
