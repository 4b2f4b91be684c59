//! Telemetry rows: each `TelemetryIngested` event expands into one row per device event,
//! appended columnar. The strings rows share (tenant, device, kind, model, severity) form a
//! label, numbered once and referenced by id. Typed fields are columns named by type (`n_`,
//! `b_`, `s_` + field name); a field seen for the first time adds its column, in the same
//! transaction. The same transaction appends the rows' hourly rollups (`rollup.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int32Array, Int64Builder,
    StringBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{params, Connection};

use super::rollup::Rollup;
use super::schema::SCHEMA;
use super::ProjectionError;
use crate::events::{FieldValue, Severity, TelemetryRecord};
use crate::log::Position;

/// Columns every row of `telemetry_rows` has, in table order, before the field columns.
const FIXED: usize = 5;

/// The `telemetry` view's DDL from schema.sql. A view keeps the columns it was created
/// with, so it is re-created whenever a field column is added.
fn view_ddl() -> &'static str {
    let start = SCHEMA.find("-- view: telemetry").unwrap_or(0);
    let end = SCHEMA[start..]
        .find("-- end view")
        .map_or(SCHEMA.len(), |e| start + e);
    &SCHEMA[start..end]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Bool,
    Text,
}

impl Kind {
    fn of(v: &FieldValue) -> Kind {
        match v {
            FieldValue::Number(_) => Kind::Number,
            FieldValue::Bool(_) => Kind::Bool,
            FieldValue::Text(_) => Kind::Text,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Number => "n_",
            Kind::Bool => "b_",
            Kind::Text => "s_",
        }
    }

    fn sql_type(self) -> &'static str {
        match self {
            Kind::Number => "DOUBLE",
            Kind::Bool => "BOOLEAN",
            Kind::Text => "VARCHAR",
        }
    }

    fn arrow_type(self) -> DataType {
        match self {
            Kind::Number => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Text => DataType::Utf8,
        }
    }
}

/// What the projector keeps of the telemetry tables: field columns and label ids.
#[derive(Default)]
pub struct TelemetryTables {
    columns: Vec<(String, Kind)>,
    index: HashMap<String, usize>,
    /// (tenant, device) → that device's labels and their ids.
    labels: HashMap<(String, String), Vec<(LabelTail, i32)>>,
    next_label: i32,
}

/// A label's columns after tenant and device.
#[derive(Debug, Clone, PartialEq)]
struct LabelTail {
    kind: String,
    model_name: Option<String>,
    model_version: Option<String>,
    severity: Severity,
}

impl LabelTail {
    fn matches(&self, e: &TelemetryRecord) -> bool {
        self.kind == e.kind
            && self.model_name == e.model_name
            && self.model_version == e.model_version
            && self.severity == e.severity
    }
}

impl TelemetryTables {
    /// Read the field columns and labels back from the database.
    pub fn load(conn: &Connection) -> Result<TelemetryTables, ProjectionError> {
        let mut stmt = conn.prepare(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'telemetry_rows' \
             AND schema_name = 'main' ORDER BY column_index",
        )?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut t = TelemetryTables::default();
        for name in names.into_iter().skip(FIXED) {
            let kind = match &name[..2] {
                "n_" => Kind::Number,
                "b_" => Kind::Bool,
                _ => Kind::Text,
            };
            t.index.insert(name.clone(), t.columns.len());
            t.columns.push((name, kind));
        }
        let mut stmt = conn.prepare(
            "SELECT label_id, tenant_id, device_id, kind, model_name, model_version, severity \
             FROM telemetry_labels ORDER BY label_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        for row in rows {
            let (id, tenant, device, kind, model_name, model_version, severity) = row?;
            let severity = Severity::parse(&severity).unwrap_or_default();
            let tail = LabelTail {
                kind,
                model_name,
                model_version,
                severity,
            };
            t.labels
                .entry((tenant, device))
                .or_default()
                .push((tail, id));
            t.next_label = t.next_label.max(id + 1);
        }
        Ok(t)
    }

