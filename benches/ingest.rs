//! Telemetry ingest load test (bounded, loopback only): 8 devices post batches of 1,000 events
//! to a fresh server; reports acknowledged events/s, request latency, projection lag, the
//! `statistics` query time over everything ingested, and the same bytes through `serde_json`
//! alone (the parsing limit) on one core.
//!
//!   cargo bench --bench ingest -- [--events N] [--devices 8] [--batch 1000] [--json OUT]
//!                                  [--data-dir NEW_DIR  (kept afterwards, e.g. for replay)]
//!                                  [--bin OTHER_RUNLEDGER  (e.g. an older build, for A/B)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Opts {
    events: u64,
    devices: usize,
    batch: usize,
    json: Option<String>,
    data_dir: Option<String>,
    /// Another server binary to measure (e.g. an older build, for A/B runs).
    bin: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        events: 2_000_000,
        devices: 8,
        batch: 1000,
        json: None,
        data_dir: None,
        bin: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let next = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--events" => o.events = next().parse().expect("--events N"),
            "--devices" => o.devices = next().parse().expect("--devices N"),
            "--batch" => o.batch = next().parse().expect("--batch N"),
            "--json" => o.json = Some(next()),
            "--data-dir" => o.data_dir = Some(next()),
            "--bin" => o.bin = Some(next()),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// A batch body whose event ids are rewritten in place for every request, so the load
/// generator spends its time sending, not serialising.
struct Template {
    body: Vec<u8>,
    id_offsets: Vec<usize>,
}

const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000000";

impl Template {
    fn new(n: usize, t0: i64) -> Template {
        let events: Vec<Value> = (0..n)
            .map(|i| {
                if i % 4 == 0 {
                    json!({"event_id": PLACEHOLDER, "ts": t0 + i as i64, "kind": "inference",
                           "latency_ms": 12.5 + (i % 17) as f64, "confidence": 0.8 + (i % 7) as f64 / 50.0})
                } else {
                    json!({"event_id": PLACEHOLDER, "ts": t0 + i as i64, "kind": "detection",
                           "ear_value": 0.15 + (i % 11) as f64 / 100.0, "is_drowsy": i % 9 == 0,
                           "duration_ms": (i % 30) as f64 * 100.0, "battery": 90.0 - (i % 50) as f64})
                }
            })
            .collect();
        let body = serde_json::to_vec(&events).unwrap();
        let needle = PLACEHOLDER.as_bytes();
        let id_offsets = body
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect();
        Template { body, id_offsets }
    }

