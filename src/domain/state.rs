//! In-memory state of every experiment and run, rebuilt from the log. It holds what commands
//! are validated against (names, lifecycles, params, tag keys), not metric values.

use std::collections::{HashMap, HashSet};

use crate::events::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Deleted,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub id: i64,
    pub tenant: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle: Lifecycle,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: HashMap<String, String>,
    pub runs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: String,
    pub experiment_id: i64,
    pub run_name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle: Lifecycle,
    pub params: HashMap<String, String>,
    pub tags: HashMap<String, String>,
    /// (name, digest, context) of logged dataset inputs, to store each once.
    pub datasets: HashSet<(String, String, Option<String>)>,
}

#[derive(Debug, Default, Clone)]
pub struct State {
    pub experiments: HashMap<i64, Experiment>,
    /// (tenant, experiment name) → id: names are unique per tenant.
    pub names: HashMap<(String, String), i64>,
    pub runs: HashMap<String, Run>,
    pub devices: HashMap<String, super::device::Device>,
    /// SHA-256 of each live device key → device id.
    pub device_keys: HashMap<String, String>,
    pub models: HashMap<String, super::job::ModelInfo>,
    pub datasets: HashMap<String, super::job::DatasetInfo>,
    pub jobs: HashMap<String, super::job::JobView>,
    /// (tenant, registered model name) → its latest version.
    pub model_versions: HashMap<(String, String), u64>,
    pub tenants: HashMap<String, super::account::Tenant>,
    pub users: HashMap<String, super::account::User>,
    /// SHA-256 of each live personal access token → the token.
    pub tokens: HashMap<String, super::account::Token>,
    /// Tenant → the times its jobs were queued: usage is counted from the log.
    pub job_starts: HashMap<String, Vec<i64>>,
    max_experiment_id: i64,
}

pub const RUN_NAME_TAG: &str = "mlflow.runName";

impl State {
    pub fn next_experiment_id(&self) -> i64 {
        self.max_experiment_id + 1
    }

    pub fn experiment(&self, id: i64) -> Option<&Experiment> {
        self.experiments.get(&id)
    }

    pub fn run(&self, id: &str) -> Option<&Run> {
        self.runs.get(id)
    }

    /// The experiment named `name` in `tenant`.
    pub fn experiment_named(&self, tenant: &str, name: &str) -> Option<i64> {
        self.names
            .get(&(tenant.to_string(), name.to_string()))
            .copied()
    }

    /// Experiment `0` means each tenant's own default experiment (named `Default`).
    pub fn resolve_experiment(&self, tenant: &str, id: i64) -> i64 {
        use super::experiment::{DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME};
        if id != DEFAULT_EXPERIMENT_ID || tenant == crate::events::DEFAULT_TENANT {
            return id;
        }
        self.experiment_named(tenant, DEFAULT_EXPERIMENT_NAME)
            .unwrap_or(id)
    }

    /// The tenant owning a run (through its experiment).
    pub fn run_tenant(&self, run_id: &str) -> Option<&str> {
        let r = self.runs.get(run_id)?;
        self.experiments
            .get(&r.experiment_id)
            .map(|e| e.tenant.as_str())
    }

