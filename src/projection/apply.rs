//! Applying a batch of recorded events to DuckDB in one transaction.

use std::collections::HashSet;

use std::sync::Arc;

use parking_lot::RwLock;

use duckdb::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array};
use duckdb::arrow::datatypes::{DataType, Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{params, Connection};

use super::runs::RunChanges;
use super::series::{Latest, SeriesMap, Slot};
use super::telemetry::{TelemetryRows, TelemetryTables};
use super::tracking::{Touched, TrackingVersions};
use super::ProjectionError;
use crate::events::{decode, Event, MetricPoint};
use crate::ledger::Handoff;
use crate::log::{Position, RecordedEvent};

/// Applies batches; owns the checkpoint and the (run, key) → series map, which queries
/// share (see [`Applier::series`]).
pub struct Applier {
    conn: Connection,
    checkpoint: Position,
    series: Arc<RwLock<SeriesMap>>,
    versions: Arc<RwLock<TrackingVersions>>,
    telemetry_tables: TelemetryTables,
    handoff: Arc<Handoff>,
}

impl Applier {
    pub fn new(conn: Connection, handoff: Arc<Handoff>) -> Result<Applier, ProjectionError> {
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS latest_stage AS SELECT * FROM latest_metrics LIMIT 0;",
        )?;
        conn.execute_batch(super::runs::STAGING_DDL)?;
        let mut applier = Applier {
            conn,
            checkpoint: 0,
            series: Arc::default(),
            versions: Arc::default(),
            telemetry_tables: TelemetryTables::default(),
            handoff,
        };
        applier.load()?;
        Ok(applier)
    }

    /// (Re)load the checkpoint and series map from the database, e.g. after a failed batch.
    fn load(&mut self) -> Result<(), ProjectionError> {
        self.checkpoint = self
            .conn
            .query_row(
                "SELECT coalesce(max(position), 0) FROM projection_checkpoint",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|p| p as Position)?;
        let mut series = SeriesMap::default();
        let mut stmt = self
            .conn
            .prepare("SELECT series_id, run_id, key, value, timestamp, step FROM latest_metrics")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let latest = Latest {
                value: r.get(3)?,
                timestamp: r.get(4)?,
                step: r.get(5)?,
            };
            let (run, key): (String, String) = (r.get(1)?, r.get(2)?);
            series.insert(r.get(0)?, &run, &key, latest);
        }
        *self.series.write() = series;
        let runs = self
            .conn
            .prepare("SELECT run_id, experiment_id FROM runs")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        *self.versions.write() = TrackingVersions::new(self.checkpoint, runs);
        self.telemetry_tables = TelemetryTables::load(&self.conn)?;
        Ok(())
    }

    /// The series map, for queries that need a series id without scanning `latest_metrics`.
    pub fn series(&self) -> Arc<RwLock<SeriesMap>> {
        self.series.clone()
    }

    /// Experiments' versions, for caching reads over them.
    pub fn versions(&self) -> Arc<RwLock<TrackingVersions>> {
        self.versions.clone()
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn checkpoint(&self) -> Position {
        self.checkpoint
    }

    /// Apply `batch` (consecutive events starting at the checkpoint) in one transaction.
    pub fn apply_batch(&mut self, batch: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let next = last.position + 1;
        match self.try_apply(batch, next) {
            Ok(touched) => {
                self.checkpoint = next;
                // After the commit and before readers are told: a reader that waited for
                // this batch must not find a cached read from before it.
                self.versions.write().mark(touched, next);
                Ok(())
            }
            Err(e) => {
                // The transaction rolled back; the in-memory series map may be ahead of it.
                self.load()?;
                Err(e)
            }
        }
    }

    /// What the batch changed, once committed.
    fn try_apply(
        &mut self,
        batch: &[RecordedEvent],
        next: Position,
    ) -> Result<Touched, ProjectionError> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        match self.write_batch(batch, next) {
            Ok(touched) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(touched)
            }
            Err(e) => {
                if let Err(rollback) = self.conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %rollback, "projection rollback failed");
                }
                Err(e)
            }
        }
    }

    fn write_batch(
        &mut self,
        batch: &[RecordedEvent],
        next: Position,
    ) -> Result<Touched, ProjectionError> {
        let mut history: Vec<(i64, &MetricPoint)> = Vec::new();
        let mut changed: HashSet<Slot> = HashSet::new();
        let decoded: Vec<(Arc<Event>, i64, Position)> = batch
            .iter()
            .map(|r| {
                let event = match self.handoff.take(r.position) {
                    Some(e) => e,
                    None => Arc::new(decode(r)?),
                };
                Ok::<_, ProjectionError>((event, r.time_ms, r.position))
            })
            .collect::<Result<_, _>>()?;
        let touched = self.versions.read().touched(decoded.iter().map(|d| &*d.0));
        let mut runs = RunChanges::default();
        let mut telemetry = TelemetryRows::default();
        for (event, time, position) in &decoded {
            if let Event::TelemetryIngested {
                device_id,
                events,
                tenant,
            } = &**event
            {
                telemetry.add(*position, *time, tenant, device_id, events);
            } else if let Event::MetricsLogged { run_id, metrics } = &**event {
                let mut series = self.series.write();
                for m in metrics {
                    let (id, slot) = series.track(run_id, m);
                    changed.extend(slot);
                    history.push((id, m));
                }
            } else if !runs.add(event) {
                // An experiment's deletion or restoration cascades to its runs: write the run
                // changes folded so far first, to keep the log's order.
                if matches!(
                    **event,
                    Event::ExperimentDeleted { .. } | Event::ExperimentRestored { .. }
                ) {
                    runs.flush(&self.conn)?;
                }
                apply_one(&self.conn, event, *time, *position)?;
            }
        }
        runs.flush(&self.conn)?;
        telemetry.flush(&self.conn, &mut self.telemetry_tables)?;
        let tx = &self.conn;
        if !history.is_empty() {
            // Columnar append: the row-by-row Appender allocates per value, and metric
            // history is the bulk of what the projector writes.
            let mut app = tx.appender("metric_history")?;
            app.append_record_batch(history_batch(&history)?)?;
            app.flush()?;
        }
        if !changed.is_empty() {
            {
                let mut app = tx.appender("latest_stage")?;
                let series = self.series.read();
                for &slot in &changed {
                    let r = series.row(slot);
                    let l = r.latest;
                    app.append_row(params![
                        r.id,
                        r.run_id,
                        r.key,
                        l.value,
                        l.value.is_nan(),
                        l.timestamp,
                        l.step
                    ])?;
                }
                app.flush()?;
            }
            tx.execute_batch(
                "INSERT OR REPLACE INTO latest_metrics SELECT * FROM latest_stage; DELETE FROM latest_stage;",
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO projection_checkpoint VALUES (1, ?)",
            params![next as i64],
        )?;
        Ok(touched)
    }
}

