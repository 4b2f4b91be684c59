//! Optimization jobs in the server: a priority queue fed by `JobQueued` events from the log,
//! a bounded pool of workers that claim jobs with an expected-version append, run the CPU
//! work on blocking threads, and record every step as an event. Unfinished jobs are found by
//! replay on start and resumed; finished techniques are not redone.

pub mod messages;
pub mod presets;
pub mod progress;
pub mod tracking;
pub mod work;
mod worker;

pub use worker::candidates as worker_candidates;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::artifacts::ArtifactStore;
use crate::blobs::BlobStore;
use crate::domain::job::validate_spec;
use crate::domain::{tier, Caller, Command};
use crate::events::{decode, Event, JobSpec, JobStatus};
use crate::ledger::{Ledger, LedgerError};

/// `[jobs]` in `runledger.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs run at once (each uses one core for its CPU work).
    pub workers: usize,
    pub max_model_bytes: u64,
    pub max_dataset_bytes: u64,
    /// Where dataset presets (`mnist-calibration`...) find their `.npy` files; default
    /// `<data-dir>/datasets`.
    pub datasets_dir: Option<PathBuf>,
    /// This node's name in claims; a restarted node resumes the jobs its name held.
    pub node_id: String,
    /// Least time between two progress events of one technique.
    pub progress_interval_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            workers: 1,
            max_model_bytes: 512 << 20,
            max_dataset_bytes: 1 << 30,
            datasets_dir: None,
            node_id: "local".into(),
            progress_interval_ms: 250,
        }
    }
}

/// Jobs waiting for a worker: higher priority first, then oldest first.
#[derive(Default)]
struct Queue {
    heap: Mutex<BinaryHeap<(i32, Reverse<u64>, String)>>,
    seq: AtomicU64,
    ready: Notify,
}

impl Queue {
    fn push(&self, priority: i32, job_id: String) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.heap.lock().push((priority, Reverse(seq), job_id));
        self.ready.notify_one();
    }

    async fn pop(&self) -> String {
        loop {
            if let Some((_, _, id)) = self.heap.lock().pop() {
                return id;
            }
            self.ready.notified().await;
        }
    }
}

pub struct Jobs {
    pub ledger: Arc<Ledger>,
    pub blobs: Arc<BlobStore>,
    pub artifacts: Arc<ArtifactStore>,
    pub config: JobsConfig,
    queue: Queue,
    cancels: Mutex<HashMap<String, Arc<AtomicBool>>>,
    boot: String,
}

