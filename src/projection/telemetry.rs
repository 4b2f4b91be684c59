//! Telemetry rows: each `TelemetryIngested` event expands into one row per device event,
//! appended columnar. Typed fields are columns named by type (`n_`, `b_`, `s_` + field name);
//! a field seen for the first time adds its column in the same transaction.

use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use duckdb::arrow::datatypes::{DataType, Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::Connection;

use super::ProjectionError;
use crate::events::{FieldValue, TelemetryRecord};
use crate::log::Position;

/// Columns every row has, in table order, before the typed field columns.
const FIXED: usize = 10;

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

/// The field columns the table has, in table order.
#[derive(Default)]
pub struct FieldColumns {
    columns: Vec<(String, Kind)>,
    index: HashMap<String, usize>,
}

impl FieldColumns {
    /// Read the field columns of the `telemetry` table.
    pub fn load(conn: &Connection) -> Result<FieldColumns, ProjectionError> {
        let mut stmt = conn.prepare(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'telemetry' \
             AND schema_name = 'main' ORDER BY column_index",
        )?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut cols = FieldColumns::default();
        for name in names.into_iter().skip(FIXED) {
            let kind = match &name[..2] {
                "n_" => Kind::Number,
                "b_" => Kind::Bool,
                _ => Kind::Text,
            };
            cols.index.insert(name.clone(), cols.columns.len());
            cols.columns.push((name, kind));
        }
        Ok(cols)
    }

    /// The column of a field, added to the table when new.
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
            "ALTER TABLE telemetry ADD COLUMN IF NOT EXISTS {scratch} {}",
            kind.sql_type()
        ))?;
        let i = self.columns.len();
        self.index.insert(scratch.clone(), i);
        self.columns.push((scratch.clone(), kind));
        Ok(i)
    }
}

/// Rows of one projector batch, gathered before a single columnar append.
#[derive(Default)]
pub struct TelemetryRows<'a> {
    /// (position, received ms, tenant, device, event)
    rows: Vec<(Position, i64, &'a str, &'a str, &'a TelemetryRecord)>,
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
        self.rows.extend(
            events
                .iter()
                .map(|e| (position, received_ms, tenant, device, e)),
        );
    }

    pub fn flush(
        self,
        conn: &Connection,
        fields: &mut FieldColumns,
    ) -> Result<(), ProjectionError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.rows.len();
        // Which field column each (row, field) goes to; new columns are added first, since
        // the appender needs the batch to match the table.
        let mut scratch = String::new();
        let mut cells: Vec<(usize, &FieldValue)> = Vec::new();
        let mut row_ends = Vec::with_capacity(n);
        for (_, _, _, _, e) in &self.rows {
            for (name, value) in &e.fields {
                let col = fields.column(conn, name, Kind::of(value), &mut scratch)?;
                cells.push((col, value));
            }
            row_ends.push(cells.len());
        }
        let mut position = Int64Builder::with_capacity(n);
        let mut tenant = StringBuilder::new();
        let mut event_id = StringBuilder::with_capacity(n, n * 36);
        let mut id_buf = uuid::Uuid::encode_buffer();
        let mut device = StringBuilder::new();
        let mut ts = Int64Builder::with_capacity(n);
        let mut received = Int64Builder::with_capacity(n);
        let mut kind = StringBuilder::new();
        let mut model_name = StringBuilder::new();
        let mut model_version = StringBuilder::new();
        let mut severity = StringBuilder::new();
        for (pos, recv, ten, dev, e) in &self.rows {
            position.append_value(*pos as i64);
            tenant.append_value(ten);
            event_id.append_value(e.event_id.hyphenated().encode_lower(&mut id_buf));
            device.append_value(dev);
            ts.append_value(e.ts);
            received.append_value(*recv);
            kind.append_value(&e.kind);
            model_name.append_option(e.model_name.as_deref());
            model_version.append_option(e.model_version.as_deref());
            severity.append_value(e.severity.as_str());
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(position.finish()),
            Arc::new(tenant.finish()),
            Arc::new(event_id.finish()),
            Arc::new(device.finish()),
            Arc::new(ts.finish()),
            Arc::new(received.finish()),
            Arc::new(kind.finish()),
            Arc::new(model_name.finish()),
            Arc::new(model_version.finish()),
            Arc::new(severity.finish()),
        ];
        let mut schema_fields = vec![
            Field::new("position", DataType::Int64, false),
            Field::new("tenant_id", DataType::Utf8, false),
            Field::new("event_id", DataType::Utf8, false),
            Field::new("device_id", DataType::Utf8, false),
            Field::new("ts_ms", DataType::Int64, false),
            Field::new("received_ms", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("model_name", DataType::Utf8, true),
            Field::new("model_version", DataType::Utf8, true),
            Field::new("severity", DataType::Utf8, false),
        ];
        // One pass per field column; rows without the field get NULL.
        let mut per_column: Vec<Vec<(usize, &FieldValue)>> = vec![Vec::new(); fields.columns.len()];
        let mut start = 0;
        for (row, end) in row_ends.iter().enumerate() {
            for (col, value) in &cells[start..*end] {
                per_column[*col].push((row, *value));
            }
            start = *end;
        }
        for ((name, kind), values) in fields.columns.iter().zip(per_column) {
            columns.push(field_array(*kind, n, &values));
            schema_fields.push(Field::new(name, kind.arrow_type(), true));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns)
            .map_err(|e| ProjectionError::Arrow(e.to_string()))?;
        let mut app = conn.appender("telemetry")?;
        app.append_record_batch(batch)?;
        app.flush()?;
        Ok(())
    }
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