/// Metric history rows as an Arrow batch, columns in `metric_history`'s order.
fn history_batch(rows: &[(i64, &MetricPoint)]) -> Result<RecordBatch, ProjectionError> {
    let values: Vec<f64> = rows.iter().map(|(_, m)| m.value_f64()).collect();
    let is_nan = BooleanArray::from_iter(values.iter().map(|v| Some(v.is_nan())));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(id, _)| *id))),
        Arc::new(Float64Array::from(values)),
        Arc::new(is_nan),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, m)| m.timestamp),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|(_, m)| m.step),
        )),
    ];
    let schema = Schema::new(vec![
        Field::new("series_id", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("is_nan", DataType::Boolean, false),
        Field::new("timestamp", DataType::Int64, false),
        Field::new("step", DataType::Int64, false),
    ]);
    RecordBatch::try_new(Arc::new(schema), columns)
        .map_err(|e| ProjectionError::Arrow(e.to_string()))
}

/// Apply one non-metric event with plain statements.
fn apply_one(
    tx: &Connection,
    event: &Event,
    time: i64,
    position: Position,
) -> Result<(), ProjectionError> {
    match event {
        Event::ExperimentCreated {
            experiment_id,
            name,
            artifact_location,
            tags,
            tenant,
        } => {
            tx.prepare_cached("INSERT INTO experiments VALUES (?, ?, ?, ?, 'active', ?, ?)")?
                .execute(params![
                    experiment_id,
                    tenant,
                    name,
                    artifact_location,
                    time,
                    time
                ])?;
            for t in tags {
                set_experiment_tag(tx, *experiment_id, &t.key, &t.value)?;
            }
        }
        Event::ExperimentRenamed {
            experiment_id,
            new_name,
        } => {
            tx.prepare_cached(
                "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
            )?
            .execute(params![new_name, time, experiment_id])?;
        }
        Event::ExperimentDeleted { experiment_id } => {
            set_experiment_lifecycle(tx, *experiment_id, "deleted", time)?
        }
        Event::ExperimentRestored { experiment_id } => {
            set_experiment_lifecycle(tx, *experiment_id, "active", time)?
        }
        Event::ExperimentTagSet {
            experiment_id,
            key,
            value,
        } => set_experiment_tag(tx, *experiment_id, key, value)?,
        Event::ExperimentTagDeleted { experiment_id, key } => {
            tx.prepare_cached("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?")?
                .execute(params![experiment_id, key])?;
        }
        Event::DatasetInputsLogged { run_id, inputs } => {
            let mut stmt =
                tx.prepare_cached("INSERT INTO run_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")?;
            for i in inputs {
                let (name, digest, context) = crate::domain::dataset_key(i);
                let d = &i.dataset;
                let tags = serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into());
                stmt.execute(params![
                    run_id,
                    name,
                    digest,
                    context,
                    d.source_type,
                    d.source,
                    d.schema,
                    d.profile,
                    tags,
                    position as i64
                ])?;
            }
        }
        Event::ArtifactStored {
            run_id,
            path,
            size,
            crc32c,
        } => {
            tx.prepare_cached("INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?)")?
                .execute(params![path, run_id, *size as i64, *crc32c as i64, time])?;
        }
        Event::ArtifactDeleted { path, .. } => {
            tx.prepare_cached(
                "DELETE FROM artifacts WHERE path = ? OR starts_with(path, ? || '/')",
            )?
            .execute(params![path, path])?;
        }
        Event::DeviceRegistered {
            device_id,
            name,
            tags,
            model_name,
            model_version,
            run_id,
            tenant,
            ..
        } => {
            let tags = serde_json::to_string(tags).unwrap_or_else(|_| "[]".into());
            tx.prepare_cached(
                "INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
            )?
            .execute(params![
                device_id,
                tenant,
                name,
                tags,
                model_name,
                model_version,
                run_id,
                time,
                time
            ])?;
        }
        Event::DeviceKeyRotated { device_id, .. } => set_key_state(tx, device_id, "active", time)?,
        Event::DeviceKeyRevoked { device_id } => set_key_state(tx, device_id, "revoked", time)?,
        // Metrics, run changes and telemetry are written set-based by the caller.
        other => super::jobs::apply(tx, other, time, position)?,
    }
    Ok(())
}

fn set_experiment_lifecycle(
    tx: &Connection,
    id: i64,
    stage: &str,
    time: i64,
) -> Result<(), ProjectionError> {
    tx.prepare_cached(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
    )?
    .execute(params![stage, time, id])?;
    // Deleting an experiment deletes its runs; restoring it restores them (MLflow semantics).
    tx.prepare_cached("UPDATE runs SET lifecycle_stage = ? WHERE experiment_id = ?")?
        .execute(params![stage, id])?;
    Ok(())
}

fn set_key_state(
    tx: &Connection,
    device_id: &str,
    state: &str,
    time: i64,
) -> Result<(), ProjectionError> {
    tx.prepare_cached("UPDATE devices SET key_state = ?, key_changed_ms = ? WHERE device_id = ?")?
        .execute(params![state, time, device_id])?;
    Ok(())
}

fn set_experiment_tag(
    tx: &Connection,
    id: i64,
    key: &str,
    value: &str,
) -> Result<(), ProjectionError> {
    tx.prepare_cached("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)")?
        .execute(params![id, key, value])?;
    Ok(())
}
