//! Model compression techniques: int8 (weight-only and static), fp16, int4 (GPTQ), pruning
//! (SparseGPT unstructured, channel-structured) and hybrids. Every technique returns a new
//! ONNX model that both tract and ONNX Runtime run.

pub mod calibrate;
pub mod capture;
pub mod channels;
pub mod fp16;
pub mod gptq;
pub mod hessian;
pub mod int4;
pub mod int4_store;
pub mod int8;
pub mod layers;
pub mod linalg;
pub mod opset;
pub mod proto;
pub mod prune;
pub mod qgraph;
pub mod rewrite;
pub mod sequential;
pub mod structured;

use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

use serde::Serialize;

pub use calibrate::CalibMethod;

use crate::optimize::data::Dataset;
use crate::optimize::error::{OptimizeError, Result};
use crate::optimize::model::OnnxModel;

#[derive(Debug, Clone, PartialEq)]
pub enum Technique {
    Int8Weight,
    Int8Static { calibration: CalibMethod },
    Fp16,
    Int4Weight { block: usize },
    PruneUnstructured { sparsity: f32 },
    PruneStructured { fraction: f32 },
    Hybrid { prune: Box<Technique> },
}

/// Progress of a running technique, reported per layer.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub stage: String,
    pub fraction: f32,
}

/// Wraps the caller's progress callback; `report` turns a `Break` into `Cancelled`.
pub struct Reporter<'a> {
    cb: &'a mut dyn FnMut(Progress) -> ControlFlow<()>,
    /// Sub-range of [0, 1] the current phase maps onto (hybrid runs two phases).
    span: (f32, f32),
}

impl<'a> Reporter<'a> {
    pub fn new(cb: &'a mut dyn FnMut(Progress) -> ControlFlow<()>) -> Self {
        Self {
            cb,
            span: (0.0, 1.0),
        }
    }

    pub fn report(&mut self, stage: &str, fraction: f32) -> Result<()> {
        let f = self.span.0 + (self.span.1 - self.span.0) * fraction.clamp(0.0, 1.0);
        match (self.cb)(Progress {
            stage: stage.to_string(),
            fraction: f,
        }) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(OptimizeError::Cancelled),
        }
    }

    pub fn span(&self) -> (f32, f32) {
        self.span
    }

    pub fn set_span(&mut self, from: f32, to: f32) {
        self.span = (from, to);
    }

    /// Maps the next phase onto `[from, to]` (shares in [0, 1]) of `outer`, a span saved with
    /// [`span`](Self::span), so a technique of several phases keeps its progress moving forward.
    pub fn set_phase(&mut self, outer: (f32, f32), from: f32, to: f32) {
        let at = |f: f32| outer.0 + (outer.1 - outer.0) * f;
        self.span = (at(from), at(to));
    }
}

impl Technique {
    pub fn name(&self) -> &'static str {
        match self {
            Technique::Int8Weight => "int8-weight",
            Technique::Int8Static { .. } => "int8-static",
            Technique::Fp16 => "fp16",
            Technique::Int4Weight { .. } => "int4-weight",
            Technique::PruneUnstructured { .. } => "prune-unstructured",
            Technique::PruneStructured { .. } => "prune-structured",
            Technique::Hybrid { .. } => "hybrid",
        }
    }

    /// Checks the parameters (ranges, block sizes, what a hybrid may prune with).
    pub fn validate(&self) -> Result<()> {
        let arg = |name: &str, reason: String| {
            Err(OptimizeError::InvalidArgument {
                name: name.into(),
                reason,
            })
        };
        match self {
            Technique::Int4Weight { block } if ![32, 64, 128].contains(block) => {
                arg("block", format!("{block} is not one of 32, 64, 128"))
            }
            Technique::PruneUnstructured { sparsity } if !(0.0..1.0).contains(sparsity) => {
                arg("sparsity", format!("{sparsity} is not in [0, 1)"))
            }
            Technique::PruneStructured { fraction } if !(0.0..0.95).contains(fraction) => {
                arg("fraction", format!("{fraction} is not in [0, 0.95)"))
            }
            Technique::Int8Static {
                calibration: CalibMethod::Percentile(p),
            } if !(50.0..=100.0).contains(p) => {
                arg("percentile", format!("{p} is not in [50, 100]"))
            }
            Technique::Hybrid { prune } => match prune.as_ref() {
                Technique::PruneStructured { .. } | Technique::PruneUnstructured { .. } => {
                    prune.validate()
                }
                other => arg(
                    "prune",
                    format!("{} is not a pruning technique", other.name()),
                ),
            },
            _ => Ok(()),
        }
    }
}

