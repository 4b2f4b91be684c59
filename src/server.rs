//! Wiring: open the log, rebuild state, start the projector, serve HTTP, shut down cleanly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};

use crate::api::{self, AppState, HttpMetrics};
use crate::artifacts::ArtifactStore;
use crate::auth::rate_limit::RateLimits;
use crate::auth::{bootstrap, AuthMode, Authenticator};
use crate::blobs::BlobStore;
use crate::config::Config;
use crate::jobs::Jobs;
use crate::ledger::Ledger;
use crate::log::embedded::EmbeddedLog;
use crate::log::SharedLog;
use crate::projection::{self, Projection};
use crate::query::Queries;
use crate::telemetry::{DedupeIndex, Ingestor, RecentTelemetry};

/// Where each part lives inside the data directory.
pub struct DataLayout {
    pub log: PathBuf,
    pub projection: PathBuf,
    pub artifacts: PathBuf,
    pub blobs: PathBuf,
}

impl DataLayout {
    pub fn new(data_dir: &Path) -> DataLayout {
        DataLayout {
            log: data_dir.join("log"),
            projection: data_dir.join("projection.duckdb"),
            artifacts: data_dir.join("artifacts"),
            blobs: data_dir.join("blobs"),
        }
    }
}

pub async fn open_log(layout: &DataLayout) -> anyhow::Result<SharedLog> {
    let log: SharedLog = EmbeddedLog::open(&layout.log).await?;
    Ok(log)
}

/// `--auth disabled` is for one user on one machine: refuse it on an address others can reach.
fn check_auth_mode(config: &Config) -> anyhow::Result<()> {
    if config.auth.mode == AuthMode::Enabled {
        return Ok(());
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&config.bind)
        .map_err(|e| anyhow::anyhow!("cannot resolve bind address {}: {e}", config.bind))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        anyhow::bail!(
            "--auth disabled is only allowed on a loopback address (127.0.0.1, ::1); {} is reachable from other machines",
            config.bind
        );
    }
    tracing::warn!(
        "AUTHENTICATION IS DISABLED: every request acts as the administrator of the default tenant. For local single-user use only."
    );
    eprintln!("WARNING: authentication is disabled (--auth disabled); every request is the administrator.");
    Ok(())
}

