//! Run reads: one run, or a page of a search, assembled from the projection tables.

use std::collections::HashMap;

use duckdb::{params_from_iter, Connection, OptionalExt, Row};

use super::search::{
    compile_run_search, encode_page_token, CompiledQuery, SearchError, ViewType, RUN_COLUMNS,
};
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
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_id = ?");
    let info = conn
        .prepare_cached(&sql)?
        .query_row([run_id], run_info)
        .optional()?
        .ok_or_else(|| QueryError::NotFound(format!("Run with id={run_id} not found")))?;
    Ok(with_data(conn, vec![info])?.remove(0))
}

impl RunSearch {
    /// The search statement: checks the filter and `order_by` before anything is read.
    pub fn compile(&self) -> Result<CompiledQuery, SearchError> {
        compile_run_search(
            &self.experiment_ids,
            &self.filter,
            self.view,
            &self.order_by,
            self.max_results,
            self.offset,
        )
    }
}

/// The page `q` (compiled from `s`) selects, with each run's data.
pub fn search(
    conn: &Connection,
    s: &RunSearch,
    q: &CompiledQuery,
) -> Result<Page<Run>, QueryError> {
    if s.experiment_ids.is_empty() {
        return Ok(Page {
            items: vec![],
            next_page_token: None,
        });
    }
    let mut infos: Vec<RunInfo> = conn
        .prepare_cached(&q.sql)?
        .query_map(params_from_iter(q.params.iter()), run_info)?
        .collect::<Result<_, _>>()?;
    let more = infos.len() as u64 > s.max_results;
    infos.truncate(s.max_results as usize);
    Ok(Page {
        items: with_data(conn, infos)?,
        next_page_token: more.then(|| encode_page_token(s.offset + s.max_results)),
    })
}

/// A row of [`RUN_COLUMNS`].
fn run_info(r: &Row<'_>) -> duckdb::Result<RunInfo> {
    let run_id: String = r.get(0)?;
    Ok(RunInfo {
        run_uuid: run_id.clone(),
        run_id,
        run_name: r.get(1)?,
        experiment_id: r.get::<_, i64>(2)?.to_string(),
        user_id: r.get(3)?,
        status: r.get(4)?,
        start_time: r.get(5)?,
        end_time: r.get(6)?,
        artifact_uri: r.get(7)?,
        lifecycle_stage: r.get(8)?,
    })
}

/// Separates the ids bound as one string: run ids are hex, so it never occurs in one.
const ID_SEPARATOR: char = '\u{1}';

/// Everything a page of runs carries besides its `runs` row, in one statement: params (kind
/// 0), tags (1), latest metrics (2) and dataset inputs (3, their fields as JSON, `ts` holding
/// the log position). DuckDB plans every statement afresh (a few ms for a 100-value `IN`
/// list), so one statement with the ids bound as one string costs a third of four.
const RUN_DATA: &str = "WITH ids AS (SELECT unnest(string_split(?, chr(1))) AS run_id) \
     SELECT 0 AS kind, run_id, key, value AS text, NULL::DOUBLE AS num, NULL::BIGINT AS ts, \
     NULL::BIGINT AS step FROM run_params SEMI JOIN ids USING (run_id) \
     UNION ALL SELECT 1, run_id, key, value, NULL, NULL, NULL FROM run_tags SEMI JOIN ids USING (run_id) \
     UNION ALL SELECT 2, run_id, key, NULL, value, timestamp, step \
     FROM latest_metrics SEMI JOIN ids USING (run_id) \
     UNION ALL SELECT 3, run_id, name, to_json(struct_pack(digest, source_type, source, schema, \
     profile, tags_json))::VARCHAR, NULL, position, NULL FROM run_inputs SEMI JOIN ids USING (run_id)";

/// A `run_inputs` row's fields as [`RUN_DATA`] encodes them.
#[derive(serde::Deserialize)]
struct InputFields {
    digest: String,
    source_type: String,
    source: String,
    schema: Option<String>,
    profile: Option<String>,
    tags_json: String,
}

/// Adds params, tags, latest metrics (each sorted by key) and dataset inputs (in log order)
/// to `infos`.
fn with_data(conn: &Connection, infos: Vec<RunInfo>) -> Result<Vec<Run>, QueryError> {
    if infos.is_empty() {
        return Ok(vec![]);
    }
    let ids = infos
        .iter()
        .map(|i| i.run_id.as_str())
        .collect::<Vec<_>>()
        .join(&ID_SEPARATOR.to_string());
    let index: HashMap<String, usize> = infos
        .iter()
        .enumerate()
        .map(|(i, info)| (info.run_id.clone(), i))
        .collect();
    let mut runs: Vec<Run> = infos
        .into_iter()
        .map(|info| Run {
            info,
            data: RunData::default(),
            inputs: RunInputs::default(),
        })
        .collect();

    let mut inputs: Vec<(i64, usize, DatasetInput)> = Vec::new();
    let mut stmt = conn.prepare_cached(RUN_DATA)?;
    let mut rows = stmt.query([&ids])?;
    while let Some(r) = rows.next()? {
        let Some(&i) = index.get(&r.get::<_, String>(1)?) else {
            continue;
        };
        let data = &mut runs[i].data;
        let key: String = r.get(2)?;
        match r.get::<_, i32>(0)? {
            0 => data.params.push(Tag {
                key,
                value: r.get(3)?,
            }),
            1 => data.tags.push(Tag {
                key,
                value: r.get(3)?,
            }),
            2 => data.metrics.push(Metric {
                key,
                value: r.get(4)?,
                timestamp: r.get(5)?,
                step: r.get(6)?,
            }),
            _ => inputs.push((r.get(5)?, i, dataset_input(key, &r.get::<_, String>(3)?)?)),
        }
    }
    for run in &mut runs {
        run.data.params.sort_by(|a, b| a.key.cmp(&b.key));
        run.data.tags.sort_by(|a, b| a.key.cmp(&b.key));
        run.data.metrics.sort_by(|a, b| a.key.cmp(&b.key));
    }
    inputs.sort_by_key(|(position, _, _)| *position);
    for (_, i, input) in inputs {
        runs[i].inputs.dataset_inputs.push(input);
    }
    Ok(runs)
}

fn dataset_input(name: String, fields: &str) -> Result<DatasetInput, QueryError> {
    let f: InputFields = serde_json::from_str(fields)
        .map_err(|e| QueryError::Task(format!("unreadable run_inputs row: {e}")))?;
    let tags: Vec<crate::events::KeyValue> = serde_json::from_str(&f.tags_json).unwrap_or_default();
    Ok(DatasetInput {
        tags: tags
            .into_iter()
            .map(|t| Tag {
                key: t.key,
                value: t.value,
            })
            .collect(),
        dataset: Dataset {
            name,
            digest: f.digest,
            source_type: f.source_type,
            source: f.source,
            schema: f.schema,
            profile: f.profile,
        },
    })
}