impl Technique {
    /// Technique `name` (see [`FromStr`]) with the parameters given; the others keep their
    /// defaults. For `hybrid`, `sparsity` alone picks unstructured pruning. Checked: a
    /// parameter the technique does not take is an error, not silently ignored.
    pub fn with_params(
        name: &str,
        sparsity: Option<f32>,
        fraction: Option<f32>,
        block: Option<usize>,
    ) -> Result<Technique> {
        let mut t: Technique = name.parse()?;
        let takes = |param: &str| match (&t, param) {
            (Technique::Int4Weight { .. }, "block") => true,
            (Technique::PruneUnstructured { .. }, "sparsity") => true,
            (Technique::PruneStructured { .. }, "fraction") => true,
            (Technique::Hybrid { .. }, "sparsity") => fraction.is_none(),
            (Technique::Hybrid { .. }, "fraction") => sparsity.is_none(),
            _ => false,
        };
        for (param, given) in [
            ("sparsity", sparsity.is_some()),
            ("fraction", fraction.is_some()),
            ("block", block.is_some()),
        ] {
            if given && !takes(param) {
                return Err(OptimizeError::InvalidArgument {
                    name: param.into(),
                    reason: format!(
                        "{name} does not take it (prune-unstructured takes sparsity, \
                         prune-structured fraction, int4-weight block; hybrid one of \
                         sparsity or fraction)"
                    ),
                });
            }
        }
        let prune = |p: &mut Technique| match p {
            Technique::PruneUnstructured { sparsity: s } => *s = sparsity.unwrap_or(*s),
            Technique::PruneStructured { fraction: f } => *f = fraction.unwrap_or(*f),
            _ => {}
        };
        match &mut t {
            Technique::Int4Weight { block: b } => *b = block.unwrap_or(*b),
            Technique::Hybrid { prune: inner } => {
                if sparsity.is_some() && fraction.is_none() {
                    **inner = Technique::PruneUnstructured { sparsity: 0.5 };
                }
                prune(inner);
            }
            other => prune(other),
        }
        t.validate()?;
        Ok(t)
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses the technique names with their defaults: `int8-static` (MSE clip), `int4-weight`
/// (block 32), `prune-unstructured` (50 %), `prune-structured` (30 %), `hybrid`
/// (structured 30 % then int8-static).
impl FromStr for Technique {
    type Err = OptimizeError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "int8-weight" => Technique::Int8Weight,
            "int8-static" => Technique::Int8Static {
                calibration: CalibMethod::Mse,
            },
            "fp16" => Technique::Fp16,
            "int4-weight" => Technique::Int4Weight { block: 32 },
            "prune-unstructured" => Technique::PruneUnstructured { sparsity: 0.5 },
            "prune-structured" => Technique::PruneStructured { fraction: 0.3 },
            "hybrid" => Technique::Hybrid {
                prune: Box::new(Technique::PruneStructured { fraction: 0.3 }),
            },
            other => {
                return Err(OptimizeError::InvalidArgument {
                    name: "technique".into(),
                    reason: format!(
                        "unknown technique {other:?} (expected int8-weight, int8-static, fp16, \
                         int4-weight, prune-unstructured, prune-structured or hybrid)"
                    ),
                })
            }
        })
    }
}

/// Apply `technique` to `model`, using `calibration` (ignored by int8-weight and fp16).
/// `progress` is called per layer; returning `Break` stops with `OptimizeError::Cancelled`.
pub fn apply(
    model: &OnnxModel,
    technique: &Technique,
    calibration: &Dataset,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
) -> Result<OnnxModel> {
    technique.validate()?;
    let mut rep = Reporter::new(progress);
    rep.report("prepare", 0.0)?;
    let mut proto = model.proto.clone();
    rewrite::normalize(&mut proto)?;
    let out = run(proto, technique, calibration, &mut rep)?;
    rep.set_span(0.0, 1.0);
    rep.report("done", 1.0)?;
    let mut result = OnnxModel::from_proto(out)?;
    result.source_dir = model.source_dir.clone();
    Ok(result)
}

fn run(
    proto: tract_onnx::pb::ModelProto,
    technique: &Technique,
    data: &Dataset,
    rep: &mut Reporter,
) -> Result<tract_onnx::pb::ModelProto> {
    match technique {
        Technique::Int8Weight => int8::weight_only(proto, rep),
        Technique::Int8Static { calibration } => int8::static_quant(proto, *calibration, data, rep),
        Technique::Fp16 => fp16::convert(proto, rep),
        Technique::Int4Weight { block } => int4::quantize(proto, *block, data, rep),
        Technique::PruneUnstructured { sparsity } => prune::sparsegpt(proto, *sparsity, data, rep),
        Technique::PruneStructured { fraction } => structured::prune(proto, *fraction, data, rep),
        Technique::Hybrid { prune } => {
            rep.set_span(0.0, 0.6);
            let pruned = run(proto, prune, data, rep)?;
            rep.set_span(0.6, 1.0);
            int8::static_quant(pruned, CalibMethod::Mse, data, rep)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in [
            "int8-weight",
            "int8-static",
            "fp16",
            "int4-weight",
            "prune-unstructured",
            "prune-structured",
            "hybrid",
        ] {
            assert_eq!(n.parse::<Technique>().unwrap().name(), n);
        }
        assert!("int3".parse::<Technique>().is_err());
    }

    #[test]
    fn a_parameter_the_technique_does_not_take_is_an_error() {
        let t = |n: &str, s, f, b| Technique::with_params(n, s, f, b);
        assert!(t("prune-structured", Some(0.3), None, None).is_err());
        assert!(t("prune-unstructured", None, Some(0.3), None).is_err());
        assert!(t("int8-static", None, None, Some(32)).is_err());
        assert!(t("hybrid", Some(0.5), Some(0.3), None).is_err());
        assert_eq!(
            t("prune-structured", None, Some(0.2), None).unwrap(),
            Technique::PruneStructured { fraction: 0.2 }
        );
        assert_eq!(
            t("hybrid", Some(0.4), None, None).unwrap(),
            Technique::Hybrid {
                prune: Box::new(Technique::PruneUnstructured { sparsity: 0.4 })
            }
        );
        assert_eq!(
            t("int4-weight", None, None, Some(64)).unwrap(),
            Technique::Int4Weight { block: 64 }
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(Technique::Int4Weight { block: 48 }.validate().is_err());
        assert!(Technique::PruneUnstructured { sparsity: 1.5 }
            .validate()
            .is_err());
        assert!(Technique::Hybrid {
            prune: Box::new(Technique::Fp16)
        }
        .validate()
        .is_err());
    }
}
