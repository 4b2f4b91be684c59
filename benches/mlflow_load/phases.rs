//! The phases and their fixtures: what each worker sends, and the checks on the answers.

use std::cell::{Cell, RefCell};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{now_ms, run_workers, Client, Opts};

const SEARCH_EXP: &str = "load-search-2000runs-rs-v1";
const HISTORY_EXP: &str = "load-history-10k-rs-v1";
const SEARCH_RUNS: usize = 2000;
const HISTORY_STEPS: usize = 10_000;

fn metrics_batch(base_step: i64, ts: i64, rng: &mut impl Rng) -> Value {
    let metrics: Vec<Value> = (0..10)
        .flat_map(|k| (0..10).map(move |s| (k, s)))
        .map(|(k, s)| json!({"key": format!("m{k}"), "value": rng.random::<f64>(), "timestamp": ts, "step": base_step + s}))
        .collect();
    json!({ "metrics": metrics })
}

pub async fn a2(c: &Client, o: &Opts) -> Option<Vec<Value>> {
    let runs = c.ingest_runs(o.concurrency).await?;
    let steps = RefCell::new(vec![0i64; o.concurrency]);
    let st = run_workers(o.concurrency, o.duration, usize::MAX, |w| {
        let base = {
            let mut s = steps.borrow_mut();
            s[w] += 10;
            s[w] - 10
        };
        let mut body = metrics_batch(base, now_ms(), &mut rand::rng());
        body["run_id"] = json!(runs[w]);
        async move {
            c.call(true, "/runs/log-batch", &body, false)
                .await
                .map(|(_, dt)| (dt, 100))
        }
    })
    .await;
    Some(vec![
        st.row("a2) log-batch(100) into existing run", o.concurrency)
    ])
}

pub async fn b(c: &Client, o: &Opts) -> Option<Vec<Value>> {
    let runs = c.ingest_runs(o.concurrency).await?;
    let steps = RefCell::new(vec![0i64; o.concurrency]);
    let st = run_workers(o.concurrency, o.duration, usize::MAX, |w| {
        steps.borrow_mut()[w] += 1;
        let body = json!({"run_id": runs[w], "key": "loss", "value": rand::rng().random::<f64>(),
                          "timestamp": now_ms(), "step": steps.borrow()[w]});
        async move {
            c.call(true, "/runs/log-metric", &body, false)
                .await
                .map(|(_, dt)| (dt, 1))
        }
    })
    .await;
    let q = json!({"run_id": runs[0], "metric_key": "loss", "max_results": "25000"});
    let (h, _) = c.call(false, "/metrics/get-history", &q, true).await?;
    let n = h["metrics"].as_array().map_or(0, Vec::len) as i64;
    c.check(
        n == steps.borrow()[0],
        format!(
            "b) history of worker 0 has {n} points, sent {}",
            steps.borrow()[0]
        ),
    );
    Some(vec![st.row("b) log-metric (single value)", o.concurrency)])
}

/// Params and metrics of one run, in the order they are logged.
type Fixture = (Vec<(&'static str, String)>, Vec<(&'static str, f64)>);

/// The params and metrics of search-fixture run `i`, from a seeded generator.
fn search_fixture(i: usize) -> Fixture {
    let mut r = rand::rngs::StdRng::seed_from_u64(i as u64);
    let lr = ["0.001", "0.01", "0.1"][r.random_range(0..3)];
    let params = vec![
        ("lr", lr.to_owned()),
        ("batch", [16, 32, 64][r.random_range(0..3)].to_string()),
        ("opt", ["adam", "sgd"][r.random_range(0..2)].to_owned()),
        ("depth", r.random_range(1..=8).to_string()),
        ("seed", i.to_string()),
    ];
    let round = |x: f64| (x * 1e6).round() / 1e6;
    let metrics = vec![
        ("acc", round(r.random())),
        ("loss", round(r.random::<f64>() * 3.0)),
        ("f1", round(r.random())),
        ("auc", round(r.random())),
        ("epoch_time", round(r.random::<f64>() * 100.0)),
    ];
    (params, metrics)
}

async fn ensure_search_fixture(c: &Client, conc: usize) -> Option<String> {
    let (exp, tags) = c.experiment(SEARCH_EXP).await?;
    if tags
        .iter()
        .any(|(k, v)| k == "load.complete" && v == &SEARCH_RUNS.to_string())
    {
        return Some(exp);
    }
    let ts = now_ms();
    let next = RefCell::new(0..SEARCH_RUNS);
    let (next, exp) = (&next, &exp);
    let make = (0..conc).map(|_| async move {
        loop {
            let Some(i) = next.borrow_mut().next() else { return Some(()) };
            let run = c.create_run(exp, Some(format!("s-{i:04}"))).await?;
            let (params, metrics) = search_fixture(i);
            let body = json!({
                "run_id": run,
                "params": params.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                "metrics": metrics.iter().map(|(k, v)| json!({"key": k, "value": v, "timestamp": ts, "step": 0})).collect::<Vec<_>>(),
            });
            c.call(true, "/runs/log-batch", &body, false).await?;
        }
    });
    for r in futures::future::join_all(make).await {
        r?;
    }
    let tag =
        json!({"experiment_id": exp, "key": "load.complete", "value": SEARCH_RUNS.to_string()});
    c.call(true, "/experiments/set-experiment-tag", &tag, false)
        .await?;
    Some(exp.clone())
}

