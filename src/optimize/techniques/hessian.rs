//! Layer-input statistics from the calibration set: H = Σ xxᵀ over im2col rows, captured by
//! running the (float) model once and streaming sample by sample.

use std::collections::BTreeSet;

use ndarray::Axis;
use tract_onnx::pb::ModelProto;

use super::capture::{sample_shape, Tap};
use super::layers::{input_rows, positions, Hessian, Layer};
use super::Reporter;
use crate::optimize::data::Dataset;
use crate::optimize::error::Result;

/// Output positions sampled per image and layer: enough rows for a well-conditioned H
/// (K ≤ ~600 for squeezenet), while keeping XᵀX cheap.
pub const ROWS_PER_SAMPLE: usize = 768;

/// One Hessian per layer (same order), over all calibration samples.
pub fn collect(
    model: &ModelProto,
    layers: &[Layer],
    data: &Dataset,
    stage: &str,
    rep: &mut Reporter,
) -> Result<Vec<Hessian>> {
    let (n, shape) = sample_shape(data)?;
    let names: Vec<String> = layers
        .iter()
        .map(|l| l.input.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let tap = Tap::new(model, &names, &shape)?;
    let mut hs: Vec<Hessian> = layers.iter().map(|l| Hessian::new(l.cols())).collect();
    for i in 0..n {
        rep.report(stage, i as f32 / n as f32)?;
        let outs = tap.run(data.inputs.index_axis(Axis(0), i))?;
        for (l, h) in layers.iter().zip(hs.iter_mut()) {
            let Some(pos) = names.iter().position(|nm| *nm == l.input) else {
                continue;
            };
            let rows = input_rows(l, &outs[pos], ROWS_PER_SAMPLE)?;
            h.add(&rows);
            h.positions = positions(l, outs[pos].shape());
        }
    }
    Ok(hs)
}
