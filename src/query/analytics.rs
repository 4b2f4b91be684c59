//! Named analytics queries: the `.sql` files of `analytics/`, compiled into the binary. A file
//! holds sections (`-- section: NAME` before each statement) and may pull in another file's
//! sections (`-- include: NAME`). Parameters are bound by name (`$from`, `$device`, ...), so
//! no request value is ever spliced into SQL.

use std::collections::HashMap;
use std::sync::LazyLock;

use duckdb::arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    Int8Array, StringArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use duckdb::arrow::datatypes::{DataType, SchemaRef};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::{ToSqlOutput, Value as DbValue};
use duckdb::Connection;
use serde_json::{Map, Value};

use super::QueryError;

const FILES: &[(&str, &str)] = &[
    ("statistics", include_str!("../../analytics/statistics.sql")),
    ("dashboard", include_str!("../../analytics/dashboard.sql")),
    ("hourly", include_str!("../../analytics/hourly.sql")),
    (
        "recent-events",
        include_str!("../../analytics/recent-events.sql"),
    ),
    (
        "device-health",
        include_str!("../../analytics/device-health.sql"),
    ),
    (
        "model-versions",
        include_str!("../../analytics/model-versions.sql"),
    ),
];

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub sql: String,
}

#[derive(Debug, Clone)]
pub struct NamedQuery {
    pub name: &'static str,
    pub sections: Vec<Section>,
}

static CATALOG: LazyLock<Vec<NamedQuery>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, _)| NamedQuery {
            name,
            sections: sections_of(name),
        })
        .collect()
});

fn sections_of(name: &str) -> Vec<Section> {
    let Some((_, text)) = FILES.iter().find(|(n, _)| *n == name) else {
        return vec![];
    };
    let mut out: Vec<Section> = Vec::new();
    for line in text.lines() {
        if let Some(included) = line.strip_prefix("-- include:") {
            out.extend(sections_of(included.trim()));
        } else if let Some(section) = line.strip_prefix("-- section:") {
            out.push(Section {
                name: section.trim().to_string(),
                sql: String::new(),
            });
        } else if let Some(current) = out.last_mut() {
            if !line.trim_start().starts_with("--") {
                current.sql.push_str(line);
                current.sql.push('\n');
            }
        }
    }
    for s in &mut out {
        let trimmed = s.sql.trim().trim_end_matches(';').to_string();
        s.sql = trimmed;
    }
    out
}

/// Every named query.
pub fn catalog() -> &'static [NamedQuery] {
    &CATALOG
}

pub fn find(name: &str) -> Option<&'static NamedQuery> {
    CATALOG.iter().find(|q| q.name == name)
}

/// A typed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
    Null,
}

impl duckdb::ToSql for Param {
    fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Int(i) => ToSqlOutput::from(*i),
            Param::Text(s) => ToSqlOutput::from(s.as_str()),
            Param::Null => ToSqlOutput::Owned(DbValue::Null),
        })
    }
}

/// Parameters by name (without the `$`).
pub type Params = HashMap<&'static str, Param>;

/// Run a section with the parameters its SQL names; the result as Arrow batches.
pub fn run_section(
    conn: &Connection,
    section: &Section,
    params: &Params,
) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
    let mut stmt = conn.prepare(&section.sql)?;
    let mut bound: HashMap<String, Param> = HashMap::new();
    for i in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(i)?;
        let value = params.get(name.as_str()).cloned().ok_or_else(|| {
            QueryError::Task(format!(
                "query section {} uses ${name}, which has no value",
                section.name
            ))
        })?;
        bound.insert(name, value);
    }
    let arrow = stmt.query_arrow(&bound)?;
    let schema = arrow.get_schema();
    Ok((schema, arrow.collect()))
}

/// Every section of a query as JSON: `{section: [row, ...]}`. Typed telemetry field columns
/// (`n_`, `b_`, `s_` + name) are gathered into one `fields` object per row, nulls left out.
pub fn run_json(
    conn: &Connection,
    query: &NamedQuery,
    params: &Params,
) -> Result<Map<String, Value>, QueryError> {
    let mut out = Map::new();
    for section in &query.sections {
        let (_, batches) = run_section(conn, section, params)?;
        let mut rows = Vec::new();
        for b in &batches {
            rows.extend(batch_rows(b)?);
        }
        out.insert(section.name.clone(), Value::Array(rows));
    }
    Ok(out)
}

