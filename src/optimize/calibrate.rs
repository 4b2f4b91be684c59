//! Fitting the latency model to published measurements, and judging it by leave-one-model-out
//! cross-validation.
//!
//! The model, per measurement (board b, runtime t, data type d, threads n, clock f MHz):
//!
//! ```text
//! latency_ms = exp(η) · Σ_j x_j · exp(w_j) / (f · 1000) / n^α
//!   x_j : work of the graph by class (3×3 conv MACs, pointwise MACs, other conv MACs,
//!         depthwise MACs, fully-connected MACs, other-op elements, layers, 1 per inference)
//!   w_j : cycles per unit of class j = w[kind, j] + w[runtime family, j] + w[runtime, j]
//!   η   : speed of the board/runtime/type = μ + simd + core + board + runtime family + runtime
//!         + board×runtime + dtype×kind + dtype×runtime
//!   α   : thread scaling exponent per board kind (MCU / Linux)
//! ```
//!
//! Every effect has a Gaussian prior (ridge penalty) centred on 0 — on a typical cycle cost for
//! the class weights — so a board or runtime with few rows borrows strength from its core
//! family, SIMD class and runtime family, and an unseen one falls back to them. The fit is
//! penalized least squares on log latency, solved by Levenberg–Marquardt; it is deterministic,
//! so re-running it on the shipped CSV reproduces the shipped coefficients. The prior widths
//! ([`Sigmas::default`]) were picked by a coarse grid on the leave-one-model-out error of
//! [`super::validation`]; the board×runtime width is loose (σ = 2) because the same runtime
//! name covers very different kernels on different boards (TFLite Micro: 0.3 to 46 cycles/MAC).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::boards::{board, runtime, BoardKind};
use super::error::{OptimizeError, Result};
use super::graph::MacsByClass;

/// Names of the work classes `x_j`, in order.
pub const FEATURES: [&str; 8] = [
    "conv3x3",
    "pointwise",
    "conv_other",
    "depthwise",
    "fully_connected",
    "other_ops",
    "layers",
    "call",
];

/// Prior cycles per unit of each class: 1 per MAC and per element, a few thousand per layer
/// (kernel dispatch, im2col setup) and tens of thousands per call (interpreter entry).
const PRIOR_CYCLES: [f64; 8] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3000.0, 30000.0];

/// The work vector of a graph.
pub fn work(macs: &MacsByClass, layers: u64) -> [f64; 8] {
    let pointwise = macs.conv_pointwise as f64;
    [
        macs.conv3x3 as f64,
        pointwise,
        (macs.conv_other as f64 - pointwise).max(0.0),
        macs.depthwise as f64,
        macs.fully_connected as f64,
        macs.other as f64,
        layers as f64,
        1.0,
    ]
}

/// Prior standard deviations (log units) of each level of effects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sigmas {
    pub simd: f64,
    pub core: f64,
    pub board: f64,
    pub runtime_family: f64,
    pub runtime: f64,
    pub board_runtime: f64,
    pub dtype_kind: f64,
    pub dtype_runtime: f64,
    /// Class weights of MAC classes around their prior (others get 3.0: barely informative).
    pub class: f64,
    pub class_runtime_family: f64,
    pub class_runtime: f64,
    pub alpha: f64,
}

impl Default for Sigmas {
    fn default() -> Self {
        Sigmas {
            simd: 1.0,
            core: 1.0,
            board: 0.4,
            runtime_family: 1.0,
            runtime: 1.0,
            board_runtime: 2.0,
            dtype_kind: 1.0,
            dtype_runtime: 0.4,
            class: 1.0,
            class_runtime_family: 0.7,
            class_runtime: 0.3,
            alpha: 0.3,
        }
    }
}

/// One published measurement joined with its graph's work.
#[derive(Debug, Clone)]
pub struct Row {
    pub model_file: String,
    pub device: String,
    pub runtime: String,
    /// "fp32", "fp16" or "int8".
    pub dtype: String,
    pub threads: u32,
    pub clock_mhz: f64,
    pub latency_ms: f64,
    pub energy_uj: Option<f64>,
    pub ram_kb: Option<f64>,
    pub flash_kb: Option<f64>,
    pub work: [f64; 8],
    /// Graph facts for the memory model.
    pub params: u64,
    pub peak_activation_elements: u64,
}

/// Coefficients of a fitted latency model, plus the runtimes' memory overheads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub sigmas: Sigmas,
    pub rows: usize,
    /// Parameter name → value; names not listed take their prior mean.
    pub params: BTreeMap<String, f64>,
    /// Runtime id → fixed RAM/flash besides activations and weights, from published figures.
    #[serde(default)]
    pub memory: BTreeMap<String, MemoryOverhead>,
}

/// Fixed memory of a runtime: the median over published rows of (measured − activation peak)
/// for RAM and (measured − weights) for flash, both sized for the row's data type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryOverhead {
    pub ram_kb: f64,
    pub flash_kb: f64,
    pub rows: usize,
}