impl Jobs {
    /// Start the workers and the feed of queued jobs; unfinished jobs are queued again.
    pub fn start(
        ledger: Arc<Ledger>,
        blobs: Arc<BlobStore>,
        artifacts: Arc<ArtifactStore>,
        config: JobsConfig,
    ) -> Arc<Jobs> {
        let jobs = Arc::new(Jobs {
            ledger,
            blobs,
            artifacts,
            queue: Queue::default(),
            cancels: Mutex::new(HashMap::new()),
            boot: uuid::Uuid::new_v4().simple().to_string(),
            config,
        });
        let log = jobs.ledger.log().clone();
        let from = log.head();
        let mut unfinished: Vec<(i32, i64, String)> = jobs.ledger.read(|s| {
            s.jobs
                .values()
                .filter(|j| !j.status.is_finished())
                .map(|j| (j.spec.priority, j.created_ms, j.job_id.clone()))
                .collect()
        });
        unfinished.sort_by_key(|(p, t, _)| (Reverse(*p), *t));
        for (p, _, id) in unfinished {
            tracing::info!(job_id = %id, "resuming unfinished job");
            jobs.queue.push(p, id);
        }
        // Queued jobs arrive through the log, whichever node appended them.
        let feed = jobs.clone();
        tokio::spawn(async move {
            let mut events = log.subscribe_all(from);
            while let Some(Ok(rec)) = events.next().await {
                if rec.event_type != "JobQueued" {
                    continue;
                }
                if let Ok(Event::JobQueued { job_id, spec, .. }) = decode(&rec) {
                    // The log publishes an append just before the ledger applies it: let the
                    // command side see the job before a worker claims it.
                    for _ in 0..500 {
                        if feed.ledger.read(|s| s.jobs.contains_key(&job_id)) {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                    feed.queue.push(spec.priority, job_id);
                }
            }
        });
        for _ in 0..jobs.config.workers.max(1) {
            let w = jobs.clone();
            tokio::spawn(async move {
                loop {
                    let id = w.queue.pop().await;
                    worker::run(&w, &id).await;
                }
            });
        }
        jobs
    }

    /// This worker's claim name: `<node>/<boot>`.
    fn worker_id(&self) -> String {
        format!("{}/{}", self.config.node_id, self.boot)
    }

    /// Validate, create the job's parent run, queue it. Returns the job id. The tenant's tier
    /// sets the job's priority.
    pub async fn submit(&self, mut spec: JobSpec, caller: &Caller) -> Result<String, LedgerError> {
        let tenant = caller.tenant.clone();
        let now = crate::ledger::now_ms();
        // Checked before the parent run exists, so a refused job leaves nothing behind.
        spec.priority = self.ledger.read(|s| {
            validate_spec(s, &tenant, &spec)?;
            tier::check_job(s, &tenant, &spec.techniques, now)?;
            Ok::<_, crate::domain::DomainError>(tier::job_priority(tier::tier_of(s, &tenant)))
        })?;
        let job_id = uuid::Uuid::new_v4().simple().to_string();
        let mut tags = tracking::job_tags(&job_id, None);
        tags.push(crate::events::KeyValue {
            key: "runledger.model_id".into(),
            value: spec.model_id.clone(),
        });
        let parent =
            tracking::create_run(&self.ledger, caller, spec.experiment_id, &spec.name, tags)
                .await?;
        let params = [
            ("model_id", spec.model_id.clone()),
            (
                "techniques",
                spec.techniques
                    .iter()
                    .map(|t| t.key())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "boards",
                spec.boards
                    .iter()
                    .map(|b| b.board.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "calibration_dataset_id",
                spec.calibration_dataset_id.clone(),
            ),
            ("evaluation_dataset_id", spec.evaluation_dataset_id.clone()),
        ]
        .into_iter()
        .map(|(k, v)| crate::events::KeyValue {
            key: k.into(),
            value: v,
        })
        .collect();
        tracking::log(&self.ledger, caller, &parent, params, vec![], vec![]).await?;
        self.ledger
            .execute(
                Command::QueueJob {
                    job_id: job_id.clone(),
                    spec,
                    parent_run_id: parent,
                    tenant,
                    now_ms: now,
                },
                caller,
            )
            .await?;
        Ok(job_id)
    }

    /// Cancel a job: the event is durable at once; a running technique stops at its next
    /// progress step.
    pub async fn cancel(&self, job_id: &str, caller: &Caller) -> Result<(), LedgerError> {
        self.ledger
            .execute(
                Command::CancelJob {
                    job_id: job_id.to_string(),
                },
                caller,
            )
            .await?;
        self.cancel_flag(job_id).store(true, Ordering::SeqCst);
        let parent = self.ledger.read(|s| {
            s.jobs
                .get(job_id)
                .filter(|j| j.worker.is_none())
                .map(|j| j.parent_run_id.clone())
        });
        // A job no worker has touched: close its run here.
        if let Some(run) = parent {
            tracking::finish(&self.ledger, caller, &run, "KILLED").await?;
        }
        Ok(())
    }

    fn cancel_flag(&self, job_id: &str) -> Arc<AtomicBool> {
        self.cancels
            .lock()
            .entry(job_id.to_string())
            .or_default()
            .clone()
    }

    fn is_cancelled(&self, job_id: &str) -> bool {
        self.ledger.read(|s| {
            s.jobs
                .get(job_id)
                .is_some_and(|j| j.status == JobStatus::Cancelled)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tier::job_priority;
    use crate::events::Tier;

    #[tokio::test]
    async fn enterprise_jobs_go_first_then_oldest_first() {
        let q = Queue::default();
        q.push(job_priority(Tier::Free), "free-1".into());
        q.push(job_priority(Tier::Pro), "pro-1".into());
        q.push(job_priority(Tier::Enterprise), "enterprise-1".into());
        q.push(job_priority(Tier::Free), "free-2".into());
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(q.pop().await);
        }
        assert_eq!(order, ["enterprise-1", "free-1", "pro-1", "free-2"]);
    }
}
