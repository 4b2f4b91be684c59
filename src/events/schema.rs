//! The committed JSON Schemas under `schemas/`, generated from the event types.

use super::Event;

/// JSON Schema of every event payload, as committed under `schemas/`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Event)).unwrap_or_default()
}

/// Where the committed event schema lives, relative to the output directory.
pub const SCHEMA_FILE: &str = "events.schema.json";

/// Write the event JSON Schema into `dir`; returns the file written.
pub fn write_schemas(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    write_schema_file(dir, SCHEMA_FILE, &json_schema())
}

/// Write one generated schema as committed under `schemas/` (pretty JSON, final newline).
pub fn write_schema_file(
    dir: &std::path::Path,
    file: &str,
    schema: &serde_json::Value,
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file);
    std::fs::write(&path, schema_text(schema))?;
    Ok(path)
}

/// The committed text of a schema; the staleness tests compare against it.
pub fn schema_text(schema: &serde_json::Value) -> String {
    serde_json::to_string_pretty(schema).unwrap_or_default() + "\n"
}
