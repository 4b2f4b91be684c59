//! Optimization jobs through the real server: bad uploads leave nothing behind; kill -9 in
//! the middle of a job, restart, and it completes with no technique result twice; cancel
//! stops a running job; the winner downloads and loads in tract; a variant registers as a
//! model version. (Progress over WebSocket and the MLflow run tree: tests/python/test_jobs.py.)

use std::path::Path;
use std::time::{Duration, Instant};

use runledger::log::EventLog;
use serde_json::{json, Value};

use crate::opt_common::{data_dir, model_path};
use crate::support::{spawn_app_with, App};

fn config(extra: &str) -> String {
    format!(
        "[jobs]\ndatasets_dir = {:?}\nprogress_interval_ms = 50\n{extra}",
        data_dir().join("datasets")
    )
}

fn api(app: &App, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = app.authed();
    let url = format!("{}/api/v1/{path}", app.url);
    let r = match (method, body) {
        ("GET", _) => c.get(url),
        (_, Some(b)) => c.post(url).json(&b),
        (_, None) => c.post(url),
    }
    .send()
    .expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn upload(app: &App, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = app
        .authed()
        .post(format!("{}/api/v1/models?name={name}", app.url))
        .body(bytes)
        .send()
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Upload `model` and the MNIST presets; start a job with `techniques` on two boards.
fn start_job(app: &App, model: &str, techniques: &[&str]) -> String {
    let (s, m) = upload(app, model, std::fs::read(model_path(model)).unwrap());
    assert_eq!(s, 201, "{m}");
    let preset = |p: &str| {
        let (s, d) = api(app, "POST", "datasets", Some(json!({ "preset": p })));
        assert_eq!(s, 201, "{d}");
        d["dataset_id"].as_str().unwrap().to_string()
    };
    let (calib, eval) = (preset("mnist-calibration"), preset("mnist-evaluation"));
    let (s, job) = api(
        app,
        "POST",
        "jobs",
        Some(json!({
            "model_id": m["model_id"],
            "calibration_dataset_id": calib,
            "evaluation_dataset_id": eval,
            "techniques": techniques.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
            "boards": [{"board": "rpi4"}, {"board": "stm32h743", "runtime": "cmsis-nn"}],
            "constraints": {"max_accuracy_drop": 1.0},
        })),
    );
    assert_eq!(s, 201, "{job}");
    job["job_id"].as_str().unwrap().to_string()
}

fn wait_job(app: &App, id: &str, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, j) = api(app, "GET", &format!("jobs/{id}"), None);
        assert_eq!(s, 200, "{j}");
        if until(&j) {
            return j;
        }
        assert!(Instant::now() < deadline, "job never got there: {j}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finished(j: &Value) -> bool {
    ["completed", "failed", "cancelled"].contains(&j["status"].as_str().unwrap_or_default())
}

fn count(j: &Value, status: &str) -> usize {
    j["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == status)
        .count()
}

/// The job's events in the log, as (type, technique).
fn job_events(data: &Path, job_id: &str) -> Vec<(String, String)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let log = runledger::log::embedded::EmbeddedLog::open(&data.join("log"))
            .await
            .unwrap();
        let recs = log
            .read_stream(&format!("job-{job_id}"), 0, 100_000)
            .await
            .unwrap();
        log.close().await.unwrap();
        recs.iter()
            .map(|r| {
                let e: Value = serde_json::from_slice(&r.payload).unwrap();
                let t = e["data"]["technique"].as_str().unwrap_or_default();
                (r.event_type.clone(), t.to_string())
            })
            .collect()
    })
}

fn blob_files(data: &Path) -> usize {
    ["blobs/sha256", "blobs/tmp"]
        .iter()
        .map(|d| std::fs::read_dir(data.join(d)).map_or(0, |r| r.count()))
        .sum()
}

#[test]
fn bad_uploads_get_a_4xx_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), &config("max_model_bytes = 100000"));
    let before = blob_files(dir.path());
    let good = std::fs::read(model_path("mnist-8.onnx")).unwrap();

    let (s, e) = upload(&app, "text", b"this is not a model".to_vec());
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("ONNX"),
        "{e}"
    );
    let (s, e) = upload(&app, "truncated", good[..good.len() / 2].to_vec());
    assert_eq!(s, 400, "{e}");
    let (s, e) = upload(&app, "empty", vec![]);
    assert_eq!(s, 400, "{e}");
    let (s, e) = upload(
        &app,
        "big",
        std::fs::read(model_path("mnist-mlp.onnx")).unwrap(),
    );
    assert_eq!(s, 413, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("100000"),
        "{e}"
    );
    assert_eq!(
        blob_files(dir.path()),
        before,
        "a refused upload left a file"
    );

    // The same bytes twice: two models, one stored file.
    let (s, a) = upload(&app, "a", good.clone());
    assert_eq!(s, 201, "{a}");
    let (s, b) = upload(&app, "b", good);
    assert_eq!(s, 201, "{b}");
    assert_eq!(a["sha256"], b["sha256"]);
    assert_eq!(blob_files(dir.path()), before + 1);

    // Bad job requests name the field.
    let (s, e) = api(&app, "POST", "datasets", Some(json!({"preset": "cifar"})));
    assert_eq!(s, 400, "{e}");
    let (s, e) = api(
        &app,
        "POST",
        "jobs",
        Some(
            json!({"model_id": a["model_id"], "calibration_dataset_id": "nope", "techniques": [{"name": "fp16"}]}),
        ),
    );
    assert_eq!(s, 404, "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("calibration_dataset_id"));
    let (s, e) = api(&app, "GET", "jobs/nope", None);
    assert_eq!(s, 404, "{e}");
    // No job and no run were created by the refused request.
    let (_, runs) = app.post("runs/search", json!({"experiment_ids": ["0"]}));
    assert!(runs.get("runs").is_none(), "{runs}");
}

