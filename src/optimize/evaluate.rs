//! Measuring a model on a data set: accuracy, agreement and output error against a baseline,
//! size on disk, and host latency in tract.

use std::io::Write;
use std::time::Instant;

use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::{Array2, ArrayD, ArrayView1, ArrayView2, Axis, IxDyn};
use serde::{Deserialize, Serialize};

use super::data::Dataset;
use super::error::{OptimizeError, Result};
use super::model::{OnnxModel, Runner};

/// SQNR reported for bit-identical outputs (the true value is +infinity, which JSON cannot hold);
/// `-SQNR_CAP_DB` when the reference is all zeros but the output is not. f32 noise floors sit far
/// below this (~150 dB), so any value at the cap means "identical".
pub const SQNR_CAP_DB: f64 = 200.0;

/// Samples per tract call when the model's batch axis is symbolic.
pub const EVAL_BATCH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Timed single-sample runs; 0 skips the latency measurement.
    pub latency_runs: usize,
    /// Untimed runs before timing.
    pub warmup: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            latency_runs: 20,
            warmup: 3,
        }
    }
}

/// Host latency of one inference (batch 1, or the model's fixed batch) in tract, one thread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub runs: usize,
    pub warmup: usize,
    /// Samples per timed run (1 unless the model fixes a larger batch).
    pub batch: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub samples: usize,
    /// Length of the flattened first output per sample (classes for a classifier).
    pub outputs_per_sample: usize,
    /// Top-1 accuracy against the labels, as a fraction in [0, 1]; `None` without labels.
    pub accuracy: Option<f64>,
    /// Fraction of samples whose top-1 class equals the baseline's; `None` without a baseline.
    pub agreement: Option<f64>,
    /// 10·log10(Σref² / Σ(ref−out)²) over all outputs; capped at ±[`SQNR_CAP_DB`].
    pub sqnr_db: Option<f64>,
    /// Largest |ref − out| over all outputs.
    pub max_abs_error: Option<f64>,
    pub file_size_bytes: u64,
    /// Size after gzip (default level) of the serialized model: what the weights really cost.
    pub gzip_size_bytes: u64,
    pub latency: Option<Latency>,
    /// The model has float16 parts and they were computed in f32 (tract's f16 kernels are
    /// unusably slow on x86; see `HalfCompute`). Accuracy then reflects f16 weights only.
    pub f16_computed_as_f32: bool,
}

/// Evaluates `model` on `data`, comparing with `baseline`'s outputs when given.
pub fn evaluate(
    model: &OnnxModel,
    baseline: Option<&OnnxModel>,
    data: &Dataset,
    opts: EvalOptions,
) -> Result<Evaluation> {
    let reference = baseline.map(|b| predictions(b, data)).transpose()?;
    evaluate_against(model, reference.as_ref(), data, opts)
}

/// As [`evaluate`], with the baseline's [`predictions`] computed once by the caller (for sweeps).
pub fn evaluate_against(
    model: &OnnxModel,
    reference: Option<&Array2<f32>>,
    data: &Dataset,
    opts: EvalOptions,
) -> Result<Evaluation> {
    let out = predictions(model, data)?;
    let accuracy = data.labels.as_deref().map(|l| top1_accuracy(out.view(), l));
    let (mut agreement, mut sqnr_db, mut max_abs_error) = (None, None, None);
    if let Some(r) = reference {
        if r.shape() != out.shape() {
            return Err(OptimizeError::invalid_argument(
                "baseline",
                format!(
                    "its outputs have shape {:?}, the model's {:?}",
                    r.shape(),
                    out.shape()
                ),
            ));
        }
        agreement = Some(top1_agreement(r.view(), out.view()));
        sqnr_db = Some(sqnr_db_of(r.view(), out.view()));
        max_abs_error = Some(
            r.iter()
                .zip(out.iter())
                .map(|(a, b)| f64::from((a - b).abs()))
                .fold(0.0, f64::max),
        );
    }
    let bytes = model.to_bytes();
    let latency = if opts.latency_runs > 0 {
        Some(measure_latency(model, data, opts)?)
    } else {
        None
    };
    Ok(Evaluation {
        samples: out.nrows(),
        outputs_per_sample: out.ncols(),
        accuracy,
        agreement,
        sqnr_db,
        max_abs_error,
        file_size_bytes: bytes.len() as u64,
        gzip_size_bytes: gzip_size(&bytes),
        latency,
        f16_computed_as_f32: model.has_f16(),
    })
}

