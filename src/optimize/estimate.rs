//! Hardware estimates of a graph on a board: latency, peak RAM, flash, energy, and whether it fits.
//!
//! Latency comes from the calibrated model of [`super::calibrate`] (coefficients shipped in
//! `estimator_data/calibration.json`, reproducible from `estimator_data/measurements.csv` and
//! `estimator_data/model_features.csv`). Memory is arithmetic on the graph summary:
//! peak RAM = activation peak re-sized to the data type × the runtime's planner factor + the
//! runtime's fixed RAM; flash = parameters × bytes per element + the runtime's code size.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::boards::{self, Board, BoardKind, Runtime};
use super::calibrate::{self, Calibration, Row};
use super::error::{OptimizeError, Result};
use super::graph::{GraphSummary, MacsByClass};

/// What to estimate: a board, optionally a runtime (default: the board's first), a data type
/// ("fp32", "fp16", "int8"), threads and optionally a clock other than the board's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimateRequest {
    pub device: String,
    #[serde(default)]
    pub runtime: Option<String>,
    pub dtype: String,
    #[serde(default = "one")]
    pub threads: u32,
    #[serde(default)]
    pub clock_mhz: Option<f64>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub device: String,
    pub runtime: String,
    pub dtype: String,
    pub threads: u32,
    pub clock_mhz: f64,
    pub latency_ms: f64,
    pub peak_ram_kb: f64,
    pub flash_kb: f64,
    /// latency × the board's typical active power.
    pub energy_uj: f64,
    /// RAM and flash within the board's on-chip memories.
    pub fits: bool,
    /// RAM and flash within on-chip plus on-board external memories (SDRAM, PSRAM, QSPI).
    pub fits_with_external: bool,
    pub board_ram_kb: u64,
    pub board_flash_kb: u64,
    /// Calibration measurements of this exact board and runtime (0 = extrapolated from the core
    /// family, SIMD class and runtime family).
    pub calibration_rows: usize,
    /// Share of the estimated cycles per work class ("conv3x3", "depthwise"...).
    pub cycle_shares: BTreeMap<String, f64>,
    /// Caveats in plain words.
    pub notes: Vec<String>,
}

const CALIBRATION_JSON: &str = include_str!("estimator_data/calibration.json");
const MEASUREMENTS_CSV: &str = include_str!("estimator_data/measurements.csv");
const FEATURES_CSV: &str = include_str!("estimator_data/model_features.csv");

/// The shipped calibration (parsed once).
pub fn shipped_calibration() -> Result<&'static Calibration> {
    static CAL: OnceLock<std::result::Result<Calibration, String>> = OnceLock::new();
    CAL.get_or_init(|| serde_json::from_str(CALIBRATION_JSON).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| OptimizeError::InvalidData(format!("shipped calibration: {e}")))
}

/// The shipped calibration measurements joined with their graphs' work (parsed once).
pub fn calibration_rows() -> Result<&'static [Row]> {
    static ROWS: OnceLock<std::result::Result<Vec<Row>, String>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let features = parse_features(FEATURES_CSV).map_err(|e| e.to_string())?;
        parse_measurements(MEASUREMENTS_CSV, &features).map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| OptimizeError::InvalidData(format!("shipped measurements: {e}")))
}