#[test]
fn kill_9_mid_job_then_restart_completes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), &config(""));
    let techniques = ["int8-static", "prune-unstructured", "fp16"];
    let id = start_job(&app, "mnist-8.onnx", &techniques);
    // Kill once the first technique finished and the next is running.
    wait_job(&app, &id, |j| count(j, "completed") >= 1 || finished(j));
    app.kill();
    let before = job_events(dir.path(), &id);
    assert!(
        !before.iter().any(|(t, _)| t == "JobCompleted"),
        "the job finished before the kill; nothing was resumed"
    );

    let app = spawn_app_with(dir.path(), &config(""));
    let j = wait_job(&app, &id, finished);
    assert_eq!(j["status"], "completed", "{j}");
    assert_eq!(count(&j, "completed"), 3);
    assert!(j["recommendation"]["winner"].is_string(), "{j}");
    app.stop();

    let events = job_events(dir.path(), &id);
    for t in techniques {
        let n = events
            .iter()
            .filter(|(e, k)| e == "TechniqueCompleted" && k == t)
            .count();
        assert_eq!(n, 1, "{t} completed {n} times: {events:?}");
    }
    // Techniques finished before the kill were not started again.
    let done_before: Vec<&String> = before
        .iter()
        .filter(|(e, _)| e == "TechniqueCompleted")
        .map(|(_, k)| k)
        .collect();
    for k in done_before {
        let starts = events
            .iter()
            .filter(|(e, t)| e == "TechniqueStarted" && t == k)
            .count();
        assert_eq!(starts, 1, "{k} was redone");
    }
    assert_eq!(events.iter().filter(|(e, _)| e == "JobClaimed").count(), 2);
}

#[test]
fn cancel_stops_a_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), &config(""));
    let id = start_job(
        &app,
        "mnist-mlp.onnx",
        &["int4-weight", "prune-unstructured", "int8-static", "fp16"],
    );
    wait_job(&app, &id, |j| {
        j["techniques"][0]["progress_percent"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
            || finished(j)
    });
    let (s, j) = api(&app, "POST", &format!("jobs/{id}/cancel"), None);
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["status"], "cancelled");
    // Cancelling again is a no-op; the job stays cancelled and nothing more is recorded.
    let (s, _) = api(&app, "POST", &format!("jobs/{id}/cancel"), None);
    assert_eq!(s, 200);
    std::thread::sleep(Duration::from_secs(2));
    let (_, j) = api(&app, "GET", &format!("jobs/{id}"), None);
    assert_eq!(j["status"], "cancelled");
    assert!(count(&j, "completed") < 4, "{j}");
    let (s, e) = api(&app, "GET", &format!("jobs/{id}/recommendation"), None);
    assert_eq!(s, 409, "{e}");
    app.stop();
    let events = job_events(dir.path(), &id);
    let at = events
        .iter()
        .position(|(e, _)| e == "JobCancelled")
        .expect("JobCancelled in the log");
    assert_eq!(at, events.len() - 1, "events after the cancel: {events:?}");
}

#[test]
fn winner_downloads_loads_in_tract_and_registers_as_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(dir.path(), &config(""));
    let id = start_job(&app, "mnist-8.onnx", &["int8-static", "fp16"]);
    let j = wait_job(&app, &id, finished);
    assert_eq!(j["status"], "completed", "{j}");
    let winner = j["recommendation"]["winner"].as_str().unwrap().to_string();

    let r = app
        .authed()
        .get(format!(
            "{}/api/v1/jobs/{id}/variants/{winner}/model",
            app.url
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bytes = r.bytes().unwrap();
    let model = runledger::optimize::model::OnnxModel::from_bytes(&bytes).unwrap();
    model
        .runner(1)
        .expect("the downloaded winner runs in tract");
    let expected = if winner == "original" {
        j["baseline"]["sha256"].clone()
    } else {
        j["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == winner.as_str())
            .unwrap()["result"]["sha256"]
            .clone()
    };
    assert_eq!(json!(runledger::jobs::work::sha256_hex(&bytes)), expected);
    let r = app
        .authed()
        .get(format!("{}/api/v1/jobs/{id}/variants/int3/model", app.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Register it twice: versions 1 and 2 with lineage.
    for v in 1..=2 {
        let (s, mv) = api(
            &app,
            "POST",
            "registered-models/mnist-edge/versions",
            Some(json!({"job_id": id, "technique": winner})),
        );
        assert_eq!(s, 201, "{mv}");
        assert_eq!(mv["version"], v);
        assert_eq!(mv["job_id"], id.as_str());
        assert_eq!(mv["source_model_id"], j["spec"]["model_id"]);
        assert_eq!(mv["sha256"], expected);
    }
    let (_, list) = api(&app, "GET", "registered-models/mnist-edge/versions", None);
    assert_eq!(list["versions"].as_array().unwrap().len(), 2);

    // The recommendation recomputed under another goal, without re-running anything.
    let (s, rec) = api(
        &app,
        "POST",
        &format!("jobs/{id}/recommendation"),
        Some(json!({"goal": "minimize_size"})),
    );
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["goal"], "minimize_size");
    assert_eq!(rec["winner"], "int8-static");
    let (s, e) = api(
        &app,
        "POST",
        &format!("jobs/{id}/recommendation"),
        Some(json!({"goal": "fastest"})),
    );
    assert_eq!(s, 400, "{e}");
    let (_, page) = api(&app, "GET", "jobs", None);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}
