//! Raising the default-domain opset (per-axis DequantizeLinear needs 13) while keeping every
//! existing node valid and meaning the same thing.

use tract_onnx::pb::{ModelProto, NodeProto};

use super::proto::{self, attr_i, attr_int, get_attr, Namer};
use crate::optimize::error::{OptimizeError, Result};

/// Ops whose signature and meaning did not change between their older versions and opset 13,
/// for the attributes they may carry in old models.
const STABLE: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Concat",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Sum",
    "Max",
    "Min",
    "Mean",
    "Flatten",
    "Transpose",
    "Identity",
    "Constant",
    "Shape",
    "Gather",
    "Cast",
    "LRN",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
    "Neg",
    "Pow",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Equal",
    "Less",
    "Greater",
    "Where",
    "Expand",
    "Not",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL2",
    "Gemm",
    "Reshape",
    "InstanceNormalization",
    "Softplus",
    "Erf",
    "ArgMax",
    "ArgMin",
    "Tile",
    "ConstantOfShape",
    "DequantizeLinear",
    "QuantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvInteger",
];

pub const TARGET: i64 = 13;

/// Raise the default-domain opset to at least `TARGET`, rewriting the few ops whose form changed.
/// Errors (`Unsupported`) name the first op this cannot carry over.
pub fn raise_opset(model: &mut ModelProto) -> Result<()> {
    let from = proto::default_opset(model);
    model.ir_version = model.ir_version.max(7);
    if from >= TARGET {
        return Ok(());
    }
    let g = proto::graph_mut(model)?;
    let mut namer = Namer::new(g);
    let read: std::collections::HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(g.output.iter().map(|o| o.name.clone()))
        .collect();
    let mut out: Vec<NodeProto> = Vec::with_capacity(g.node.len());
    let mut new_inits = Vec::new();
    for mut n in std::mem::take(&mut g.node) {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            out.push(n);
            continue;
        }
        let op = n.op_type.clone();
        match op.as_str() {
            "Dropout" => {
                // Inference-time Dropout is the identity; its mask output cannot be kept.
                if n.output.len() > 1 && read.contains(&n.output[1]) {
                    return Err(unsupported(&n, "Dropout mask output is used"));
                }
                n.output.truncate(1);
                n.op_type = "Identity".into();
                n.attribute.clear();
                out.push(n);
            }
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                // Before 13 these flattened the input to 2-D at `axis` (default 1); from 13 on
                // they work along one axis (default -1). Spell the old meaning out:
                // Flatten(axis) -> op(axis=1) -> Reshape back to the input's shape.
                let axis = attr_i(&n, "axis", 1);
                let x = n.input[0].clone();
                let y = n.output[0].clone();
                let flat = namer.fresh(&format!("{y}_flat"));
                let soft = namer.fresh(&format!("{y}_2d"));
                let shape = namer.fresh(&format!("{y}_shape"));
                out.push(proto::with_attrs(
                    proto::node(
                        "Flatten",
                        &namer.fresh(&format!("{}_flatten", n.name)),
                        &[&x],
                        &[&flat],
                    ),
                    vec![attr_int("axis", axis)],
                ));
                out.push(proto::with_attrs(
                    proto::node(&op, &n.name, &[&flat], &[&soft]),
                    vec![attr_int("axis", 1)],
                ));
                out.push(proto::node(
                    "Shape",
                    &namer.fresh(&format!("{}_shape", n.name)),
                    &[&x],
                    &[&shape],
                ));
                out.push(proto::node(
                    "Reshape",
                    &namer.fresh(&format!("{}_reshape", n.name)),
                    &[&soft, &shape],
                    &[&y],
                ));
            }
            "BatchNormalization" => {
                if attr_i(&n, "spatial", 1) != 1 {
                    return Err(unsupported(&n, "non-spatial BatchNormalization"));
                }
                n.attribute
                    .retain(|a| a.name == "epsilon" || a.name == "momentum");
                n.output.truncate(1);
                out.push(n);
            }
            "Squeeze" | "Unsqueeze" | "ReduceSum" => {
                if let Some(axes) = get_attr(&n, "axes").map(|a| a.ints.clone()) {
                    let name = namer.fresh(&format!("{}_axes", n.name));
                    new_inits.push(proto::i64_tensor(&name, &[axes.len()], &axes));
                    n.attribute.retain(|a| a.name != "axes");
                    n.input.push(name);
                }
                out.push(n);
            }
            "Clip" if from < 11 => {
                let lo = proto::attr_f(&n, "min", f32::MIN);
                let hi = proto::attr_f(&n, "max", f32::MAX);
                let lo_n = namer.fresh(&format!("{}_min", n.name));
                let hi_n = namer.fresh(&format!("{}_max", n.name));
                new_inits.push(proto::f32_tensor(&lo_n, &[], &[lo]));
                new_inits.push(proto::f32_tensor(&hi_n, &[], &[hi]));
                n.attribute.clear();
                n.input.truncate(1);
                n.input.push(lo_n);
                n.input.push(hi_n);
                out.push(n);
            }
            "Clip" => out.push(n),
            "Add" | "Sub" | "Mul" | "Div" | "Gemm" | "Sum" => {
                if get_attr(&n, "axis").is_some() {
                    return Err(unsupported(&n, "legacy axis broadcasting"));
                }
                n.attribute
                    .retain(|a| a.name != "broadcast" && a.name != "consumed_inputs");
                out.push(n);
            }
            "Reshape" if from < 5 => return Err(unsupported(&n, "Reshape with a shape attribute")),
            o if STABLE.contains(&o) => {
                n.attribute.retain(|a| a.name != "consumed_inputs");
                out.push(n);
            }
            _ => return Err(unsupported(&n, "no known upgrade to opset 13")),
        }
    }
    g.node = out;
    g.initializer.extend(new_inits);
    for o in model.opset_import.iter_mut() {
        if o.domain.is_empty() || o.domain == "ai.onnx" {
            o.version = TARGET;
        }
    }
    Ok(())
}

fn unsupported(n: &NodeProto, why: &str) -> OptimizeError {
    OptimizeError::Unsupported(format!(
        "cannot raise the opset of {} ({}): {why}",
        n.name, n.op_type
    ))
}
