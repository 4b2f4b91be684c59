//! Aggregates (experiments, runs), their commands, and the pure `decide`/`apply` functions.
//!
//! `decide(state, command)` validates a command against state rebuilt from the log and returns
//! the events to append; `apply(state, event)` folds an event into the state. No I/O here.

pub mod account;
pub mod device;
pub mod experiment;
pub mod job;
mod run;
pub mod run_names;
mod state;
pub mod tenancy;
pub mod tier;
pub mod validation;

pub(crate) use run::dataset_key;
pub use state::{Experiment, Lifecycle, Run, State, RUN_NAME_TAG};
pub use tenancy::{authorize, Caller};

use crate::events::{
    dataset_stream, device_stream, experiment_stream, job_stream, model_stream,
    registered_model_stream, run_stream, tenant_stream, user_stream, DatasetInput, Event, JobSpec,
    KeyValue, MetricPoint, Role, TenantInfo, Tier, TokenInfo, UserInfo,
};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// MLflow INVALID_PARAMETER_VALUE.
    #[error("{0}")]
    InvalidParameter(String),
    /// MLflow RESOURCE_ALREADY_EXISTS.
    #[error("{0}")]
    AlreadyExists(String),
    /// MLflow RESOURCE_DOES_NOT_EXIST.
    #[error("{0}")]
    NotFound(String),
    /// MLflow INVALID_STATE.
    #[error("{0}")]
    InvalidState(String),
    /// The caller's role does not allow it (403).
    #[error("{0}")]
    Forbidden(String),
    /// The tenant's tier does not include it (403): a technique, a model size.
    #[error("{0}")]
    NotInTier(String),
    /// The tenant used up its tier's monthly allowance (402).
    #[error("{0}")]
    QuotaExceeded(String),
}

impl DomainError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        DomainError::InvalidParameter(msg.into())
    }
}

/// A request to change state. Ids, names and times that need randomness or a clock are chosen
/// by the caller, so `decide` stays pure.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateExperiment {
        name: String,
        artifact_location: Option<String>,
        tags: Vec<KeyValue>,
        tenant: String,
    },
    RenameExperiment {
        experiment_id: i64,
        new_name: String,
    },
    DeleteExperiment {
        experiment_id: i64,
    },
    RestoreExperiment {
        experiment_id: i64,
    },
    SetExperimentTag {
        experiment_id: i64,
        key: String,
        value: String,
    },
    DeleteExperimentTag {
        experiment_id: i64,
        key: String,
    },
    CreateRun {
        run_id: String,
        experiment_id: i64,
        /// Used when neither `run_name` nor the `mlflow.runName` tag is given.
        generated_name: String,
        run_name: Option<String>,
        user_id: String,
        start_time: i64,
        tags: Vec<KeyValue>,
    },
    UpdateRun {
        run_id: String,
        status: Option<String>,
        end_time: Option<i64>,
        run_name: Option<String>,
    },
    DeleteRun {
        run_id: String,
    },
    RestoreRun {
        run_id: String,
    },
    LogBatch {
        run_id: String,
        metrics: Vec<MetricPoint>,
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
    },
    DeleteTag {
        run_id: String,
        key: String,
    },
    LogInputs {
        run_id: String,
        inputs: Vec<DatasetInput>,
    },
    RegisterDevice(device::NewDevice),
    RotateDeviceKey {
        device_id: String,
        key_hash: String,
    },
    RevokeDeviceKey {
        device_id: String,
    },
    UploadModel {
        model: job::ModelInfo,
        summary: serde_json::Value,
    },
    RegisterDataset(job::DatasetInfo),
    QueueJob {
        job_id: String,
        spec: JobSpec,
        parent_run_id: String,
        tenant: String,
        /// The caller's clock, for the monthly quota.
        now_ms: i64,
    },
    ClaimJob {
        job_id: String,
        worker: String,
    },
    /// A job event from the worker holding the claim.
    JobStep {
        worker: String,
        event: Event,
    },
    CancelJob {
        job_id: String,
    },
    RegisterModelVersion {
        name: String,
        job_id: String,
        technique: String,
        tenant: String,
    },
    CreateTenant(TenantInfo),
    SetTenantTier {
        tenant_id: String,
        tier: Tier,
    },
    CreateUser(UserInfo),
    SetPassword {
        username: String,
        password_hash: String,
    },
    SetRole {
        username: String,
        role: Role,
    },
    IssueToken(TokenInfo),
    RevokeToken {
        username: String,
        token_id: String,
    },
}