/// Fits [`MemoryOverhead`] per runtime from the rows that publish RAM and flash.
pub fn fit_memory(rows: &[Row]) -> BTreeMap<String, MemoryOverhead> {
    let mut per: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in rows {
        let (Some(ram), Some(flash)) = (r.ram_kb, r.flash_kb) else {
            continue;
        };
        let bytes = super::boards::dtype_bytes(&r.dtype).unwrap_or(1) as f64;
        let e = per.entry(r.runtime.clone()).or_default();
        e.0.push(ram - r.peak_activation_elements as f64 * bytes / 1024.0);
        e.1.push(flash - r.params as f64 * bytes / 1024.0);
    }
    per.into_iter()
        .filter_map(|(rt, (ram, flash))| {
            let rows = ram.len();
            Some((
                rt,
                MemoryOverhead {
                    ram_kb: round_sig(median(ram)?.max(0.0)),
                    flash_kb: round_sig(median(flash)?.max(0.0)),
                    rows,
                },
            ))
        })
        .collect()
}

/// One parameter's prior.
#[derive(Debug, Clone, Copy)]
struct Prior {
    mean: f64,
    sd: f64,
}

/// The parameter names one row depends on, with priors.
struct RowKeys {
    eta: Vec<(String, Prior)>,
    class: Vec<Vec<(String, Prior)>>,
    alpha: (String, Prior),
}

fn row_keys(device: &str, rt: &str, dtype: &str, s: &Sigmas) -> Result<RowKeys> {
    let b = board(device)?;
    let r = runtime(rt)?;
    let kind = match b.kind {
        BoardKind::Mcu => "mcu",
        BoardKind::Linux => "linux",
    };
    let simd = serde_json::to_value(b.simd)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let p = |mean, sd| Prior { mean, sd };
    let eta = vec![
        ("mu".to_string(), p(0.0, 100.0)),
        (format!("simd/{simd}"), p(0.0, s.simd)),
        (format!("core/{}", b.core_family), p(0.0, s.core)),
        (format!("board/{device}"), p(0.0, s.board)),
        (
            format!("runtime_family/{}", r.family),
            p(0.0, s.runtime_family),
        ),
        (format!("runtime/{rt}"), p(0.0, s.runtime)),
        (
            format!("board_runtime/{device}/{rt}"),
            p(0.0, s.board_runtime),
        ),
        (format!("dtype_kind/{dtype}/{kind}"), p(0.0, s.dtype_kind)),
        (
            format!("dtype_runtime/{dtype}/{rt}"),
            p(0.0, s.dtype_runtime),
        ),
    ];
    let class = FEATURES
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let sd = if j < 5 { s.class } else { 3.0 };
            vec![
                (format!("class/{kind}/{f}"), p(PRIOR_CYCLES[j].ln(), sd)),
                (
                    format!("class_runtime_family/{}/{f}", r.family),
                    p(0.0, s.class_runtime_family),
                ),
                (format!("class_runtime/{rt}/{f}"), p(0.0, s.class_runtime)),
            ]
        })
        .collect();
    Ok(RowKeys {
        eta,
        class,
        alpha: (format!("alpha/{kind}"), p(0.6, s.alpha)),
    })
}

/// Log latency of one row and the share of each class in its cycles.
fn log_latency(
    keys: &RowKeys,
    value: &dyn Fn(&str, Prior) -> f64,
    work: &[f64; 8],
    clock_mhz: f64,
    threads: u32,
) -> (f64, [f64; 8]) {
    let eta: f64 = keys.eta.iter().map(|(k, p)| value(k, *p)).sum();
    let mut terms = [0.0; 8];
    for (j, t) in terms.iter_mut().enumerate() {
        let w: f64 = keys.class[j].iter().map(|(k, p)| value(k, *p)).sum();
        *t = work[j] * w.exp();
    }
    let cycles: f64 = terms.iter().sum();
    let mut share = [0.0; 8];
    for j in 0..8 {
        share[j] = terms[j] / cycles;
    }
    let alpha = value(&keys.alpha.0, keys.alpha.1);
    (
        eta + cycles.ln() - (clock_mhz * 1000.0).ln() - alpha * f64::from(threads).ln(),
        share,
    )
}

impl Calibration {
    /// Predicted latency in ms.
    pub fn predict_ms(
        &self,
        device: &str,
        rt: &str,
        dtype: &str,
        work: &[f64; 8],
        clock_mhz: f64,
        threads: u32,
    ) -> Result<f64> {
        let keys = row_keys(device, rt, dtype, &self.sigmas)?;
        let value = |k: &str, p: Prior| self.params.get(k).copied().unwrap_or(p.mean);
        Ok(log_latency(&keys, &value, work, clock_mhz, threads).0.exp())
    }

    /// The fitted cycles per unit of each work class for a board kind and runtime.
    pub fn cycles_per_unit(&self, device: &str, rt: &str) -> Result<[f64; 8]> {
        let keys = row_keys(device, rt, "int8", &self.sigmas)?;
        let mut out = [0.0; 8];
        for (j, o) in out.iter_mut().enumerate() {
            *o = keys.class[j]
                .iter()
                .map(|(k, p)| self.params.get(k).copied().unwrap_or(p.mean))
                .sum::<f64>()
                .exp();
        }
        Ok(out)
    }
}

