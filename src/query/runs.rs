//! Run reads: one run, or a page of a search, assembled from the projection tables.

use std::collections::HashMap;

use duckdb::{params_from_iter, Connection, ToSql};

use super::search::{compile_run_search, encode_page_token, ViewType};
use super::{
    Dataset, DatasetInput, Metric, Page, QueryError, Run, RunData, RunInfo, RunInputs, Tag,
};

pub struct RunSearch {
    pub experiment_ids: Vec<i64>,
    pub filter: String,
    pub view: ViewType,
    pub order_by: Vec<String>,
    pub max_results: u64,
    pub offset: u64,
}

pub fn get(conn: &Connection, run_id: &str) -> Result<Run, QueryError> {
    load(conn, &[run_id.to_string()])?
        .pop()
        .ok_or_else(|| QueryError::NotFound(format!("Run with id={run_id} not found")))
}

pub fn search(conn: &Connection, s: &RunSearch) -> Result<Page<Run>, QueryError> {
    if s.experiment_ids.is_empty() {
        return Ok(Page {
            items: vec![],
            next_page_token: None,
        });
    }
    let q = compile_run_search(
        &s.experiment_ids,
        &s.filter,
        s.view,
        &s.order_by,
        s.max_results,
        s.offset,
    )?;
    let mut ids: Vec<String> = conn
        .prepare_cached(&q.sql)?
        .query_map(params_from_iter(q.params.iter()), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let more = ids.len() as u64 > s.max_results;
    ids.truncate(s.max_results as usize);
    Ok(Page {
        items: load(conn, &ids)?,
        next_page_token: more.then(|| encode_page_token(s.offset + s.max_results)),
    })
}

/// `IN (?, ?, ...)` for `n` values.
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        s.push_str(if i == 0 { "?" } else { ", ?" });
    }
    s
}

/// Load full runs for `ids`, returned in the order of `ids` (unknown ids are skipped).
pub fn load(conn: &Connection, ids: &[String]) -> Result<Vec<Run>, QueryError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let marks = placeholders(ids.len());
    let args = || params_from_iter(ids.iter().map(|s| s as &dyn ToSql));
    let mut runs: HashMap<String, Run> = HashMap::with_capacity(ids.len());

    let sql = format!(
        "SELECT run_id, run_name, experiment_id, user_id, status, start_time, end_time, \
         artifact_uri, lifecycle_stage FROM runs WHERE run_id IN ({marks})"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(args())?;
    while let Some(r) = rows.next()? {
        let run_id: String = r.get(0)?;
        let info = RunInfo {
            run_uuid: run_id.clone(),
            run_id: run_id.clone(),
            run_name: r.get(1)?,
            experiment_id: r.get::<_, i64>(2)?.to_string(),
            user_id: r.get(3)?,
            status: r.get(4)?,
            start_time: r.get(5)?,
            end_time: r.get(6)?,
            artifact_uri: r.get(7)?,
            lifecycle_stage: r.get(8)?,
        };
        runs.insert(
            run_id,
            Run {
                info,
                data: RunData::default(),
                inputs: RunInputs::default(),
            },
        );
    }

    let sql = format!(
        "SELECT run_id, key, value, timestamp, step FROM latest_metrics \
         WHERE run_id IN ({marks}) ORDER BY key"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(args())?;
    while let Some(r) = rows.next()? {
        if let Some(run) = runs.get_mut(&r.get::<_, String>(0)?) {
            run.data.metrics.push(Metric {
                key: r.get(1)?,
                value: r.get(2)?,
                timestamp: r.get(3)?,
                step: r.get(4)?,
            });
        }
    }

    for (table, is_param) in [("run_params", true), ("run_tags", false)] {
        let sql = format!(
            "SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks}) ORDER BY key"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(args())?;
        while let Some(r) = rows.next()? {
            if let Some(run) = runs.get_mut(&r.get::<_, String>(0)?) {
                let kv = Tag {
                    key: r.get(1)?,
                    value: r.get(2)?,
                };
                if is_param {
                    run.data.params.push(kv);
                } else {
                    run.data.tags.push(kv);
                }
            }
        }
    }

    let sql = format!(
        "SELECT run_id, name, digest, source_type, source, schema, profile, tags_json \
         FROM run_inputs WHERE run_id IN ({marks}) ORDER BY position"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(args())?;
    while let Some(r) = rows.next()? {
        if let Some(run) = runs.get_mut(&r.get::<_, String>(0)?) {
            let tags_json: String = r.get(7)?;
            let tags: Vec<crate::events::KeyValue> =
                serde_json::from_str(&tags_json).unwrap_or_default();
            run.inputs.dataset_inputs.push(DatasetInput {
                tags: tags
                    .into_iter()
                    .map(|t| Tag {
                        key: t.key,
                        value: t.value,
                    })
                    .collect(),
                dataset: Dataset {
                    name: r.get(1)?,
                    digest: r.get(2)?,
                    source_type: r.get(3)?,
                    source: r.get(4)?,
                    schema: r.get(5)?,
                    profile: r.get(6)?,
                },
            });
        }
    }

    Ok(ids.iter().filter_map(|id| runs.remove(id)).collect())
}
