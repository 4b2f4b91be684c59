//! Judging the latency model: error statistics, leave-one-model-out cross-validation and the
//! MACs-per-second baselines the devices README quotes.

use std::collections::BTreeSet;

use serde::Serialize;

use super::calibrate::{calibrate, median, Row, Sigmas};
use super::error::Result;

/// Error summary of predictions against measurements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorStats {
    pub predictions: usize,
    /// Median |predicted − measured| / measured.
    pub median_ape: f64,
    /// Share of predictions within ±30 % of the measurement.
    pub within_30: f64,
}

impl ErrorStats {
    pub fn from_pairs(pairs: &[(f64, f64)]) -> ErrorStats {
        let mut ape: Vec<f64> = pairs.iter().map(|(p, m)| ((p - m) / m).abs()).collect();
        ape.sort_by(f64::total_cmp);
        let n = ape.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => ape[n / 2],
            _ => (ape[n / 2 - 1] + ape[n / 2]) / 2.0,
        };
        let within = ape.iter().filter(|e| **e <= 0.30).count() as f64 / n.max(1) as f64;
        ErrorStats {
            predictions: n,
            median_ape: median,
            within_30: within,
        }
    }
}

/// Leave-one-model-out predictions: for each model file, fit on the rows of all other models and
/// predict that model's rows. Returns (row index, predicted ms) pairs in row order.
pub fn lomo_predictions(rows: &[Row], sigmas: &Sigmas) -> Result<Vec<f64>> {
    let models: BTreeSet<&str> = rows.iter().map(|r| r.model_file.as_str()).collect();
    let mut out = vec![f64::NAN; rows.len()];
    for m in models {
        let train: Vec<Row> = rows.iter().filter(|r| r.model_file != m).cloned().collect();
        let cal = calibrate(&train, sigmas)?;
        for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.model_file == m) {
            out[i] = cal.predict_ms(
                &r.device,
                &r.runtime,
                &r.dtype,
                &r.work,
                r.clock_mhz,
                r.threads,
            )?;
        }
    }
    Ok(out)
}

/// The README's baselines, scored the same way: one MACs-per-second constant per
/// (device, dtype) — or per (device, runtime, dtype) with `per_runtime` — fitted as the median
/// throughput of the other models' rows; a combination without rows falls back to the device,
/// then to a clock-scaled global cycles-per-MAC.
pub fn lomo_baseline(rows: &[Row], per_runtime: bool) -> Vec<f64> {
    let macs = |r: &Row| r.work[..5].iter().sum::<f64>();
    let key = |r: &Row| {
        if per_runtime {
            format!("{}/{}/{}", r.device, r.runtime, r.dtype)
        } else {
            format!("{}/{}", r.device, r.dtype)
        }
    };
    rows.iter()
        .map(|target| {
            let train: Vec<&Row> = rows
                .iter()
                .filter(|r| r.model_file != target.model_file)
                .collect();
            let pick = |f: &dyn Fn(&Row) -> bool| {
                median(
                    train
                        .iter()
                        .filter(|r| f(r))
                        .map(|r| macs(r) / r.latency_ms)
                        .collect(),
                )
            };
            let thr =
                pick(&|r| key(r) == key(target)).or_else(|| pick(&|r| r.device == target.device));
            match thr {
                Some(t) => macs(target) / t,
                None => {
                    let cpm = median(
                        train
                            .iter()
                            .map(|r| r.latency_ms * r.clock_mhz * 1000.0 / macs(r))
                            .collect(),
                    )
                    .unwrap_or(1.0);
                    cpm * macs(target) / (target.clock_mhz * 1000.0)
                }
            }
        })
        .collect()
}
