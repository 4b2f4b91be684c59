//! Telemetry through the real server: devices and keys, ingest shapes, idempotency, partial
//! batches, limits, every analytics query against values computed here, and SIGKILL.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

pub const T0: i64 = 1_763_800_000_000; // 2025-11-22T08:26:40Z

pub struct Fleet {
    pub app: App,
    pub client: Client,
}

impl Fleet {
    pub fn new(app: App) -> Fleet {
        Fleet {
            client: app.authed(),
            app,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{path}", self.app.url)
    }

    pub fn register(&self, name: &str, version: &str, run_id: Option<&str>) -> (String, String) {
        let r = self
            .client
            .post(self.url("devices"))
            .json(
                &json!({"name": name, "tags": {"site": "depot"}, "model_name": "drowsiness",
                          "model_version": version, "run_id": run_id}),
            )
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().unwrap();
        (
            v["device"]["device_id"].as_str().unwrap().to_string(),
            v["api_key"].as_str().unwrap().to_string(),
        )
    }

    pub fn post(
        &self,
        path: &str,
        key: &str,
        body: Vec<u8>,
        gzip: bool,
    ) -> (u16, Value, Option<String>) {
        let mut req = self
            .client
            .post(self.url(path))
            .bearer_auth(key)
            .header("Content-Type", "application/json");
        let body = if gzip {
            req = req.header("Content-Encoding", "gzip");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&body).unwrap();
            enc.finish().unwrap()
        } else {
            body
        };
        let r = req.body(body).send().unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("Retry-After")
            .map(|h| h.to_str().unwrap().to_string());
        (status, r.json().unwrap_or(Value::Null), retry)
    }

    pub fn batch(&self, key: &str, events: &[Value]) -> (u16, Value) {
        let (s, v, _) = self.post(
            "telemetry/batch",
            key,
            serde_json::to_vec(events).unwrap(),
            false,
        );
        (s, v)
    }

    pub fn analytics(&self, name: &str, query: &[(&str, &str)]) -> Value {
        let r = self
            .client
            .get(self.url(&format!("analytics/{name}")))
            .query(query)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{name}");
        r.json().unwrap()
    }

    pub fn total(&self) -> i64 {
        self.analytics("statistics", &[])["totals"][0]["events"]
            .as_i64()
            .unwrap()
    }
}

