//! Given events, when a command, then events or an error.

use super::*;
use crate::events::Event;

fn given(events: &[Event]) -> State {
    let mut s = State::default();
    for e in events {
        apply(&mut s, e, 1_000);
    }
    s
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
    }
}

fn experiment(id: i64, name: &str) -> Event {
    Event::ExperimentCreated {
        experiment_id: id,
        name: name.into(),
        artifact_location: format!("mlflow-artifacts:/{id}"),
        tags: vec![],
        tenant: "default".into(),
    }
}

fn run(id: &str, exp: i64) -> Event {
    Event::RunCreated {
        run_id: id.into(),
        experiment_id: exp,
        run_name: "r".into(),
        user_id: "u".into(),
        start_time: 1,
        artifact_uri: format!("mlflow-artifacts:/{exp}/{id}/artifacts"),
        tags: vec![kv("mlflow.runName", "r")],
    }
}

fn batch(run_id: &str, params: Vec<KeyValue>) -> Command {
    Command::LogBatch {
        run_id: run_id.into(),
        metrics: vec![],
        params,
        tags: vec![],
    }
}

#[test]
fn create_experiment_takes_next_id_and_default_location() {
    let s = given(&[experiment(0, "Default")]);
    let cmd = Command::CreateExperiment {
        name: "x".into(),
        artifact_location: None,
        tags: vec![],
        tenant: "default".into(),
    };
    assert_eq!(cmd.stream(&s), "experiment-1");
    assert_eq!(decide(&s, &cmd).unwrap(), vec![experiment(1, "x")]);
}

#[test]
fn duplicate_experiment_name_exists_even_when_deleted() {
    let s = given(&[
        experiment(1, "x"),
        Event::ExperimentDeleted { experiment_id: 1 },
    ]);
    let cmd = Command::CreateExperiment {
        name: "x".into(),
        artifact_location: None,
        tags: vec![],
        tenant: "default".into(),
    };
    assert!(matches!(
        decide(&s, &cmd),
        Err(DomainError::AlreadyExists(_))
    ));
}

#[test]
fn rename_deleted_experiment_is_invalid_state() {
    let s = given(&[
        experiment(1, "x"),
        Event::ExperimentDeleted { experiment_id: 1 },
    ]);
    let cmd = Command::RenameExperiment {
        experiment_id: 1,
        new_name: "y".into(),
    };
    assert!(matches!(
        decide(&s, &cmd),
        Err(DomainError::InvalidState(_))
    ));
}

#[test]
fn deleting_experiment_cascades_to_runs_and_restore_reactivates() {
    let mut s = given(&[experiment(1, "x"), run("r1", 1)]);
    apply(&mut s, &Event::ExperimentDeleted { experiment_id: 1 }, 2);
    assert_eq!(s.run("r1").unwrap().lifecycle, Lifecycle::Deleted);
    assert!(decide(&s, &batch("r1", vec![kv("a", "1")])).is_err());
    apply(&mut s, &Event::ExperimentRestored { experiment_id: 1 }, 3);
    assert_eq!(s.run("r1").unwrap().lifecycle, Lifecycle::Active);
}

#[test]
fn params_are_immutable_but_relogging_same_value_is_a_no_op() {
    let s = given(&[
        experiment(1, "x"),
        run("r1", 1),
        Event::ParamsLogged {
            run_id: "r1".into(),
            params: vec![kv("lr", "0.1")],
        },
    ]);
    assert_eq!(
        decide(&s, &batch("r1", vec![kv("lr", "0.1")])).unwrap(),
        vec![]
    );
    assert!(matches!(
        decide(&s, &batch("r1", vec![kv("lr", "0.2")])),
        Err(DomainError::InvalidParameter(_))
    ));
}

#[test]
fn long_param_values_are_truncated_and_duplicate_keys_rejected() {
    let s = given(&[experiment(1, "x"), run("r1", 1)]);
    let events = decide(&s, &batch("r1", vec![kv("p", &"v".repeat(7000))])).unwrap();
    let Event::ParamsLogged { params, .. } = &events[0] else {
        panic!("expected ParamsLogged, got {events:?}");
    };
    assert_eq!(params[0].value.len(), 6000);
    assert!(decide(&s, &batch("r1", vec![kv("p", "1"), kv("p", "2")])).is_err());
}

#[test]
fn batch_limits_are_checked_before_anything() {
    let s = given(&[experiment(1, "x"), run("r1", 1)]);
    let params = (0..101).map(|i| kv(&format!("p{i}"), "1")).collect();
    assert!(decide(&s, &batch("r1", params)).is_err());
}

#[test]
fn run_name_comes_from_argument_tag_or_generator() {
    let s = given(&[experiment(1, "x")]);
    let create = |run_name: Option<&str>, tags: Vec<KeyValue>| Command::CreateRun {
        run_id: "r9".into(),
        experiment_id: 1,
        generated_name: "brave-owl-123".into(),
        run_name: run_name.map(str::to_string),
        user_id: "u".into(),
        start_time: 5,
        tags,
    };
    let name_of = |cmd: &Command| match &decide(&s, cmd).unwrap()[0] {
        Event::RunCreated { run_name, tags, .. } => {
            assert!(tags.contains(&kv("mlflow.runName", run_name)));
            run_name.clone()
        }
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(name_of(&create(Some("mine"), vec![])), "mine");
    assert_eq!(
        name_of(&create(None, vec![kv("mlflow.runName", "tagged")])),
        "tagged"
    );
    assert_eq!(name_of(&create(None, vec![])), "brave-owl-123");
    assert!(decide(&s, &create(Some("a"), vec![kv("mlflow.runName", "b")])).is_err());
}

#[test]
fn deleting_a_missing_tag_is_not_found() {
    let s = given(&[experiment(1, "x"), run("r1", 1)]);
    let cmd = Command::DeleteTag {
        run_id: "r1".into(),
        key: "nope".into(),
    };
    assert!(matches!(decide(&s, &cmd), Err(DomainError::NotFound(_))));
}

#[test]
fn same_dataset_and_context_is_stored_once() {
    use crate::events::{Dataset, DatasetInput};
    let input = DatasetInput {
        dataset: Dataset {
            name: "d".into(),
            digest: "abc".into(),
            source_type: "local".into(),
            source: "{}".into(),
            schema: None,
            profile: None,
        },
        tags: vec![kv("mlflow.data.context", "train")],
    };
    let mut s = given(&[experiment(1, "x"), run("r1", 1)]);
    let cmd = Command::LogInputs {
        run_id: "r1".into(),
        inputs: vec![input.clone(), input],
    };
    let events = decide(&s, &cmd).unwrap();
    assert!(matches!(&events[0], Event::DatasetInputsLogged { inputs, .. } if inputs.len() == 1));
    apply(&mut s, &events[0], 2);
    assert_eq!(decide(&s, &cmd).unwrap(), vec![]);
}

#[test]
fn default_experiment_cannot_be_deleted() {
    let s = given(&[experiment(0, "Default")]);
    assert!(decide(&s, &Command::DeleteExperiment { experiment_id: 0 }).is_err());
}