/// One section as an Arrow IPC stream.
pub fn run_arrow(
    conn: &Connection,
    section: &Section,
    params: &Params,
) -> Result<Vec<u8>, QueryError> {
    let (schema, batches) = run_section(conn, section, params)?;
    let arrow_err = |e: duckdb::arrow::error::ArrowError| QueryError::Task(e.to_string());
    let mut buf = Vec::new();
    {
        let mut w = duckdb::arrow::ipc::writer::StreamWriter::try_new(&mut buf, &schema)
            .map_err(arrow_err)?;
        for b in &batches {
            w.write(b).map_err(arrow_err)?;
        }
        w.finish().map_err(arrow_err)?;
    }
    Ok(buf)
}

fn field_name(column: &str) -> Option<&str> {
    ["n_", "b_", "s_"]
        .iter()
        .find_map(|p| column.strip_prefix(p))
}

fn batch_rows(batch: &RecordBatch) -> Result<Vec<Value>, QueryError> {
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let has_fields = names.iter().any(|n| field_name(n).is_some());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut obj = Map::new();
        let mut fields = Map::new();
        for (col, name) in batch.columns().iter().zip(&names) {
            let v = json_value(col, row)?;
            match field_name(name) {
                Some(f) if !v.is_null() => {
                    fields.insert(f.to_string(), v);
                }
                Some(_) => {}
                None => {
                    obj.insert(name.to_string(), v);
                }
            }
        }
        if has_fields {
            obj.insert("fields".into(), Value::Object(fields));
        }
        rows.push(Value::Object(obj));
    }
    Ok(rows)
}

fn json_value(col: &ArrayRef, row: usize) -> Result<Value, QueryError> {
    if col.is_null(row) {
        return Ok(Value::Null);
    }
    macro_rules! num {
        ($t:ty) => {
            col.as_any()
                .downcast_ref::<$t>()
                .map(|a| Value::from(a.value(row)))
        };
    }
    let v = match col.data_type() {
        DataType::Boolean => col
            .as_any()
            .downcast_ref::<BooleanArray>()
            .map(|a| Value::Bool(a.value(row))),
        DataType::Int8 => num!(Int8Array),
        DataType::Int16 => num!(Int16Array),
        DataType::Int32 => num!(Int32Array),
        DataType::Int64 => num!(Int64Array),
        DataType::UInt8 => num!(UInt8Array),
        DataType::UInt16 => num!(UInt16Array),
        DataType::UInt32 => num!(UInt32Array),
        DataType::UInt64 => num!(UInt64Array),
        DataType::Float32 => col
            .as_any()
            .downcast_ref::<Float32Array>()
            .map(|a| finite(a.value(row) as f64)),
        DataType::Float64 => col
            .as_any()
            .downcast_ref::<Float64Array>()
            .map(|a| finite(a.value(row))),
        DataType::Utf8 => col
            .as_any()
            .downcast_ref::<StringArray>()
            .map(|a| Value::String(a.value(row).to_string())),
        _ => {
            // Decimals, timestamps and the rest: their display form.
            let fmt = duckdb::arrow::util::display::ArrayFormatter::try_new(
                col.as_ref(),
                &Default::default(),
            )
            .map_err(|e| QueryError::Task(e.to_string()))?;
            let text = fmt.value(row).to_string();
            Some(match col.data_type() {
                DataType::Decimal128(..) | DataType::Decimal256(..) => text
                    .parse::<f64>()
                    .map(finite)
                    .unwrap_or(Value::String(text)),
                _ => Value::String(text),
            })
        }
    };
    v.ok_or_else(|| QueryError::Task(format!("unexpected column type {}", col.data_type())))
}

/// JSON has no NaN or infinity: they become null.
fn finite(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_sections_and_includes_resolve() {
        for q in catalog() {
            assert!(!q.sections.is_empty(), "{} has no sections", q.name);
            for s in &q.sections {
                assert!(
                    s.sql.to_uppercase().contains("SELECT"),
                    "{}.{}",
                    q.name,
                    s.name
                );
            }
        }
        let dashboard: Vec<_> = find("dashboard")
            .unwrap()
            .sections
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            dashboard,
            [
                "totals",
                "kinds",
                "fields",
                "hourly",
                "top_devices",
                "recent_critical",
                "ingest"
            ]
        );
    }

    #[test]
    fn typed_field_columns_fold_into_fields() {
        assert_eq!(field_name("n_ear_value"), Some("ear_value"));
        assert_eq!(field_name("b_is_drowsy"), Some("is_drowsy"));
        assert_eq!(field_name("events"), None);
    }
}
