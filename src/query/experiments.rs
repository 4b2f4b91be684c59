//! Experiment reads.

use duckdb::{params, params_from_iter, Connection, OptionalExt};

use super::search::{compile_experiment_search, encode_page_token, ViewType};
use super::{Experiment, Page, QueryError, Tag};

const COLUMNS: &str =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

fn row(r: &duckdb::Row<'_>) -> duckdb::Result<Experiment> {
    Ok(Experiment {
        experiment_id: r.get::<_, i64>(0)?.to_string(),
        name: r.get(1)?,
        artifact_location: r.get(2)?,
        lifecycle_stage: r.get(3)?,
        creation_time: r.get(4)?,
        last_update_time: r.get(5)?,
        tags: Vec::new(),
    })
}

fn with_tags(conn: &Connection, mut e: Experiment) -> Result<Experiment, QueryError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key",
    )?;
    let id: i64 = e.experiment_id.parse().unwrap_or(-1);
    e.tags = stmt
        .query_map(params![id], |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(e)
}

pub fn get(conn: &Connection, id: i64) -> Result<Experiment, QueryError> {
    let sql = format!("SELECT {COLUMNS} FROM experiments WHERE experiment_id = ?");
    let e = conn
        .prepare_cached(&sql)?
        .query_row(params![id], row)
        .optional()?
        .ok_or_else(|| QueryError::NotFound(format!("No Experiment with id={id} exists")))?;
    with_tags(conn, e)
}

pub fn get_by_name(conn: &Connection, tenant: &str, name: &str) -> Result<Experiment, QueryError> {
    let sql = format!("SELECT {COLUMNS} FROM experiments WHERE tenant_id = ? AND name = ?");
    let e = conn
        .prepare_cached(&sql)?
        .query_row(params![tenant, name], row)
        .optional()?
        .ok_or_else(|| {
            QueryError::NotFound(format!("Could not find experiment with name '{name}'"))
        })?;
    with_tags(conn, e)
}

pub struct ExperimentSearch {
    pub tenant: String,
    pub filter: String,
    pub view: ViewType,
    pub order_by: Vec<String>,
    pub max_results: u64,
    pub offset: u64,
}

pub fn search(conn: &Connection, s: &ExperimentSearch) -> Result<Page<Experiment>, QueryError> {
    let q = compile_experiment_search(
        &s.tenant,
        &s.filter,
        s.view,
        &s.order_by,
        s.max_results,
        s.offset,
    )?;
    let ids: Vec<i64> = conn
        .prepare_cached(&q.sql)?
        .query_map(params_from_iter(q.params.iter()), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let more = ids.len() as u64 > s.max_results;
    let items = ids
        .into_iter()
        .take(s.max_results as usize)
        .map(|id| get(conn, id))
        .collect::<Result<_, _>>()?;
    Ok(Page {
        items,
        next_page_token: more.then(|| encode_page_token(s.offset + s.max_results)),
    })
}
