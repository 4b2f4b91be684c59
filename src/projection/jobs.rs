//! Optimization events into DuckDB: models, datasets, registered versions as rows; each job as
//! its folded [`JobView`] (read, folded with the event, written back).

use duckdb::{params, Connection, OptionalExt};

use super::ProjectionError;
use crate::domain::job::JobView;
use crate::events::Event;
use crate::log::Position;

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Apply one optimization event; other events are ignored.
pub fn apply(
    tx: &Connection,
    event: &Event,
    time: i64,
    position: Position,
) -> Result<(), ProjectionError> {
    match event {
        Event::ModelUploaded {
            model_id,
            name,
            sha256,
            size_bytes,
            summary,
            tenant,
        } => {
            tx.prepare_cached("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?)")?
                .execute(params![
                    model_id,
                    tenant,
                    name,
                    sha256,
                    *size_bytes as i64,
                    json(summary),
                    time
                ])?;
        }
        Event::DatasetRegistered(d) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                d.dataset_id,
                d.tenant,
                d.name,
                d.source,
                d.inputs_sha256,
                d.labels_sha256,
                json(&d.preprocess),
                d.samples as i64,
                json(&d.sample_shape),
                time
            ])?;
        }
        Event::ModelVersionRegistered {
            name,
            version,
            job_id,
            technique,
            source_model_id,
            sha256,
            size_bytes,
            run_id,
            artifact_path,
            tenant,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                tenant,
                name,
                *version as i64,
                job_id,
                technique,
                source_model_id,
                sha256,
                *size_bytes as i64,
                run_id,
                artifact_path,
                time
            ])?;
        }
        Event::JobQueued {
            job_id,
            spec,
            parent_run_id,
            tenant,
        } => write_job(
            tx,
            &JobView::new(job_id, spec, parent_run_id, tenant, time),
            position,
        )?,
        other => {
            let Some(job_id) = other.job_id() else {
                return Ok(());
            };
            let doc: Option<String> = tx
                .prepare_cached("SELECT doc_json FROM jobs WHERE job_id = ?")?
                .query_row(params![job_id], |r| r.get(0))
                .optional()?;
            let Some(mut view) = doc.and_then(|d| serde_json::from_str::<JobView>(&d).ok()) else {
                return Ok(());
            };
            view.apply(other, time);
            write_job(tx, &view, position)?;
        }
    }
    Ok(())
}

fn write_job(tx: &Connection, view: &JobView, position: Position) -> Result<(), ProjectionError> {
    tx.prepare_cached("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")?
        .execute(params![
            view.job_id,
            view.tenant,
            view.name,
            view.status.as_str(),
            view.spec.model_id,
            view.created_ms,
            view.updated_ms,
            json(view),
            position as i64
        ])?;
    Ok(())
}
