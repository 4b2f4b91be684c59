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

use rand::Rng;
use serde_json::{json, Value};

mod phases;

const API: &str = "/api/2.0/mlflow";

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

struct Client {
    http: reqwest::Client,
    base: String,
    /// Failed requests, and failed checks of the answers (`errors` and `failed_checks` in
    /// the JSON, as `mlflow_bench.py` writes them).
    errors: RefCell<Vec<String>>,
    failed_checks: RefCell<Vec<String>>,
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
        let mut f = self.errors.borrow_mut();
        if f.len() < 10 {
            eprintln!("  ERROR {msg}");
        }
        f.push(msg);
        None
    }

    fn check(&self, ok: bool, msg: String) {
        if !ok {
            eprintln!("  CHECK FAILED: {msg}");
            self.failed_checks.borrow_mut().push(msg);
        }
    }

    async fn experiment(&self, name: &str) -> Option<(String, Vec<(String, String)>)> {
        let got = self
            .http
            .get(format!("{}{API}/experiments/get-by-name", self.base))
            .query(&[("experiment_name", name)])
            .send()
            .await;
        let got = match got {
            Ok(r) => r,
            Err(e) => return self.fail(format!("/experiments/get-by-name: {e}")),
        };
        if got.status().is_success() {
            let v: Value = match got.json().await {
                Ok(v) => v,
                Err(e) => return self.fail(format!("/experiments/get-by-name: {e}")),
            };
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
        errors: RefCell::default(),
        failed_checks: RefCell::default(),
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
                "a2" => phases::a2(&c, &o).await,
                "b" => phases::b(&c, &o).await,
                "c" => phases::c(&c, &o).await,
                _ => phases::d(&c, &o).await,
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
    let (errors, checks) = (c.errors.borrow(), c.failed_checks.borrow());
    if let Some(path) = &o.json {
        let out = json!({"rows": rows, "errors": *errors, "failed_checks": *checks,
                         "generator": "rust"});
        std::fs::write(path, serde_json::to_vec_pretty(&out).unwrap()).expect("write --json");
    }
    if !errors.is_empty() || !checks.is_empty() {
        eprintln!("{} errors, {} failed checks", errors.len(), checks.len());
        std::process::exit(1);
    }
}