/// Estimates `summary` on the requested board.
pub fn estimate(summary: &GraphSummary, req: &EstimateRequest) -> Result<Estimate> {
    let board = boards::board(&req.device)?;
    let rt_id = req.runtime.as_deref().unwrap_or(board.runtimes[0]);
    let rt = boards::runtime(rt_id)?;
    if !board.runtimes.contains(&rt.id) {
        return Err(OptimizeError::invalid_argument(
            "runtime",
            format!(
                "{} does not run on {}; choose one of: {}",
                rt.id,
                board.id,
                board.runtimes.join(", ")
            ),
        ));
    }
    let elem_bytes = boards::dtype_bytes(&req.dtype)?;
    if !rt.dtypes.contains(&req.dtype.as_str()) {
        return Err(OptimizeError::invalid_argument(
            "dtype",
            format!(
                "{} does not run {}; choose one of: {}",
                rt.id,
                req.dtype,
                rt.dtypes.join(", ")
            ),
        ));
    }
    if req.threads == 0 || req.threads > board.cores {
        return Err(OptimizeError::invalid_argument(
            "threads",
            format!(
                "{} has {} core(s); got {}",
                board.id, board.cores, req.threads
            ),
        ));
    }
    let clock = req.clock_mhz.unwrap_or(board.default_clock_mhz);
    if !(clock.is_finite() && clock > 0.0) {
        return Err(OptimizeError::invalid_argument(
            "clock_mhz",
            format!("must be a positive number of MHz, got {clock}"),
        ));
    }
    let cal = shipped_calibration()?;
    let work = calibrate::work(&summary.macs, summary.layers);
    let latency_ms = cal.predict_ms(board.id, rt.id, &req.dtype, &work, clock, req.threads)?;
    let (peak_ram_kb, flash_kb) = memory_kb(summary, rt, elem_bytes, cal);
    let fits = peak_ram_kb <= board.ram_kb as f64 && flash_kb <= board.flash_kb as f64;
    let fits_with_external = peak_ram_kb <= (board.ram_kb + board.ext_ram_kb) as f64
        && flash_kb <= (board.flash_kb + board.ext_flash_kb) as f64;
    let calibration_rows = calibration_rows()?
        .iter()
        .filter(|r| r.device == board.id && r.runtime == rt.id)
        .count();
    let per_unit = cal.cycles_per_unit(board.id, rt.id)?;
    let cycles: f64 = work.iter().zip(&per_unit).map(|(w, c)| w * c).sum();
    let cycle_shares = calibrate::FEATURES
        .iter()
        .zip(work.iter().zip(&per_unit))
        .map(|(name, (w, c))| {
            (
                (*name).to_string(),
                if cycles > 0.0 { w * c / cycles } else { 0.0 },
            )
        })
        .collect();
    Ok(Estimate {
        device: board.id.into(),
        runtime: rt.id.into(),
        dtype: req.dtype.clone(),
        threads: req.threads,
        clock_mhz: clock,
        latency_ms,
        peak_ram_kb,
        flash_kb,
        energy_uj: latency_ms * board.active_power_mw,
        fits,
        fits_with_external,
        board_ram_kb: board.ram_kb,
        board_flash_kb: board.flash_kb,
        calibration_rows,
        cycle_shares,
        notes: notes(summary, board, rt, &req.dtype, calibration_rows),
    })
}

/// (peak RAM, flash) in KiB for the graph deployed as `elem_bytes`-sized tensors: the runtime's
/// calibrated overheads where published figures exist, the catalogue's otherwise.
pub fn memory_kb(
    summary: &GraphSummary,
    rt: &Runtime,
    elem_bytes: u64,
    cal: &Calibration,
) -> (f64, f64) {
    let act = summary.peak_activation_elements as f64 * elem_bytes as f64 / 1024.0;
    let weights = summary.params as f64 * elem_bytes as f64 / 1024.0;
    let (ram, flash) = match cal.memory.get(rt.id) {
        Some(m) => (m.ram_kb, m.flash_kb),
        None => (rt.ram_overhead_kb, rt.flash_overhead_kb),
    };
    (act + ram, weights + flash)
}

fn notes(s: &GraphSummary, board: &Board, rt: &Runtime, dtype: &str, rows: usize) -> Vec<String> {
    let mut out = Vec::new();
    if rows == 0 {
        out.push(format!(
            "no measurement of {} on {}: latency extrapolated from the {} core family, its SIMD class and the {} runtime family",
            rt.id, board.id, board.core_family, rt.family
        ));
    }
    if dtype == "fp16" {
        out.push("fp16 latency is calibrated as fp32 (no fp16 measurements); memory uses 2 bytes per element".into());
    }
    if board.kind == BoardKind::Mcu && dtype != "int8" {
        out.push(format!("{dtype} on a microcontroller: expect several times the int8 latency and {}× its memory", if dtype == "fp32" { 4 } else { 2 }));
    }
    if !s.warnings.is_empty() {
        out.push(format!(
            "graph analysis skipped {} node(s) it could not size: the estimate is low",
            s.warnings.len()
        ));
    }
    out
}

