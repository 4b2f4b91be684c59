//! Given events, when a job command, then events or an error.

use super::*;
use crate::domain::{apply, decide, Command};
use crate::events::{BoardTarget, KeyValue, VariantResult};
use crate::optimize::recommend::{Constraints, Goal};

fn spec(techniques: &[&str]) -> JobSpec {
    JobSpec {
        name: "j".into(),
        model_id: "m".into(),
        calibration_dataset_id: "d".into(),
        evaluation_dataset_id: "d".into(),
        techniques: techniques
            .iter()
            .map(|t| TechniqueSpec {
                name: t.to_string(),
                label: None,
                sparsity: None,
                fraction: None,
                block: None,
            })
            .collect(),
        boards: vec![BoardTarget {
            board: "rpi4".into(),
            runtime: None,
        }],
        constraints: Constraints::default(),
        goal: Goal::Balanced,
        experiment_id: 0,
        priority: 0,
    }
}

/// A state with experiment 0, its run "p", model "m", dataset "d" and job "j" queued.
fn given() -> State {
    let mut s = State::default();
    let events = [
        Event::ExperimentCreated {
            experiment_id: 0,
            name: "Default".into(),
            artifact_location: "mlflow-artifacts:/0".into(),
            tags: vec![],
            tenant: "default".into(),
        },
        Event::RunCreated {
            run_id: "p".into(),
            experiment_id: 0,
            run_name: "p".into(),
            user_id: "u".into(),
            start_time: 1,
            artifact_uri: "mlflow-artifacts:/0/p/artifacts".into(),
            tags: vec![KeyValue {
                key: "runledger.job_id".into(),
                value: "j".into(),
            }],
        },
        Event::ModelUploaded {
            model_id: "m".into(),
            name: "mnist".into(),
            sha256: "a".repeat(64),
            size_bytes: 10,
            summary: serde_json::json!({}),
            tenant: "default".into(),
        },
        Event::DatasetRegistered(DatasetInfo {
            dataset_id: "d".into(),
            name: "d".into(),
            source: "upload".into(),
            inputs_sha256: "b".repeat(64),
            labels_sha256: None,
            preprocess: serde_json::json!({}),
            samples: 1,
            sample_shape: vec![1],
            tenant: "default".into(),
        }),
    ];
    for e in &events {
        apply(&mut s, e, 1);
    }
    run(
        &mut s,
        Command::QueueJob {
            job_id: "j".into(),
            spec: spec(&["fp16", "int8-weight"]),
            parent_run_id: "p".into(),
            tenant: "default".into(),
            now_ms: 2,
        },
    )
    .unwrap();
    s
}

fn run(s: &mut State, c: Command) -> Result<Vec<Event>, DomainError> {
    let events = decide(s, &c)?;
    for e in &events {
        apply(s, e, 2);
    }
    Ok(events)
}

fn claim(worker: &str) -> Command {
    Command::ClaimJob {
        job_id: "j".into(),
        worker: worker.into(),
    }
}

fn step(worker: &str, event: Event) -> Command {
    Command::JobStep {
        worker: worker.into(),
        event,
    }
}

fn completed(t: &str) -> Event {
    Event::TechniqueCompleted {
        job_id: "j".into(),
        technique: t.into(),
        result: VariantResult {
            sha256: "c".repeat(64),
            size_bytes: 5,
            accuracy: Some(0.9),
            agreement: Some(1.0),
            sqnr_db: None,
            host_latency_ms: None,
            estimates: Default::default(),
            artifact_path: None,
            seconds: 1.0,
        },
    }
}

#[test]
fn specs_are_checked_field_by_field() {
    let s = given();
    let err = |sp: JobSpec| validate_spec(&s, "default", &sp).unwrap_err().to_string();
    assert!(err(JobSpec {
        model_id: "x".into(),
        ..spec(&["fp16"])
    })
    .contains("model_id"));
    assert!(err(spec(&[])).contains("techniques"));
    assert!(err(spec(&["int3"])).contains("techniques[0]"));
    assert!(err(spec(&["fp16", "fp16"])).contains("appears twice"));
    let mut bad_board = spec(&["fp16"]);
    bad_board.boards[0].board = "pdp11".into();
    assert!(err(bad_board).contains("boards[0].board"));
    let mut bad_runtime = spec(&["fp16"]);
    bad_runtime.boards[0].runtime = Some("cmsis-nn".into());
    assert!(err(bad_runtime).contains("does not run on rpi4"));
    let mut sparse = spec(&["prune-unstructured"]);
    sparse.techniques[0].sparsity = Some(1.5);
    assert!(err(sparse).contains("sparsity"));
    assert!(validate_spec(&s, "default", &spec(&["hybrid", "int4-weight"])).is_ok());
}

