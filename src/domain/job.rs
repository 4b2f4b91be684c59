//! Optimization aggregates: uploaded models and datasets, jobs, registered model versions.
//!
//! The fold of a job's events, [`JobView`], lives in `job_view`.

use std::collections::HashSet;

use serde::Serialize;

#[path = "job_view.rs"]
mod view;
pub use view::{JobView, TechniqueStatus, TechniqueView};

use super::{DomainError, State};
pub use crate::events::DatasetInfo;
use crate::events::{Event, JobSpec, JobStatus, TechniqueSpec};
use crate::optimize::boards;
use crate::optimize::techniques::Technique;

const MAX_NAME_LEN: usize = 256;
pub const MAX_TECHNIQUES: usize = 16;
pub const MAX_BOARDS: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub model_id: String,
    pub name: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub tenant: String,
}

pub fn not_found(job_id: &str) -> DomainError {
    DomainError::NotFound(format!("No job with id '{job_id}'"))
}

/// The engine technique a spec names, with its parameters checked.
pub fn technique_of(spec: &TechniqueSpec) -> Result<Technique, String> {
    Technique::with_params(&spec.name, spec.sparsity, spec.fraction, spec.block)
        .map_err(|e| e.to_string())
}

/// Checks a job spec against what exists; names the offending field.
pub fn validate_spec(state: &State, tenant: &str, spec: &JobSpec) -> Result<(), DomainError> {
    if spec.name.trim().is_empty() || spec.name.len() > MAX_NAME_LEN {
        return Err(DomainError::invalid(format!(
            "Field 'name' must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    // Another tenant's model, dataset or experiment is named like a missing one.
    if state
        .models
        .get(&spec.model_id)
        .filter(|m| m.tenant == tenant)
        .is_none()
    {
        return Err(DomainError::NotFound(format!(
            "Field 'model_id': no model with id '{}'",
            spec.model_id
        )));
    }
    for (field, id) in [
        ("calibration_dataset_id", &spec.calibration_dataset_id),
        ("evaluation_dataset_id", &spec.evaluation_dataset_id),
    ] {
        if state
            .datasets
            .get(id)
            .filter(|d| d.tenant == tenant)
            .is_none()
        {
            return Err(DomainError::NotFound(format!(
                "Field '{field}': no dataset with id '{id}'"
            )));
        }
    }
    if spec.techniques.is_empty() || spec.techniques.len() > MAX_TECHNIQUES {
        return Err(DomainError::invalid(format!(
            "Field 'techniques' must list 1 to {MAX_TECHNIQUES} techniques"
        )));
    }
    let mut keys = HashSet::new();
    for (i, t) in spec.techniques.iter().enumerate() {
        technique_of(t)
            .map_err(|e| DomainError::invalid(format!("Field 'techniques[{i}]': {e}")))?;
        let key = t.key();
        if key == "original"
            || key.is_empty()
            || key.len() > 64
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(DomainError::invalid(format!(
                "Field 'techniques[{i}].label': '{key}' must be 1 to 64 letters, digits, '-', '_' or '.', and not 'original'"
            )));
        }
        if !keys.insert(key) {
            return Err(DomainError::invalid(format!(
                "Field 'techniques[{i}]': '{key}' appears twice; give one a distinct 'label'"
            )));
        }
    }
    if spec.boards.len() > MAX_BOARDS {
        return Err(DomainError::invalid(format!(
            "Field 'boards' lists {} boards; at most {MAX_BOARDS} are allowed",
            spec.boards.len()
        )));
    }
    for (i, b) in spec.boards.iter().enumerate() {
        let board = boards::board(&b.board)
            .map_err(|e| DomainError::invalid(format!("Field 'boards[{i}].board': {e}")))?;
        if let Some(rt) = &b.runtime {
            boards::runtime(rt)
                .map_err(|e| DomainError::invalid(format!("Field 'boards[{i}].runtime': {e}")))?;
            if !board.runtimes.contains(&rt.as_str()) {
                return Err(DomainError::invalid(format!(
                    "Field 'boards[{i}].runtime': {rt} does not run on {} (supported: {})",
                    board.id,
                    board.runtimes.join(", ")
                )));
            }
        }
    }
    if state
        .experiment(spec.experiment_id)
        .filter(|e| e.tenant == tenant)
        .is_none()
    {
        return Err(DomainError::NotFound(format!(
            "Field 'experiment_id': no experiment with id {}",
            spec.experiment_id
        )));
    }
    Ok(())
}

pub(super) fn upload_model(
    state: &State,
    m: &ModelInfo,
    summary: &serde_json::Value,
) -> Result<Vec<Event>, DomainError> {
    if m.name.trim().is_empty() || m.name.len() > MAX_NAME_LEN {
        return Err(DomainError::invalid(format!(
            "Parameter 'name' must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if state.models.contains_key(&m.model_id) {
        return Err(DomainError::AlreadyExists(format!(
            "Model '{}' already exists",
            m.model_id
        )));
    }
    super::tier::check_model_size(state, &m.tenant, m.size_bytes)?;
    Ok(vec![Event::ModelUploaded {
        model_id: m.model_id.clone(),
        name: m.name.clone(),
        sha256: m.sha256.clone(),
        size_bytes: m.size_bytes,
        summary: summary.clone(),
        tenant: m.tenant.clone(),
    }])
}

pub(super) fn register_dataset(state: &State, d: &DatasetInfo) -> Result<Vec<Event>, DomainError> {
    if d.name.trim().is_empty() || d.name.len() > MAX_NAME_LEN {
        return Err(DomainError::invalid(format!(
            "Field 'name' must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if state.datasets.contains_key(&d.dataset_id) {
        return Err(DomainError::AlreadyExists(format!(
            "Dataset '{}' already exists",
            d.dataset_id
        )));
    }
    Ok(vec![Event::DatasetRegistered(d.clone())])
}

pub(super) fn queue(
    state: &State,
    tenant: &str,
    job_id: &str,
    spec: &JobSpec,
    parent_run_id: &str,
    now_ms: i64,
) -> Result<Vec<Event>, DomainError> {
    if state.jobs.contains_key(job_id) {
        return Err(DomainError::AlreadyExists(format!(
            "Job '{job_id}' already exists"
        )));
    }
    validate_spec(state, tenant, spec)?;
    super::tier::check_job(state, tenant, &spec.techniques, now_ms)?;
    if state.run_tenant(parent_run_id) != Some(tenant) {
        return Err(DomainError::NotFound(format!(
            "No run with id '{parent_run_id}'"
        )));
    }
    Ok(vec![Event::JobQueued {
        job_id: job_id.to_string(),
        spec: spec.clone(),
        parent_run_id: parent_run_id.to_string(),
        tenant: tenant.to_string(),
    }])
}

fn job<'a>(state: &'a State, job_id: &str) -> Result<&'a JobView, DomainError> {
    state.jobs.get(job_id).ok_or_else(|| not_found(job_id))
}

/// A worker claims a queued job, or re-claims a running one its node held before a restart
/// (`worker` is `<node>/<boot id>`).
pub(super) fn claim(state: &State, job_id: &str, worker: &str) -> Result<Vec<Event>, DomainError> {
    let j = job(state, job_id)?;
    let node = |w: &str| w.split('/').next().unwrap_or_default().to_string();
    let ours = j.worker.as_deref().is_some_and(|w| node(w) == node(worker));
    match j.status {
        JobStatus::Queued => {}
        JobStatus::Running if ours && j.worker.as_deref() != Some(worker) => {}
        s => {
            return Err(DomainError::InvalidState(format!(
                "Job '{job_id}' is {} and cannot be claimed",
                s.as_str()
            )))
        }
    }
    Ok(vec![Event::JobClaimed {
        job_id: job_id.to_string(),
        worker: worker.to_string(),
    }])
}

/// A step reported by the worker holding the claim; refused once the job is no longer its.
pub(super) fn step(state: &State, worker: &str, event: &Event) -> Result<Vec<Event>, DomainError> {
    let Some(job_id) = event.job_id() else {
        return Err(DomainError::invalid("not a job event"));
    };
    let j = job(state, job_id)?;
    if j.status != JobStatus::Running || j.worker.as_deref() != Some(worker) {
        return Err(DomainError::InvalidState(format!(
            "Job '{job_id}' is {} and no longer claimed by this worker",
            j.status.as_str()
        )));
    }
    let known = |t: &str| j.technique(t).is_some();
    match event {
        Event::TechniqueStarted { technique, .. }
        | Event::TechniqueProgressed { technique, .. }
        | Event::TechniqueCompleted { technique, .. }
        | Event::TechniqueFailed { technique, .. }
            if !known(technique) =>
        {
            Err(DomainError::invalid(format!(
                "Job '{job_id}' has no technique '{technique}'"
            )))
        }
        Event::TechniqueCompleted { technique, .. } | Event::TechniqueFailed { technique, .. }
            if j.technique(technique).is_some_and(|t| {
                matches!(
                    t.status,
                    TechniqueStatus::Completed | TechniqueStatus::Failed
                )
            }) =>
        {
            // Never record a technique's result twice.
            Err(DomainError::InvalidState(format!(
                "Technique '{technique}' of job '{job_id}' already finished"
            )))
        }
        // Queuing, claiming and cancelling have commands of their own.
        Event::JobQueued { .. } | Event::JobClaimed { .. } | Event::JobCancelled { .. } => {
            Err(DomainError::invalid("not a job step"))
        }
        _ => Ok(vec![event.clone()]),
    }
}

pub(super) fn cancel(state: &State, job_id: &str) -> Result<Vec<Event>, DomainError> {
    let j = job(state, job_id)?;
    if j.status == JobStatus::Cancelled {
        return Ok(vec![]);
    }
    if j.status.is_finished() {
        return Err(DomainError::InvalidState(format!(
            "Job '{job_id}' already {}",
            j.status.as_str()
        )));
    }
    Ok(vec![Event::JobCancelled {
        job_id: job_id.to_string(),
    }])
}

/// The next version of registered model `name`, pointing at a finished variant of a job.
pub(super) fn register_version(
    state: &State,
    tenant: &str,
    name: &str,
    job_id: &str,
    technique: &str,
) -> Result<Vec<Event>, DomainError> {
    if name.trim().is_empty()
        || name.len() > MAX_NAME_LEN
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return Err(DomainError::invalid(format!(
            "Registered model name must be 1 to {MAX_NAME_LEN} characters without '/'"
        )));
    }
    let j = job(state, job_id)?;
    let (result, run_id) = if technique == "original" {
        (j.baseline.as_ref(), None)
    } else {
        let t = j.technique(technique).ok_or_else(|| {
            DomainError::NotFound(format!("Job '{job_id}' has no technique '{technique}'"))
        })?;
        (t.result.as_ref(), t.run_id.clone())
    };
    let result = result.ok_or_else(|| {
        DomainError::InvalidState(format!(
            "Technique '{technique}' of job '{job_id}' has no result to register"
        ))
    })?;
    let key = (tenant.to_string(), name.to_string());
    let version = state.model_versions.get(&key).map_or(0, |v| *v) + 1;
    Ok(vec![Event::ModelVersionRegistered {
        name: name.to_string(),
        version,
        job_id: job_id.to_string(),
        technique: technique.to_string(),
        source_model_id: j.spec.model_id.clone(),
        sha256: result.sha256.clone(),
        size_bytes: result.size_bytes,
        run_id,
        artifact_path: result.artifact_path.clone(),
        tenant: tenant.to_string(),
    }])
}

/// Fold an optimization event into the state.
pub(super) fn apply(state: &mut State, event: &Event, time_ms: i64) {
    match event {
        Event::ModelUploaded {
            model_id,
            name,
            sha256,
            size_bytes,
            tenant,
            ..
        } => {
            state.models.insert(
                model_id.clone(),
                ModelInfo {
                    model_id: model_id.clone(),
                    name: name.clone(),
                    sha256: sha256.clone(),
                    size_bytes: *size_bytes,
                    tenant: tenant.clone(),
                },
            );
        }
        Event::DatasetRegistered(d) => {
            state.datasets.insert(d.dataset_id.clone(), d.clone());
        }
        Event::JobQueued {
            job_id,
            spec,
            parent_run_id,
            tenant,
        } => {
            state.jobs.insert(
                job_id.clone(),
                JobView::new(job_id, spec, parent_run_id, tenant, time_ms),
            );
            state
                .job_starts
                .entry(tenant.clone())
                .or_default()
                .push(time_ms);
        }
        Event::ModelVersionRegistered {
            name,
            version,
            tenant,
            ..
        } => {
            let v = state
                .model_versions
                .entry((tenant.clone(), name.clone()))
                .or_default();
            *v = (*v).max(*version);
        }
        other => {
            if let Some(j) = other.job_id().and_then(|id| state.jobs.get_mut(id)) {
                j.apply(other, time_ms);
            }
        }
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
