//! Run commands: lifecycle, params, metrics, tags, dataset inputs.

use std::collections::HashMap;

use super::experiment;
use super::state::RUN_NAME_TAG;
use super::validation::*;
use super::{DomainError, Lifecycle, Run, State};
use crate::events::{DatasetInput, Event, KeyValue, MetricPoint};

pub const RUN_STATUSES: [&str; 5] = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

pub(super) struct NewRun<'a> {
    pub run_id: &'a str,
    pub experiment_id: i64,
    pub generated_name: &'a str,
    pub run_name: Option<&'a str>,
    pub user_id: &'a str,
    pub start_time: i64,
    pub tags: &'a [KeyValue],
}

pub fn not_found(run_id: &str) -> DomainError {
    DomainError::NotFound(format!("Run with id={run_id} not found"))
}

fn get<'s>(state: &'s State, run_id: &str) -> Result<&'s Run, DomainError> {
    state.run(run_id).ok_or_else(|| not_found(run_id))
}

fn get_active<'s>(state: &'s State, run_id: &str) -> Result<&'s Run, DomainError> {
    let r = get(state, run_id)?;
    if r.lifecycle != Lifecycle::Active {
        return Err(DomainError::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is deleted."
        )));
    }
    Ok(r)
}

fn truncated_tags(tags: &[KeyValue]) -> Result<Vec<KeyValue>, DomainError> {
    tags.iter()
        .map(|t| {
            validate_key(KeyKind::Tag, &t.key)?;
            Ok(KeyValue {
                key: t.key.clone(),
                value: truncate(&t.value, MAX_TAG_VALUE_LEN),
            })
        })
        .collect()
}

pub(super) fn create(state: &State, new: NewRun<'_>) -> Result<Vec<Event>, DomainError> {
    let exp = experiment::get(state, new.experiment_id)?;
    if exp.lifecycle != Lifecycle::Active {
        return Err(DomainError::invalid(format!(
            "The experiment {} must be in the 'active' state. Current state is deleted.",
            new.experiment_id
        )));
    }
    validate_timestamp("start_time", new.start_time)?;
    let mut tags = truncated_tags(new.tags)?;
    let tag_name = tags
        .iter()
        .find(|t| t.key == RUN_NAME_TAG)
        .map(|t| t.value.clone());
    let run_name = match (new.run_name.filter(|n| !n.is_empty()), tag_name) {
        (Some(name), Some(tag)) if name != tag => {
            return Err(DomainError::invalid(format!(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='{name}', mlflow.runName='{tag}')."
            )))
        }
        (Some(name), _) => name.to_string(),
        (None, Some(tag)) => tag,
        (None, None) => new.generated_name.to_string(),
    };
    if !tags.iter().any(|t| t.key == RUN_NAME_TAG) {
        tags.push(KeyValue {
            key: RUN_NAME_TAG.to_string(),
            value: run_name.clone(),
        });
    }
    Ok(vec![Event::RunCreated {
        run_id: new.run_id.to_string(),
        experiment_id: new.experiment_id,
        run_name,
        user_id: new.user_id.to_string(),
        start_time: new.start_time,
        artifact_uri: format!("{}/{}/artifacts", exp.artifact_location, new.run_id),
        tags,
    }])
}

pub(super) fn update(
    state: &State,
    run_id: &str,
    status: Option<&str>,
    end_time: Option<i64>,
    run_name: Option<&str>,
) -> Result<Vec<Event>, DomainError> {
    get_active(state, run_id)?;
    if let Some(s) = status {
        if !RUN_STATUSES.contains(&s) {
            return Err(DomainError::invalid(format!(
                "Invalid value '{s}' for parameter 'status': must be one of {RUN_STATUSES:?}"
            )));
        }
    }
    if let Some(t) = end_time {
        validate_timestamp("end_time", t)?;
    }
    Ok(vec![Event::RunUpdated {
        run_id: run_id.to_string(),
        status: status.map(str::to_string),
        end_time,
        run_name: run_name.filter(|n| !n.is_empty()).map(str::to_string),
    }])
}

pub(super) fn delete(state: &State, run_id: &str) -> Result<Vec<Event>, DomainError> {
    get(state, run_id)?;
    Ok(vec![Event::RunDeleted {
        run_id: run_id.to_string(),
    }])
}

pub(super) fn restore(state: &State, run_id: &str) -> Result<Vec<Event>, DomainError> {
    get(state, run_id)?;
    Ok(vec![Event::RunRestored {
        run_id: run_id.to_string(),
    }])
}

