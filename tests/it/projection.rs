//! The projection: a rebuild from the log equals the incrementally built tables, and a
//! restart resumes from the checkpoint.

use serde_json::json;

use crate::support::*;

#[test]
fn rebuilt_projection_equals_incremental_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path());
    let e1 = app.create_experiment("p-one");
    let e2 = app.create_experiment("p-two");
    let ok = |path: &str, body: serde_json::Value| {
        let (s, v) = app.post(path, body);
        assert_eq!(s, 200, "{path}: {v}");
    };
    ok(
        "experiments/set-experiment-tag",
        json!({"experiment_id": e1, "key": "team", "value": "edge"}),
    );
    ok(
        "experiments/update",
        json!({"experiment_id": e2, "new_name": "p-two-renamed"}),
    );
    let r1 = app.create_run(&e1);
    let r2 = app.create_run(&e2);
    ok(
        "runs/log-batch",
        json!({"run_id": r1,
        "metrics": (0..300).map(|i| json!({"key": format!("m{}", i % 3), "value": i as f64, "timestamp": i, "step": i})).collect::<Vec<_>>(),
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "t", "value": "v"}]}),
    );
    ok(
        "runs/log-metric",
        json!({"run_id": r1, "key": "nan", "value": "NaN", "timestamp": 5}),
    );
    ok(
        "runs/set-tag",
        json!({"run_id": r1, "key": "mlflow.runName", "value": "renamed"}),
    );
    ok("runs/delete-tag", json!({"run_id": r1, "key": "t"}));
    ok(
        "runs/update",
        json!({"run_id": r1, "status": "FINISHED", "end_time": 99}),
    );
    ok(
        "runs/log-inputs",
        json!({"run_id": r1, "datasets": [{"dataset": {"name": "d", "digest": "x1", "source_type": "local", "source": "{}"}, "tags": [{"key": "mlflow.data.context", "value": "train"}]}]}),
    );
    ok("runs/delete", json!({"run_id": r2}));
    ok("experiments/delete", json!({"experiment_id": e2}));
    ok("experiments/restore", json!({"experiment_id": e2}));
    let put = app
        .authed()
        .put(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{e1}/{r1}/artifacts/a.txt",
            app.url
        ))
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
    app.stop();

    // A restart projects nothing twice.
    let app = spawn_app_in(dir.path());
    let (_, run) = app.get("runs/get", &[("run_id", &r1)]);
    assert_eq!(run["run"]["info"]["run_name"], "renamed");
    assert_eq!(run["run"]["data"]["metrics"].as_array().unwrap().len(), 4);
    assert_eq!(app.history(&r1, "m0").len(), 100);
    app.stop();

    let incremental = dir.path().join("incremental.duckdb");
    std::fs::copy(dir.path().join("projection.duckdb"), &incremental).unwrap();
    rebuild(dir.path());
    assert_same_projection(&incremental, &dir.path().join("projection.duckdb"));
}

/// Request workers run at a lower CPU priority than the projector, so under saturation the
/// projection keeps up (see `yield_to_projection` in `src/server.rs`).
#[cfg(target_os = "linux")]
#[test]
fn request_workers_yield_the_cpu_to_the_projector() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path());
    // Workers start after the ready line; one answered request means they have.
    let health = App::client()
        .get(format!("{}/health", app.url))
        .send()
        .unwrap();
    assert_eq!(health.status(), 200);
    // The nice value of each thread of the server, by thread name (a thread that ends while
    // it is read, such as an idle blocking-pool thread, is skipped).
    let tasks = std::path::PathBuf::from(format!("/proc/{}/task", app.child.id()));
    let mut nice: Vec<(String, i64)> = std::fs::read_dir(&tasks)
        .unwrap()
        .filter_map(|t| {
            let t = t.ok()?.path();
            let comm = std::fs::read_to_string(t.join("comm")).ok()?;
            let stat = std::fs::read_to_string(t.join("stat")).ok()?;
            // Fields after the parenthesised name: state is field 3, nice is field 19.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let n = rest.split(' ').nth(16).unwrap().parse().unwrap();
            Some((comm.trim().to_string(), n))
        })
        .collect();
    nice.sort();
    let of = |prefix: &str| -> Vec<i64> {
        nice.iter()
            .filter(|(c, _)| c.starts_with(prefix))
            .map(|(_, n)| *n)
            .collect()
    };
    let workers = of("actix-server w");
    assert!(!workers.is_empty(), "no request workers among {nice:?}");
    assert!(workers.iter().all(|n| *n == 5), "{nice:?}");
    assert_eq!(of("projector"), [0], "{nice:?}");
    assert_eq!(of("checkpointer"), [0], "{nice:?}");
    app.stop();
}