/// The first output for every sample, flattened per sample: `[N, outputs_per_sample]`.
/// Runs batches of [`EVAL_BATCH`] (zero-padded at the end) when the batch axis is symbolic,
/// falling back to one sample at a time if the model will not run batched.
pub fn predictions(model: &OnnxModel, data: &Dataset) -> Result<Array2<f32>> {
    check_sample_shape(model, data)?;
    if data.is_empty() {
        return Err(OptimizeError::InvalidData(
            "the data set has no samples".into(),
        ));
    }
    match model.fixed_batch()? {
        Some(b) => run_all(&model.runner(b)?, data),
        None => {
            let batch = EVAL_BATCH.min(data.len());
            let batched = model.runner(batch).and_then(|r| run_all(&r, data));
            match batched {
                Err(_) if batch > 1 => run_all(&model.runner(1)?, data),
                other => other,
            }
        }
    }
}

fn check_sample_shape(model: &OnnxModel, data: &Dataset) -> Result<()> {
    let input = model.input_shape()?;
    if input.get(1..) != Some(data.sample_shape()) {
        return Err(OptimizeError::InvalidData(format!(
            "samples of shape {:?} do not fit the model input {input:?}",
            data.sample_shape()
        )));
    }
    Ok(())
}

/// A batch `[b, ...]` of samples starting at `start`, wrapping around and zero-padding as needed.
fn padded_batch(data: &Dataset, start: usize, b: usize) -> ArrayD<f32> {
    let view = data.batch(start..start + b);
    if view.shape()[0] == b {
        return view.to_owned();
    }
    let mut shape = data.inputs.shape().to_vec();
    shape[0] = b;
    let mut full = ArrayD::zeros(IxDyn(&shape));
    full.slice_axis_mut(Axis(0), ndarray::Slice::from(0..view.shape()[0]))
        .assign(&view);
    full
}

fn run_all(runner: &Runner, data: &Dataset) -> Result<Array2<f32>> {
    let (n, b) = (data.len(), runner.batch());
    let mut result: Option<Array2<f32>> = None;
    for start in (0..n).step_by(b) {
        let out = runner.run(padded_batch(data, start, b).view())?;
        let per_sample = out.len() / b;
        if out.len() != per_sample * b || (b > 1 && out.shape().first() != Some(&b)) {
            return Err(OptimizeError::Inference(format!(
                "output shape {:?} has no batch axis of {b}",
                out.shape()
            )));
        }
        let rows = out
            .into_shape_with_order((b, per_sample))
            .map_err(|e| OptimizeError::Inference(format!("cannot flatten the output: {e}")))?;
        let res = result.get_or_insert_with(|| Array2::zeros((n, per_sample)));
        if res.ncols() != per_sample {
            return Err(OptimizeError::Inference(
                "output size changed between batches".into(),
            ));
        }
        let take = b.min(n - start);
        res.slice_mut(ndarray::s![start..start + take, ..])
            .assign(&rows.slice(ndarray::s![..take, ..]));
    }
    result.ok_or_else(|| OptimizeError::InvalidData("the data set has no samples".into()))
}

/// Warm-up, then `latency_runs` timed single-batch runs cycling through the data.
pub fn measure_latency(model: &OnnxModel, data: &Dataset, opts: EvalOptions) -> Result<Latency> {
    check_sample_shape(model, data)?;
    if data.is_empty() {
        return Err(OptimizeError::InvalidData(
            "the data set has no samples".into(),
        ));
    }
    let runner = model.runner(model.fixed_batch()?.unwrap_or(1))?;
    let b = runner.batch();
    let inputs: Vec<ArrayD<f32>> = (0..data.len().div_ceil(b).min(16))
        .map(|i| padded_batch(data, i * b, b))
        .collect();
    let mut times = Vec::with_capacity(opts.latency_runs);
    for i in 0..opts.warmup + opts.latency_runs {
        let input = &inputs[i % inputs.len()];
        let t0 = Instant::now();
        runner.run(input.view())?;
        if i >= opts.warmup {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(Latency {
        median_ms: percentile(&times, 0.5),
        p90_ms: percentile(&times, 0.9),
        min_ms: times.first().copied().unwrap_or(0.0),
        runs: times.len(),
        warmup: opts.warmup,
        batch: b,
    })
}

/// Nearest-rank percentile of sorted values (0 for none); the median of an even count is the
/// mean of the middle two.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if q == 0.5 && n % 2 == 0 => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

/// Index of the largest value (the first one on ties; NaN never wins).
pub fn argmax(row: ArrayView1<f32>) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() {
            best = i;
        }
    }
    best
}

pub fn top1_accuracy(out: ArrayView2<f32>, labels: &[i64]) -> f64 {
    let hits = out
        .outer_iter()
        .zip(labels)
        .filter(|(row, &l)| argmax(row.view()) as i64 == l)
        .count();
    hits as f64 / out.nrows().max(1) as f64
}

