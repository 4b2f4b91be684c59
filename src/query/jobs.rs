//! Models, datasets, jobs and registered model versions, as projected.

use duckdb::{params, Connection, OptionalExt};
use serde::Serialize;
use serde_json::Value;

use super::QueryError;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelView {
    pub model_id: String,
    pub name: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// The graph summary: inputs, outputs, parameters, MACs, operators.
    #[schema(value_type = Object)]
    pub summary: Value,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetView {
    pub dataset_id: String,
    pub name: String,
    pub source: String,
    pub inputs_sha256: String,
    pub labels_sha256: Option<String>,
    #[schema(value_type = Object)]
    pub preprocess: Value,
    pub samples: i64,
    pub sample_shape: Vec<u64>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelVersionView {
    pub name: String,
    pub version: i64,
    pub job_id: String,
    pub technique: String,
    pub source_model_id: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub run_id: Option<String>,
    pub artifact_path: Option<String>,
    pub created_ms: i64,
}

fn parse(s: String) -> Value {
    serde_json::from_str(&s).unwrap_or(Value::Null)
}

/// Every read names the caller's tenant: another tenant's row reads as a missing one.
pub fn model(conn: &Connection, tenant: &str, id: &str) -> Result<ModelView, QueryError> {
    conn.prepare_cached(
        "SELECT model_id, name, sha256, size_bytes, summary_json, created_ms FROM models \
         WHERE tenant_id = ? AND model_id = ?",
    )?
    .query_row(params![tenant, id], |r| {
        Ok(ModelView {
            model_id: r.get(0)?,
            name: r.get(1)?,
            sha256: r.get(2)?,
            size_bytes: r.get(3)?,
            summary: parse(r.get(4)?),
            created_ms: r.get(5)?,
        })
    })
    .optional()?
    .ok_or_else(|| QueryError::NotFound(format!("No model with id '{id}'")))
}

pub fn dataset(conn: &Connection, tenant: &str, id: &str) -> Result<DatasetView, QueryError> {
    conn.prepare_cached(
        "SELECT dataset_id, name, source, inputs_sha256, labels_sha256, preprocess_json, samples, \
         sample_shape_json, created_ms FROM datasets WHERE tenant_id = ? AND dataset_id = ?",
    )?
    .query_row(params![tenant, id], |r| {
        Ok(DatasetView {
            dataset_id: r.get(0)?,
            name: r.get(1)?,
            source: r.get(2)?,
            inputs_sha256: r.get(3)?,
            labels_sha256: r.get(4)?,
            preprocess: parse(r.get(5)?),
            samples: r.get(6)?,
            sample_shape: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
            created_ms: r.get(8)?,
        })
    })
    .optional()?
    .ok_or_else(|| QueryError::NotFound(format!("No dataset with id '{id}'")))
}

/// The job as its events describe it (see `domain::job::JobView`).
pub fn job(conn: &Connection, tenant: &str, id: &str) -> Result<Value, QueryError> {
    conn.prepare_cached("SELECT doc_json FROM jobs WHERE tenant_id = ? AND job_id = ?")?
        .query_row(params![tenant, id], |r| r.get::<_, String>(0))
        .optional()?
        .map(parse)
        .ok_or_else(|| QueryError::NotFound(format!("No job with id '{id}'")))
}

#[derive(Debug, Default, Clone)]
pub struct JobFilter {
    pub tenant: String,
    pub status: Option<String>,
    pub model_id: Option<String>,
}

/// Jobs, newest first.
pub fn jobs(
    conn: &Connection,
    f: &JobFilter,
    limit: u64,
    offset: u64,
) -> Result<Vec<Value>, QueryError> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc_json FROM jobs WHERE tenant_id = $5 AND ($1 IS NULL OR status = $1) \
         AND ($2 IS NULL OR model_id = $2) ORDER BY created_ms DESC, job_id LIMIT $3 OFFSET $4",
    )?;
    let rows = stmt.query_map(
        params![f.status, f.model_id, limit as i64, offset as i64, f.tenant],
        |r| r.get::<_, String>(0),
    )?;
    Ok(rows.map(|r| r.map(parse)).collect::<Result<_, _>>()?)
}

pub fn model_versions(
    conn: &Connection,
    tenant: &str,
    name: &str,
) -> Result<Vec<ModelVersionView>, QueryError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, version, job_id, technique, source_model_id, sha256, size_bytes, run_id, \
         artifact_path, created_ms FROM model_versions WHERE tenant_id = ? AND name = ? ORDER BY version",
    )?;
    let rows = stmt.query_map(params![tenant, name], |r| {
        Ok(ModelVersionView {
            name: r.get(0)?,
            version: r.get(1)?,
            job_id: r.get(2)?,
            technique: r.get(3)?,
            source_model_id: r.get(4)?,
            sha256: r.get(5)?,
            size_bytes: r.get(6)?,
            run_id: r.get(7)?,
            artifact_path: r.get(8)?,
            created_ms: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
