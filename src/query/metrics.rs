//! Metric history reads.

use duckdb::arrow::array::{Array, Float64Array, Int64Array};
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
    // Columnar fetch: a long history is read as Arrow batches, not value by value.
    let mut items: Vec<Metric> = Vec::new();
    for batch in stmt.query_arrow(params![series, (max_results + 1) as i64, offset as i64])? {
        let (Some(values), Some(timestamps), Some(steps)) = (
            batch.column(0).as_any().downcast_ref::<Float64Array>(),
            batch.column(1).as_any().downcast_ref::<Int64Array>(),
            batch.column(2).as_any().downcast_ref::<Int64Array>(),
        ) else {
            return Err(QueryError::Task(
                "unexpected metric_history column types".into(),
            ));
        };
        items.extend((0..batch.num_rows()).map(|i| Metric {
            key: key.to_string(),
            value: values.value(i),
            timestamp: timestamps.value(i),
            step: steps.value(i),
        }));
    }
    let more = items.len() as u64 > max_results;
    items.truncate(max_results as usize);
    Ok(Page {
        items,
        next_page_token: more.then(|| encode_page_token(offset + max_results)),
    })
}
