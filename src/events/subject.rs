//! Which experiment or run an event changes, as far as run searches are concerned.

use super::Event;

/// What an event changes among experiments and runs: [`Event::search_subject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchSubject<'a> {
    Experiment(i64),
    /// A run created, with its experiment.
    NewRun(&'a str, i64),
    Run(&'a str),
}

impl Event {
    /// The experiment or run whose searchable data (what `runs/search` filters on and
    /// answers) the event changes. No `_` arm: a new event must say, as a wrong `None` would
    /// let cached searches go stale.
    pub fn search_subject(&self) -> Option<SearchSubject<'_>> {
        match self {
            Event::ExperimentCreated { experiment_id, .. }
            | Event::ExperimentRenamed { experiment_id, .. }
            | Event::ExperimentDeleted { experiment_id }
            | Event::ExperimentRestored { experiment_id }
            | Event::ExperimentTagSet { experiment_id, .. }
            | Event::ExperimentTagDeleted { experiment_id, .. } => {
                Some(SearchSubject::Experiment(*experiment_id))
            }
            Event::RunCreated {
                run_id,
                experiment_id,
                ..
            } => Some(SearchSubject::NewRun(run_id, *experiment_id)),
            Event::RunUpdated { run_id, .. }
            | Event::RunDeleted { run_id }
            | Event::RunRestored { run_id }
            | Event::ParamsLogged { run_id, .. }
            | Event::MetricsLogged { run_id, .. }
            | Event::RunTagsSet { run_id, .. }
            | Event::RunTagDeleted { run_id, .. }
            | Event::DatasetInputsLogged { run_id, .. } => Some(SearchSubject::Run(run_id)),
            Event::ArtifactStored { .. }
            | Event::ArtifactDeleted { .. }
            | Event::DeviceRegistered { .. }
            | Event::DeviceKeyRotated { .. }
            | Event::DeviceKeyRevoked { .. }
            | Event::TelemetryIngested { .. }
            | Event::ModelUploaded { .. }
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
            | Event::ModelVersionRegistered { .. }
            | Event::TenantCreated(_)
            | Event::TenantTierChanged { .. }
            | Event::UserCreated(_)
            | Event::UserPasswordChanged { .. }
            | Event::UserRoleChanged { .. }
            | Event::TokenIssued(_)
            | Event::TokenRevoked { .. } => None,
        }
    }
}