pub fn top1_agreement(reference: ArrayView2<f32>, out: ArrayView2<f32>) -> f64 {
    let same = reference
        .outer_iter()
        .zip(out.outer_iter())
        .filter(|(a, b)| argmax(a.view()) == argmax(b.view()))
        .count();
    same as f64 / out.nrows().max(1) as f64
}

/// Signal-to-quantization-noise ratio in dB, capped at ±[`SQNR_CAP_DB`].
pub fn sqnr_db_of(reference: ArrayView2<f32>, out: ArrayView2<f32>) -> f64 {
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    for (&r, &o) in reference.iter().zip(out.iter()) {
        signal += f64::from(r) * f64::from(r);
        noise += (f64::from(r) - f64::from(o)).powi(2);
    }
    if noise.is_nan() || signal.is_nan() {
        return -SQNR_CAP_DB;
    }
    if noise == 0.0 {
        return SQNR_CAP_DB;
    }
    (10.0 * (signal / noise).log10()).clamp(-SQNR_CAP_DB, SQNR_CAP_DB)
}

/// Bytes after gzip at the default level.
pub fn gzip_size(bytes: &[u8]) -> u64 {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    match enc.write_all(bytes).and_then(|_| enc.finish()) {
        Ok(v) => v.len() as u64,
        Err(_) => bytes.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn metrics() {
        let r = array![[0.1f32, 0.9, 0.0], [0.8, 0.1, 0.1]];
        let o = array![[0.2f32, 0.7, 0.1], [0.1, 0.8, 0.1]];
        assert_eq!(top1_accuracy(r.view(), &[1, 0]), 1.0);
        assert_eq!(top1_accuracy(o.view(), &[1, 0]), 0.5);
        assert_eq!(top1_agreement(r.view(), o.view()), 0.5);
        assert_eq!(sqnr_db_of(r.view(), r.view()), SQNR_CAP_DB);
        let z = Array2::<f32>::zeros((2, 3));
        assert_eq!(sqnr_db_of(z.view(), r.view()), -SQNR_CAP_DB);
        let noisy = r.mapv(|v| v * 1.1);
        // noise = 0.01 * signal -> 20 dB
        assert!((sqnr_db_of(r.view(), noisy.view()) - 20.0).abs() < 1e-4);
    }

    #[test]
    fn argmax_ties_and_nan() {
        assert_eq!(argmax(array![1.0f32, 3.0, 3.0].view()), 1);
        assert_eq!(argmax(array![f32::NAN, 0.0, 2.0].view()), 2);
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.5);
        assert_eq!(percentile(&v, 0.9), 9.0);
        assert_eq!(percentile(&[4.0], 0.9), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn gzip_shrinks_repetitive_bytes() {
        assert!(gzip_size(&[0u8; 10_000]) < 200);
    }

    #[test]
    fn evaluates_a_tiny_model_against_itself() {
        let m = OnnxModel::from_proto(crate::optimize::model::tests::add_model(-1)).unwrap();
        let x = ndarray::Array::from_shape_fn(IxDyn(&[40, 3]), |ix| {
            (ix[0] % 3) as f32 * (ix[1] as f32 - 1.0)
        });
        let d = Dataset::new(x, Some(vec![2; 40])).unwrap();
        let p = predictions(&m, &d).unwrap();
        assert_eq!(p.shape(), &[40, 3]);
        assert_eq!(p.row(38).to_vec(), vec![-1.0, 2.0, 5.0]);
        assert_eq!(p.row(39).to_vec(), vec![1.0, 2.0, 3.0]);
        let e = evaluate(
            &m,
            Some(&m),
            &d,
            EvalOptions {
                latency_runs: 5,
                warmup: 1,
            },
        )
        .unwrap();
        assert_eq!(
            (e.samples, e.accuracy, e.agreement, e.sqnr_db),
            (40, Some(1.0), Some(1.0), Some(SQNR_CAP_DB))
        );
        assert_eq!(e.latency.as_ref().map(|l| (l.runs, l.batch)), Some((5, 1)));
        assert_eq!(e.file_size_bytes, m.file_size());
        let bad = Dataset::new(ndarray::Array::zeros(IxDyn(&[2, 4])), None).unwrap();
        let err = predictions(&m, &bad).unwrap_err().to_string();
        assert!(err.contains("[4]") && err.contains("[1, 3]"), "{err}");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["sqnr_db"], 200.0);
    }

    #[test]
    fn padded_batches() {
        let d = Dataset::new(
            ndarray::Array::from_shape_fn(IxDyn(&[3, 2]), |ix| ix[0] as f32 + 1.0),
            None,
        )
        .unwrap();
        let p = padded_batch(&d, 2, 2);
        assert_eq!(p.into_raw_vec_and_offset().0, vec![3.0, 3.0, 0.0, 0.0]);
    }
}
