//! Metric history reads.

use duckdb::arrow::array::{Array, Float64Array, Int64Array};
use duckdb::{params, Connection};

use super::search::encode_page_token;
use super::{Page, QueryError};

/// One point of a metric's history; the key is the same for all and is kept once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

impl super::Queries {
    /// History of one metric of one run, after read-your-writes like every query.
    pub async fn history(
        &self,
        run_id: String,
        key: String,
        max_results: u64,
        offset: u64,
    ) -> Result<Page<Point>, QueryError> {
        let projection = self.projection.clone();
        self.read(move |c| {
            let series = projection.series_id(&run_id, &key);
            history(c, series, max_results, offset)
        })
        .await
    }
}

/// History of one series, ordered by (timestamp, step, value) like MLflow.
/// An unknown run or key (no series) gives an empty page (MLflow answers 200 `{}`).
fn history(
    conn: &Connection,
    series: Option<i64>,
    max_results: u64,
    offset: u64,
) -> Result<Page<Point>, QueryError> {
    let Some(series) = series else {
        return Ok(Page {
            items: vec![],
            next_page_token: None,
        });
    };
    // The whole series, unordered and columnar, then sorted here: DuckDB's sort costs more
    // than the scan, and the rows of a series mostly arrive already in order.
    let mut stmt = conn
        .prepare_cached("SELECT value, timestamp, step FROM metric_history WHERE series_id = ?")?;
    let mut points: Vec<Point> = Vec::new();
    for batch in stmt.query_arrow(params![series])? {
        let (Some(values), Some(timestamps), Some(steps)) = (
            batch.column(0).as_any().downcast_ref::<Float64Array>(),
            batch.column(1).as_any().downcast_ref::<Int64Array>(),
            batch.column(2).as_any().downcast_ref::<Int64Array>(),
        ) else {
            return Err(QueryError::Task(
                "unexpected metric_history column types".into(),
            ));
        };
        points.extend((0..batch.num_rows()).map(|i| Point {
            value: values.value(i),
            timestamp: timestamps.value(i),
            step: steps.value(i),
        }));
    }
    points.sort_by(|a, b| {
        (a.timestamp, a.step)
            .cmp(&(b.timestamp, b.step))
            .then(a.value.total_cmp(&b.value))
    });
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(points.len());
    let end = start.saturating_add(usize::try_from(max_results).unwrap_or(usize::MAX));
    let more = end < points.len();
    points.truncate(end);
    let items = points.split_off(start);
    Ok(Page {
        items,
        next_page_token: more.then(|| encode_page_token(offset + max_results)),
    })
}
