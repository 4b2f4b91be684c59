//! The `runledger` command line: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use runledger::config::{Config, Layer};

mod cli;

// Request handlers allocate telemetry and metric batches that the projector thread frees;
// glibc's malloc serialises such cross-thread frees on the allocating arena's lock, which
// took a third of the projector's time under ingest load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "runledger",
    version,
    about = "Event-sourced MLOps tracking server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// Data directory (event log, projection, artifacts). Default ./runledger-data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Config file (default: ./runledger.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on. Default 127.0.0.1:5000.
        #[arg(long)]
        bind: Option<String>,
        /// `disabled` turns authentication off for local single-user use (loopback only).
        #[arg(long, value_enum)]
        auth: Option<runledger::auth::AuthMode>,
    },
    /// Rebuild the DuckDB projection from the event log.
    Replay {
        #[command(flatten)]
        common: Common,
        /// Drop the projection first and replay the whole log.
        #[arg(long, required = true)]
        rebuild: bool,
    },
    /// Write a smaller or faster variant of an ONNX model with one technique.
    Optimize(cli::OptimizeArgs),
    /// Evaluate an ONNX model on data: accuracy, agreement, SQNR, size, host latency.
    Evaluate(cli::EvaluateArgs),
    /// Estimate latency, RAM, flash and energy of an ONNX model on a board.
    Estimate(cli::EstimateArgs),
    /// The catalogue of boards and runtimes the estimator knows.
    Devices(cli::DevicesArgs),
    /// Write the JSON Schemas of the event payloads.
    Schemas {
        /// Output directory.
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
    },
    /// Print the OpenAPI document of the HTTP API (or write it with --out).
    Openapi {
        /// File to write instead of printing, e.g. openapi/openapi.json.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn config(
    common: Common,
    bind: Option<String>,
    auth_mode: Option<runledger::auth::AuthMode>,
) -> anyhow::Result<Config> {
    let cli = Layer {
        data_dir: common.data_dir,
        bind,
        auth_mode,
        ..Layer::default()
    };
    Ok(Config::load(common.config.as_deref(), cli)?)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, bind, auth } => {
            let config = config(common, bind, auth)?;
            init_tracing(&config.log_format);
            runledger::server::serve(config).await
        }
        Command::Replay { common, .. } => {
            let config = config(common, None, None)?;
            init_tracing(&config.log_format);
            let n = runledger::server::rebuild(config).await?;
            println!("projection rebuilt from {n} events");
            Ok(())
        }
        Command::Optimize(a) => cli::optimize_cmd(a),
        Command::Evaluate(a) => cli::evaluate_cmd(a),
        Command::Estimate(a) => cli::estimate_cmd(a),
        Command::Devices(a) => cli::devices_cmd(a),
        Command::Schemas { out } => {
            for path in [
                runledger::events::write_schemas(&out)?,
                runledger::telemetry::wire::write_schema(&out)?,
            ] {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Openapi { out } => {
            let json = runledger::api::openapi::spec_json();
            match out {
                None => print!("{json}"),
                Some(path) => {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(&path, json)?;
                    println!("wrote {}", path.display());
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Optimize(_)
            | Command::Evaluate(_)
            | Command::Estimate(_)
            | Command::Devices(_)
            | Command::Openapi { .. }
    ) {
        // Output piped into `head` ends quietly, like other command-line tools. Not for
        // `serve`: a client closing its socket must not kill the server.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if matches!(cli.command, Command::Serve { .. }) {
        // No transparent huge pages for the server: allocators that ask for them (madvise)
        // keep whole 2 MiB pages resident for small live sets. Under the MLflow bench the
        // server's peak RSS fell from 354-369 MB to 262-277 MB with no throughput change.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
        // DuckDB allocates through glibc, which gives each thread that contends an arena of
        // its own (up to 8 per core) and keeps their freed pages. Two arenas: peak RSS under
        // the MLflow bench 249/252 MB against 287/272 MB, throughput within noise.
        #[cfg(target_env = "gnu")]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // actix-web's workers get their own runtimes; this one runs the log, the projector's
    // async reads and the server future.
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