pub fn event(ts: i64, kind: &str, fields: Value) -> Value {
    let mut e = json!({"event_id": Uuid::new_v4().to_string(), "ts": ts, "kind": kind});
    for (k, v) in fields.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

#[test]
fn devices_keys_rotate_and_revoke_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fleet::new(spawn_app_in(dir.path()));
    let (id, key) = f.register("pi-cab-1", "3", None);
    let e = || vec![event(T0, "heartbeat", json!({"battery": 80}))];
    assert_eq!(f.batch(&key, &e()).0, 200);

    let v: Value = f
        .client
        .get(f.url(&format!("devices/{id}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["name"], "pi-cab-1");
    assert_eq!(v["tags"][0]["key"], "site");
    assert_eq!(v["key_state"], "active");
    assert!(v.get("api_key").is_none() && !v.to_string().contains(&key));

    let rotated: Value = f
        .client
        .post(f.url(&format!("devices/{id}/keys/rotate")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let new_key = rotated["api_key"].as_str().unwrap().to_string();
    let (s, v) = f.batch(&key, &e());
    assert_eq!(s, 401, "old key still works: {v}");
    assert_eq!(v["error"]["code"], "UNAUTHENTICATED");
    assert_eq!(f.batch(&new_key, &e()).0, 200);

    let r = f
        .client
        .post(f.url(&format!("devices/{id}/keys/revoke")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(f.batch(&new_key, &e()).0, 401);
    assert_eq!(f.batch("rlk_not-a-key", &e()).0, 401);
    let r = f
        .client
        .post(f.url("telemetry"))
        .json(&e()[0])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "no key at all");

    let list: Value = f
        .client
        .get(f.url("devices"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["items"][0]["key_state"], "revoked");
    let r = f.client.get(f.url("devices/nope")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = f
        .client
        .post(f.url("devices"))
        .json(&json!({"name": ""}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("'name'"),
        "{v}"
    );
    f.app.stop();
}

#[test]
fn retries_are_counted_once_in_every_shape() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fleet::new(spawn_app_in(dir.path()));
    let (_, key) = f.register("pi-1", "3", None);
    let events: Vec<Value> = (0..50)
        .map(|i| event(T0 + i, "inference", json!({"latency_ms": i})))
        .collect();
    let (s, v) = f.batch(&key, &events);
    assert_eq!(
        (s, v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (200, Some(50), Some(0))
    );
    // The same batch retried, then overlapping halves as gzip NDJSON and singles.
    let (_, v) = f.batch(&key, &events);
    assert_eq!(
        (v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (Some(0), Some(50))
    );
    let extra: Vec<Value> = (50..60)
        .map(|i| event(T0 + i, "inference", json!({"latency_ms": i})))
        .collect();
    let ndjson: String = events[40..]
        .iter()
        .chain(&extra)
        .map(|e| e.to_string() + "\n")
        .collect();
    let (s, v, _) = f.post("telemetry/ndjson", &key, ndjson.into_bytes(), true);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (Some(10), Some(10))
    );
    let (s, v, _) = f.post("telemetry", &key, events[0].to_string().into_bytes(), true);
    assert_eq!((s, v["duplicates"].as_i64()), (200, Some(1)));
    // Duplicates inside one request count once too.
    let twice = vec![extra[0].clone(), extra[0].clone()];
    assert_eq!(f.batch(&key, &twice).1["duplicates"], 2);
    assert_eq!(f.total(), 60);

    // The idempotency index survives a restart: it is rebuilt from the log.
    f.app.stop();
    let f = Fleet::new(spawn_app_in(dir.path()));
    let (_, v) = f.batch(&key, &events);
    assert_eq!(v["duplicates"], 50);
    assert_eq!(f.total(), 60);
    f.app.stop();
}

#[test]
fn bad_events_are_named_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fleet::new(spawn_app_in(dir.path()));
    let (_, key) = f.register("pi-1", "3", None);
    let mut events: Vec<Value> = (0..5)
        .map(|i| event(T0 + i, "detection", json!({"ear_value": 0.3})))
        .collect();
    events[1]["ear_value"] = json!("high");
    events[1]["ear_value"] = json!({"nested": true});
    events[3].as_object_mut().unwrap().remove("ts");
    events[4]["EarValue"] = json!(1);
    let (s, v) = f.batch(&key, &events);
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_EVENTS");
    let rejected = v["error"]["details"]["rejected"].as_array().unwrap();
    let named: Vec<(i64, &str)> = rejected
        .iter()
        .map(|e| (e["index"].as_i64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(named, [(1, "ear_value"), (3, "ts"), (4, "EarValue")]);
    assert_eq!(f.total(), 0, "an all-or-nothing batch wrote something");

    let (s, v, _) = f.post(
        "telemetry/batch?mode=partial",
        &key,
        serde_json::to_vec(&events).unwrap(),
        false,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 3);
    assert_eq!(f.total(), 2);

    // Not JSON; not an array; a broken NDJSON line is just one bad event.
    assert_eq!(
        f.post("telemetry/batch", &key, b"[{".to_vec(), false).0,
        400
    );
    assert_eq!(
        f.post("telemetry/batch", &key, b"{}".to_vec(), false).0,
        400
    );
    let lines = format!("{}\n{{oops\n", event(T0, "heartbeat", json!({})));
    let (s, v, _) = f.post(
        "telemetry/ndjson?mode=partial",
        &key,
        lines.into_bytes(),
        false,
    );
    assert_eq!((s, v["accepted"].as_i64()), (200, Some(1)));
    assert_eq!(v["rejected"][0]["index"], 1);
    let (s, _, _) = f.post(
        "telemetry/batch?mode=sometimes",
        &key,
        b"[]".to_vec(),
        false,
    );
    assert_eq!(s, 400);
    f.app.stop();
}

#[test]
fn limits_answer_413_and_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[telemetry]\nmax_body_bytes = 20000\nmax_batch_events = 50\ndevice_rate = 1\ndevice_burst = 6\n";
    let f = Fleet::new(spawn_app_with(dir.path(), config));
    let (_, key) = f.register("pi-1", "3", None);
    let small = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| event(T0 + i as i64, "heartbeat", json!({})))
            .collect()
    };
    let (s, v) = f.batch(&key, &small(51));
    assert_eq!(s, 413, "{v}");
    let big = vec![b' '; 30_000];
    assert_eq!(f.post("telemetry/batch", &key, big, false).0, 413);
    // A small gzip body that inflates past the limit.
    let bomb = format!("[{}]", " ".repeat(200_000)).into_bytes();
    assert_eq!(f.post("telemetry/batch", &key, bomb, true).0, 413);
    // The burst is spent: the next request is refused with a wait.
    let mut refused = None;
    for _ in 0..10 {
        let (s, v, retry) = f.post(
            "telemetry/batch",
            &key,
            serde_json::to_vec(&small(1)).unwrap(),
            false,
        );
        if s == 429 {
            refused = Some((v, retry));
            break;
        }
    }
    let (v, retry) = refused.expect("never rate limited");
    assert_eq!(v["error"]["code"], "RATE_LIMITED");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // Reads and health checks still answer.
    let r = f
        .client
        .get(format!("{}/health", f.app.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    f.analytics("statistics", &[]);
    f.app.stop();
}

#[test]
fn sigkill_during_ingest_keeps_every_acknowledged_event_once() {
    let dir = tempfile::tempdir().unwrap();
    // The re-send below is a flood by design: lift the per-device rate limit.
    let unlimited = "[telemetry]\ndevice_rate = 1000000\ndevice_burst = 1000000\n";
    let app = spawn_app_with(dir.path(), unlimited);
    let f = Fleet::new(app);
    let keys: Vec<String> = (0..4)
        .map(|i| f.register(&format!("d{i}"), "1", None).1)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let url = f.app.url.clone();
    let workers: Vec<_> = keys
        .iter()
        .cloned()
        .map(|key| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = App::client();
                let mut sent: Vec<Vec<Value>> = Vec::new();
                let mut acked = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<Value> = (0..200)
                        .map(|i| event(T0 + i, "inference", json!({"latency_ms": i})))
                        .collect();
                    sent.push(batch.clone());
                    match client
                        .post(format!("{url}/api/v1/telemetry/batch"))
                        .bearer_auth(&key)
                        .json(&batch)
                        .send()
                    {
                        Ok(r) if r.status().is_success() => acked += batch.len(),
                        _ => break,
                    }
                }
                (key, sent, acked)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    f.app.kill();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let acked: usize = results.iter().map(|r| r.2).sum();
    assert!(acked > 1000, "load never ran");

    let f = Fleet::new(spawn_app_with(dir.path(), unlimited));
    let after = f.total() as usize;
    assert!(
        after >= acked,
        "lost acknowledged events: {after} < {acked}"
    );
    // Re-send everything, acknowledged or not: only the missing ones are new, none twice.
    let sent: usize = results
        .iter()
        .map(|r| r.1.iter().map(Vec::len).sum::<usize>())
        .sum();
    for (key, batches, _) in &results {
        for b in batches {
            assert_eq!(f.batch(key, b).0, 200);
        }
    }
    assert_eq!(f.total() as usize, sent);
    f.app.stop();

    // The rows and rollups that survived the crash equal those rebuilt from the log.
    let survived = dir.path().join("survived.duckdb");
    std::fs::copy(dir.path().join("projection.duckdb"), &survived).unwrap();
    rebuild(dir.path());
    assert_same_projection(&survived, &dir.path().join("projection.duckdb"));
}
