//! Run changes of one batch, folded in memory and written set-based: one appender per table
//! and one merge statement, instead of a statement per event (DuckDB's per-statement cost is
//! far above its per-row cost).

use std::collections::HashMap;

use duckdb::{params, Connection};

use super::ProjectionError;
use crate::domain::RUN_NAME_TAG;
use crate::events::{Event, KeyValue};

/// Temp tables the flush stages rows in (per connection, created once).
pub const STAGING_DDL: &str = "
CREATE TEMP TABLE IF NOT EXISTS run_patch (run_id VARCHAR, status VARCHAR, end_time BIGINT,
    run_name VARCHAR, lifecycle_stage VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS tag_stage (run_id VARCHAR, key VARCHAR, value VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS param_stage (run_id VARCHAR, key VARCHAR, value VARCHAR);
";

/// A run created in this batch, with everything later in the batch folded in.
struct NewRun {
    run_id: String,
    experiment_id: i64,
    run_name: String,
    user_id: String,
    status: String,
    start_time: i64,
    end_time: Option<i64>,
    artifact_uri: String,
    lifecycle: &'static str,
}

/// Changes to a run that existed before this batch; `None` leaves a column as it is.
#[derive(Default)]
struct Patch {
    status: Option<String>,
    end_time: Option<i64>,
    run_name: Option<String>,
    lifecycle: Option<&'static str>,
}

#[derive(Default)]
pub struct RunChanges {
    created: Vec<NewRun>,
    created_index: HashMap<String, usize>,
    patches: HashMap<String, Patch>,
    /// Net effect per (run, key): `Some(value)` upserts, `None` deletes.
    tags: HashMap<(String, String), Option<String>>,
    params: Vec<(String, String, String)>,
}

impl RunChanges {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.patches.is_empty()
            && self.tags.is_empty()
            && self.params.is_empty()
    }

    /// Fold a run event in; returns false for events this accumulator does not handle.
    pub fn add(&mut self, event: &Event) -> bool {
        match event {
            Event::RunCreated {
                run_id,
                experiment_id,
                run_name,
                user_id,
                start_time,
                artifact_uri,
                tags,
            } => {
                self.created_index
                    .insert(run_id.clone(), self.created.len());
                self.created.push(NewRun {
                    run_id: run_id.clone(),
                    experiment_id: *experiment_id,
                    run_name: run_name.clone(),
                    user_id: user_id.clone(),
                    status: "RUNNING".into(),
                    start_time: *start_time,
                    end_time: None,
                    artifact_uri: artifact_uri.clone(),
                    lifecycle: "active",
                });
                self.set_tags(run_id, tags);
            }
            Event::RunUpdated {
                run_id,
                status,
                end_time,
                run_name,
            } => {
                self.modify(
                    run_id,
                    |r| {
                        if let Some(s) = status {
                            r.status = s.clone();
                        }
                        if end_time.is_some() {
                            r.end_time = *end_time;
                        }
                        if let Some(n) = run_name {
                            r.run_name = n.clone();
                        }
                    },
                    |p| {
                        if status.is_some() {
                            p.status = status.clone();
                        }
                        if end_time.is_some() {
                            p.end_time = *end_time;
                        }
                        if run_name.is_some() {
                            p.run_name = run_name.clone();
                        }
                    },
                );
                if let Some(name) = run_name {
                    self.tags
                        .insert((run_id.clone(), RUN_NAME_TAG.into()), Some(name.clone()));
                }
            }
            Event::RunDeleted { run_id } => self.lifecycle(run_id, "deleted"),
            Event::RunRestored { run_id } => self.lifecycle(run_id, "active"),
            Event::ParamsLogged { run_id, params } => {
                for p in params {
                    self.params
                        .push((run_id.clone(), p.key.clone(), p.value.clone()));
                }
            }
            Event::RunTagsSet { run_id, tags } => self.set_tags(run_id, tags),
            Event::RunTagDeleted { run_id, key } => {
                self.tags.insert((run_id.clone(), key.clone()), None);
            }
            _ => return false,
        }
        true
    }

    fn modify(
        &mut self,
        run_id: &str,
        new: impl FnOnce(&mut NewRun),
        old: impl FnOnce(&mut Patch),
    ) {
        match self.created_index.get(run_id) {
            Some(&i) => new(&mut self.created[i]),
            None => old(self.patches.entry(run_id.to_string()).or_default()),
        }
    }

    fn lifecycle(&mut self, run_id: &str, stage: &'static str) {
        self.modify(
            run_id,
            |r| r.lifecycle = stage,
            |p| p.lifecycle = Some(stage),
        );
    }

    fn set_tags(&mut self, run_id: &str, tags: &[KeyValue]) {
        for t in tags {
            if t.key == RUN_NAME_TAG {
                let name = t.value.clone();
                self.modify(
                    run_id,
                    |r| r.run_name = name.clone(),
                    |p| p.run_name = Some(name.clone()),
                );
            }
            self.tags
                .insert((run_id.to_string(), t.key.clone()), Some(t.value.clone()));
        }
    }

    /// Write everything folded so far and start over.
    pub fn flush(&mut self, conn: &Connection) -> Result<(), ProjectionError> {
        if self.is_empty() {
            return Ok(());
        }
        if !self.created.is_empty() {
            let mut app = conn.appender("runs")?;
            for r in &self.created {
                app.append_row(params![
                    r.run_id,
                    r.experiment_id,
                    r.run_name,
                    r.user_id,
                    r.status,
                    r.start_time,
                    r.end_time,
                    r.artifact_uri,
                    r.lifecycle
                ])?;
            }
            app.flush()?;
        }
        if !self.patches.is_empty() {
            {
                let mut app = conn.appender("run_patch")?;
                for (id, p) in &self.patches {
                    app.append_row(params![id, p.status, p.end_time, p.run_name, p.lifecycle])?;
                }
                app.flush()?;
            }
            conn.execute_batch(
                "UPDATE runs SET status = coalesce(p.status, runs.status), \
                 end_time = coalesce(p.end_time, runs.end_time), \
                 run_name = coalesce(p.run_name, runs.run_name), \
                 lifecycle_stage = coalesce(p.lifecycle_stage, runs.lifecycle_stage) \
                 FROM run_patch p WHERE runs.run_id = p.run_id; DELETE FROM run_patch;",
            )?;
        }
        if !self.tags.is_empty() {
            {
                let mut app = conn.appender("tag_stage")?;
                for ((run, key), value) in &self.tags {
                    app.append_row(params![run, key, value])?;
                }
                app.flush()?;
            }
            conn.execute_batch(
                "DELETE FROM run_tags USING tag_stage s WHERE run_tags.run_id = s.run_id \
                 AND run_tags.key = s.key AND s.value IS NULL; \
                 INSERT OR REPLACE INTO run_tags SELECT run_id, key, value FROM tag_stage \
                 WHERE value IS NOT NULL; DELETE FROM tag_stage;",
            )?;
        }
        if !self.params.is_empty() {
            {
                let mut app = conn.appender("param_stage")?;
                for (run, key, value) in &self.params {
                    app.append_row(params![run, key, value])?;
                }
                app.flush()?;
            }
            // Params are immutable: the first value logged wins (the domain refuses changes).
            conn.execute_batch(
                "INSERT OR IGNORE INTO run_params SELECT DISTINCT ON (run_id, key) run_id, key, value \
                 FROM param_stage; DELETE FROM param_stage;",
            )?;
        }
        *self = RunChanges::default();
        Ok(())
    }
}
