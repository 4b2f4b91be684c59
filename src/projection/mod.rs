//! The projector tails the log from its checkpoint and applies events to DuckDB in batches.
//! The checkpoint is written in the same transaction as the rows, so a crash never applies
//! an event twice or skips one. Readers wait on [`Projection::wait_for`] for read-your-writes.

mod apply;
mod jobs;
mod rollup;
mod runs;
pub mod schema;
mod series;
mod telemetry;
mod tracking;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use duckdb::Connection;
use tokio::sync::watch;

use crate::log::{Position, SharedLog};

pub use apply::Applier;

use crate::ledger::Handoff;

/// Events applied per DuckDB transaction at most.
const BATCH: usize = 20_000;
/// How long the projector waits after a wake-up to batch further commits (cut short as soon
/// as a reader waits for it).
const COALESCE: Duration = Duration::from_millis(25);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("DuckDB error: {0}")]
    Db(#[from] duckdb::Error),
    #[error("Arrow batch error: {0}")]
    Arrow(String),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error(transparent)]
    Decode(#[from] crate::events::DecodeError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("projection did not reach position {wanted} within {timeout:?} (at {reached})")]
    Timeout {
        wanted: Position,
        reached: Position,
        timeout: Duration,
    },
}

/// Handle to the running projector: its database and the position it has applied up to.
pub struct Projection {
    /// Kept only to clone query connections from (a `Connection` is not `Sync`).
    db: parking_lot::Mutex<Connection>,
    /// Next position to apply (= number of events applied).
    applied: watch::Receiver<Position>,
    stop: watch::Sender<bool>,
    /// Wakes the projector out of its coalescing wait when a reader needs it.
    urgent: Arc<tokio::sync::Notify>,
    /// The projector and the checkpointer.
    threads: parking_lot::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The projector's (run, key) → series map.
    series: Arc<parking_lot::RwLock<series::SeriesMap>>,
    /// Experiments' versions, moved by the projector after each commit.
    versions: Arc<parking_lot::RwLock<tracking::TrackingVersions>>,
}