    pub(super) fn apply(&mut self, event: &Event, time_ms: i64) {
        match event {
            Event::ExperimentCreated {
                experiment_id,
                name,
                artifact_location,
                tags,
                tenant,
            } => {
                self.max_experiment_id = self.max_experiment_id.max(*experiment_id);
                self.names
                    .insert((tenant.clone(), name.clone()), *experiment_id);
                self.experiments.insert(
                    *experiment_id,
                    Experiment {
                        id: *experiment_id,
                        tenant: tenant.clone(),
                        name: name.clone(),
                        artifact_location: artifact_location.clone(),
                        lifecycle: Lifecycle::Active,
                        creation_time: time_ms,
                        last_update_time: time_ms,
                        tags: tags
                            .iter()
                            .map(|t| (t.key.clone(), t.value.clone()))
                            .collect(),
                        runs: Vec::new(),
                    },
                );
            }
            Event::ExperimentRenamed {
                experiment_id,
                new_name,
            } => {
                if let Some(e) = self.experiments.get_mut(experiment_id) {
                    self.names.remove(&(e.tenant.clone(), e.name.clone()));
                    self.names
                        .insert((e.tenant.clone(), new_name.clone()), *experiment_id);
                    e.name = new_name.clone();
                    e.last_update_time = time_ms;
                }
            }
            Event::ExperimentDeleted { experiment_id } => {
                self.set_experiment_lifecycle(*experiment_id, Lifecycle::Deleted, time_ms)
            }
            Event::ExperimentRestored { experiment_id } => {
                self.set_experiment_lifecycle(*experiment_id, Lifecycle::Active, time_ms)
            }
            Event::ExperimentTagSet {
                experiment_id,
                key,
                value,
            } => {
                if let Some(e) = self.experiments.get_mut(experiment_id) {
                    e.tags.insert(key.clone(), value.clone());
                }
            }
            Event::ExperimentTagDeleted { experiment_id, key } => {
                if let Some(e) = self.experiments.get_mut(experiment_id) {
                    e.tags.remove(key);
                }
            }
            Event::RunCreated {
                run_id,
                experiment_id,
                run_name,
                user_id,
                start_time,
                artifact_uri,
                tags,
            } => {
                if let Some(e) = self.experiments.get_mut(experiment_id) {
                    e.runs.push(run_id.clone());
                }
                self.runs.insert(
                    run_id.clone(),
                    Run {
                        id: run_id.clone(),
                        experiment_id: *experiment_id,
                        run_name: run_name.clone(),
                        user_id: user_id.clone(),
                        status: "RUNNING".to_string(),
                        start_time: *start_time,
                        end_time: None,
                        artifact_uri: artifact_uri.clone(),
                        lifecycle: Lifecycle::Active,
                        params: HashMap::new(),
                        tags: tags
                            .iter()
                            .map(|t| (t.key.clone(), t.value.clone()))
                            .collect(),
                        datasets: HashSet::new(),
                    },
                );
            }
            Event::RunUpdated {
                run_id,
                status,
                end_time,
                run_name,
            } => {
                if let Some(r) = self.runs.get_mut(run_id) {
                    if let Some(s) = status {
                        r.status = s.clone();
                    }
                    if end_time.is_some() {
                        r.end_time = *end_time;
                    }
                    if let Some(n) = run_name {
                        r.run_name = n.clone();
                        r.tags.insert(RUN_NAME_TAG.to_string(), n.clone());
                    }
                }
            }
            Event::RunDeleted { run_id } => self.set_run_lifecycle(run_id, Lifecycle::Deleted),
            Event::RunRestored { run_id } => self.set_run_lifecycle(run_id, Lifecycle::Active),
            Event::ParamsLogged { run_id, params } => {
                if let Some(r) = self.runs.get_mut(run_id) {
                    for p in params {
                        r.params.insert(p.key.clone(), p.value.clone());
                    }
                }
            }
            Event::RunTagsSet { run_id, tags } => {
                if let Some(r) = self.runs.get_mut(run_id) {
                    for t in tags {
                        if t.key == RUN_NAME_TAG {
                            r.run_name = t.value.clone();
                        }
                        r.tags.insert(t.key.clone(), t.value.clone());
                    }
                }
            }
            Event::RunTagDeleted { run_id, key } => {
                if let Some(r) = self.runs.get_mut(run_id) {
                    r.tags.remove(key);
                }
            }
            Event::DatasetInputsLogged { run_id, inputs } => {
                if let Some(r) = self.runs.get_mut(run_id) {
                    for i in inputs {
                        r.datasets.insert(super::run::dataset_key(i));
                    }
                }
            }
            Event::DeviceRegistered { .. }
            | Event::DeviceKeyRotated { .. }
            | Event::DeviceKeyRevoked { .. } => super::device::apply(self, event, time_ms),
            Event::ModelUploaded { .. }
            | Event::DatasetRegistered(_)
            | Event::JobQueued { .. }
            | Event::JobClaimed { .. }
            | Event::BaselineMeasured { .. }
            | Event::TechniqueStarted { .. }
            | Event::TechniqueProgressed { .. }
            | Event::TechniqueCompleted { .. }
            | Event::TechniqueFailed { .. }
            | Event::RecommendationMade { .. }
            | Event::JobCompleted { .. }
            | Event::JobFailed { .. }
            | Event::JobCancelled { .. }
            | Event::ModelVersionRegistered { .. } => super::job::apply(self, event, time_ms),
            Event::TenantCreated(_)
            | Event::TenantTierChanged { .. }
            | Event::UserCreated(_)
            | Event::UserPasswordChanged { .. }
            | Event::UserRoleChanged { .. }
            | Event::TokenIssued(_)
            | Event::TokenRevoked { .. } => super::account::apply(self, event, time_ms),
            // Metric values, artifacts and telemetry live in the projection only.
            Event::MetricsLogged { .. }
            | Event::ArtifactStored { .. }
            | Event::ArtifactDeleted { .. }
            | Event::TelemetryIngested { .. } => {}
        }
    }

    /// Deleting an experiment marks its runs deleted; restoring it reactivates them (MLflow).
    fn set_experiment_lifecycle(&mut self, id: i64, lifecycle: Lifecycle, time_ms: i64) {
        let Some(e) = self.experiments.get_mut(&id) else {
            return;
        };
        e.lifecycle = lifecycle;
        e.last_update_time = time_ms;
        for run_id in &e.runs {
            if let Some(r) = self.runs.get_mut(run_id) {
                r.lifecycle = lifecycle;
            }
        }
    }

    fn set_run_lifecycle(&mut self, run_id: &str, lifecycle: Lifecycle) {
        if let Some(r) = self.runs.get_mut(run_id) {
            r.lifecycle = lifecycle;
        }
    }
}
