//! MLflow REST load generator in Rust, for when the Python one (`mlflow_bench.py`) runs out of
//! CPU before the server does. Same phases, same request bodies, same 8 clients; only the URI
//! differs between servers, so run it against RunLedger and MLflow alike and compare ratios.
//!
//!   cargo bench --bench mlflow_load -- URI [--duration 20] [--concurrency 8]
//!                  [--search-concurrency 4] [--history-requests 2000] [--only a2,b,c,d] [--json OUT]
//!
//! a2) log-batch of 100 metrics (10 keys x 10 steps) into an existing run
//! b)  single log-metric requests
//! c)  search over an experiment of 2,000 runs (5 params + 5 metrics each), filter
//!     "metrics.acc > 0.5 and params.lr = '0.01'", order by metrics.acc DESC, pages of 100
//! d)  get-history of one metric with 10,000 steps
//!
//! All clients share one current-thread runtime, so the generator uses at most one core; it
//! reports that core's use as `client_cpu_pct`. Exit status 1 if any request or check failed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const API: &str = "/api/2.0/mlflow";
const SEARCH_EXP: &str = "load-search-2000runs-rs-v1";
const HISTORY_EXP: &str = "load-history-10k-rs-v1";
const SEARCH_RUNS: usize = 2000;
const HISTORY_STEPS: usize = 10_000;

struct Opts {
    uri: String,
    duration: f64,
    concurrency: usize,
    search_concurrency: usize,
    history_requests: usize,
    only: Option<Vec<String>>,
    json: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        uri: String::new(),
        duration: 20.0,
        concurrency: 8,
        search_concurrency: 4,
        history_requests: 2000,
        only: None,
        json: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let next = || args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--duration" => o.duration = next().parse().expect("--duration SECONDS"),
            "--concurrency" => o.concurrency = next().parse().expect("--concurrency N"),
            "--search-concurrency" => o.search_concurrency = next().parse().expect("N"),
            "--history-requests" => o.history_requests = next().parse().expect("N"),
            "--only" => o.only = Some(next().split(',').map(str::to_owned).collect()),
            "--json" => o.json = Some(next()),
            a if a.starts_with("http") => {
                o.uri = a.trim_end_matches('/').to_owned();
                i += 1;
                continue;
            }
            _ => {
                // `cargo bench` adds `--bench`; ignore flags we do not know.
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    assert!(!o.uri.is_empty(), "usage: mlflow_load URI [options]");
    o
}

/// Latencies and counts of one phase, in the row format of `mlflow_bench.py --json`.
#[derive(Default)]
struct Stats {
    lat: Vec<f64>,
    items: u64,
    elapsed: f64,
    cpu: f64,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let mut s = self.lat.clone();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return f64::NAN;
        }
        let k = ((p / 100.0 * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
        s[k] * 1000.0
    }

    fn row(&self, phase: &str, conc: usize) -> Value {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        let n = self.lat.len() as f64;
        json!({
            "phase": phase, "concurrency": conc, "ops": self.lat.len(), "requests": self.lat.len(),
            "seconds": r(self.elapsed), "ops_per_s": r(n / self.elapsed), "req_per_s": r(n / self.elapsed),
            "items_per_s": if self.items > 0 { Some(r(self.items as f64 / self.elapsed)) } else { None },
            "p50_ms": r(self.pct(50.0)), "p99_ms": r(self.pct(99.0)),
            "client_cpu_pct": (100.0 * self.cpu / self.elapsed).round(),
        })
    }
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    failures: Rc<RefCell<Vec<String>>>,
}

impl Client {
    /// One request; returns the parsed body (if `parse`) and the time to the last byte.
    async fn call(
        &self,
        post: bool,
        path: &str,
        body: &Value,
        parse: bool,
    ) -> Option<(Value, f64)> {
        let url = format!("{}{API}{path}", self.base);
        let t = Instant::now();
        let req = if post {
            self.http.post(&url).json(body)
        } else {
            self.http.get(&url).query(body.as_object().unwrap())
        };
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(raw) if status.is_success() => Ok(raw),
                    Ok(raw) => Err(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&raw[..raw.len().min(300)])
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let dt = t.elapsed().as_secs_f64();
        match result {
            Ok(_) if !parse => Some((Value::Null, dt)),
            Ok(raw) => match serde_json::from_slice(&raw) {
                Ok(v) => Some((v, dt)),
                Err(e) => self.fail(format!("{path}: not JSON: {e}")),
            },
            Err(e) => self.fail(format!("{path}: {e}")),
        }
    }

    fn fail<T>(&self, msg: String) -> Option<T> {
        let mut f = self.failures.borrow_mut();
        if f.len() < 10 {
            eprintln!("  ERROR {msg}");
        }
        f.push(msg);
        None
    }

    fn check(&self, ok: bool, msg: String) {
        if !ok {
            self.fail::<()>(format!("check failed: {msg}"));
        }
    }

