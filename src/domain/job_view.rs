//! [`JobView`]: the one fold of a job's events. The command side validates against it, the
//! projector stores it as JSON, and the progress WebSocket derives its messages from it.

use serde::{Deserialize, Serialize};

use crate::events::{Event, JobSpec, JobStatus, TechniqueSpec, VariantResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TechniqueStatus {
    Pending,
    Running,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TechniqueView {
    /// The variant's key (label or technique name).
    pub key: String,
    pub spec: TechniqueSpec,
    pub status: TechniqueStatus,
    /// The technique's child run in the job's experiment.
    pub run_id: Option<String>,
    pub stage: Option<String>,
    pub progress_percent: f64,
    pub eta_seconds: Option<f64>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub result: Option<VariantResult>,
    pub reason: Option<String>,
}

/// A job as its events describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub job_id: String,
    pub name: String,
    pub status: JobStatus,
    pub spec: JobSpec,
    pub parent_run_id: String,
    pub tenant: String,
    /// The worker holding the claim.
    pub worker: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub finished_ms: Option<i64>,
    pub error: Option<String>,
    /// The original model, measured like the variants.
    pub baseline: Option<VariantResult>,
    pub techniques: Vec<TechniqueView>,
    /// ETA of the whole job from measured technique times.
    pub eta_seconds: Option<f64>,
    #[schema(value_type = Option<crate::optimize::recommend::Recommendation>)]
    pub recommendation: Option<serde_json::Value>,
}

impl JobView {
    pub fn new(
        job_id: &str,
        spec: &JobSpec,
        parent_run_id: &str,
        tenant: &str,
        time_ms: i64,
    ) -> JobView {
        JobView {
            job_id: job_id.to_string(),
            name: spec.name.clone(),
            status: JobStatus::Queued,
            spec: spec.clone(),
            parent_run_id: parent_run_id.to_string(),
            tenant: tenant.to_string(),
            worker: None,
            created_ms: time_ms,
            updated_ms: time_ms,
            finished_ms: None,
            error: None,
            baseline: None,
            techniques: spec
                .techniques
                .iter()
                .map(|t| TechniqueView {
                    key: t.key().to_string(),
                    spec: t.clone(),
                    status: TechniqueStatus::Pending,
                    run_id: None,
                    stage: None,
                    progress_percent: 0.0,
                    eta_seconds: None,
                    started_ms: None,
                    finished_ms: None,
                    result: None,
                    reason: None,
                })
                .collect(),
            eta_seconds: None,
            recommendation: None,
        }
    }

    pub fn technique(&self, key: &str) -> Option<&TechniqueView> {
        self.techniques.iter().find(|t| t.key == key)
    }

    fn technique_mut(&mut self, key: &str) -> Option<&mut TechniqueView> {
        self.techniques.iter_mut().find(|t| t.key == key)
    }

    /// Techniques that finished, successfully or not.
    pub fn finished_techniques(&self) -> usize {
        self.techniques
            .iter()
            .filter(|t| {
                matches!(
                    t.status,
                    TechniqueStatus::Completed | TechniqueStatus::Failed
                )
            })
            .count()
    }

    /// Progress of the whole job in percent: finished techniques plus the running one's share.
    pub fn progress_percent(&self) -> f64 {
        if self.status == JobStatus::Completed {
            return 100.0;
        }
        let n = self.techniques.len().max(1) as f64;
        let running: f64 = self
            .techniques
            .iter()
            .filter(|t| t.status == TechniqueStatus::Running)
            .map(|t| t.progress_percent / 100.0)
            .sum();
        ((self.finished_techniques() as f64 + running) / n * 100.0).min(100.0)
    }

    /// Fold one event of this job (others are ignored).
    pub fn apply(&mut self, event: &Event, time_ms: i64) {
        if event.job_id() != Some(self.job_id.as_str()) {
            return;
        }
        self.updated_ms = time_ms;
        match event {
            Event::JobClaimed { worker, .. } => {
                self.status = JobStatus::Running;
                self.worker = Some(worker.clone());
            }
            Event::BaselineMeasured { result, .. } => self.baseline = Some(result.clone()),
            Event::TechniqueStarted {
                technique, run_id, ..
            } => {
                if let Some(t) = self.technique_mut(technique) {
                    t.status = TechniqueStatus::Running;
                    t.run_id = Some(run_id.clone());
                    t.started_ms = Some(time_ms);
                    t.progress_percent = 0.0;
                    t.stage = None;
                }
            }
            Event::TechniqueProgressed {
                technique,
                stage,
                percent,
                eta_seconds,
                job_eta_seconds,
                ..
            } => {
                if let Some(t) = self.technique_mut(technique) {
                    t.stage = Some(stage.clone());
                    t.progress_percent = *percent;
                    t.eta_seconds = *eta_seconds;
                }
                self.eta_seconds = *job_eta_seconds;
            }
            Event::TechniqueCompleted {
                technique, result, ..
            } => {
                if let Some(t) = self.technique_mut(technique) {
                    t.status = TechniqueStatus::Completed;
                    t.progress_percent = 100.0;
                    t.eta_seconds = Some(0.0);
                    t.finished_ms = Some(time_ms);
                    t.result = Some(result.clone());
                }
            }
            Event::TechniqueFailed {
                technique, reason, ..
            } => {
                if let Some(t) = self.technique_mut(technique) {
                    t.status = TechniqueStatus::Failed;
                    t.finished_ms = Some(time_ms);
                    t.reason = Some(reason.clone());
                }
            }
            Event::RecommendationMade { recommendation, .. } => {
                self.recommendation = Some(recommendation.clone())
            }
            Event::JobCompleted { .. } => self.finish(JobStatus::Completed, None, time_ms),
            Event::JobFailed { reason, .. } => {
                self.finish(JobStatus::Failed, Some(reason.clone()), time_ms)
            }
            Event::JobCancelled { .. } => self.finish(JobStatus::Cancelled, None, time_ms),
            _ => {}
        }
    }

    fn finish(&mut self, status: JobStatus, error: Option<String>, time_ms: i64) {
        self.status = status;
        self.error = error;
        self.finished_ms = Some(time_ms);
        self.eta_seconds = Some(0.0);
        for t in &mut self.techniques {
            if t.status == TechniqueStatus::Running {
                // Interrupted: it reports as pending, since a resumed job would redo it.
                t.status = TechniqueStatus::Pending;
            }
        }
    }
}
