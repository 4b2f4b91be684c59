//! The engine's commands: `evaluate`, `estimate`, `devices` (and `optimize`). JSON on stdout
//! with `--json`, readable text otherwise; errors are one line on stderr (see `main`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use runledger::optimize::boards::{BOARDS, RUNTIMES};
use runledger::optimize::data::{load_dataset, Preprocess};
use runledger::optimize::estimate::{estimate, EstimateRequest};
use runledger::optimize::evaluate::{evaluate, EvalOptions};
use runledger::optimize::graph::summarize;
use runledger::optimize::model::OnnxModel;
use runledger::optimize::techniques::{apply, Technique};

pub fn optimize_cmd(a: OptimizeArgs) -> anyhow::Result<()> {
    let t = Technique::with_params(&a.technique, a.sparsity, a.fraction, a.block)?;
    let model = OnnxModel::load(&a.model)?;
    let shape = model.input_shape()?;
    let calibration = load_dataset(
        &a.calibration,
        None,
        &preprocess(a.preprocess.as_ref())?,
        &shape,
    )?;
    let started = std::time::Instant::now();
    let bar = (!a.json).then(|| {
        let b = indicatif::ProgressBar::new(1000);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {percent:>3}% {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let out = apply(&model, &t, &calibration, &mut |p| {
        if let Some(b) = &bar {
            b.set_position((p.fraction * 1000.0) as u64);
            b.set_message(p.stage.clone());
        }
        std::ops::ControlFlow::Continue(())
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out.save(&a.output)?;
    let summary = serde_json::json!({
        "technique": t.name(),
        "output": a.output,
        "input_bytes": model.file_size(),
        "output_bytes": out.file_size(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: wrote {} ({} bytes, was {}) in {:.1} s",
            t.name(),
            a.output.display(),
            out.file_size(),
            model.file_size(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct OptimizeArgs {
    /// The model to optimize.
    model: PathBuf,
    /// int8-weight, int8-static, fp16, int4-weight, prune-unstructured, prune-structured, hybrid.
    #[arg(long)]
    technique: String,
    /// Share of weights to zero (prune-unstructured, hybrid); default 0.5.
    #[arg(long)]
    sparsity: Option<f32>,
    /// Share of channels to remove (prune-structured, hybrid); default 0.3.
    #[arg(long)]
    fraction: Option<f32>,
    /// int4 block size: 32, 64 or 128; default 32.
    #[arg(long)]
    block: Option<usize>,
    /// Calibration inputs (.npy, or a folder of PNG/JPEG images).
    #[arg(long)]
    calibration: PathBuf,
    /// Preprocessing spec (JSON).
    #[arg(long)]
    preprocess: Option<PathBuf>,
    /// Where to write the optimized model.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// The model to evaluate.
    model: PathBuf,
    /// The original model, for top-1 agreement and output SQNR.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Inputs (.npy, uint8 or float32, or a folder of PNG/JPEG images).
    #[arg(long)]
    data: PathBuf,
    /// Labels, for top-1 accuracy: .npy, or with an image folder a CSV of filename,label rows.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Preprocessing spec (JSON: layout, channel_order, scale, mean, std).
    #[arg(long)]
    preprocess: Option<PathBuf>,
    /// Timed single-sample runs for the host latency.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EstimateArgs {
    model: PathBuf,
    /// Board id (see `runledger devices`).
    #[arg(long)]
    device: String,
    /// Runtime id; default: the board's first.
    #[arg(long)]
    runtime: Option<String>,
    #[arg(long, default_value = "fp32")]
    dtype: String,
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Core clock; default: the board's.
    #[arg(long)]
    clock_mhz: Option<f64>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DevicesArgs {
    #[arg(long)]
    json: bool,
}

fn preprocess(path: Option<&PathBuf>) -> anyhow::Result<Preprocess> {
    Ok(match path {
        Some(p) => Preprocess::from_file(p)?,
        None => Preprocess::default(),
    })
}

pub fn evaluate_cmd(a: EvaluateArgs) -> anyhow::Result<()> {
    let model = OnnxModel::load(&a.model)?;
    let baseline = a.baseline.as_deref().map(OnnxModel::load).transpose()?;
    let shape = model.input_shape()?;
    let data = load_dataset(
        &a.data,
        a.labels.as_deref(),
        &preprocess(a.preprocess.as_ref())?,
        &shape,
    )?;
    let opts = EvalOptions {
        latency_runs: a.runs,
        ..EvalOptions::default()
    };
    let e = evaluate(&model, baseline.as_ref(), &data, opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    println!("samples      {}", e.samples);
    if let Some(acc) = e.accuracy {
        println!("accuracy     {:.2} %", acc * 100.0);
    }
    if let Some(agr) = e.agreement {
        println!("agreement    {:.2} %", agr * 100.0);
    }
    if let Some(s) = e.sqnr_db {
        println!("sqnr         {s:.1} dB");
    }
    println!(
        "size         {} bytes ({} gzipped)",
        e.file_size_bytes, e.gzip_size_bytes
    );
    if let Some(l) = &e.latency {
        println!(
            "latency      {:.3} ms median, {:.3} ms p90 (tract, 1 thread)",
            l.median_ms, l.p90_ms
        );
    }
    Ok(())
}

pub fn estimate_cmd(a: EstimateArgs) -> anyhow::Result<()> {
    let summary = summarize(&a.model)?;
    let e = estimate(
        &summary,
        &EstimateRequest {
            device: a.device,
            runtime: a.runtime,
            dtype: a.dtype,
            threads: a.threads,
            clock_mhz: a.clock_mhz,
        },
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    println!(
        "{} / {} / {} / {} thread(s) at {} MHz",
        e.device, e.runtime, e.dtype, e.threads, e.clock_mhz
    );
    println!("latency      {:.3} ms", e.latency_ms);
    println!(
        "peak RAM     {:.1} KB (board {} KB)",
        e.peak_ram_kb, e.board_ram_kb
    );
    println!(
        "flash        {:.1} KB (board {} KB)",
        e.flash_kb, e.board_flash_kb
    );
    println!("energy       {:.1} µJ per inference", e.energy_uj);
    println!("fits         {}", if e.fits { "yes" } else { "no" });
    for n in &e.notes {
        println!("note         {n}");
    }
    Ok(())
}

pub fn devices_cmd(a: DevicesArgs) -> anyhow::Result<()> {
    if a.json {
        let out = serde_json::json!({ "boards": BOARDS, "runtimes": RUNTIMES });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).context("encoding the catalogue")?
        );
        return Ok(());
    }
    println!(
        "{:<14} {:<28} {:<12} {:>6} {:>5} {:>10} {:>10}  runtimes",
        "id", "name", "core", "MHz", "cores", "RAM KB", "flash KB"
    );
    for b in BOARDS {
        println!(
            "{:<14} {:<28} {:<12} {:>6} {:>5} {:>10} {:>10}  {}",
            b.id,
            b.name,
            b.core,
            b.default_clock_mhz,
            b.cores,
            b.ram_kb,
            b.flash_kb,
            b.runtimes.join(", ")
        );
    }
    Ok(())
}