/// Parses `model_features.csv`: per model file, the graph facts the calibration needs.
pub fn parse_features(text: &str) -> Result<BTreeMap<String, (MacsByClass, u64, u64, u64)>> {
    let mut out = BTreeMap::new();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    for rec in rdr.deserialize::<FeatureRecord>() {
        let r = rec.map_err(|e| OptimizeError::InvalidData(format!("model_features.csv: {e}")))?;
        let macs = MacsByClass {
            conv3x3: r.conv3x3,
            conv_other: r.conv_other,
            conv_pointwise: r.conv_pointwise,
            conv_stem: r.conv_stem,
            depthwise: r.depthwise,
            fully_connected: r.fully_connected,
            other: r.other,
        };
        out.insert(
            r.model_file,
            (macs, r.layers, r.params, r.peak_activation_elements),
        );
    }
    Ok(out)
}

/// One line of `model_features.csv`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureRecord {
    pub model_file: String,
    pub conv3x3: u64,
    pub conv_other: u64,
    pub conv_pointwise: u64,
    pub conv_stem: u64,
    pub depthwise: u64,
    pub fully_connected: u64,
    pub other: u64,
    pub layers: u64,
    pub params: u64,
    pub peak_activation_elements: u64,
    pub total_macs: u64,
}

impl FeatureRecord {
    pub fn new(model_file: &str, s: &GraphSummary) -> Self {
        FeatureRecord {
            model_file: model_file.into(),
            conv3x3: s.macs.conv3x3,
            conv_other: s.macs.conv_other,
            conv_pointwise: s.macs.conv_pointwise,
            conv_stem: s.macs.conv_stem,
            depthwise: s.macs.depthwise,
            fully_connected: s.macs.fully_connected,
            other: s.macs.other,
            layers: s.layers,
            params: s.params,
            peak_activation_elements: s.peak_activation_elements,
            total_macs: s.total_macs,
        }
    }
}

/// Normalizes the CSV's data type labels: "fp32 (fp16 arith, ARMv8.2)" is how ncnn runs fp32 on
/// the Pi 5 by default, so it stays fp32; "int8 (uint8 quant)" is int8.
fn normalize_dtype(s: &str) -> String {
    s.split_whitespace().next().unwrap_or(s).to_string()
}

/// Parses the measurements CSV and joins each row with its model's features.
pub fn parse_measurements(
    text: &str,
    features: &BTreeMap<String, (MacsByClass, u64, u64, u64)>,
) -> Result<Vec<Row>> {
    let bad = |line: usize, what: String| {
        OptimizeError::InvalidData(format!("measurements.csv line {line}: {what}"))
    };
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(1, format!("missing column {name}")))
    };
    let (mf, dev, clk, rt, dt, th, lat) = (
        col("model_file")?,
        col("device_id")?,
        col("clock_mhz")?,
        col("runtime_id")?,
        col("dtype")?,
        col("threads")?,
        col("latency_ms")?,
    );
    let (en, ram, fl) = (col("energy_uj")?, col("ram_kb")?, col("flash_kb")?);
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let num = |c: usize| -> Result<f64> {
            get(c)
                .parse::<f64>()
                .map_err(|_| bad(line, format!("not a number: `{}`", get(c))))
        };
        let opt = |c: usize| get(c).parse::<f64>().ok();
        let model = get(mf).to_string();
        let (macs, layers, params, peak) = features
            .get(&model)
            .ok_or_else(|| bad(line, format!("no features for {model}")))?;
        rows.push(Row {
            work: calibrate::work(macs, *layers),
            params: *params,
            peak_activation_elements: *peak,
            model_file: model,
            device: get(dev).to_string(),
            runtime: get(rt).to_string(),
            dtype: normalize_dtype(get(dt)),
            // "n/s" (not stated): the MLPerf Tiny Pi submissions ran single-stream, taken as 1.
            threads: get(th).parse().unwrap_or(1),
            clock_mhz: num(clk)?,
            latency_ms: num(lat)?,
            energy_uj: opt(en),
            ram_kb: opt(ram),
            flash_kb: opt(fl),
        });
    }
    Ok(rows)
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;