/// Validation happens for the whole batch before any event is produced.
pub(super) fn log_batch(
    state: &State,
    run_id: &str,
    metrics: &[MetricPoint],
    params: &[KeyValue],
    tags: &[KeyValue],
) -> Result<Vec<Event>, DomainError> {
    if metrics.len() > MAX_BATCH_METRICS
        || params.len() > MAX_BATCH_PARAMS
        || tags.len() > MAX_BATCH_TAGS
        || metrics.len() + params.len() + tags.len() > MAX_BATCH_ENTITIES
    {
        return Err(DomainError::invalid(format!(
            "A batch logging request can contain at most {MAX_BATCH_METRICS} metrics, {MAX_BATCH_PARAMS} params, {MAX_BATCH_TAGS} tags and {MAX_BATCH_ENTITIES} entities in total. Got {} metrics, {} params and {} tags.",
            metrics.len(),
            params.len(),
            tags.len()
        )));
    }
    for m in metrics {
        validate_key(KeyKind::Metric, &m.key)?;
        validate_timestamp("timestamp", m.timestamp)?;
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for p in params {
        validate_key(KeyKind::Param, &p.key)?;
        if let Some(prev) = seen.insert(&p.key, &p.value) {
            if prev != p.value {
                return Err(DomainError::invalid(format!(
                    "Duplicate parameter keys have been submitted: ['{}']. Please ensure the request contains only one param value per param key.",
                    p.key
                )));
            }
        }
    }
    let tags = truncated_tags(tags)?;
    let run = get_active(state, run_id)?;

    let mut new_params = Vec::new();
    for p in params {
        let value = truncate(&p.value, MAX_PARAM_VALUE_LEN);
        match run.params.get(&p.key) {
            Some(old) if *old == value => {}
            Some(old) => {
                return Err(DomainError::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with value='{old}' for run ID='{run_id}'. Attempted logging new value '{value}'.",
                    p.key
                )))
            }
            None if new_params.iter().any(|n: &KeyValue| n.key == p.key) => {}
            None => new_params.push(KeyValue {
                key: p.key.clone(),
                value,
            }),
        }
    }

    let mut events = Vec::new();
    if !new_params.is_empty() {
        events.push(Event::ParamsLogged {
            run_id: run_id.to_string(),
            params: new_params,
        });
    }
    if !tags.is_empty() {
        events.push(Event::RunTagsSet {
            run_id: run_id.to_string(),
            tags,
        });
    }
    if !metrics.is_empty() {
        events.push(Event::MetricsLogged {
            run_id: run_id.to_string(),
            metrics: metrics.to_vec(),
        });
    }
    Ok(events)
}

pub(super) fn delete_tag(
    state: &State,
    run_id: &str,
    key: &str,
) -> Result<Vec<Event>, DomainError> {
    let run = get_active(state, run_id)?;
    if !run.tags.contains_key(key) {
        return Err(DomainError::NotFound(format!(
            "No tag with name: {key} in run with id {run_id}"
        )));
    }
    Ok(vec![Event::RunTagDeleted {
        run_id: run_id.to_string(),
        key: key.to_string(),
    }])
}

pub(crate) fn dataset_key(input: &DatasetInput) -> (String, String, Option<String>) {
    let context = input
        .tags
        .iter()
        .find(|t| t.key == DATASET_CONTEXT_TAG)
        .map(|t| t.value.clone());
    (
        input.dataset.name.clone(),
        input.dataset.digest.clone(),
        context,
    )
}

pub(super) fn log_inputs(
    state: &State,
    run_id: &str,
    inputs: &[DatasetInput],
) -> Result<Vec<Event>, DomainError> {
    for i in inputs {
        let d = &i.dataset;
        check_len("dataset.name", &d.name, MAX_DATASET_NAME_LEN)?;
        check_len("dataset.digest", &d.digest, MAX_DATASET_DIGEST_LEN)?;
        check_len("dataset.source", &d.source, MAX_DATASET_SOURCE_LEN)?;
        check_len(
            "dataset.schema",
            d.schema.as_deref().unwrap_or(""),
            MAX_DATASET_SCHEMA_LEN,
        )?;
        check_len(
            "dataset.profile",
            d.profile.as_deref().unwrap_or(""),
            MAX_DATASET_PROFILE_LEN,
        )?;
        if d.name.is_empty() || d.digest.is_empty() {
            return Err(DomainError::invalid(
                "Missing value for required parameter 'dataset.name' or 'dataset.digest'",
            ));
        }
        for t in &i.tags {
            check_len("input tag key", &t.key, MAX_INPUT_TAG_KEY_LEN)?;
            check_len("input tag value", &t.value, MAX_INPUT_TAG_VALUE_LEN)?;
        }
    }
    let run = get_active(state, run_id)?;
    let mut fresh: Vec<DatasetInput> = Vec::new();
    for i in inputs {
        let key = dataset_key(i);
        if !run.datasets.contains(&key) && !fresh.iter().any(|f| dataset_key(f) == key) {
            fresh.push(i.clone());
        }
    }
    if fresh.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![Event::DatasetInputsLogged {
        run_id: run_id.to_string(),
        inputs: fresh,
    }])
}
