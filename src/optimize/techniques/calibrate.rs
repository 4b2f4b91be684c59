//! Activation calibration for int8-static: per-tensor ranges from min-max, a percentile, or
//! the clip that minimizes the expected uint8 quantization error (MSE) over a histogram.

use std::collections::HashMap;

use tract_onnx::pb::ModelProto;

use super::capture::{sample_shape, Tap};
use super::proto;
use super::Reporter;
use crate::optimize::data::Dataset;
use crate::optimize::error::Result;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibMethod {
    MinMax,
    /// Clip at this percentile (e.g. 99.99) of the observed magnitudes.
    Percentile(f32),
    /// Clip minimizing the histogram's expected squared quantization error.
    Mse,
}

/// Float range a tensor is quantized over; always contains 0 (so 0 is exact).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

impl Range {
    /// uint8 scale and zero point covering the range.
    pub fn u8_params(&self) -> (f32, u8) {
        let lo = self.min.min(0.0);
        let hi = self.max.max(0.0);
        let span = (hi - lo).max(1e-8);
        let scale = span / 255.0;
        let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        (scale, zp)
    }
}

const BINS: usize = 2048;

struct Hist {
    lo: f32,
    hi: f32,
    counts: Vec<u64>,
}

impl Hist {
    fn new(lo: f32, hi: f32) -> Self {
        Self {
            lo,
            hi: hi.max(lo + 1e-8),
            counts: vec![0; BINS],
        }
    }
    fn add(&mut self, v: f32) {
        let t = ((v - self.lo) / (self.hi - self.lo) * BINS as f32) as isize;
        self.counts[t.clamp(0, BINS as isize - 1) as usize] += 1;
    }
    fn center(&self, i: usize) -> f32 {
        self.lo + (i as f32 + 0.5) * (self.hi - self.lo) / BINS as f32
    }
    /// Value below which `q` (0..1) of the mass lies.
    fn quantile(&self, q: f64) -> f32 {
        let total: u64 = self.counts.iter().sum();
        let target = (q * total as f64).ceil() as u64;
        let mut acc = 0;
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= target {
                return self.center(i);
            }
        }
        self.hi
    }
    /// Expected squared error of uint8 quantization over `r` (clipping included).
    fn mse(&self, r: Range) -> f64 {
        let (s, zp) = r.u8_params();
        let mut err = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let v = self.center(i);
            let q = ((v / s).round() + zp as f32).clamp(0.0, 255.0);
            let d = (v - (q - zp as f32) * s) as f64;
            err += d * d * c as f64;
        }
        err
    }
}

/// Names worth calibrating: the first real input and every node output except shape plumbing.
fn calibration_names(model: &ModelProto) -> Result<Vec<String>> {
    let g = proto::graph(model)?;
    let inits: std::collections::HashSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut names: Vec<String> = g
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .take(1)
        .map(|i| i.name.clone())
        .collect();
    for n in &g.node {
        if matches!(
            n.op_type.as_str(),
            "Shape" | "Constant" | "ConstantOfShape" | "Cast"
        ) {
            continue;
        }
        names.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
    }
    Ok(names)
}

/// Ranges of all float tensors of `model` over the calibration set.
pub fn calibrate(
    model: &ModelProto,
    method: CalibMethod,
    data: &Dataset,
    rep: &mut Reporter,
) -> Result<HashMap<String, Range>> {
    let (n, shape) = sample_shape(data)?;
    let names = calibration_names(model)?;
    let tap = Tap::new(model, &names, &shape)?;
    let mut ranges: Vec<Range> = vec![Range { min: 0.0, max: 0.0 }; names.len()];
    let passes = if method == CalibMethod::MinMax { 1 } else { 2 };
    for i in 0..n {
        rep.report("calibrate: ranges", i as f32 / (n * passes) as f32)?;
        let outs = tap.run(data.inputs.index_axis(ndarray::Axis(0), i))?;
        for (r, t) in ranges.iter_mut().zip(&outs) {
            for &v in t.iter() {
                if v.is_finite() {
                    r.min = r.min.min(v);
                    r.max = r.max.max(v);
                }
            }
        }
    }
    if method == CalibMethod::MinMax {
        return Ok(names.into_iter().zip(ranges).collect());
    }
    let mut hists: Vec<Hist> = ranges.iter().map(|r| Hist::new(r.min, r.max)).collect();
    for i in 0..n {
        rep.report("calibrate: histograms", (n + i) as f32 / (2 * n) as f32)?;
        let outs = tap.run(data.inputs.index_axis(ndarray::Axis(0), i))?;
        for (h, t) in hists.iter_mut().zip(&outs) {
            for &v in t.iter() {
                if v.is_finite() {
                    h.add(v);
                }
            }
        }
    }
    let chosen = ranges
        .iter()
        .zip(&hists)
        .map(|(r, h)| choose(*r, h, method))
        .collect::<Vec<_>>();
    Ok(names.into_iter().zip(chosen).collect())
}

fn choose(full: Range, h: &Hist, method: CalibMethod) -> Range {
    match method {
        CalibMethod::MinMax => full,
        CalibMethod::Percentile(p) => {
            let p = (p as f64 / 100.0).clamp(0.5, 1.0);
            let hi = if full.max > 0.0 {
                h.quantile(p).max(0.0).min(full.max)
            } else {
                full.max
            };
            let lo = if full.min < 0.0 {
                h.quantile(1.0 - p).min(0.0).max(full.min)
            } else {
                full.min
            };
            Range { min: lo, max: hi }
        }
        CalibMethod::Mse => {
            let mut best = (h.mse(full), full);
            for step in 1..64 {
                let a = 1.0 - step as f32 / 80.0;
                let cand = Range {
                    min: full.min * a,
                    max: full.max * a,
                };
                let e = h.mse(cand);
                if e < best.0 {
                    best = (e, cand);
                }
            }
            best.1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_params_cover_range_and_zero() {
        let (s, zp) = Range {
            min: 0.0,
            max: 2.55,
        }
        .u8_params();
        assert!((s - 0.01).abs() < 1e-6);
        assert_eq!(zp, 0);
        let (_, zp) = Range {
            min: -1.0,
            max: 1.0,
        }
        .u8_params();
        assert!(zp == 127 || zp == 128);
    }

    #[test]
    fn mse_clips_a_long_tail() {
        let mut h = Hist::new(0.0, 100.0);
        for i in 0..10000 {
            h.add((i % 100) as f32 / 100.0);
        }
        h.add(100.0);
        let r = choose(
            Range {
                min: 0.0,
                max: 100.0,
            },
            &h,
            CalibMethod::Mse,
        );
        assert!(r.max <= 100.0);
        let p = choose(
            Range {
                min: 0.0,
                max: 100.0,
            },
            &h,
            CalibMethod::Percentile(99.0),
        );
        assert!(p.max < 2.0);
    }
}