/// Run the server until SIGINT/SIGTERM; prints `RunLedger listening on http://ADDR` once bound.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    check_auth_mode(&config)?;
    let layout = DataLayout::new(&config.data_dir);
    let log = open_log(&layout).await?;
    let dedupe = DedupeIndex::new(config.telemetry.dedupe_window);
    let mut recent = RecentTelemetry::new(config.telemetry.dedupe_window);
    let ledger = Ledger::open_with(log.clone(), |rec| recent.note(rec)).await?;
    recent.refill(&log, &dedupe).await?;
    let ingestor = Arc::new(Ingestor::new(ledger.clone(), &config.telemetry, dedupe));
    let t = &config.telemetry;
    let limits = Arc::new(RateLimits::new(
        t.device_rate,
        t.device_burst,
        t.ip_rate,
        t.ip_burst,
    ));
    let auth = Arc::new(Authenticator::new(
        &config.auth,
        &config.data_dir,
        ledger.clone(),
    )?);
    let first_token = if config.auth.mode == AuthMode::Enabled {
        let password = std::env::var("RUNLEDGER_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        bootstrap::first_admin(&ledger, password.as_deref()).await?
    } else {
        None
    };
    let a = &config.auth;
    let api_limits = Arc::new(RateLimits::new(
        a.token_rate,
        a.token_burst,
        a.ip_rate,
        a.ip_burst,
    ));
    let projection = Projection::start(&layout.projection, log.clone(), ledger.handoff())?;
    let artifacts = Arc::new(ArtifactStore::open(layout.artifacts.clone())?);
    let mut jobs_config = config.jobs.clone();
    jobs_config
        .datasets_dir
        .get_or_insert_with(|| config.data_dir.join("datasets"));
    let jobs = Jobs::start(
        ledger.clone(),
        Arc::new(BlobStore::open(layout.blobs.clone())?),
        artifacts.clone(),
        jobs_config,
    );
    let state = web::Data::new(AppState {
        log: log.clone(),
        ledger,
        projection: projection.clone(),
        queries: Queries::new(log.clone(), projection.clone()),
        artifacts,
        http_metrics: Arc::new(HttpMetrics::new()?),
        started: Instant::now(),
        ingestor,
        limits: limits.clone(),
        api_limits: api_limits.clone(),
        auth,
        auth_config: config.auth.clone(),
        telemetry: config.telemetry.clone(),
        jobs,
    });
    // Forget idle rate-limit keys now and then, so the limiter's memory stays bounded.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.forget_idle();
            api_limits.forget_idle();
        }
    });

    let app_state = state.clone();
    let server = HttpServer::new(move || {
        // Called on each worker thread as it starts.
        yield_to_projection();
        App::new()
            .app_data(app_state.clone())
            .wrap(actix_web::middleware::from_fn(api::auth::guard))
            .wrap_fn(|req, srv| {
                let start = Instant::now();
                let state = req.app_data::<web::Data<AppState>>().cloned();
                let method = req.method().to_string();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let route = res
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".into());
                    let status = res.status().as_u16();
                    let secs = start.elapsed().as_secs_f64();
                    if let Some(st) = state {
                        st.http_metrics.observe(&method, &route, status, secs);
                    }
                    tracing::debug!(%method, %route, status, ms = secs * 1e3, "request");
                    Ok(res)
                }
            })
            .configure(api::configure)
            .default_service(web::to(api::not_found))
    })
    .bind(&config.bind)?
    .shutdown_timeout(30)
    .shutdown_signal(shutdown_signal()?);

    let addrs: Vec<SocketAddr> = server.addrs();
    let server = server.run();
    if let Some(token) = first_token {
        // Printed, never logged: the one time the first administrator's token is shown.
        println!(
            "RunLedger created the administrator 'admin'. Its token is shown only this once:\nRunLedger admin token: {token}"
        );
    }
    for a in &addrs {
        // Tests and scripts wait for this exact line.
        println!("RunLedger listening on http://{a}");
    }
    tracing::info!(data_dir = %config.data_dir.display(), addrs = ?addrs, "ready");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    // actix stops accepting on SIGINT/SIGTERM and waits for in-flight requests (each of
    // which waits for its append to be durable) before this returns.
    server.await?;
    tracing::info!("HTTP stopped; letting the projection catch up, then closing the log");
    // Let the projection apply what was acknowledged, so the DuckDB file is current at exit
    // and the next start has nothing to catch up; a restart would finish it anyway.
    if let Err(e) = projection.wait_for(log.head(), SHUTDOWN_CATCH_UP).await {
        tracing::warn!(error = %e, "stopping with the projection behind the log");
    }
    log.close().await?;
    projection.stop();
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM. The handlers are installed here, before the ready
/// line is printed: actix installs its own only once its workers have started, and a SIGTERM
/// sent in between (a supervisor stopping a server it just started) killed the process
/// without a graceful shutdown.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// `runledger replay --rebuild`: drop the projection and rebuild it from the log.
pub async fn rebuild(config: Config) -> anyhow::Result<u64> {
    let layout = DataLayout::new(&config.data_dir);
    let log = open_log(&layout).await?;
    let n = projection::rebuild(&layout.projection, log.clone()).await?;
    log.close().await?;
    Ok(n)
}

/// How long a graceful shutdown waits for the projection to catch up with the log.
const SHUTDOWN_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(10);

/// How much lower than the projection's threads request workers run (a nice value: 5 gives
/// them about a third of the CPU weight when both want it).
const REQUEST_NICENESS: i32 = 5;

/// Lower the calling request worker's CPU priority. When the machine is saturated, applying
/// what is already acknowledged to DuckDB comes before accepting more, so ingest slows a little
/// and projection lag stays bounded; on an idle machine nice values change nothing. Measured
/// on 10 M-event ingests in alternation with the build before (BENCHMARKS, twelfth run): lag
/// p99 1.02/0.66/0.60 s against 1.66/5.00/1.29 s, at 314k-341k events/s against 309k-341k.
fn yield_to_projection() {
    #[cfg(target_os = "linux")]
    {
        if !std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("actix-server worker"))
        {
            return;
        }
        // On Linux a nice value belongs to a thread, and raising one's own needs no privilege.
        let tid = unsafe { libc::gettid() } as libc::id_t;
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, REQUEST_NICENESS) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a request worker's priority");
        }
    }
}
