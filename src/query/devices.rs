//! Registered devices, as projected (keys are never here, only their state).

use duckdb::{params, Connection, OptionalExt, Row};
use serde::Serialize;

use super::QueryError;
use crate::events::KeyValue;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub name: String,
    pub tags: Vec<KeyValue>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub run_id: Option<String>,
    /// `active` or `revoked`.
    pub key_state: String,
    pub created_ms: i64,
    pub key_changed_ms: i64,
}

const COLUMNS: &str = "device_id, name, tags_json, model_name, model_version, run_id, \
                       key_state, created_ms, key_changed_ms";

fn view(r: &Row) -> duckdb::Result<DeviceView> {
    let tags: String = r.get(2)?;
    Ok(DeviceView {
        device_id: r.get(0)?,
        name: r.get(1)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        model_name: r.get(3)?,
        model_version: r.get(4)?,
        run_id: r.get(5)?,
        key_state: r.get(6)?,
        created_ms: r.get(7)?,
        key_changed_ms: r.get(8)?,
    })
}

/// A device of `tenant`; another tenant's reads as a missing one.
pub fn get(conn: &Connection, tenant: &str, id: &str) -> Result<DeviceView, QueryError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM devices WHERE tenant_id = ? AND device_id = ?"
    ))?
    .query_row(params![tenant, id], view)
    .optional()?
    .ok_or_else(|| QueryError::NotFound(format!("No device with id '{id}'")))
}

/// Devices ordered by creation, `limit` from `offset`.
pub fn list(
    conn: &Connection,
    tenant: &str,
    limit: u64,
    offset: u64,
) -> Result<Vec<DeviceView>, QueryError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM devices WHERE tenant_id = ? ORDER BY created_ms, device_id LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt.query_map(params![tenant, limit as i64, offset as i64], view)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
