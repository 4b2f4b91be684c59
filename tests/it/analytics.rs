//! Every analytics query through the real server, against values computed here, in JSON and
//! as Arrow.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::*;
use crate::telemetry::{event, Fleet, T0};

/// The lower of the two nearest ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

/// What the statistics promise for percentiles: within 1 % of the exact value.
fn within_one_percent(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() <= 0.01 * b.abs() + 1e-12
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// The `latency_ms` values of the posted events `keep` selects, in order.
fn sorted_latencies(all: &[(usize, Value)], keep: impl Fn(&Value) -> bool) -> Vec<f64> {
    let mut lat: Vec<f64> = all
        .iter()
        .filter(|(_, e)| keep(e))
        .filter_map(|(_, e)| e["latency_ms"].as_f64())
        .collect();
    lat.sort_by(f64::total_cmp);
    lat
}

/// One field's row of a `statistics` answer.
fn field_of<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == name)
        .unwrap()
}

#[test]
fn analytics_match_values_computed_here() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fleet::new(spawn_app_in(dir.path()));
    // A tracking run with offline metrics for model version 3.
    let exp = f.app.create_experiment("drowsiness");
    let run = f.app.create_run(&exp);
    for (k, v) in [("accuracy", 0.93), ("latency_ms", 41.0)] {
        let (s, _) = f.app.post(
            "runs/log-metric",
            json!({"run_id": run, "key": k, "value": v, "timestamp": 1, "step": 0}),
        );
        assert_eq!(s, 200);
    }
    let devices = [
        f.register("a", "3", Some(&run)),
        f.register("b", "3", Some(&run)),
        f.register("c", "4", None),
    ];
    let silent = f.register("never-posts", "4", None);

    // 3 hours of events: device i posts detections and inferences with known values.
    let mut all: Vec<(usize, Value)> = Vec::new();
    for (d, (_, key)) in devices.iter().enumerate() {
        let events: Vec<Value> = (0..120)
            .map(|i| {
                let ts = T0 + i as i64 * 90_000 + d as i64;
                if i % 3 == 0 {
                    event(ts, "inference", json!({"latency_ms": 20.0 + (i * 7 % 50) as f64 + d as f64}))
                } else {
                    let drowsy = (i + d) % 4 == 0;
                    event(ts, "detection", json!({"ear_value": 0.1 + (i % 13) as f64 / 50.0,
                        "is_drowsy": drowsy, "duration_ms": if drowsy { 500.0 + 100.0 * (i % 20) as f64 } else { 100.0 },
                        "label": "cab"}))
                }
            })
            .collect();
        assert_eq!(f.batch(key, &events).0, 200);
        all.extend(events.into_iter().map(|e| (d, e)));
    }

    // statistics, whole range and one device's slice.
    let s = f.analytics("statistics", &[]);
    let totals = &s["totals"][0];
    assert_eq!(totals["events"], 360);
    assert_eq!(totals["devices"], 3);
    let severity = |e: &Value| {
        if e["kind"] == "detection" && e["duration_ms"].as_f64().unwrap() >= 2000.0 {
            "critical"
        } else if e["is_drowsy"] == true {
            "warning"
        } else {
            "info"
        }
    };
    let count = |sev: &str| {
        all.iter()
            .filter(|(_, e)| e["kind"] != "inference" && severity(e) == sev)
            .count()
    };
    assert_eq!(totals["critical"], count("critical") as i64);
    assert_eq!(totals["warnings"], count("warning") as i64);
    let detections: Vec<&Value> = all
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["kind"] == "detection")
        .collect();
    let drowsy = detections.iter().filter(|e| e["is_drowsy"] == true).count() as f64;
    assert!(close(
        &totals["drowsy_rate"],
        drowsy / detections.len() as f64
    ));
    let kinds: BTreeMap<String, i64> = s["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap().to_string(),
                k["events"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds["detection"], 240);
    assert_eq!(kinds["inference"], 120);
    let lat = sorted_latencies(&all, |_| true);
    let field = field_of(&s, "latency_ms");
    assert_eq!(field["count"], 120);
    assert!(close(
        &field["mean"],
        lat.iter().sum::<f64>() / lat.len() as f64
    ));
    for (name, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
        assert!(
            within_one_percent(&field[name], quantile(&lat, q)),
            "{name}: {} vs {}",
            field[name],
            quantile(&lat, q)
        );
    }
    let (dev_b, _) = &devices[1];
    let b = f.analytics(
        "statistics",
        &[("device", dev_b.as_str()), ("kind", "detection")],
    );
    assert_eq!(b["totals"][0]["events"], 80);
    let from = (T0 + 3_600_000).to_string();
    let ranged = f.analytics("statistics", &[("from", &from)]);
    let in_range = all
        .iter()
        .filter(|(_, e)| e["ts"].as_i64().unwrap() >= T0 + 3_600_000)
        .count();
    assert_eq!(ranged["totals"][0]["events"], in_range as i64);
    // Bounds far outside any device time select nothing, and never overflow.
    let far = f.analytics("statistics", &[("from", "9223372036854775000")]);
    assert_eq!(far["totals"][0]["events"], 0);
    // Both ends inside an hour: whole hours come from the rollups, the edges from the rows.
    let (lo, hi) = (T0 + 1_800_000, T0 + 9_000_000);
    let window = f.analytics(
        "statistics",
        &[("from", &lo.to_string()), ("to", &hi.to_string())],
    );
    let ts_in = |e: &Value| (lo..hi).contains(&e["ts"].as_i64().unwrap());
    let inside = all.iter().filter(|(_, e)| ts_in(e)).count();
    assert_eq!(window["totals"][0]["events"], inside as i64);
    let lat = sorted_latencies(&all, ts_in);
    let field = field_of(&window, "latency_ms");
    assert_eq!(field["count"], lat.len() as i64);
    assert!(close(
        &field["mean"],
        lat.iter().sum::<f64>() / lat.len() as f64
    ));
    assert!(close(&field["min"], lat[0]));
    assert!(close(&field["max"], lat[lat.len() - 1]));
    assert!(within_one_percent(&field["p50"], quantile(&lat, 0.5)));

    // hourly per model version.
    let h = f.analytics("hourly", &[("by", "model_version")]);
    let mut expected: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for (d, e) in &all {
        let bucket = e["ts"].as_i64().unwrap() / 3_600_000 * 3_600_000;
        let version = if *d == 2 { "4" } else { "3" };
        *expected.entry((bucket, version.to_string())).or_default() += 1;
    }
    let got: BTreeMap<(i64, String), i64> = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["bucket_start_ms"].as_i64().unwrap(),
                    r["group_key"].as_str().unwrap().to_string(),
                ),
                r["events"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // recent-events: newest first, paginated, filtered.
    let page1 = f.analytics(
        "recent-events",
        &[
            ("limit", "7"),
            ("device", dev_b.as_str()),
            ("kind", "detection"),
        ],
    );
    let page2 = f.analytics(
        "recent-events",
        &[
            ("limit", "7"),
            ("offset", "7"),
            ("device", dev_b.as_str()),
            ("kind", "detection"),
        ],
    );
    let rows: Vec<&Value> = page1["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["events"].as_array().unwrap())
        .collect();
    assert_eq!(rows.len(), 14);
    assert!(rows
        .iter()
        .all(|r| r["device_id"] == dev_b.as_str() && r["kind"] == "detection"));
    let ids: std::collections::BTreeSet<_> = rows
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 14, "pages overlap");
    assert_eq!(rows[0]["fields"]["label"], "cab");
    assert!(
        rows[0]["fields"].get("latency_ms").is_none(),
        "null fields are left out"
    );
    let critical = f.analytics(
        "recent-events",
        &[("severity", "critical"), ("limit", "1000")],
    );
    assert_eq!(
        critical["events"].as_array().unwrap().len(),
        count("critical")
    );

    // device-health: the silent device is flagged, the others are not.
    let health = f.analytics("device-health", &[]);
    let rows = health["devices"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let by_id = |id: &str| rows.iter().find(|r| r["device_id"] == id).unwrap();
    assert_eq!(by_id(&silent.0)["silent"], true);
    assert!(by_id(&silent.0)["last_seen_ms"].is_null());
    assert_eq!(by_id(dev_b.as_str())["silent"], false);
    assert_eq!(by_id(dev_b.as_str())["events"], 120);

    // model-versions: field behaviour beside the run's offline metrics.
    let mv = f.analytics("model-versions", &[]);
    let v3 = mv["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model_version"] == "3")
        .unwrap();
    assert_eq!(v3["devices"], 2);
    assert_eq!(v3["events"], 240);
    assert_eq!(v3["source_run_id"], run.as_str());
    assert!(close(&v3["offline_accuracy"], 0.93));
    assert!(close(&v3["offline_latency_ms"], 41.0));
    let lat3: Vec<f64> = all
        .iter()
        .filter(|(d, _)| *d < 2)
        .filter_map(|(_, e)| e["latency_ms"].as_f64())
        .collect();
    assert!(close(
        &v3["field_mean_latency_ms"],
        lat3.iter().sum::<f64>() / lat3.len() as f64
    ));
    let v4 = mv["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model_version"] == "4")
        .unwrap();
    assert!(v4["offline_accuracy"].is_null());

    // dashboard: the statistics sections plus the rest, and the system status.
    let d = f.analytics("dashboard", &[]);
    assert_eq!(d["totals"][0]["events"], 360);
    assert_eq!(d["top_devices"].as_array().unwrap().len(), 3);
    let mut per_hour: BTreeMap<i64, i64> = BTreeMap::new();
    for (_, e) in &all {
        *per_hour
            .entry(e["ts"].as_i64().unwrap() / 3_600_000 * 3_600_000)
            .or_default() += 1;
    }
    let hours: BTreeMap<i64, i64> = d["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["bucket_start_ms"].as_i64().unwrap(),
                h["events"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(hours, per_hour);
    assert_eq!(
        d["recent_critical"].as_array().unwrap().len(),
        count("critical").min(20)
    );
    assert_eq!(d["system"]["projection_lag_events"], 0);

    // Bad parameters are 400s naming the parameter; unknown queries 404.
    let r = f
        .client
        .get(f.url("analytics/statistics"))
        .query(&[("from", "yesterday")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("'from'"));
    let r = f
        .client
        .get(f.url("analytics/statistics"))
        .query(&[("colour", "red")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = f.client.get(f.url("analytics/nope")).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Arrow output: an IPC stream with the section's columns.
    let r = f
        .client
        .get(f.url("analytics/recent-events"))
        .header("Accept", "application/vnd.apache.arrow.stream")
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    let bytes = r.bytes().unwrap();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 100);
    f.app.stop();
}
