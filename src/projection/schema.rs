//! The projection database: opening it and applying the DDL in `analytics/schema.sql`.

use std::path::Path;

use duckdb::Connection;

use super::ProjectionError;

pub(super) const SCHEMA: &str = include_str!("../../analytics/schema.sql");
const SETTINGS: &str = "SET memory_limit = '512MB'; SET checkpoint_threshold = '256MB';";

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
    // Bound DuckDB's buffer pool (its default is 80 % of RAM; 64 MB made concurrent searches
    // fail with out-of-memory errors). The running server checkpoints from a thread of its own
    // (see `spawn_checkpointer`); the WAL threshold, which checkpoints inside a commit, is only
    // a backstop.
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
