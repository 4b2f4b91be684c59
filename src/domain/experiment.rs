//! Experiment commands.

use super::validation::{
    check_len, validate_experiment_name, validate_key, KeyKind, MAX_EXPERIMENT_TAG_VALUE_LEN,
};
use super::{DomainError, Experiment, Lifecycle, State};
use crate::events::{Event, KeyValue};

/// The experiment MLflow creates on first start; the fluent client logs to it by default.
pub const DEFAULT_EXPERIMENT_ID: i64 = 0;
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";

/// Artifacts are served by the proxied artifact API, so locations are `mlflow-artifacts:` URIs.
pub fn default_artifact_location(experiment_id: i64) -> String {
    format!("mlflow-artifacts:/{experiment_id}")
}

pub fn not_found(id: i64) -> DomainError {
    DomainError::NotFound(format!("No Experiment with id={id} exists"))
}

pub(super) fn get(state: &State, id: i64) -> Result<&Experiment, DomainError> {
    state.experiment(id).ok_or_else(|| not_found(id))
}

fn get_active(state: &State, id: i64) -> Result<&Experiment, DomainError> {
    let e = get(state, id)?;
    if e.lifecycle != Lifecycle::Active {
        return Err(DomainError::invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is deleted."
        )));
    }
    Ok(e)
}

fn check_name_free(state: &State, tenant: &str, name: &str) -> Result<(), DomainError> {
    if state.experiment_named(tenant, name).is_some() {
        return Err(DomainError::AlreadyExists(format!(
            "Experiment '{name}' already exists."
        )));
    }
    Ok(())
}

fn validate_tag(key: &str, value: &str) -> Result<(), DomainError> {
    validate_key(KeyKind::Tag, key)?;
    check_len("value", value, MAX_EXPERIMENT_TAG_VALUE_LEN)
}

pub(super) fn create(
    state: &State,
    tenant: &str,
    name: &str,
    artifact_location: Option<&str>,
    tags: &[KeyValue],
) -> Result<Vec<Event>, DomainError> {
    validate_experiment_name(name)?;
    check_name_free(state, tenant, name)?;
    for t in tags {
        validate_tag(&t.key, &t.value)?;
    }
    let experiment_id = state.next_experiment_id();
    let artifact_location = match artifact_location {
        Some(loc) if !loc.is_empty() => loc.to_string(),
        _ => default_artifact_location(experiment_id),
    };
    Ok(vec![Event::ExperimentCreated {
        experiment_id,
        name: name.to_string(),
        artifact_location,
        tags: tags.to_vec(),
        tenant: tenant.to_string(),
    }])
}

pub(super) fn rename(state: &State, id: i64, new_name: &str) -> Result<Vec<Event>, DomainError> {
    let e = get(state, id)?;
    if e.lifecycle != Lifecycle::Active {
        return Err(DomainError::InvalidState(format!(
            "Cannot rename a non-active experiment. Experiment {id} is deleted."
        )));
    }
    validate_experiment_name(new_name)?;
    if e.name == new_name {
        return Ok(vec![]);
    }
    check_name_free(state, &e.tenant, new_name)?;
    Ok(vec![Event::ExperimentRenamed {
        experiment_id: id,
        new_name: new_name.to_string(),
    }])
}

pub(super) fn delete(state: &State, id: i64) -> Result<Vec<Event>, DomainError> {
    if id == DEFAULT_EXPERIMENT_ID {
        return Err(DomainError::invalid(
            "Cannot delete the default experiment '0'. This is an internally reserved experiment.",
        ));
    }
    get(state, id)?;
    Ok(vec![Event::ExperimentDeleted { experiment_id: id }])
}

pub(super) fn restore(state: &State, id: i64) -> Result<Vec<Event>, DomainError> {
    let e = get(state, id)?;
    if e.lifecycle == Lifecycle::Active {
        return Err(DomainError::invalid(format!(
            "Cannot restore an active experiment. Experiment {id} is active."
        )));
    }
    Ok(vec![Event::ExperimentRestored { experiment_id: id }])
}

pub(super) fn set_tag(
    state: &State,
    id: i64,
    key: &str,
    value: &str,
) -> Result<Vec<Event>, DomainError> {
    validate_tag(key, value)?;
    get_active(state, id)?;
    Ok(vec![Event::ExperimentTagSet {
        experiment_id: id,
        key: key.to_string(),
        value: value.to_string(),
    }])
}

pub(super) fn delete_tag(state: &State, id: i64, key: &str) -> Result<Vec<Event>, DomainError> {
    let e = get_active(state, id)?;
    if !e.tags.contains_key(key) {
        return Err(DomainError::NotFound(format!(
            "No tag with name: {key} in experiment with id {id}"
        )));
    }
    Ok(vec![Event::ExperimentTagDeleted {
        experiment_id: id,
        key: key.to_string(),
    }])
}