    async fn experiment(&self, name: &str) -> Option<(String, Vec<(String, String)>)> {
        let got = self
            .http
            .get(format!("{}{API}/experiments/get-by-name", self.base))
            .query(&[("experiment_name", name)])
            .send()
            .await
            .ok()?;
        if got.status().is_success() {
            let v: Value = got.json().await.ok()?;
            let e = &v["experiment"];
            let tags = e["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    (
                        t["key"].as_str().unwrap_or("").to_owned(),
                        t["value"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            return Some((e["experiment_id"].as_str()?.to_owned(), tags));
        }
        let (v, _) = self
            .call(true, "/experiments/create", &json!({"name": name}), true)
            .await?;
        Some((v["experiment_id"].as_str()?.to_owned(), vec![]))
    }

    async fn create_run(&self, exp: &str, name: Option<String>) -> Option<String> {
        let body = json!({"experiment_id": exp, "start_time": now_ms(), "run_name": name});
        let (v, _) = self.call(true, "/runs/create", &body, true).await?;
        Some(v["run"]["info"]["run_id"].as_str()?.to_owned())
    }

    async fn ingest_runs(&self, n: usize) -> Option<Vec<String>> {
        let (exp, _) = self
            .experiment(&format!("load-ingest-{:x}", rand::rng().random::<u32>()))
            .await?;
        let mut runs = Vec::new();
        for _ in 0..n {
            runs.push(self.create_run(&exp, None).await?);
        }
        Some(runs)
    }
}

/// Runs `conc` workers until the deadline (or `max_ops` operations in all), timing the phase.
async fn run_workers<F, Fut>(conc: usize, duration: f64, max_ops: usize, worker: F) -> Stats
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Option<(f64, u64)>>,
{
    let stats = Rc::new(RefCell::new(Stats::default()));
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let (t0, cpu0) = (Instant::now(), cpu_seconds());
    let worker = &worker;
    let loops = (0..conc).map(|w| {
        let stats = stats.clone();
        async move {
            let mut failures = 0;
            while Instant::now() < deadline && stats.borrow().lat.len() < max_ops && failures < 100
            {
                match worker(w).await {
                    Some((dt, items)) => {
                        let mut s = stats.borrow_mut();
                        s.lat.push(dt);
                        s.items += items;
                    }
                    None => failures += 1,
                }
            }
        }
    });
    futures::future::join_all(loops).await;
    let mut s = Rc::try_unwrap(stats).ok().unwrap().into_inner();
    s.elapsed = t0.elapsed().as_secs_f64();
    s.cpu = cpu_seconds() - cpu0;
    s
}

fn metrics_batch(base_step: i64, ts: i64, rng: &mut impl Rng) -> Value {
    let metrics: Vec<Value> = (0..10)
        .flat_map(|k| (0..10).map(move |s| (k, s)))
        .map(|(k, s)| json!({"key": format!("m{k}"), "value": rng.random::<f64>(), "timestamp": ts, "step": base_step + s}))
        .collect();
    json!({ "metrics": metrics })
}

async fn phase_a2(c: &Client, o: &Opts) -> Option<Vec<Value>> {
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

async fn phase_b(c: &Client, o: &Opts) -> Option<Vec<Value>> {
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

async fn phase_c(c: &Client, o: &Opts) -> Option<Vec<Value>> {
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

async fn phase_d(c: &Client, o: &Opts) -> Option<Vec<Value>> {
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

fn print_row(r: &Value) {
    println!(
        "{:<46} c{:<3} {:>8} req/s {:>10} items/s  p50 {:>7} ms  p99 {:>7} ms  client cpu {}%",
        r["phase"].as_str().unwrap_or(""),
        r["concurrency"],
        r["req_per_s"],
        r["items_per_s"],
        r["p50_ms"],
        r["p99_ms"],
        r["client_cpu_pct"]
    );
}

fn main() {
    let o = opts();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency.max(o.search_concurrency) + 4)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let c = Client {
        http,
        base: o.uri.clone(),
        failures: Rc::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let mut rows = Vec::new();
        let want = |p: &str| {
            o.only
                .as_ref()
                .is_none_or(|only| only.iter().any(|x| x == p))
        };
        for phase in ["a2", "b", "c", "d"].into_iter().filter(|p| want(p)) {
            eprintln!("phase {phase} ...");
            let got = match phase {
                "a2" => phase_a2(&c, &o).await,
                "b" => phase_b(&c, &o).await,
                "c" => phase_c(&c, &o).await,
                _ => phase_d(&c, &o).await,
            };
            match &got {
                Some(r) => r.iter().for_each(print_row),
                None => c.check(
                    false,
                    format!("phase {phase} aborted by a failed setup request"),
                ),
            }
            rows.extend(got.into_iter().flatten());
        }
        rows
    });
    let failures = c.failures.borrow();
    if let Some(path) = &o.json {
        let out =
            json!({"rows": rows, "errors": *failures, "failed_checks": [], "generator": "rust"});
        std::fs::write(path, serde_json::to_vec_pretty(&out).unwrap()).expect("write --json");
    }
    if !failures.is_empty() {
        eprintln!("{} failures", failures.len());
        std::process::exit(1);
    }
}
