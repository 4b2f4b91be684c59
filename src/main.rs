//! The `runledger` command line: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use runledger::config::{Config, Layer};

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
    },
    /// Rebuild the DuckDB projection from the event log.
    Replay {
        #[command(flatten)]
        common: Common,
        /// Drop the projection first and replay the whole log.
        #[arg(long, required = true)]
        rebuild: bool,
    },
    /// Write the JSON Schemas of the event payloads.
    Schemas {
        /// Output directory.
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
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

fn config(common: Common, bind: Option<String>) -> anyhow::Result<Config> {
    let cli = Layer {
        data_dir: common.data_dir,
        bind,
        log_format: None,
    };
    Ok(Config::load(common.config.as_deref(), cli)?)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, bind } => {
            let config = config(common, bind)?;
            init_tracing(&config.log_format);
            runledger::server::serve(config).await
        }
        Command::Replay { common, .. } => {
            let config = config(common, None)?;
            init_tracing(&config.log_format);
            let n = runledger::server::rebuild(config).await?;
            println!("projection rebuilt from {n} events");
            Ok(())
        }
        Command::Schemas { out } => {
            let path = runledger::events::write_schemas(&out)?;
            println!("wrote {}", path.display());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