impl Command {
    /// The stream the command's events go to (a new experiment's is that of the next id).
    pub fn stream(&self, state: &State) -> String {
        match self {
            Command::CreateExperiment { .. } => experiment_stream(state.next_experiment_id()),
            Command::RenameExperiment { experiment_id, .. }
            | Command::DeleteExperiment { experiment_id }
            | Command::RestoreExperiment { experiment_id }
            | Command::SetExperimentTag { experiment_id, .. }
            | Command::DeleteExperimentTag { experiment_id, .. } => {
                experiment_stream(*experiment_id)
            }
            Command::CreateRun { run_id, .. }
            | Command::UpdateRun { run_id, .. }
            | Command::DeleteRun { run_id }
            | Command::RestoreRun { run_id }
            | Command::LogBatch { run_id, .. }
            | Command::DeleteTag { run_id, .. }
            | Command::LogInputs { run_id, .. } => run_stream(run_id),
            Command::RegisterDevice(d) => device_stream(&d.device_id),
            Command::RotateDeviceKey { device_id, .. } | Command::RevokeDeviceKey { device_id } => {
                device_stream(device_id)
            }
            Command::UploadModel { model, .. } => model_stream(&model.model_id),
            Command::RegisterDataset(d) => dataset_stream(&d.dataset_id),
            Command::QueueJob { job_id, .. }
            | Command::ClaimJob { job_id, .. }
            | Command::CancelJob { job_id } => job_stream(job_id),
            Command::JobStep { event, .. } => job_stream(event.job_id().unwrap_or_default()),
            Command::RegisterModelVersion { name, tenant, .. } => {
                registered_model_stream(tenant, name)
            }
            Command::CreateTenant(t) => tenant_stream(&t.tenant_id),
            Command::SetTenantTier { tenant_id, .. } => tenant_stream(tenant_id),
            Command::CreateUser(u) => user_stream(&u.username),
            Command::SetPassword { username, .. }
            | Command::SetRole { username, .. }
            | Command::RevokeToken { username, .. }
            | Command::IssueToken(TokenInfo { username, .. }) => user_stream(username),
        }
    }

    /// Commands that check something across streams must not interleave with each other:
    /// experiment names (unique per tenant) and monthly job quotas.
    pub fn needs_global_order(&self) -> bool {
        matches!(
            self,
            Command::CreateExperiment { .. }
                | Command::RenameExperiment { .. }
                | Command::QueueJob { .. }
        )
    }
}

/// Validate `command` against `state` and return the events it causes (possibly none: a
/// repeated identical write is a no-op).
pub fn decide(state: &State, command: &Command) -> Result<Vec<Event>, DomainError> {
    match command {
        Command::CreateExperiment {
            name,
            artifact_location,
            tags,
            tenant,
        } => experiment::create(state, tenant, name, artifact_location.as_deref(), tags),
        Command::RenameExperiment {
            experiment_id,
            new_name,
        } => experiment::rename(state, *experiment_id, new_name),
        Command::DeleteExperiment { experiment_id } => experiment::delete(state, *experiment_id),
        Command::RestoreExperiment { experiment_id } => experiment::restore(state, *experiment_id),
        Command::SetExperimentTag {
            experiment_id,
            key,
            value,
        } => experiment::set_tag(state, *experiment_id, key, value),
        Command::DeleteExperimentTag { experiment_id, key } => {
            experiment::delete_tag(state, *experiment_id, key)
        }
        Command::CreateRun {
            run_id,
            experiment_id,
            generated_name,
            run_name,
            user_id,
            start_time,
            tags,
        } => run::create(
            state,
            run::NewRun {
                run_id,
                experiment_id: *experiment_id,
                generated_name,
                run_name: run_name.as_deref(),
                user_id,
                start_time: *start_time,
                tags,
            },
        ),
        Command::UpdateRun {
            run_id,
            status,
            end_time,
            run_name,
        } => run::update(
            state,
            run_id,
            status.as_deref(),
            *end_time,
            run_name.as_deref(),
        ),
        Command::DeleteRun { run_id } => run::delete(state, run_id),
        Command::RestoreRun { run_id } => run::restore(state, run_id),
        Command::LogBatch {
            run_id,
            metrics,
            params,
            tags,
        } => run::log_batch(state, run_id, metrics, params, tags),
        Command::DeleteTag { run_id, key } => run::delete_tag(state, run_id, key),
        Command::LogInputs { run_id, inputs } => run::log_inputs(state, run_id, inputs),
        Command::RegisterDevice(d) => device::register(state, d),
        Command::RotateDeviceKey {
            device_id,
            key_hash,
        } => device::rotate_key(state, device_id, key_hash),
        Command::RevokeDeviceKey { device_id } => device::revoke_key(state, device_id),
        Command::UploadModel { model, summary } => job::upload_model(state, model, summary),
        Command::RegisterDataset(d) => job::register_dataset(state, d),
        Command::QueueJob {
            job_id,
            spec,
            parent_run_id,
            tenant,
            now_ms,
        } => job::queue(state, tenant, job_id, spec, parent_run_id, *now_ms),
        Command::ClaimJob { job_id, worker } => job::claim(state, job_id, worker),
        Command::JobStep { worker, event } => job::step(state, worker, event),
        Command::CancelJob { job_id } => job::cancel(state, job_id),
        Command::RegisterModelVersion {
            name,
            job_id,
            technique,
            tenant,
        } => job::register_version(state, tenant, name, job_id, technique),
        Command::CreateTenant(t) => account::create_tenant(state, t),
        Command::SetTenantTier { tenant_id, tier } => account::set_tier(state, tenant_id, *tier),
        Command::CreateUser(u) => account::create_user(state, u),
        Command::SetPassword {
            username,
            password_hash,
        } => account::set_password(state, username, password_hash),
        Command::SetRole { username, role } => account::set_role(state, username, *role),
        Command::IssueToken(t) => account::issue_token(state, t),
        Command::RevokeToken { username, token_id } => {
            account::revoke_token(state, username, token_id)
        }
    }
}

/// Fold one event into the state. `time_ms` is the event's wall-clock time from its envelope.
pub fn apply(state: &mut State, event: &Event, time_ms: i64) {
    state.apply(event, time_ms)
}

#[cfg(test)]
mod tests;
