//! Two tenants on one server: nothing of one is visible to the other, by id, by search filter,
//! by artifact path, by WebSocket or by analytics parameter, and a refusal says no more than a
//! missing id would. Tier quotas hold at their boundaries.

use std::io::{Read, Write};

use serde_json::{json, Value};

use crate::opt_common::{data_dir, model_path};
use crate::support::{spawn_app_with, App};

struct User {
    token: String,
}

fn send(app: &App, u: &User, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = App::client_with(&u.token);
    let url = format!("{}{path}", app.url);
    let r = match method {
        "GET" => c.get(url),
        "PUT" => c.put(url),
        _ => c.post(url),
    };
    let r = match body {
        Some(b) => r.json(&b),
        None => r,
    };
    let resp = r.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn ok(app: &App, u: &User, method: &str, path: &str, body: Value) -> Value {
    let (s, v) = send(app, u, method, path, Some(body));
    assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
    v
}

/// A tenant with an admin user; returns the admin.
fn tenant(app: &App, op: &User, id: &str) -> User {
    ok(
        app,
        op,
        "POST",
        "/api/v1/tenants",
        json!({"tenant_id": id, "name": id, "tier": "free"}),
    );
    ok(
        app,
        op,
        "POST",
        "/api/v1/users",
        json!({"username": format!("{id}-admin"), "password": "long enough password", "role": "admin", "tenant_id": id}),
    );
    let t = ok(
        app,
        op,
        "POST",
        "/api/v1/auth/token",
        json!({"username": format!("{id}-admin"), "password": "long enough password"}),
    );
    User {
        token: t["access_token"].as_str().unwrap().to_string(),
    }
}

fn upload(app: &App, u: &User, bytes: Vec<u8>) -> (u16, Value) {
    let r = App::client_with(&u.token)
        .post(format!("{}/api/v1/models?name=m", app.url))
        .body(bytes)
        .send()
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

/// Status line of a WebSocket upgrade request.
fn ws_status(app: &App, u: &User, path: &str) -> u16 {
    let addr = app.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        u.token
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn tenants_see_nothing_of_each_other_and_quotas_hold() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[jobs]\ndatasets_dir = {:?}\n", data_dir().join("datasets"));
    let app = spawn_app_with(dir.path(), &config);
    let op = User {
        token: app.token.clone().unwrap(),
    };
    let a = tenant(&app, &op, "acme");
    let b = tenant(&app, &op, "globex");

    // Tenant A's data: an experiment, a run with a metric and an artifact, a device with
    // telemetry, a model, a dataset and a job.
    let exp = ok(
        &app,
        &a,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        json!({"name": "shared-name"}),
    )["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = ok(
        &app,
        &a,
        "POST",
        "/api/2.0/mlflow/runs/create",
        json!({"experiment_id": exp}),
    )["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &app,
        &a,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        json!({"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1}),
    );
    let art = format!("/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/secret.txt");
    let put = App::client_with(&a.token)
        .put(format!("{}{art}", app.url))
        .body("acme only")
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let dev = ok(
        &app,
        &a,
        "POST",
        "/api/v1/devices",
        json!({"name": "acme-cam"}),
    );
    let device_id = dev["device"]["device_id"].as_str().unwrap().to_string();
    let key = dev["api_key"].as_str().unwrap().to_string();
    let event_id = uuid::Uuid::new_v4();
    let post = |key: &str| -> Value {
        let t = App::client()
            .post(format!("{}/api/v1/telemetry", app.url))
            .bearer_auth(key)
            .json(&json!({"event_id": event_id, "ts": 1_700_000_000_000i64, "kind": "detection", "fields": {"confidence": 0.9}}))
            .send()
            .unwrap();
        assert_eq!(t.status().as_u16(), 200);
        t.json().unwrap()
    };
    assert_eq!(post(&key)["accepted"], 1);
    let (s, model) = upload(&app, &a, std::fs::read(model_path("mnist-8.onnx")).unwrap());
    assert_eq!(s, 201, "{model}");
    let model_id = model["model_id"].as_str().unwrap().to_string();
    let ds = ok(
        &app,
        &a,
        "POST",
        "/api/v1/datasets",
        json!({"preset": "mnist-calibration"}),
    );
    let dataset_id = ds["dataset_id"].as_str().unwrap().to_string();
    let job_body = |t: &str| json!({"model_id": model_id, "calibration_dataset_id": dataset_id, "techniques": [{"name": t}]});
    let job = ok(&app, &a, "POST", "/api/v1/jobs", job_body("fp16"));
    let job_id = job["job_id"].as_str().unwrap().to_string();

    // By id: answered exactly like a missing id.
    let missing = send(
        &app,
        &b,
        "GET",
        "/api/2.0/mlflow/experiments/get?experiment_id=99999",
        None,
    );
    let foreign = send(
        &app,
        &b,
        "GET",
        &format!("/api/2.0/mlflow/experiments/get?experiment_id={exp}"),
        None,
    );
    assert_eq!(foreign.0, 404, "{}", foreign.1);
    assert_eq!(
        foreign.1["message"].as_str().unwrap().replace(&exp, "N"),
        missing.1["message"].as_str().unwrap().replace("99999", "N")
    );
    for path in [
        format!("/api/2.0/mlflow/runs/get?run_id={run}"),
        format!("/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=loss"),
        format!("/api/2.0/mlflow/artifacts/list?run_id={run}"),
        format!("/api/v1/devices/{device_id}"),
        format!("/api/v1/models/{model_id}"),
        format!("/api/v1/datasets/{dataset_id}"),
        format!("/api/v1/jobs/{job_id}"),
        format!("/api/v1/jobs/{job_id}/recommendation"),
    ] {
        let (s, v) = send(&app, &b, "GET", &path, None);
        assert_eq!(s, 404, "{path}: {v}");
        assert!(!v.to_string().contains("acme"), "{path}: {v}");
    }
    let (s, _) = send(
        &app,
        &b,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Some(json!({"run_id": run, "key": "x", "value": 1, "timestamp": 1})),
    );
    assert_eq!(s, 404);
    let (s, _) = send(
        &app,
        &b,
        "POST",
        &format!("/api/v1/jobs/{job_id}/cancel"),
        None,
    );
    assert_eq!(s, 404);

    // By search filter: B sees none of A's experiments or runs, and may reuse the name.
    let found = ok(
        &app,
        &b,
        "POST",
        "/api/2.0/mlflow/experiments/search",
        json!({"filter": "name = 'shared-name'"}),
    );
    assert!(found.get("experiments").is_none(), "{found}");
    let runs = ok(
        &app,
        &b,
        "POST",
        "/api/2.0/mlflow/runs/search",
        json!({"experiment_ids": [exp], "filter": "metrics.loss < 1"}),
    );
    assert!(runs.get("runs").is_none(), "{runs}");
    ok(
        &app,
        &b,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        json!({"name": "shared-name"}),
    );
    let devices = ok(&app, &b, "GET", "/api/v1/devices", Value::Null);
    assert_eq!(devices["items"], json!([]), "{devices}");
    let jobs = ok(&app, &b, "GET", "/api/v1/jobs", Value::Null);
    assert_eq!(jobs["items"], json!([]), "{jobs}");

    // By artifact path: refused as any path outside B's experiments is; the root lists none.
    let (s, v) = send(&app, &b, "GET", &art, None);
    let (s2, v2) = send(
        &app,
        &b,
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts/99999/x/secret.txt",
        None,
    );
    assert_eq!((s, s2), (403, 403), "{v} {v2}");
    assert_eq!(
        v["message"]
            .as_str()
            .unwrap()
            .replace(&format!("{exp}/{run}/artifacts"), "P"),
        v2["message"].as_str().unwrap().replace("99999/x", "P")
    );
    let root = ok(
        &app,
        &b,
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts",
        Value::Null,
    );
    assert!(!root.to_string().contains(&format!("\"{exp}\"")), "{root}");

    // By WebSocket.
    assert_eq!(ws_status(&app, &b, &format!("/ws/jobs/{job_id}")), 404);
    assert_eq!(ws_status(&app, &a, &format!("/ws/jobs/{job_id}")), 101);

    // By analytics parameter: no tenant parameter exists, and A's device reads as empty.
    let (s, v) = send(
        &app,
        &b,
        "GET",
        "/api/v1/analytics/statistics?tenant=acme",
        None,
    );
    assert_eq!(s, 400, "{v}");
    let stats = ok(
        &app,
        &b,
        "GET",
        &format!("/api/v1/analytics/statistics?device={device_id}"),
        Value::Null,
    );
    assert_eq!(stats["totals"][0]["events"], 0, "{stats}");
    let stats = ok(
        &app,
        &a,
        "GET",
        &format!("/api/v1/analytics/statistics?device={device_id}"),
        Value::Null,
    );
    assert_eq!(stats["totals"][0]["events"], 1, "{stats}");

    // Idempotency is per tenant: B's device reusing A's event id is not a duplicate.
    let b_key = ok(
        &app,
        &b,
        "POST",
        "/api/v1/devices",
        json!({"name": "globex-cam"}),
    )["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let again = post(&b_key);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(1), Some(0)),
        "{again}"
    );
    assert_eq!(
        post(&key)["duplicates"],
        1,
        "A's own retry is still a duplicate"
    );

    // Experiment "0" is each tenant's own default experiment.
    let r = ok(
        &app,
        &b,
        "POST",
        "/api/2.0/mlflow/runs/create",
        json!({"experiment_id": "0"}),
    );
    assert_ne!(r["run"]["info"]["experiment_id"], "0", "{r}");

    // Quotas: free allows 5 jobs a month (A has started 1), models up to 10 MB, no
    // error-compensated techniques.
    for _ in 0..4 {
        ok(&app, &a, "POST", "/api/v1/jobs", job_body("fp16"));
    }
    let usage = ok(&app, &a, "GET", "/api/v1/usage", Value::Null);
    assert_eq!(
        (
            usage["tier"].as_str(),
            usage["jobs_this_month"].as_u64(),
            usage["jobs_remaining"].as_u64()
        ),
        (Some("free"), Some(5), Some(0)),
        "{usage}"
    );
    let (s, v) = send(&app, &a, "POST", "/api/v1/jobs", Some(job_body("fp16")));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (402, Some("QUOTA_EXCEEDED")),
        "{v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("5"), "{v}");
    let (s, v) = send(
        &app,
        &a,
        "POST",
        "/api/v1/jobs",
        Some(job_body("int4-weight")),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("NOT_IN_TIER")),
        "{v}"
    );
    let (s, v) = send(
        &app,
        &b,
        "POST",
        "/api/v1/jobs",
        Some(
            json!({"model_id": "x", "calibration_dataset_id": "y", "techniques": [{"name": "int4-weight"}]}),
        ),
    );
    assert_eq!(s, 404, "B cannot name A's model either: {v}");
    let (s, v) = upload(&app, &a, vec![0u8; 10_000_001]);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("NOT_IN_TIER")),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("10000000"),
        "{v}"
    );

    // The operator upgrades A: the compensated techniques and more jobs open up.
    ok(
        &app,
        &op,
        "PUT",
        "/api/v1/tenants/acme/tier",
        json!({"tier": "pro"}),
    );
    ok(&app, &a, "POST", "/api/v1/jobs", job_body("int4-weight"));
    let (s, v) = send(
        &app,
        &a,
        "PUT",
        "/api/v1/tenants/acme/tier",
        Some(json!({"tier": "enterprise"})),
    );
    assert_eq!(s, 403, "a tenant admin cannot change its own tier: {v}");
    app.stop();
}
