//! One worker running one job: claim, load, measure the original, run each unfinished
//! technique, recommend, finish. Every step is an event appended under the worker's claim;
//! a step refused because the job was cancelled ends the run quietly.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::progress::{job_eta, technique_eta, Throttle};
use super::work::{self, JobInputs};
use super::{tracking, Jobs};
use crate::domain::job::{technique_of, JobView, TechniqueStatus};
use crate::domain::{Caller, Command, DomainError};
use crate::events::{Event, KeyValue, VariantResult};
use crate::ledger::LedgerError;
use crate::log::LogError;
use crate::optimize::error::OptimizeError;
use crate::optimize::recommend::{recommend, BoardFit, Candidate};
use crate::optimize::techniques::Progress;

/// Why a job run stopped early.
enum Stop {
    /// The claim was lost or the job was cancelled: nothing more to record.
    Released,
    Failed(String),
}

impl From<LedgerError> for Stop {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Domain(DomainError::InvalidState(_) | DomainError::NotFound(_))
            | LedgerError::Log(LogError::WrongExpectedVersion { .. }) => Stop::Released,
            other => Stop::Failed(other.to_string()),
        }
    }
}

/// The worker acts inside the job's tenant.
fn caller_for(jobs: &Jobs, job_id: &str) -> Caller {
    let tenant = jobs
        .ledger
        .read(|s| s.jobs.get(job_id).map(|j| j.tenant.clone()))
        .unwrap_or_default();
    tracking::worker_caller(&tenant)
}

pub async fn run(jobs: &Arc<Jobs>, job_id: &str) {
    let worker = jobs.worker_id();
    let span = tracing::info_span!("job", job_id, worker = %worker);
    let _enter = span.enter();
    let caller = caller_for(jobs, job_id);
    match jobs
        .ledger
        .execute(
            Command::ClaimJob {
                job_id: job_id.to_string(),
                worker: worker.clone(),
            },
            &caller,
        )
        .await
    {
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(error = %e, "job not claimed");
            return;
        }
    }
    tracing::info!("job claimed");
    let outcome = execute(jobs, job_id, &worker).await;
    let parent = jobs
        .ledger
        .read(|s| s.jobs.get(job_id).map(|j| j.parent_run_id.clone()));
    let run_status = match outcome {
        Ok(()) => "FINISHED",
        Err(Stop::Released) if jobs.is_cancelled(job_id) => "KILLED",
        Err(Stop::Released) => return,
        Err(Stop::Failed(reason)) => {
            tracing::warn!(%reason, "job failed");
            let step = Event::JobFailed {
                job_id: job_id.to_string(),
                reason,
            };
            let _ = record(jobs, &worker, step).await;
            "FAILED"
        }
    };
    if let Some(run) = parent {
        if let Err(e) = tracking::finish(&jobs.ledger, &caller, &run, run_status).await {
            tracing::warn!(error = %e, "could not close the job's run");
        }
    }
    jobs.cancels.lock().remove(job_id);
}

async fn record(jobs: &Jobs, worker: &str, event: Event) -> Result<(), Stop> {
    let caller = caller_for(jobs, event.job_id().unwrap_or_default());
    jobs.ledger
        .execute(
            Command::JobStep {
                worker: worker.to_string(),
                event,
            },
            &caller,
        )
        .await?;
    Ok(())
}

fn view(jobs: &Jobs, job_id: &str) -> Result<JobView, Stop> {
    jobs.ledger
        .read(|s| s.jobs.get(job_id).cloned())
        .ok_or(Stop::Released)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OptimizeError> + Send + 'static,
) -> Result<T, OptimizeError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(OptimizeError::Inference(format!("worker thread: {e}"))))
}