impl Projection {
    /// Open (or create) the DuckDB file, then start projecting from its checkpoint.
    pub fn start(
        db_path: &Path,
        log: SharedLog,
        handoff: Arc<Handoff>,
    ) -> Result<Arc<Projection>, ProjectionError> {
        let mut db = schema::open(db_path)?;
        let mut applier = Applier::new(db.try_clone()?, handoff.clone())?;
        if applier.checkpoint() > log.head() {
            // The log lost its tail (a torn write truncated on open, or an older copy was
            // restored): the projection shows events that no longer exist. Rebuild it.
            tracing::warn!(
                checkpoint = applier.checkpoint(),
                log_head = log.head(),
                "projection is ahead of the log; rebuilding it from the log"
            );
            drop(applier);
            drop(db);
            schema::remove(db_path)?;
            db = schema::open(db_path)?;
            applier = Applier::new(db.try_clone()?, handoff)?;
        }
        let series = applier.series();
        let versions = applier.versions();
        let (applied_tx, applied) = watch::channel(applier.checkpoint());
        let (stop, mut stop_rx) = watch::channel(false);
        let runtime = tokio::runtime::Handle::current();
        // Held by the projector while it applies a batch and by the checkpointer while it
        // checkpoints: DuckDB refuses a CHECKPOINT while another write transaction is open,
        // and under steady ingest the projector nearly always had one, so the WAL grew to its
        // threshold and the checkpoint ran inside a projector commit, a stall that grew with
        // the data. Measured on 10 M-event ingests in alternation: lag p99 median 1.9 s
        // without the gate (4 runs), 1.4 s with it (5 runs); both spread widely (1.0-4.5 s).
        let gate = Arc::new(parking_lot::Mutex::new(()));
        let checkpointer = spawn_checkpointer(
            db.try_clone()?,
            gate.clone(),
            stop.subscribe(),
            runtime.clone(),
            db_path,
        )?;
        let urgent = Arc::new(tokio::sync::Notify::new());
        let wake = urgent.clone();
        let thread = std::thread::Builder::new()
            .name("projector".into())
            .spawn(move || {
                let mut head = log.watch_head();
                // Wait up to `d` unless a reader needs the projection now.
                let pause = |d: Duration| {
                    runtime.block_on(async {
                        let _ = tokio::time::timeout(d, urgent.notified()).await;
                    })
                };
                loop {
                    let from = applier.checkpoint();
                    let started = std::time::Instant::now();
                    let batch = runtime.block_on(log.read_all(from, BATCH));
                    match batch.map_err(ProjectionError::from).and_then(|b| {
                        let n = b.len();
                        let _writing = gate.lock();
                        applier.apply_batch(&b).map(|_| n)
                    }) {
                        Ok(0) => {
                            // Caught up: sleep until the head moves or we are told to stop.
                            let stopped = runtime.block_on(async {
                                tokio::select! {
                                    r = head.wait_for(|h| *h > from) => r.is_err(),
                                    _ = stop_rx.wait_for(|s| *s) => true,
                                }
                            });
                            if stopped {
                                break;
                            }
                            // Let more commits arrive unless a reader is waiting: each DuckDB
                            // transaction costs a WAL sync and fixed overhead, so fewer, larger
                            // batches keep the projector's CPU share small under write load.
                            pause(COALESCE);
                        }
                        Ok(_) => {
                            applied_tx.send_replace(applier.checkpoint());
                            // More commits arrived while this batch was applied. Start the next
                            // transaction no sooner than COALESCE after this one: applied at
                            // once, in ever smaller transactions, single-metric writes cost the
                            // projector more CPU than the requests themselves. A big batch
                            // (telemetry) takes longer than that and goes on at once.
                            let rest = COALESCE.saturating_sub(started.elapsed());
                            if !rest.is_zero() {
                                pause(rest);
                            }
                        }
                        Err(e) => {
                            // A projection failure is a bug or a disk problem; retrying the
                            // same batch is safe because nothing of it was committed.
                            tracing::error!(error = %e, position = from, "projection batch failed");
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                    if *stop_rx.borrow() {
                        break;
                    }
                }
            })
            .map_err(|source| ProjectionError::Io {
                path: db_path.to_path_buf(),
                source,
            })?;
        Ok(Arc::new(Projection {
            db: parking_lot::Mutex::new(db),
            applied,
            stop,
            urgent: wake,
            threads: parking_lot::Mutex::new(vec![thread, checkpointer]),
            series,
            versions,
        }))
    }

    /// Position up to which events are applied (exclusive).
    pub fn position(&self) -> Position {
        *self.applied.borrow()
    }

    /// Wait until every event before `position` (exclusive) is applied.
    pub async fn wait_for(
        &self,
        position: Position,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        if self.position() >= position {
            return Ok(());
        }
        self.urgent.notify_one();
        let mut rx = self.applied.clone();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok());
        if reached {
            Ok(())
        } else {
            Err(ProjectionError::Timeout {
                wanted: position,
                reached: self.position(),
                timeout,
            })
        }
    }

    /// The id of a run's metric series, from the projector's memory: looking it up in
    /// `latest_metrics` by (run_id, key) is a scan of every series (5.9 ms at a million).
    /// A series applied is in the map; one in a batch not yet committed may be too, and
    /// reads no rows.
    pub fn series_id(&self, run_id: &str, key: &str) -> Option<i64> {
        self.series.read().id(run_id, key)
    }

    /// The version of tracking data in `experiments`: a read over them cached at one version
    /// is current while it stays the same.
    pub fn tracking_version(&self, experiments: &[i64]) -> Position {
        self.versions.read().version(experiments)
    }

    /// A new connection to the projection database for queries.
    pub fn connection(&self) -> Result<Connection, ProjectionError> {
        Ok(self.db.lock().try_clone()?)
    }

    /// Stop after the batch in progress; the checkpoint makes it safe to resume later.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

/// How often the projection's WAL is folded into the database file. The projector waits while
/// a checkpoint runs, and a checkpoint's time grows with the rows since the last one: under
/// 10 M-event ingests, 2 s between them made 0.45-1.1 s stalls and lag p99 1.25-1.97 s, 500 ms
/// gave lag p99 0.51-0.81 s in five runs, and 250 ms was worse again (1.4-2.3 s), its fixed
/// cost per checkpoint taking over (BENCHMARKS, sixteenth run).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints from a connection of their own, between the projector's batches (`gate`): an
/// automatic checkpoint runs inside the commit that crosses the WAL threshold, and by then it
/// has a whole threshold of rows to write. Checkpointing often keeps each one to the rows of
/// the moment before. The WAL threshold in `schema.rs` stays as a backstop. Telemetry rollups
/// are compacted here too, outside the gate, concurrently with the projector (see `rollup.rs`).
fn spawn_checkpointer(
    conn: Connection,
    gate: Arc<parking_lot::Mutex<()>>,
    mut stop: watch::Receiver<bool>,
    runtime: tokio::runtime::Handle,
    db_path: &Path,
) -> Result<std::thread::JoinHandle<()>, ProjectionError> {
    std::thread::Builder::new()
        .name("checkpointer".into())
        .spawn(move || loop {
            let stopped = runtime.block_on(async {
                tokio::time::timeout(CHECKPOINT_EVERY, stop.wait_for(|s| *s))
                    .await
                    .is_ok()
            });
            if stopped {
                break;
            }
            if let Err(e) = rollup::compact(&conn) {
                tracing::warn!(error = %e, "telemetry rollup compaction failed; retrying later");
            }
            let _writing = gate.lock();
            if let Err(e) = conn.execute_batch("CHECKPOINT") {
                tracing::debug!(error = %e, "projection checkpoint skipped");
            }
        })
        .map_err(|source| ProjectionError::Io {
            path: db_path.to_path_buf(),
            source,
        })
}

/// Drop the projection database and rebuild it from the whole log. Returns events applied.
pub async fn rebuild(db_path: &Path, log: SharedLog) -> Result<Position, ProjectionError> {
    schema::remove(db_path)?;
    let db = schema::open(db_path)?;
    let mut applier = Applier::new(db, Arc::default())?;
    loop {
        let batch = log.read_all(applier.checkpoint(), BATCH).await?;
        if batch.is_empty() {
            break;
        }
        applier.apply_batch(&batch)?;
    }
    rollup::compact(applier.connection())?;
    Ok(applier.checkpoint())
}
