//! A tract plan for one ONNX model at one concrete batch size, fed and read as f32.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{ArrayD, ArrayViewD};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::transform::ModelTransform;

use super::error::{chain_line, OptimizeError, Result};
use super::model::OnnxModel;
use super::tensor::dtype_name;

/// How float16 arithmetic is executed. On x86_64, tract 0.23 runs f16 matrix products through a
/// generic scalar kernel that converts every operand (~100x slower than f32: minutes for 100
/// SqueezeNet images), so by default f16 graphs are computed in f32. The f16 weights are kept
/// exactly (f16 -> f32 is lossless); only activations are no longer rounded to f16, which is what
/// ONNX Runtime's CPU provider does too for most operators (it wraps them in Casts to f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HalfCompute {
    /// f16 tensors and ops become f32 before optimization (tract's `f16_to_f32` transform).
    #[default]
    AsF32,
    /// Exact f16 semantics; very slow on CPUs without native f16 kernels.
    Native,
}

/// An optimized tract plan with input shape `[batch, ...]`. Runs in the calling thread only.
#[derive(Debug, Clone)]
pub struct Runner {
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
    input_dt: DatumType,
    /// True when f16 parts of the graph were translated to f32 ([`HalfCompute::AsF32`]).
    half_as_f32: bool,
}

impl Runner {
    pub(crate) fn new(model: &OnnxModel, batch: usize, half: HalfCompute) -> Result<Runner> {
        if batch == 0 {
            return Err(OptimizeError::invalid_argument(
                "batch",
                "must be at least 1",
            ));
        }
        let inputs = model.real_inputs();
        if inputs.len() > 1 {
            let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(OptimizeError::Unsupported(format!(
                "the model has {} inputs ({}); only single-input models are supported",
                names.len(),
                names.join(", ")
            )));
        }
        let info = model.input_info()?;
        if let Some(fixed) = model.fixed_batch()? {
            if fixed != batch {
                return Err(OptimizeError::invalid_argument(
                    "batch",
                    format!(
                        "input `{}` has a fixed batch of {fixed}, asked for {batch}",
                        info.name
                    ),
                ));
            }
        }
        let mut input_shape = model.input_shape()?;
        if let Some(b) = input_shape.first_mut() {
            *b = batch;
        }
        let input_dt = match info.elem_type {
            1 => DatumType::F32,
            10 => DatumType::F16,
            11 => DatumType::F64,
            other => {
                return Err(OptimizeError::Unsupported(format!(
                    "input `{}` is {}; only float inputs are supported",
                    info.name,
                    dtype_name(other)
                )))
            }
        };
        let shape = input_shape.clone();
        let (plan, half_as_f32) = guard(move || {
            // Declared output shapes may carry the exported batch; the graph itself is the truth.
            let onnx = tract_onnx::onnx().with_ignore_output_shapes(true);
            let model = onnx.model_for_proto_model(&model.proto)?;
            let model = model.with_input_fact(0, InferenceFact::dt_shape(input_dt, shape))?;
            let mut typed = model.into_typed()?;
            let has_f16 = typed.nodes().iter().any(|n| {
                n.outputs
                    .iter()
                    .any(|o| o.fact.datum_type == DatumType::F16)
            });
            let half_as_f32 = has_f16 && half == HalfCompute::AsF32;
            if half_as_f32 {
                let translator = tract_onnx::tract_core::floats::FloatPrecisionTranslator::new(
                    DatumType::F16,
                    DatumType::F32,
                );
                typed = translator.transform_into(typed)?;
            }
            let options = RunOptions {
                executor: Some(multithread::Executor::SingleThread),
                ..Default::default()
            };
            Ok((
                typed
                    .into_optimized()?
                    .into_runnable_with_options(&options)?,
                half_as_f32,
            ))
        })
        .map_err(OptimizeError::Unsupported)?;
        // The translation turns an f16 source into an f32 one: feed what the plan expects.
        let input_dt = plan
            .model()
            .input_fact(0)
            .map(|f| f.datum_type)
            .unwrap_or(input_dt);
        Ok(Runner {
            plan,
            input_shape,
            input_dt,
            half_as_f32,
        })
    }

    /// Whether f16 parts of the graph run in f32 (see [`HalfCompute`]).
    pub fn half_as_f32(&self) -> bool {
        self.half_as_f32
    }

    pub fn batch(&self) -> usize {
        self.input_shape.first().copied().unwrap_or(1)
    }

    /// Full input shape, batch first.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Concrete shape of the first output, when tract knows it before running.
    pub fn output_shape(&self) -> Option<Vec<usize>> {
        let fact = self.plan.model().output_fact(0).ok()?;
        fact.shape.as_concrete().map(|s| s.to_vec())
    }

    /// Runs one batch; the input is cast to the model's input type and the first output to f32.
    pub fn run(&self, input: ArrayViewD<f32>) -> Result<ArrayD<f32>> {
        if input.shape() != self.input_shape.as_slice() {
            return Err(OptimizeError::InvalidData(format!(
                "input shape {:?} does not match the runner's input shape {:?}",
                input.shape(),
                self.input_shape
            )));
        }
        let dt = self.input_dt;
        let plan = &self.plan;
        guard(move || {
            let tensor: Tensor = input.to_owned().into();
            let tensor = if dt == DatumType::F32 {
                tensor
            } else {
                tensor.cast_to_dt(dt)?.into_owned()
            };
            let outputs = plan.run(tvec!(tensor.into_tvalue()))?;
            let Some(first) = outputs.first() else {
                return Err(TractError::msg("the model produced no output"));
            };
            Ok(first
                .cast_to::<f32>()?
                .to_plain_array_view::<f32>()?
                .to_owned())
        })
        .map_err(OptimizeError::Inference)
    }
}

/// Runs tract code, turning both its errors and its panics (it has `unimplemented!` paths for
/// exotic tensors) into one-line messages.
fn guard<T>(f: impl FnOnce() -> TractResult<T>) -> std::result::Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(chain_line(&e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("tract panicked: {}", super::error::one_line(&msg)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_catches_errors_and_panics() {
        assert_eq!(guard(|| Ok(3)).unwrap(), 3);
        let e = guard::<()>(|| Err(TractError::msg("inner").context("outer"))).unwrap_err();
        assert_eq!(e, "outer: inner");
        let e = guard::<()>(|| panic!("boom\nline2")).unwrap_err();
        assert_eq!(e, "tract panicked: boom; line2");
    }
}