async fn execute(jobs: &Arc<Jobs>, job_id: &str, worker: &str) -> Result<(), Stop> {
    let job = view(jobs, job_id)?;
    let caller = tracking::worker_caller(&job.tenant);
    let (model_sha, calib, eval) = jobs.ledger.read(|s| {
        (
            s.models.get(&job.spec.model_id).map(|m| m.sha256.clone()),
            s.datasets.get(&job.spec.calibration_dataset_id).cloned(),
            s.datasets.get(&job.spec.evaluation_dataset_id).cloned(),
        )
    });
    let (Some(model_sha), Some(calib), Some(eval)) = (model_sha, calib, eval) else {
        return Err(Stop::Failed(
            "the job's model or datasets are missing".into(),
        ));
    };
    let blobs = jobs.blobs.clone();
    let boards = job.spec.boards.clone();
    let sha = model_sha.clone();
    let inputs = Arc::new(
        blocking(move || work::load_inputs(&blobs, &sha, &calib, &eval, boards))
            .await
            .map_err(|e| Stop::Failed(format!("cannot load the job's inputs: {e}")))?,
    );

    if job.baseline.is_none() {
        let i = inputs.clone();
        let (_, mut result) = blocking(move || work::measure(&i, &i.model, None, Instant::now()))
            .await
            .map_err(|e| Stop::Failed(format!("cannot measure the original model: {e}")))?;
        // The original is the uploaded file, byte for byte.
        if let Some(size) = jobs
            .ledger
            .read(|s| s.models.get(&job.spec.model_id).map(|m| m.size_bytes))
        {
            result.size_bytes = size;
        }
        result.sha256 = model_sha;
        tracking::log(
            &jobs.ledger,
            &caller,
            &job.parent_run_id,
            vec![],
            tracking::metrics(&result),
            vec![],
        )
        .await?;
        record(
            jobs,
            worker,
            Event::BaselineMeasured {
                job_id: job_id.to_string(),
                result,
            },
        )
        .await?;
    }

    let mut durations: Vec<f64> = job
        .techniques
        .iter()
        .filter_map(|t| t.result.as_ref().map(|r| r.seconds))
        .collect();
    let todo: Vec<_> = job
        .techniques
        .iter()
        .filter(|t| {
            matches!(
                t.status,
                TechniqueStatus::Pending | TechniqueStatus::Running
            )
        })
        .cloned()
        .collect();
    for (i, t) in todo.iter().enumerate() {
        if jobs.is_cancelled(job_id) {
            return Err(Stop::Released);
        }
        let run_id = match &t.run_id {
            Some(r) => r.clone(),
            None => {
                let name = format!("{} / {}", job.name, t.key);
                let run = tracking::create_run(
                    &jobs.ledger,
                    &caller,
                    job.spec.experiment_id,
                    &name,
                    tracking::job_tags(job_id, Some(&job.parent_run_id)),
                )
                .await?;
                let mut params = vec![KeyValue {
                    key: "technique".into(),
                    value: t.spec.name.clone(),
                }];
                for (k, v) in [
                    ("sparsity", t.spec.sparsity.map(|v| v.to_string())),
                    ("fraction", t.spec.fraction.map(|v| v.to_string())),
                    ("block", t.spec.block.map(|v| v.to_string())),
                ] {
                    if let Some(value) = v {
                        params.push(KeyValue {
                            key: k.into(),
                            value,
                        });
                    }
                }
                tracking::log(&jobs.ledger, &caller, &run, params, vec![], vec![]).await?;
                run
            }
        };
        record(
            jobs,
            worker,
            Event::TechniqueStarted {
                job_id: job_id.to_string(),
                technique: t.key.clone(),
                run_id: run_id.clone(),
            },
        )
        .await?;
        let not_started = todo.len() - i - 1;
        let outcome = run_technique(
            jobs,
            job_id,
            worker,
            &t.key,
            &t.spec,
            &inputs,
            &durations,
            not_started,
        )
        .await?;
        match outcome {
            Ok((bytes, mut result)) => {
                durations.push(result.seconds);
                result.artifact_path = tracking::store_variant(
                    &jobs.ledger,
                    &caller,
                    &jobs.artifacts,
                    &run_id,
                    bytes.clone(),
                )
                .await
                .map_err(|e| Stop::Failed(format!("cannot store the variant: {e}")))?;
                let blobs = jobs.blobs.clone();
                blocking(move || {
                    blobs
                        .put(&bytes)
                        .map_err(|e| OptimizeError::Inference(e.to_string()))
                })
                .await
                .map_err(|e| Stop::Failed(format!("cannot store the variant: {e}")))?;
                tracking::log(
                    &jobs.ledger,
                    &caller,
                    &run_id,
                    vec![],
                    tracking::metrics(&result),
                    vec![],
                )
                .await?;
                tracking::finish(&jobs.ledger, &caller, &run_id, "FINISHED").await?;
                record(
                    jobs,
                    worker,
                    Event::TechniqueCompleted {
                        job_id: job_id.to_string(),
                        technique: t.key.clone(),
                        result,
                    },
                )
                .await?;
            }
            Err(OptimizeError::Cancelled) => {
                tracking::finish(&jobs.ledger, &caller, &run_id, "KILLED").await?;
                return Err(Stop::Released);
            }
            Err(e) => {
                // One technique failing does not fail the others.
                tracing::warn!(technique = %t.key, error = %e, "technique failed");
                tracking::finish(&jobs.ledger, &caller, &run_id, "FAILED").await?;
                record(
                    jobs,
                    worker,
                    Event::TechniqueFailed {
                        job_id: job_id.to_string(),
                        technique: t.key.clone(),
                        reason: e.to_string(),
                    },
                )
                .await?;
            }
        }
    }

    let done = view(jobs, job_id)?;
    let rec = recommend(&candidates(&done), &done.spec.constraints, done.spec.goal);
    if let Some(w) = &rec.winner {
        tracking::log(
            &jobs.ledger,
            &caller,
            &done.parent_run_id,
            vec![],
            vec![],
            vec![KeyValue {
                key: "runledger.recommended".into(),
                value: w.clone(),
            }],
        )
        .await?;
    }
    record(
        jobs,
        worker,
        Event::RecommendationMade {
            job_id: job_id.to_string(),
            recommendation: serde_json::to_value(&rec).unwrap_or_default(),
        },
    )
    .await?;
    if done
        .techniques
        .iter()
        .all(|t| t.status == TechniqueStatus::Failed)
    {
        return Err(Stop::Failed("every technique failed".into()));
    }
    record(
        jobs,
        worker,
        Event::JobCompleted {
            job_id: job_id.to_string(),
        },
    )
    .await?;
    tracing::info!("job completed");
    Ok(())
}