pub async fn c(c: &Client, o: &Opts) -> Option<Vec<Value>> {
    let exp = ensure_search_fixture(c, o.concurrency).await?;
    let mut expected: Vec<f64> = (0..SEARCH_RUNS)
        .map(search_fixture)
        .filter(|(p, m)| m[0].1 > 0.5 && p[0].1 == "0.01")
        .map(|(_, m)| m[0].1)
        .collect();
    expected.sort_by(|a, b| b.total_cmp(a));
    let body = json!({"experiment_ids": [exp], "filter": "metrics.acc > 0.5 and params.lr = '0.01'",
                      "order_by": ["metrics.acc DESC"], "max_results": 100, "run_view_type": "ACTIVE_ONLY"});
    // Correctness first: page through everything once.
    let (mut got, mut token) = (Vec::new(), None::<String>);
    for _ in 0..100 {
        let mut b = body.clone();
        if let Some(t) = &token {
            b["page_token"] = json!(t);
        }
        let (v, _) = c.call(true, "/runs/search", &b, true).await?;
        for run in v["runs"].as_array().into_iter().flatten() {
            let acc = run["data"]["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["key"] == "acc");
            got.push(acc.and_then(|m| m["value"].as_f64()).unwrap_or(f64::NAN));
        }
        token = v["next_page_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    c.check(
        got == expected,
        format!(
            "c) paged search returned {} runs, expected {}",
            got.len(),
            expected.len()
        ),
    );
    let (want, body) = (expected.len().min(100), &body);
    let mut rows = Vec::new();
    for conc in [1, o.search_concurrency] {
        let st = run_workers(conc, o.duration, usize::MAX, |_| async move {
            let (v, dt) = c.call(true, "/runs/search", body, true).await?;
            let n = v["runs"].as_array().map_or(0, Vec::len);
            c.check(n == want, format!("c) page has {n} runs, expected {want}"));
            Some((dt, n as u64))
        })
        .await;
        rows.push(st.row(
            &format!(
                "c) search-runs page of 100 ({} match / {SEARCH_RUNS})",
                expected.len()
            ),
            conc,
        ));
    }
    // The same search right after a write to its experiment, so that no server can answer
    // it from a cache: one client; the write is not timed, and the rate is per second of
    // searching (the sum of the search latencies).
    let i = Cell::new(0u64);
    let (i, exp) = (&i, &exp);
    let mut st = run_workers(1, o.duration, usize::MAX, |_| async move {
        i.set(i.get() + 1);
        let tag =
            json!({"experiment_id": exp, "key": "load.touched", "value": i.get().to_string()});
        c.call(true, "/experiments/set-experiment-tag", &tag, false)
            .await?;
        let (v, dt) = c.call(true, "/runs/search", body, true).await?;
        let n = v["runs"].as_array().map_or(0, Vec::len);
        c.check(n == want, format!("c) page has {n} runs, expected {want}"));
        Some((dt, n as u64))
    })
    .await;
    st.elapsed = st.lat.iter().sum();
    rows.push(st.row(
        "c) the same search right after a write to its experiment",
        1,
    ));
    Some(rows)
}

async fn ensure_history_fixture(c: &Client) -> Option<String> {
    let (exp, tags) = c.experiment(HISTORY_EXP).await?;
    if let Some((_, run)) = tags.iter().find(|(k, _)| k == "load.run_id") {
        return Some(run.clone());
    }
    let run = c.create_run(&exp, Some("history-10k".into())).await?;
    let ts = now_ms();
    for chunk in (0..HISTORY_STEPS).step_by(1000) {
        let metrics: Vec<Value> = (chunk..chunk + 1000)
            .map(|s| json!({"key": "loss", "value": 1.0 / (s as f64 + 1.0), "timestamp": ts + s as i64, "step": s}))
            .collect();
        c.call(
            true,
            "/runs/log-batch",
            &json!({"run_id": run, "metrics": metrics}),
            false,
        )
        .await?;
    }
    let tag = json!({"experiment_id": exp, "key": "load.run_id", "value": run});
    c.call(true, "/experiments/set-experiment-tag", &tag, false)
        .await?;
    Some(run)
}

pub async fn d(c: &Client, o: &Opts) -> Option<Vec<Value>> {
    let run = ensure_history_fixture(c).await?;
    let q = &json!({"run_id": run, "metric_key": "loss", "max_results": "25000"});
    let st = run_workers(1, o.duration, o.history_requests, |_| async move {
        let (v, dt) = c.call(false, "/metrics/get-history", q, true).await?;
        let n = v["metrics"].as_array().map_or(0, Vec::len);
        c.check(
            n == HISTORY_STEPS,
            format!("d) history returned {n} points, expected {HISTORY_STEPS}"),
        );
        Some((dt, n as u64))
    })
    .await;
    Some(vec![
        st.row(&format!("d) get-history ({HISTORY_STEPS} steps)"), 1)
    ])
}
