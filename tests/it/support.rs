//! `spawn_app()`: start the real server binary and talk to it over HTTP.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

pub const API: &str = "/api/2.0/mlflow";

pub struct App {
    pub url: String,
    /// The first administrator's token, printed once on first start (`None` on a restart).
    pub token: Option<String>,
    pub child: Child,
    stderr: Option<std::thread::JoinHandle<String>>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_runledger")
}

/// Start `runledger serve` on 127.0.0.1:0 over `data_dir` and wait for its ready line.
pub fn spawn_app_in(data_dir: &Path) -> App {
    spawn_app_with(data_dir, "")
}

/// Like [`spawn_app_in`], with `config` as the content of its `runledger.toml`.
pub fn spawn_app_with(data_dir: &Path, config: &str) -> App {
    std::fs::create_dir_all(data_dir).unwrap();
    let config_path = data_dir.join("test-config.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start runledger");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut token = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(t) = line.strip_prefix("RunLedger admin token: ") {
                token = Some(t.trim().to_string());
            }
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = tx.send((url.trim().to_string(), token.clone()));
            }
        }
    });
    let (url, token) = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server did not start: {}",
                stderr.join().unwrap_or_default()
            );
        }
    };
    let token = token.or_else(|| TOKENS.lock().unwrap().get(data_dir).cloned());
    if let Some(t) = &token {
        // A restart over the same data prints no token: remember it per data directory.
        TOKENS
            .lock()
            .unwrap()
            .insert(data_dir.to_path_buf(), t.clone());
    }
    App {
        url,
        token,
        child,
        stderr: Some(stderr),
    }
}

static TOKENS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<PathBuf, String>>> =
    std::sync::LazyLock::new(Default::default);

impl App {
    /// A client without credentials (devices send their own keys).
    pub fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// A client that sends the administrator's token.
    pub fn authed(&self) -> reqwest::blocking::Client {
        Self::client_with(self.token.as_deref().expect("the admin token"))
    }

    /// A client that sends `token` as a bearer token.
    pub fn client_with(token: &str) -> reqwest::blocking::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {token}").parse().unwrap();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .unwrap()
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .authed()
            .post(format!("{}{API}/{path}", self.url))
            .json(&body)
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .authed()
            .get(format!("{}{API}/{path}", self.url))
            .query(query)
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn create_experiment(&self, name: &str) -> String {
        let (s, v) = self.post("experiments/create", json!({ "name": name }));
        assert_eq!(s, 200, "{v}");
        v["experiment_id"].as_str().unwrap().to_string()
    }

    pub fn create_run(&self, exp: &str) -> String {
        let (s, v) = self.post(
            "runs/create",
            json!({ "experiment_id": exp, "start_time": 1 }),
        );
        assert_eq!(s, 200, "{v}");
        v["run"]["info"]["run_id"].as_str().unwrap().to_string()
    }

    /// Full metric history of a run's key, following page tokens.
    pub fn history(&self, run: &str, key: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let (s, v) = self.get(
                "metrics/get-history",
                &[
                    ("run_id", run),
                    ("metric_key", key),
                    ("max_results", "25000"),
                    ("page_token", &token),
                ],
            );
            assert_eq!(s, 200, "{v}");
            out.extend(v["metrics"].as_array().cloned().unwrap_or_default());
            match v["next_page_token"].as_str() {
                Some(t) => token = t.to_string(),
                None => return out,
            }
        }
    }

    /// SIGTERM and wait: the graceful path. Returns stderr.
    pub fn stop(mut self) -> String {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        assert!(status.success(), "server exited with {status}: {err}");
        assert!(!err.contains("panicked"), "server panicked: {err}");
        err
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test that fails half-way must not leave its server running.
impl Drop for App {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run `runledger replay --rebuild` on a data directory.
pub fn rebuild(data_dir: &Path) {
    let out = Command::new(bin())
        .args(["replay", "--rebuild", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rebuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub const TABLES: &[&str] = &[
    "experiments",
    "experiment_tags",
    "runs",
    "run_params",
    "run_tags",
    "latest_metrics",
    "metric_history",
    "run_inputs",
    "artifacts",
    "devices",
    "telemetry_labels",
    "telemetry_rows",
    "telemetry",
    "telemetry_hours",
    "telemetry_bins",
    "models",
    "datasets",
    "jobs",
    "model_versions",
    "projection_checkpoint",
];

/// Assert two projection files hold the same rows in every table (as multisets).
pub fn assert_same_projection(a: &Path, b: &Path) {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS a (READ_ONLY); ATTACH '{}' AS b (READ_ONLY);",
        a.display(),
        b.display()
    ))
    .unwrap();
    for t in TABLES {
        // Rollups are compared merged, as readers see them: compaction runs on a timer, so
        // one copy may hold rows the other has merged, and sums of doubles added in another
        // order may differ in their last bits.
        let source = match *t {
            "telemetry_hours" => "(SELECT label_id, hour_ms, sum(events), min(first_ts_ms), \
                max(last_ts_ms), sum(drowsy_known), sum(drowsy_true) FROM {db}.telemetry_hours GROUP BY ALL)",
            "telemetry_bins" => "(SELECT label_id, hour_ms, field, bin, sum(count), sum(sum)::FLOAT, \
                min(min), max(max) FROM {db}.telemetry_bins GROUP BY ALL)",
            _ => "{db}.{t}",
        };
        let from = |db: &str| source.replace("{db}", db).replace("{t}", t);
        let count = |db: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {db}.{t}"), [], |r| r.get(0))
                .unwrap()
        };
        let diff: i64 = conn
            .query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})) + \
                     (SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}))",
                    a = from("a"),
                    b = from("b")
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            diff,
            0,
            "table {t} differs: {} vs {} rows",
            count("a"),
            count("b")
        );
    }
}

/// The (single) log segment files of a data directory, in order.
pub fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}
