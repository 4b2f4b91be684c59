//! Artifact listings from the projection (the files themselves live in the artifact store).

use duckdb::{params, Connection};
use serde::Serialize;
use utoipa::ToSchema;

use super::QueryError;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

/// Immediate children of directory `dir` ("" for the root), directories first by name.
/// An unknown directory or a file gives an empty list (MLflow answers `{}`).
pub fn list(conn: &Connection, dir: &str) -> Result<Vec<FileInfo>, QueryError> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{}/", dir.trim_end_matches('/'))
    };
    let mut stmt = conn.prepare_cached(
        "SELECT path, size FROM artifacts WHERE starts_with(path, ?) ORDER BY path",
    )?;
    let rows: Vec<(String, i64)> = stmt
        .query_map(params![prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<FileInfo> = Vec::new();
    for (path, size) in rows {
        let rest = &path[prefix.len()..];
        match rest.split_once('/') {
            Some((child, _)) => {
                if !out.iter().any(|f| f.is_dir && f.path == child) {
                    out.push(FileInfo {
                        path: child.to_string(),
                        is_dir: true,
                        file_size: None,
                    });
                }
            }
            None => out.push(FileInfo {
                path: rest.to_string(),
                is_dir: false,
                file_size: Some(size),
            }),
        }
    }
    Ok(out)
}
