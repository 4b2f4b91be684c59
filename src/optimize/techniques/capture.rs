//! Running a model (float or partly rewritten) with tract and reading intermediate tensors,
//! one calibration sample at a time so memory stays bounded.

use ndarray::{ArrayD, Axis, IxDyn};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use crate::optimize::data::Dataset;
use crate::optimize::error::{OptimizeError, Result};

fn unsupported(e: impl std::fmt::Display) -> OptimizeError {
    OptimizeError::Unsupported(e.to_string())
}

/// A tract plan whose outputs are the named tensors, run on single samples (batch 1, which
/// models with a hard-coded batch such as mnist-8's Reshape also accept).
pub struct Tap {
    plan: Arc<TypedRunnableModel>,
    pub names: Vec<String>,
}

impl Tap {
    pub fn new(model: &ModelProto, names: &[String], sample_shape: &[usize]) -> Result<Self> {
        let mut inf = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .model_for_proto_model(model)
            .map_err(|e| unsupported(format!("{e:#}")))?;
        let mut shape = vec![1usize];
        shape.extend_from_slice(sample_shape);
        inf.set_input_fact(0, f32::fact(&shape).into())
            .map_err(|e| unsupported(format!("{e:#}")))?;
        inf.select_outputs_by_name(names.iter())
            .map_err(|e| unsupported(format!("{e:#}")))?;
        let plan = inf
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| unsupported(format!("{e:#}")))?;
        Ok(Self {
            plan,
            names: names.to_vec(),
        })
    }

    /// Run one sample (shape = model input without batch); returns the tapped tensors as f32.
    pub fn run(&self, sample: ndarray::ArrayViewD<f32>) -> Result<Vec<ArrayD<f32>>> {
        let x = sample.insert_axis(Axis(0)).to_owned();
        let t: Tensor = x.into();
        let outs = self
            .plan
            .run(tvec!(t.into()))
            .map_err(|e| OptimizeError::Inference(format!("{e:#}")))?;
        outs.iter()
            .map(|o| {
                let o = o
                    .cast_to::<f32>()
                    .map_err(|e| OptimizeError::Inference(format!("{e:#}")))?;
                let v = o
                    .to_plain_array_view::<f32>()
                    .map_err(|e| OptimizeError::Inference(format!("{e:#}")))?;
                v.to_owned()
                    .into_shape_with_order(IxDyn(o.shape()))
                    .map_err(|e| OptimizeError::Inference(e.to_string()))
            })
            .collect()
    }
}

/// Number of samples and the per-sample shape of a calibration set.
pub fn sample_shape(data: &Dataset) -> Result<(usize, Vec<usize>)> {
    let shape = data.inputs.shape();
    if shape.len() < 2 || shape[0] == 0 {
        return Err(OptimizeError::InvalidData(format!(
            "calibration set needs shape [N, ...] with N > 0, got {shape:?}"
        )));
    }
    Ok((shape[0], shape[1..].to_vec()))
}