/// Fits the latency model to `rows` (penalized least squares on log latency).
pub fn calibrate(rows: &[Row], sigmas: &Sigmas) -> Result<Calibration> {
    if rows.is_empty() {
        return Err(OptimizeError::InvalidData("no calibration rows".into()));
    }
    let keys: Vec<RowKeys> = rows
        .iter()
        .map(|r| row_keys(&r.device, &r.runtime, &r.dtype, sigmas))
        .collect::<Result<_>>()?;
    // Deterministic parameter order: sorted names.
    let mut priors: BTreeMap<String, Prior> = BTreeMap::new();
    for k in &keys {
        for (name, p) in k
            .eta
            .iter()
            .chain(k.class.iter().flatten())
            .chain(std::iter::once(&k.alpha))
        {
            priors.insert(name.clone(), *p);
        }
    }
    let names: Vec<&String> = priors.keys().collect();
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mean: Vec<f64> = priors.values().map(|p| p.mean).collect();
    let prec: Vec<f64> = priors.values().map(|p| 1.0 / (p.sd * p.sd)).collect();
    let n_par = names.len();
    let y: Vec<f64> = rows.iter().map(|r| r.latency_ms.ln()).collect();
    let idx = |k: &str| index[k];

    let residuals = |theta: &[f64]| -> (Vec<f64>, Vec<[f64; 8]>) {
        let value = |k: &str, _p: Prior| theta[idx(k)];
        rows.iter()
            .zip(&keys)
            .zip(&y)
            .map(|((r, k), y)| {
                let (pred, share) = log_latency(k, &value, &r.work, r.clock_mhz, r.threads);
                (pred - y, share)
            })
            .unzip()
    };
    let loss = |theta: &[f64], res: &[f64]| -> f64 {
        res.iter().map(|r| r * r).sum::<f64>()
            + theta
                .iter()
                .zip(&mean)
                .zip(&prec)
                .map(|((t, m), p)| (t - m) * (t - m) * p)
                .sum::<f64>()
    };

    let mut theta = mean.clone();
    let (mut res, mut share) = residuals(&theta);
    let mut current = loss(&theta, &res);
    let mut lambda = 1e-3;
    for _ in 0..500 {
        // Gauss–Newton normal equations with the prior as extra rows: H = JᵀJ + P, g = Jᵀr + P(θ−m).
        let mut h = vec![0.0; n_par * n_par];
        let mut g: Vec<f64> = theta
            .iter()
            .zip(&mean)
            .zip(&prec)
            .map(|((t, m), p)| (t - m) * p)
            .collect();
        for i in 0..n_par {
            h[i * n_par + i] = prec[i];
        }
        for ((r, k), (ri, sh)) in rows.iter().zip(&keys).zip(res.iter().zip(&share)) {
            let mut jac: BTreeMap<usize, f64> = BTreeMap::new();
            for (name, _) in &k.eta {
                *jac.entry(idx(name)).or_default() += 1.0;
            }
            for (j, level) in k.class.iter().enumerate() {
                for (name, _) in level {
                    *jac.entry(idx(name)).or_default() += sh[j];
                }
            }
            *jac.entry(idx(&k.alpha.0)).or_default() -= f64::from(r.threads).ln();
            let entries: Vec<(usize, f64)> = jac.into_iter().filter(|(_, v)| *v != 0.0).collect();
            for &(a, va) in &entries {
                g[a] += va * ri;
                for &(b, vb) in &entries {
                    h[a * n_par + b] += va * vb;
                }
            }
        }
        let mut improved = false;
        while lambda < 1e12 {
            let mut damped = h.clone();
            for i in 0..n_par {
                damped[i * n_par + i] += lambda * h[i * n_par + i];
            }
            let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
            let solved = ndarray::Array2::from_shape_vec((n_par, n_par), damped)
                .ok()
                .and_then(|a| super::techniques::linalg::spd_solve(&a, &neg_g));
            let Some(step) = solved else {
                lambda *= 4.0;
                continue;
            };
            let trial: Vec<f64> = theta.iter().zip(&step).map(|(t, s)| t + s).collect();
            let (tres, tshare) = residuals(&trial);
            let tl = loss(&trial, &tres);
            if tl < current {
                let gain = current - tl;
                theta = trial;
                res = tres;
                share = tshare;
                current = tl;
                lambda = (lambda / 3.0).max(1e-9);
                improved = gain > 1e-12 * current.max(1.0);
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    let params = names
        .iter()
        .zip(&theta)
        .map(|(n, v)| ((*n).clone(), round_sig(*v)))
        .collect();
    Ok(Calibration {
        sigmas: sigmas.clone(),
        rows: rows.len(),
        params,
        memory: fit_memory(rows),
    })
}

/// Rounds to 10 significant digits so the shipped JSON is stable across platforms' last bits.
fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powi(9 - v.abs().log10().floor() as i32);
    (v * mag).round() / mag
}

pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}