#[test]
fn one_worker_wins_a_claim_and_only_its_node_may_resume() {
    let mut s = given();
    run(&mut s, claim("n1/boot1")).unwrap();
    assert!(matches!(
        run(&mut s, claim("n2/boot1")),
        Err(DomainError::InvalidState(_))
    ));
    assert!(
        run(&mut s, claim("n1/boot1")).is_err(),
        "the holder re-claiming"
    );
    // After a restart the same node takes its job back.
    run(&mut s, claim("n1/boot2")).unwrap();
    assert_eq!(s.jobs["j"].worker.as_deref(), Some("n1/boot2"));
    assert!(run(&mut s, step("n1/boot1", completed("fp16"))).is_err());
}

#[test]
fn results_are_recorded_once_and_nothing_after_a_cancel() {
    let mut s = given();
    run(&mut s, claim("n/1")).unwrap();
    run(&mut s, step("n/1", completed("fp16"))).unwrap();
    assert!(matches!(
        run(&mut s, step("n/1", completed("fp16"))),
        Err(DomainError::InvalidState(_))
    ));
    assert!(run(&mut s, step("n/1", completed("int4-weight"))).is_err());
    let j = &s.jobs["j"];
    assert_eq!(j.finished_techniques(), 1);
    assert_eq!(j.progress_percent(), 50.0);

    run(&mut s, Command::CancelJob { job_id: "j".into() }).unwrap();
    assert_eq!(s.jobs["j"].status, JobStatus::Cancelled);
    assert!(run(&mut s, Command::CancelJob { job_id: "j".into() })
        .unwrap()
        .is_empty());
    assert!(run(&mut s, step("n/1", completed("int8-weight"))).is_err());
}

#[test]
fn versions_count_up_with_lineage() {
    let mut s = given();
    run(&mut s, claim("n/1")).unwrap();
    let reg = |s: &mut State, t: &str| {
        run(
            s,
            Command::RegisterModelVersion {
                name: "edge".into(),
                job_id: "j".into(),
                technique: t.into(),
                tenant: "default".into(),
            },
        )
    };
    assert!(matches!(
        reg(&mut s, "fp16"),
        Err(DomainError::InvalidState(_))
    ));
    run(&mut s, step("n/1", completed("fp16"))).unwrap();
    for v in 1..=2 {
        match &reg(&mut s, "fp16").unwrap()[0] {
            Event::ModelVersionRegistered {
                version,
                source_model_id,
                ..
            } => {
                assert_eq!(*version, v);
                assert_eq!(source_model_id, "m");
            }
            e => panic!("{e:?}"),
        }
    }
    assert!(matches!(reg(&mut s, "nope"), Err(DomainError::NotFound(_))));
}

#[test]
fn devices_name_registered_versions() {
    use crate::domain::device::NewDevice;
    let mut s = given();
    run(&mut s, claim("n/1")).unwrap();
    run(&mut s, step("n/1", completed("fp16"))).unwrap();
    run(
        &mut s,
        Command::RegisterModelVersion {
            name: "edge".into(),
            job_id: "j".into(),
            technique: "fp16".into(),
            tenant: "default".into(),
        },
    )
    .unwrap();
    let device = |id: &str, model: &str, version: &str| {
        Command::RegisterDevice(NewDevice {
            device_id: id.into(),
            name: id.into(),
            tags: vec![],
            model_name: Some(model.into()),
            model_version: Some(version.into()),
            run_id: None,
            key_hash: id.into(),
            tenant: "default".into(),
        })
    };
    run(&mut s, device("d1", "edge", "1")).unwrap();
    let e = run(&mut s, device("d2", "edge", "2")).unwrap_err();
    assert!(e.to_string().contains("model_version"), "{e}");
    // A model not in this registry is taken as given.
    run(&mut s, device("d3", "elsewhere", "v7")).unwrap();
}