    /// The column of a field, added to the table (and the view) when new.
    fn column(
        &mut self,
        conn: &Connection,
        name: &str,
        kind: Kind,
        scratch: &mut String,
    ) -> Result<usize, ProjectionError> {
        scratch.clear();
        scratch.push_str(kind.prefix());
        scratch.push_str(name);
        if let Some(i) = self.index.get(scratch.as_str()) {
            return Ok(*i);
        }
        // Field names are validated as [a-z][a-z0-9_]*, so the identifier needs no escaping.
        conn.execute_batch(&format!(
            "ALTER TABLE telemetry_rows ADD COLUMN IF NOT EXISTS {scratch} {}; {}",
            kind.sql_type(),
            view_ddl()
        ))?;
        let i = self.columns.len();
        self.index.insert(scratch.clone(), i);
        self.columns.push((scratch.clone(), kind));
        Ok(i)
    }

    /// The label of events from `device` that look like `e`, numbered and written when new.
    fn label(
        &mut self,
        conn: &Connection,
        tenant: &str,
        device: &str,
        events: &[TelemetryRecord],
        out: &mut Vec<i32>,
    ) -> Result<(), ProjectionError> {
        // One map lookup per request; a device has few distinct labels, so they are scanned.
        let key = (tenant.to_string(), device.to_string());
        let known = self.labels.entry(key).or_default();
        for e in events {
            let id = match known.iter().find(|(tail, _)| tail.matches(e)) {
                Some((_, id)) => *id,
                None => {
                    let id = self.next_label;
                    self.next_label += 1;
                    conn.execute(
                        "INSERT INTO telemetry_labels VALUES (?, ?, ?, ?, ?, ?, ?)",
                        params![
                            id,
                            tenant,
                            device,
                            e.kind,
                            e.model_name,
                            e.model_version,
                            e.severity.as_str()
                        ],
                    )?;
                    let tail = LabelTail {
                        kind: e.kind.clone(),
                        model_name: e.model_name.clone(),
                        model_version: e.model_version.clone(),
                        severity: e.severity,
                    };
                    known.push((tail, id));
                    id
                }
            };
            out.push(id);
        }
        Ok(())
    }
}

/// Requests of one projector batch, gathered before a single columnar append.
#[derive(Default)]
pub struct TelemetryRows<'a> {
    /// (position, received ms, tenant, device, events)
    requests: Vec<(Position, i64, &'a str, &'a str, &'a [TelemetryRecord])>,
}

impl<'a> TelemetryRows<'a> {
    pub fn add(
        &mut self,
        position: Position,
        received_ms: i64,
        tenant: &'a str,
        device: &'a str,
        events: &'a [TelemetryRecord],
    ) {
        self.requests
            .push((position, received_ms, tenant, device, events));
    }

