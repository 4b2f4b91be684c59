//! The projection database: opening it and applying the DDL in `analytics/schema.sql`.

use std::path::Path;

use duckdb::Connection;

use super::ProjectionError;

pub(super) const SCHEMA: &str = include_str!("../../analytics/schema.sql");
const SETTINGS: &str = "SET memory_limit = '64MB'; SET checkpoint_threshold = '256MB';";

/// Open or create the DuckDB file with the current schema. A file made with another version
/// of the DDL is dropped and rebuilt from the log (the projector starts from position 0):
/// the log is the source of truth, so a schema change never needs a migration script.
pub fn open(path: &Path) -> Result<Connection, ProjectionError> {
    let conn = open_with_schema(path)?;
    let schema_id = crc32c::crc32c(SCHEMA.as_bytes()).to_string();
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM projection_meta WHERE key = 'schema'",
            [],
            |r| r.get(0),
        )
        .ok();
    if stored.as_deref() == Some(schema_id.as_str()) {
        return Ok(conn);
    }
    let fresh: i64 = conn.query_row("SELECT count(*) FROM projection_checkpoint", [], |r| {
        r.get(0)
    })?;
    let conn = if fresh == 0 {
        conn
    } else {
        tracing::warn!("the projection schema changed; rebuilding the projection from the log");
        drop(conn);
        remove(path)?;
        open_with_schema(path)?
    };
    conn.execute(
        "INSERT OR REPLACE INTO projection_meta VALUES ('schema', ?)",
        [schema_id],
    )?;
    Ok(conn)
}

fn open_with_schema(path: &Path) -> Result<Connection, ProjectionError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ProjectionError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let conn = Connection::open(path)?;
    // Bound DuckDB's buffer pool (its default is 80 % of RAM). It keeps every block a query
    // read until the limit, and blocks are re-read cheaply from the OS page cache, so the
    // limit mostly bounds the server's memory: under the MLflow bench load, 512 MB let it
    // hold 48-60 MB of table blocks, 48 MB held 15 MB. 32 MB failed queries for lack of
    // memory under that load, 64 MB did not (with at most one query per core at once, see
    // `query::Queries`). Larger sorts, joins and aggregates spill to `<db>.tmp`.
    // The running server checkpoints from a thread of its own (see `spawn_checkpointer`); the
    // WAL threshold, which checkpoints inside a commit, is only a backstop.
    conn.execute_batch(SETTINGS)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Delete the database file and its write-ahead log.
pub fn remove(path: &Path) -> Result<(), ProjectionError> {
    let mut wal = path.as_os_str().to_owned();
    wal.push(".wal");
    for p in [path, Path::new(&wal)] {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ProjectionError::Io {
                    path: p.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rollups' histogram bins (schema.sql): bins keep value order, a bin's centre is
    /// within 1 % of every value in it, which is what the statistics promise for percentiles,
    /// and the projector's bins (`rollup.rs`) are the same as SQL's.
    #[test]
    fn sketch_bins_order_values_and_hold_them_within_one_percent() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        // ± 1e-9 to 1e12 in steps of 1.37 %, the extremes, and values that count as zero.
        let mut stmt = conn
            .prepare(
                "SELECT v, sketch_bin(v), sketch_value(sketch_bin(v)) FROM ( \
                     SELECT s * 1e-9 * pow(1.0137, i) AS v \
                     FROM range(3900) r(i), (VALUES (1.0), (-1.0)) t(s) \
                     UNION ALL SELECT unnest([0.0, 1e-12, -1e-12, 1e-9, 1e300, -1e300])) \
                 ORDER BY v",
            )
            .unwrap();
        let rows: Vec<(f64, i32, f64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 7806);
        let mut last = i32::MIN;
        for (v, bin, centre) in rows {
            assert!(bin >= last, "bin of {v} ({bin}) is below the previous one");
            assert_eq!(bin, super::super::rollup::sketch_bin(v), "{v}");
            last = bin;
            if v.abs() < 1e-9 {
                assert_eq!((bin, centre), (0, 0.0), "{v}");
            } else {
                let err = (centre - v).abs() / v.abs();
                assert!(err <= 0.01 + 1e-12, "{v}: centre {centre}, error {err}");
            }
        }
    }
}
