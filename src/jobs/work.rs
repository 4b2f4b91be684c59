//! The CPU work of a job, run on blocking threads: load its inputs, measure a model, apply a
//! technique. Glue over the `optimize` library; nothing here knows about the server.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use ndarray::Array2;

use crate::blobs::BlobStore;
use crate::domain::job::DatasetInfo;
use crate::events::{BoardEstimate, BoardTarget, VariantResult};
use crate::optimize::boards;
use crate::optimize::data::{
    check_finite, load_dataset, read_npy_f32, read_npy_labels, Dataset, Preprocess,
};
use crate::optimize::error::{OptimizeError, Result};
use crate::optimize::estimate::{estimate, EstimateRequest};
use crate::optimize::evaluate::{evaluate_against, predictions, EvalOptions};
use crate::optimize::graph::summarize_proto;
use crate::optimize::model::OnnxModel;
use crate::optimize::techniques::{apply, Progress, Technique};

/// Share of a technique's progress given to applying it; evaluating takes the rest.
const APPLY_SHARE: f32 = 0.85;

/// A job's model and data, loaded once per (re)start.
pub struct JobInputs {
    pub model: OnnxModel,
    pub calibration: Dataset,
    pub evaluation: Dataset,
    /// The original model's outputs on the evaluation data (for agreement).
    pub reference: Array2<f32>,
    pub boards: Vec<BoardTarget>,
}

pub fn load_inputs(
    blobs: &BlobStore,
    model_sha: &str,
    calibration: &DatasetInfo,
    evaluation: &DatasetInfo,
    boards: Vec<BoardTarget>,
) -> Result<JobInputs> {
    let bytes = blobs
        .read(model_sha)
        .map_err(|e| OptimizeError::InvalidModel(e.to_string()))?;
    let model = OnnxModel::from_bytes(&bytes)?;
    let shape = model.input_shape()?;
    let calibration = dataset(blobs, calibration, &shape)?;
    let evaluation = dataset(blobs, evaluation, &shape)?;
    let reference = predictions(&model, &evaluation)?;
    Ok(JobInputs {
        model,
        calibration,
        evaluation,
        reference,
        boards,
    })
}

fn dataset(blobs: &BlobStore, d: &DatasetInfo, shape: &[usize]) -> Result<Dataset> {
    let path = |sha: &str| {
        blobs
            .path(sha)
            .map_err(|e| OptimizeError::InvalidData(e.to_string()))
    };
    let pre: Preprocess = serde_json::from_value(d.preprocess.clone())
        .map_err(|e| OptimizeError::invalid_argument("preprocess", e.to_string()))?;
    let labels = d.labels_sha256.as_deref().map(path).transpose()?;
    load_dataset(&path(&d.inputs_sha256)?, labels.as_deref(), &pre, shape)
        .map_err(|e| OptimizeError::InvalidData(format!("dataset '{}': {e}", d.name)))
}

/// Samples and sample shape of an uploaded `.npy` input file, with its labels checked.
pub fn inspect_npy(inputs: &Path, labels: Option<&Path>) -> Result<(u64, Vec<u64>)> {
    let x = read_npy_f32(inputs)?;
    check_finite(&x).map_err(OptimizeError::InvalidData)?;
    let shape: Vec<u64> = x.shape().iter().map(|&d| d as u64).collect();
    let Some((&n, rest)) = shape.split_first() else {
        return Err(OptimizeError::InvalidData(
            "inputs must have a sample axis".into(),
        ));
    };
    if let Some(l) = labels {
        let labels = read_npy_labels(l)?;
        if labels.len() as u64 != n {
            return Err(OptimizeError::InvalidData(format!(
                "{} labels for {n} samples",
                labels.len()
            )));
        }
    }
    Ok((n, rest.to_vec()))
}

/// The data type a variant computes in on a board, for the estimator.
fn dtype_of(technique: Option<&Technique>) -> &'static str {
    match technique {
        Some(Technique::Int8Weight | Technique::Int8Static { .. } | Technique::Hybrid { .. }) => {
            "int8"
        }
        Some(Technique::Fp16) => "fp16",
        _ => "fp32",
    }
}

/// Estimates on each board; a runtime that cannot run the data type is replaced by the board's
/// first one that can, and a board none can is left out.
fn estimates(
    model: &OnnxModel,
    targets: &[BoardTarget],
    dtype: &'static str,
) -> Result<BTreeMap<String, BoardEstimate>> {
    let summary = summarize_proto(&model.proto, None)?;
    let mut out = BTreeMap::new();
    for t in targets {
        let board = boards::board(&t.board)?;
        // A board without an fp16 runtime runs fp16 weights as fp32.
        let pick = |dtype: &'static str| {
            let supports = |rt: &str| boards::runtime(rt).is_ok_and(|r| r.dtypes.contains(&dtype));
            t.runtime
                .as_deref()
                .filter(|rt| supports(rt))
                .or_else(|| board.runtimes.iter().copied().find(|rt| supports(rt)))
                .map(|rt| (rt, dtype))
        };
        let Some((runtime, dtype)) = pick(dtype).or_else(|| pick("fp32")) else {
            continue;
        };
        let e = estimate(
            &summary,
            &EstimateRequest {
                device: t.board.clone(),
                runtime: Some(runtime.to_string()),
                dtype: dtype.to_string(),
                threads: 1,
                clock_mhz: None,
            },
        )?;
        out.insert(
            t.board.clone(),
            BoardEstimate {
                runtime: e.runtime,
                dtype: e.dtype,
                latency_ms: e.latency_ms,
                ram_kb: e.peak_ram_kb,
                flash_kb: e.flash_kb,
                energy_uj: e.energy_uj,
                fits: e.fits,
            },
        );
    }
    Ok(out)
}

/// Accuracy, agreement, size, host latency and board estimates of `model`.
pub fn measure(
    inputs: &JobInputs,
    model: &OnnxModel,
    technique: Option<&Technique>,
    started: Instant,
) -> Result<(Vec<u8>, VariantResult)> {
    let eval = evaluate_against(
        model,
        Some(&inputs.reference),
        &inputs.evaluation,
        EvalOptions::default(),
    )?;
    let bytes = model.to_bytes();
    let result = VariantResult {
        sha256: sha256_hex(&bytes),
        size_bytes: bytes.len() as u64,
        accuracy: eval.accuracy,
        agreement: eval.agreement,
        sqnr_db: eval.sqnr_db,
        host_latency_ms: eval.latency.map(|l| l.median_ms),
        estimates: estimates(model, &inputs.boards, dtype_of(technique))?,
        artifact_path: None,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((bytes, result))
}

/// Apply `technique` and measure the variant. `progress` gets the share of the whole
/// technique done; returning `Break` cancels (as `OptimizeError::Cancelled`).
pub fn run_technique(
    inputs: &JobInputs,
    technique: &Technique,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<(Vec<u8>, VariantResult)> {
    let started = Instant::now();
    let variant = apply(&inputs.model, technique, &inputs.calibration, &mut |p| {
        progress(Progress {
            stage: p.stage,
            fraction: p.fraction * APPLY_SHARE,
        })
    })?;
    if progress(Progress {
        stage: "evaluate".into(),
        fraction: APPLY_SHARE,
    })
    .is_break()
    {
        return Err(OptimizeError::Cancelled);
    }
    measure(inputs, &variant, Some(technique), started)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