    pub fn flush(
        self,
        conn: &Connection,
        tables: &mut TelemetryTables,
    ) -> Result<(), ProjectionError> {
        let n: usize = self.requests.iter().map(|r| r.4.len()).sum();
        if n == 0 {
            return Ok(());
        }
        // Labels and field columns first: the appender needs the batch to match the table.
        let mut labels = Vec::with_capacity(n);
        let mut scratch = String::new();
        // Each field column's (row, value) cells; rows without the field get NULL.
        let mut per_column: Vec<Vec<(usize, &FieldValue)>> = Vec::new();
        // The batch's field names so far: a short scan beats hashing every cell.
        let mut recent: Vec<(&str, Kind, usize)> = Vec::new();
        let mut row = 0;
        for (_, _, tenant, device, events) in &self.requests {
            tables.label(conn, tenant, device, events, &mut labels)?;
            for e in *events {
                for (name, value) in &e.fields {
                    let kind = Kind::of(value);
                    let col = match recent.iter().find(|(n, k, _)| *k == kind && n == name) {
                        Some((_, _, col)) => *col,
                        None => {
                            let col = tables.column(conn, name, kind, &mut scratch)?;
                            if recent.len() < 32 {
                                recent.push((name, kind, col));
                            }
                            col
                        }
                    };
                    if col >= per_column.len() {
                        per_column.resize_with(col + 1, Vec::new);
                    }
                    per_column[col].push((row, value));
                }
                row += 1;
            }
        }
        per_column.resize_with(tables.columns.len(), Vec::new);
        let mut position = Int64Builder::with_capacity(n);
        let mut event_id = FixedSizeBinaryBuilder::with_capacity(n, 16);
        let mut ts = Int64Builder::with_capacity(n);
        let mut received = Int64Builder::with_capacity(n);
        for (pos, recv, _, _, events) in &self.requests {
            for e in *events {
                position.append_value(*pos as i64);
                event_id
                    .append_value(e.event_id.as_bytes())
                    .map_err(|e| ProjectionError::Arrow(e.to_string()))?;
                ts.append_value(e.ts);
                received.append_value(*recv);
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(position.finish()),
            Arc::new(event_id.finish()),
            Arc::new(ts.finish()),
            Arc::new(received.finish()),
            Arc::new(Int32Array::from_iter_values(labels.iter().copied())),
        ];
        let mut schema_fields = vec![
            Field::new("position", DataType::Int64, false),
            // Arrow's UUID extension type: 16 bytes, appended as DuckDB UUID without parsing.
            Field::new("event_id", DataType::FixedSizeBinary(16), false).with_metadata(
                HashMap::from([("ARROW:extension:name".into(), "arrow.uuid".into())]),
            ),
            Field::new("ts_ms", DataType::Int64, false),
            Field::new("received_ms", DataType::Int64, false),
            Field::new("label_id", DataType::Int32, false),
        ];
        for ((name, kind), values) in tables.columns.iter().zip(&per_column) {
            columns.push(field_array(*kind, n, values));
            schema_fields.push(Field::new(name, kind.arrow_type(), true));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns)
            .map_err(|e| ProjectionError::Arrow(e.to_string()))?;
        // The rollup is folded on a thread of its own while DuckDB appends the rows: the
        // projector's thread is what limits the projection lag.
        let columns = &tables.columns;
        let rollup = std::thread::scope(|s| {
            let fold = s.spawn(|| rollup(&self.requests, &labels, columns, &per_column));
            let appended = conn
                .appender("telemetry_rows")
                .and_then(|mut app| app.append_record_batch(batch).and_then(|_| app.flush()));
            let rollup = fold.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            appended.map(|_| rollup)
        })?;
        rollup.write(conn)
    }
}

/// The batch's rows folded into the hourly rollups.
fn rollup(
    requests: &[(Position, i64, &str, &str, &[TelemetryRecord])],
    labels: &[i32],
    columns: &[(String, Kind)],
    per_column: &[Vec<(usize, &FieldValue)>],
) -> Rollup {
    let mut rollup = Rollup::default();
    let mut ts = Vec::with_capacity(labels.len());
    for e in requests.iter().flat_map(|r| r.4) {
        rollup.event(labels[ts.len()], e.ts);
        ts.push(e.ts);
    }
    for ((name, kind), cells) in columns.iter().zip(per_column) {
        match (kind, name.as_str()) {
            (Kind::Number, _) => {
                let field = rollup.field(&name[2..]);
                for (row, value) in cells {
                    if let FieldValue::Number(v) = value {
                        rollup.value(labels[*row], ts[*row], field, *v);
                    }
                }
            }
            (Kind::Bool, "b_is_drowsy") => {
                for (row, value) in cells {
                    if let FieldValue::Bool(d) = value {
                        rollup.drowsy(labels[*row], ts[*row], *d);
                    }
                }
            }
            _ => {}
        }
    }
    rollup
}

/// A nullable column of `n` rows with `values` at their rows.
fn field_array(kind: Kind, n: usize, values: &[(usize, &FieldValue)]) -> ArrayRef {
    let mut it = values.iter().peekable();
    let mut next = |row: usize| it.next_if(|(r, _)| *r == row).map(|(_, v)| *v);
    match kind {
        Kind::Number => {
            let mut b = Float64Builder::with_capacity(n);
            for row in 0..n {
                match next(row) {
                    Some(FieldValue::Number(x)) => b.append_value(*x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        Kind::Bool => {
            let mut b = BooleanBuilder::with_capacity(n);
            for row in 0..n {
                match next(row) {
                    Some(FieldValue::Bool(x)) => b.append_value(*x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        Kind::Text => {
            let mut b = StringBuilder::new();
            for row in 0..n {
                match next(row) {
                    Some(FieldValue::Text(x)) => b.append_value(x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}