    /// Give every event a fresh id: device, batch and index in the first 24 hex digits.
    fn stamp(&mut self, device: usize, batch: u64) {
        for (i, off) in self.id_offsets.iter().enumerate() {
            let hex = format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}",
                device,
                (batch >> 12) & 0xffff,
                batch & 0xfff,
                i & 0xfff
            );
            self.body[*off..*off + 23].copy_from_slice(hex.as_bytes());
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Stops the server even when the bench panics.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn main() {
    let o = opts();
    let temp = tempfile::tempdir().unwrap();
    let dir = o
        .data_dir
        .as_deref()
        .map_or(temp.path(), std::path::Path::new);
    let bin = o.bin.as_deref().unwrap_or(env!("CARGO_BIN_EXE_runledger"));
    let mut child = Command::new(bin)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start runledger");
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    // A fresh data dir prints the first administrator's token before the address.
    let mut admin = String::new();
    let url = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(t) = line.strip_prefix("RunLedger admin token: ") {
            admin = t.trim().to_string();
        }
        if let Some(u) = line.split("listening on ").nth(1) {
            break u.trim().to_string();
        }
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let keys: Vec<String> = (0..o.devices)
        .map(|i| {
            let v: Value = client
                .post(format!("{url}/api/v1/devices"))
                .bearer_auth(&admin)
                .json(&json!({"name": format!("bench-{i}"), "model_name": "drowsiness", "model_version": "1"}))
                .send()
                .unwrap()
                .json()
                .unwrap();
            v["api_key"].as_str().unwrap().to_string()
        })
        .collect();

    // The parsing limit: the same bytes through serde_json alone, one core.
    let t0 = 1_763_800_000_000;
    let mut tpl = Template::new(o.batch, t0);
    let parse_start = Instant::now();
    let mut parsed = 0u64;
    while parse_start.elapsed() < Duration::from_secs(3) {
        tpl.stamp(99, parsed);
        let v: Vec<Value> = serde_json::from_slice(&tpl.body).unwrap();
        parsed += v.len() as u64;
    }
    let serde_rate = parsed as f64 / parse_start.elapsed().as_secs_f64();
    println!(
        "serde_json::Value parse alone: {:.0} events/s ({} bytes per batch)",
        serde_rate,
        tpl.body.len()
    );

    let per_device = o.events / o.devices as u64 / o.batch as u64;
    let done = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let acks: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    // Projection progress, sampled every 10 ms.
    let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let monitor = {
        let (url, done, samples) = (url.clone(), done.clone(), samples.clone());
        // /health is public, so the monitor needs no token.
        std::thread::spawn(move || {
            let c = reqwest::blocking::Client::new();
            while !done.load(Ordering::Relaxed) {
                if let Ok(r) = c.get(format!("{url}/health")).send() {
                    if let Ok(v) = r.json::<Value>() {
                        let p = v["projection_position"].as_u64().unwrap_or(0);
                        samples.lock().unwrap().push((Instant::now(), p));
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let start = Instant::now();
    let workers: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(d, key)| {
            let (url, key) = (url.clone(), key.clone());
            let (acked, acks, latencies) = (acked.clone(), acks.clone(), latencies.clone());
            let mut tpl = Template::new(o.batch, t0 + d as i64);
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                for b in 0..per_device {
                    tpl.stamp(d, b);
                    let sent = Instant::now();
                    let r = c
                        .post(format!("{url}/api/v1/telemetry/batch"))
                        .bearer_auth(&key)
                        .header("Content-Type", "application/json")
                        .body(tpl.body.clone())
                        .send()
                        .expect("request");
                    let now = Instant::now();
                    assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
                    let v: Value = r.json().unwrap();
                    acked.fetch_add(v["accepted"].as_u64().unwrap(), Ordering::Relaxed);
                    latencies
                        .lock()
                        .unwrap()
                        .push((now - sent).as_secs_f64() * 1e3);
                    acks.lock()
                        .unwrap()
                        .push((now, v["position"].as_u64().unwrap()));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Wait for the projection to catch up before stopping the monitor.
    let last = acks.lock().unwrap().iter().map(|a| a.1).max().unwrap_or(0);
    while samples.lock().unwrap().last().is_none_or(|s| s.1 <= last) {
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();

    let total = acked.load(Ordering::Relaxed);
    let rate = total as f64 / elapsed;
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    let samples = samples.lock().unwrap().clone();
    let mut lags: Vec<f64> = acks
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(t, pos)| {
            samples
                .iter()
                .find(|(_, p)| p > pos)
                .map(|(ts, _)| ts.saturating_duration_since(*t).as_secs_f64() * 1e3)
        })
        .collect();
    lags.sort_by(f64::total_cmp);

    // The statistics query over everything ingested (median of 7 after one warm-up).
    let mut stat_ms: Vec<f64> = (0..8)
        .map(|_| {
            let s = Instant::now();
            let r = client
                .get(format!("{url}/api/v1/analytics/statistics"))
                .bearer_auth(&admin)
                .send()
                .unwrap();
            assert!(
                r.status().is_success(),
                "statistics: {}",
                r.text().unwrap_or_default()
            );
            let _: Value = r.json().unwrap();
            s.elapsed().as_secs_f64() * 1e3
        })
        .skip(1)
        .collect();
    stat_ms.sort_by(f64::total_cmp);

    let result = json!({
        "events_acknowledged": total,
        "seconds": elapsed,
        "events_per_second": rate,
        "request_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99)},
        "projection_lag_ms": {"p50": percentile(&lags, 0.5), "p99": percentile(&lags, 0.99)},
        "statistics_query_ms_median": percentile(&stat_ms, 0.5),
        "serde_json_parse_events_per_second": serde_rate,
        "ratio_to_parse_limit": rate / serde_rate,
        "devices": o.devices,
        "batch": o.batch,
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    if let Some(path) = o.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result).unwrap()).unwrap();
    }
}