/// Runs one technique on a blocking thread while its progress is turned into throttled
/// events here. The outer error stops the job; the inner one is the technique's own.
#[allow(clippy::too_many_arguments)]
async fn run_technique(
    jobs: &Arc<Jobs>,
    job_id: &str,
    worker: &str,
    key: &str,
    spec: &crate::events::TechniqueSpec,
    inputs: &Arc<JobInputs>,
    durations: &[f64],
    not_started: usize,
) -> Result<Result<(Vec<u8>, VariantResult), OptimizeError>, Stop> {
    let technique = match technique_of(spec) {
        Ok(t) => t,
        Err(e) => return Ok(Err(OptimizeError::invalid_argument("technique", e))),
    };
    let cancel = jobs.cancel_flag(job_id);
    let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
    let i = inputs.clone();
    let mut handle = tokio::task::spawn_blocking(move || {
        work::run_technique(&i, &technique, &mut |p| {
            if cancel.load(Ordering::SeqCst) {
                return ControlFlow::Break(());
            }
            let _ = tx.send(p);
            ControlFlow::Continue(())
        })
    });
    let started = Instant::now();
    let mut throttle = Throttle::new(Duration::from_millis(jobs.config.progress_interval_ms));
    loop {
        tokio::select! {
            res = &mut handle => {
                return Ok(res.unwrap_or_else(|e| Err(OptimizeError::Inference(format!("worker thread: {e}")))));
            }
            Some(p) = rx.recv() => {
                let elapsed = started.elapsed();
                let fraction = f64::from(p.fraction);
                if !throttle.admit(elapsed, &p.stage, fraction) {
                    continue;
                }
                let eta = technique_eta(elapsed, fraction);
                let step = Event::TechniqueProgressed {
                    job_id: job_id.to_string(),
                    technique: key.to_string(),
                    stage: p.stage,
                    percent: (fraction * 100.0).clamp(0.0, 100.0),
                    eta_seconds: eta,
                    job_eta_seconds: job_eta(eta, elapsed, durations, not_started),
                };
                if let Err(stop) = record(jobs, worker, step).await {
                    // Cancelled or claim lost: stop the technique at its next step.
                    jobs.cancel_flag(job_id).store(true, Ordering::SeqCst);
                    let _ = handle.await;
                    return Err(stop);
                }
            }
        }
    }
}

/// The original and every finished variant, as the recommender sees them.
pub fn candidates(job: &JobView) -> Vec<Candidate> {
    let candidate = |name: &str, baseline: bool, r: &VariantResult| Candidate {
        name: name.to_string(),
        baseline,
        accuracy: r.accuracy,
        agreement: if baseline { Some(1.0) } else { r.agreement },
        size_bytes: r.size_bytes,
        boards: r
            .estimates
            .iter()
            .map(|(b, e)| {
                (
                    b.clone(),
                    BoardFit {
                        latency_ms: Some(e.latency_ms),
                        ram_kb: Some(e.ram_kb),
                        flash_kb: Some(e.flash_kb),
                        fits: Some(e.fits),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    };
    let mut out: Vec<Candidate> = job
        .baseline
        .iter()
        .map(|b| candidate("original", true, b))
        .collect();
    out.extend(
        job.techniques
            .iter()
            .filter_map(|t| t.result.as_ref().map(|r| candidate(&t.key, false, r))),
    );
    out
}
