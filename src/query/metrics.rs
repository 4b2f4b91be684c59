//! Metric history reads.

use duckdb::{params, Connection, OptionalExt};

use super::search::encode_page_token;
use super::{Metric, Page, QueryError};

/// History of one metric of one run, ordered by (timestamp, step, value) like MLflow.
/// An unknown run or key gives an empty page (MLflow answers 200 `{}`).
pub fn history(
    conn: &Connection,
    run_id: &str,
    key: &str,
    max_results: u64,
    offset: u64,
) -> Result<Page<Metric>, QueryError> {
    let series: Option<i64> = conn
        .prepare_cached("SELECT series_id FROM latest_metrics WHERE run_id = ? AND key = ?")?
        .query_row(params![run_id, key], |r| r.get(0))
        .optional()?;
    let Some(series) = series else {
        return Ok(Page {
            items: vec![],
            next_page_token: None,
        });
    };
    let mut stmt = conn.prepare_cached(
        "SELECT value, timestamp, step FROM metric_history WHERE series_id = ? \
         ORDER BY timestamp, step, value LIMIT ? OFFSET ?",
    )?;
    let mut items: Vec<Metric> = stmt
        .query_map(
            params![series, (max_results + 1) as i64, offset as i64],
            |r| {
                Ok(Metric {
                    key: key.to_string(),
                    value: r.get(0)?,
                    timestamp: r.get(1)?,
                    step: r.get(2)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    let more = items.len() as u64 > max_results;
    items.truncate(max_results as usize);
    Ok(Page {
        items,
        next_page_token: more.then(|| encode_page_token(offset + max_results)),
    })
}
