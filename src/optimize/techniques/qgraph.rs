//! The int8-static graph. Convs become QLinearConv (uint8 activations, per-channel 7-bit
//! weights as GPTQ rounded them, int32 bias, a following Relu folded into the output range),
//! which tract and ONNX Runtime run with integer kernels; QDQ around a float Conv is run in
//! float by tract.
//! MaxPool/Concat/Reshape/Flatten/Identity pass uint8 through (Concat inputs share one scale:
//! the producers are given the Concat output's range). MatMul/Gemm use QDQ (quantized input,
//! per-channel int8 weight through DequantizeLinear). Everything else - Softmax, pooling heads
//! such as GlobalAveragePool, Adds with [1,10] biases - runs in float behind DequantizeLinear,
//! which keeps the heads that break under int8 in float automatically.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{ModelProto, NodeProto, TensorProto};

use super::calibrate::Range;
use super::int8::{channel_axis, quantize_rows_i8, RowCodes, STATIC_WEIGHT_MAX};
use super::layers::{self, Kind, Layer};
use super::proto::{self, attr_i, attr_int, GraphIndex, Namer};
use super::{opset, Reporter};
use crate::optimize::error::Result;

#[derive(Clone)]
struct QTensor {
    name: String,
    scale: String,
    zp: String,
    s: f32,
    z: u8,
}

struct Builder {
    namer: Namer,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    twins: HashMap<String, QTensor>,
    float: HashSet<String>,
    ranges: HashMap<String, Range>,
    /// Weights already rounded (by GPTQ), by initializer name.
    rounded: HashMap<String, RowCodes>,
}

impl Builder {
    fn params(&mut self, base: &str, s: f32, z: u8) -> (String, String) {
        let sn = self.namer.fresh(&format!("{base}_scale"));
        let zn = self.namer.fresh(&format!("{base}_zp"));
        self.inits.push(proto::f32_tensor(&sn, &[], &[s]));
        self.inits.push(proto::u8_tensor(&zn, &[], &[z]));
        (sn, zn)
    }

    fn qtensor(&mut self, base: &str, r: Range) -> QTensor {
        let (s, z) = r.u8_params();
        let (scale, zp) = self.params(base, s, z);
        QTensor {
            name: self.namer.fresh(&format!("{base}_q")),
            scale,
            zp,
            s,
            z,
        }
    }

    /// The int8 codes of a layer's weights W: the pre-rounded ones, else rounded to nearest.
    fn codes(&self, weight: &str, w: &ndarray::Array2<f32>) -> RowCodes {
        match self.rounded.get(weight) {
            Some(c) if c.1.len() == w.nrows() && c.0.len() == w.len() => c.clone(),
            _ => quantize_rows_i8(w, STATIC_WEIGHT_MAX),
        }
    }

    /// The uint8 twin of `t`, quantizing the float tensor on first use.
    fn get_q(&mut self, t: &str) -> Option<QTensor> {
        if let Some(q) = self.twins.get(t) {
            return Some(q.clone());
        }
        let r = *self.ranges.get(t)?;
        if !self.float.contains(t) {
            return None;
        }
        let q = self.qtensor(t, r);
        let name = self.namer.fresh(&format!("{t}_quant"));
        self.nodes.push(proto::node(
            "QuantizeLinear",
            &name,
            &[t, &q.scale, &q.zp],
            &[&q.name],
        ));
        self.twins.insert(t.to_string(), q.clone());
        Some(q)
    }

    /// Make the float tensor `t` available, dequantizing its twin under its own name.
    fn get_f(&mut self, t: &str) {
        if t.is_empty() || self.float.contains(t) {
            return;
        }
        if let Some(q) = self.twins.get(t).cloned() {
            let name = self.namer.fresh(&format!("{t}_dequant"));
            self.nodes.push(proto::node(
                "DequantizeLinear",
                &name,
                &[&q.name, &q.scale, &q.zp],
                &[t],
            ));
            self.float.insert(t.to_string());
        }
    }
}

pub fn build(
    mut model: ModelProto,
    ranges: &HashMap<String, Range>,
    rounded: HashMap<String, RowCodes>,
    rep: &mut Reporter,
) -> Result<ModelProto> {
    opset::raise_opset(&mut model)?;
    let g = proto::graph_mut(&mut model)?;
    proto::toposort(g)?;
    let idx = GraphIndex::new(g);
    let layer_of: HashMap<usize, Layer> = layers::find_layers(g)
        .into_iter()
        .map(|l| (l.node, l))
        .collect();
    let mut b = Builder {
        namer: Namer::new(g),
        nodes: Vec::new(),
        inits: Vec::new(),
        twins: HashMap::new(),
        float: g
            .initializer
            .iter()
            .map(|t| t.name.clone())
            .chain(g.input.iter().map(|i| i.name.clone()))
            .collect(),
        ranges: ranges.clone(),
        rounded,
    };
    b.float.insert(String::new());
    let init_map: HashMap<String, TensorProto> = g
        .initializer
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    let old_nodes = g.node.clone();
    let mut fused: HashSet<usize> = HashSet::new();
    let total = old_nodes.len().max(1);
    for (i, n) in old_nodes.iter().enumerate() {
        rep.report(
            &format!("int8-static: {}", n.op_type),
            i as f32 / total as f32,
        )?;
        if fused.contains(&i) {
            continue;
        }
        let handled = match (n.op_type.as_str(), layer_of.get(&i)) {
            ("Conv", Some(layer)) => {
                qlinear_conv(&mut b, &idx, &old_nodes, i, layer, &init_map, &mut fused)?
            }
            ("MatMul" | "Gemm", Some(layer)) => qdq_matmul(&mut b, n, layer, &init_map)?,
            ("MaxPool" | "Identity" | "Flatten" | "Reshape", _) => pass_through(&mut b, n),
            ("Concat", _) => concat(&mut b, n),
            _ => false,
        };
        if !handled {
            for inp in &n.input {
                b.get_f(inp);
            }
            b.nodes.push(n.clone());
            b.float.extend(n.output.iter().cloned());
        }
    }
    for o in g.output.clone() {
        b.get_f(&o.name);
    }
    g.node = b.nodes;
    g.initializer.extend(b.inits);
    proto::drop_unused_initializers(g);
    proto::toposort(g)?;
    Ok(model)
}

fn qlinear_conv(
    b: &mut Builder,
    idx: &GraphIndex,
    nodes: &[NodeProto],
    i: usize,
    layer: &Layer,
    inits: &HashMap<String, TensorProto>,
    fused: &mut HashSet<usize>,
) -> Result<bool> {
    let n = &nodes[i];
    // A sole Relu consumer is folded: its range starts at 0, so the uint8 clamp at zero point 0
    // is the Relu.
    let relu = idx
        .sole_consumer(&n.output[0])
        .filter(|&j| nodes[j].op_type == "Relu");
    let out = relu
        .map(|j| nodes[j].output[0].clone())
        .unwrap_or_else(|| n.output[0].clone());
    // Producers of a Concat share its output range so the Concat can stay uint8.
    let range_src = match idx.sole_consumer(&out) {
        Some(j) if nodes[j].op_type == "Concat" && b.ranges.contains_key(&nodes[j].output[0]) => {
            nodes[j].output[0].clone()
        }
        _ => out.clone(),
    };
    let Some(mut r) = b.ranges.get(&range_src).copied() else {
        return Ok(false);
    };
    if relu.is_some() {
        r.min = 0.0;
    }
    let Some(x) = b.get_q(&layer.input) else {
        return Ok(false);
    };
    let Some(wt) = inits.get(&layer.weight) else {
        return Ok(false);
    };
    let w = layers::weight_matrix(layer, &proto::tensor_to_f32(wt)?)?;
    let (codes, w_scales) = b.codes(&layer.weight, &w);
    let base = layer.name.clone();
    let wq = b.namer.fresh(&format!("{base}_w_q"));
    let ws = b.namer.fresh(&format!("{base}_w_scale"));
    let wz = b.namer.fresh(&format!("{base}_w_zp"));
    b.inits.push(proto::i8_tensor(&wq, &layer.shape, &codes));
    b.inits
        .push(proto::f32_tensor(&ws, &[w_scales.len()], &w_scales));
    // A scalar zero point, not one per channel: tract removes the zero-point corrections
    // only for a scalar zero, and otherwise runs them as full-tensor ops after every conv.
    b.inits.push(proto::i8_tensor(&wz, &[], &[0]));
    let y = b.qtensor(&out, r);
    let mut inputs = vec![
        x.name.clone(),
        x.scale.clone(),
        x.zp.clone(),
        wq,
        ws,
        wz,
        y.scale.clone(),
        y.zp.clone(),
    ];
    if let Some(bias) = layer.bias.as_ref().and_then(|bn| inits.get(bn)) {
        let bv = proto::tensor_to_f32(bias)?;
        // int32 bias in units of x_scale * w_scale[o].
        let q: Vec<i32> = bv
            .iter()
            .zip(&w_scales)
            .map(|(v, ws)| {
                (v / (x.s * ws))
                    .round()
                    .clamp(i32::MIN as f32, i32::MAX as f32) as i32
            })
            .collect();
        let bq = b.namer.fresh(&format!("{base}_b_q"));
        b.inits.push(proto::i32_tensor(&bq, &[q.len()], &q));
        inputs.push(bq);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let mut node = proto::node(
        "QLinearConv",
        &b.namer.fresh(&format!("{base}_qlinear")),
        &refs,
        &[&y.name],
    );
    node.attribute = n.attribute.clone();
    b.nodes.push(node);
    b.twins.insert(out, y);
    if let Some(j) = relu {
        fused.insert(j);
    }
    Ok(true)
}

fn qdq_matmul(
    b: &mut Builder,
    n: &NodeProto,
    layer: &Layer,
    inits: &HashMap<String, TensorProto>,
) -> Result<bool> {
    let Some(x) = b.get_q(&layer.input) else {
        return Ok(false);
    };
    let Some(wt) = inits.get(&layer.weight) else {
        return Ok(false);
    };
    let w = layers::weight_matrix(layer, &proto::tensor_to_f32(wt)?)?;
    let (codes, scales) = b.codes(&layer.weight, &w);
    let codes_f: Vec<f32> = codes.iter().map(|&c| c as f32).collect();
    let m = ndarray::Array2::from_shape_vec(w.dim(), codes_f)
        .map_err(|e| crate::optimize::error::OptimizeError::InvalidModel(e.to_string()))?;
    let laid: Vec<i8> = layers::weight_tensor(layer, m.view())?
        .iter()
        .map(|&c| c as i8)
        .collect();
    let base = layer.name.clone();
    let wq = b.namer.fresh(&format!("{base}_w_q"));
    let ws = b.namer.fresh(&format!("{base}_w_scale"));
    let wz = b.namer.fresh(&format!("{base}_w_zp"));
    b.inits.push(proto::i8_tensor(&wq, &layer.shape, &laid));
    b.inits
        .push(proto::f32_tensor(&ws, &[scales.len()], &scales));
    b.inits.push(proto::i8_tensor(
        &wz,
        &[scales.len()],
        &vec![0; scales.len()],
    ));
    let wf = b.namer.fresh(&format!("{base}_w_dq"));
    let dq = proto::node(
        "DequantizeLinear",
        &b.namer.fresh(&format!("{base}_w_dequant")),
        &[&wq, &ws, &wz],
        &[&wf],
    );
    b.nodes.push(proto::with_attrs(
        dq,
        vec![attr_int("axis", channel_axis(layer.kind))],
    ));
    let xf = b.namer.fresh(&format!("{}_dq", layer.input));
    let dqx = proto::node(
        "DequantizeLinear",
        &b.namer.fresh(&format!("{base}_x_dequant")),
        &[&x.name, &x.scale, &x.zp],
        &[&xf],
    );
    b.nodes.push(dqx);
    let mut node = n.clone();
    node.input[0] = xf;
    node.input[1] = wf;
    for extra in node.input.iter().skip(2) {
        b.get_f(extra);
    }
    let _ = matches!(layer.kind, Kind::Gemm);
    b.nodes.push(node);
    b.float.extend(n.output.iter().cloned());
    Ok(true)
}

/// Ops that move uint8 values without arithmetic keep the input's scale and zero point.
fn pass_through(b: &mut Builder, n: &NodeProto) -> bool {
    let Some(q) = b.twins.get(&n.input[0]).cloned() else {
        return false;
    };
    if n.output.len() != 1 || (n.op_type == "MaxPool" && attr_i(n, "storage_order", 0) != 0) {
        return false;
    }
    for extra in n.input.iter().skip(1) {
        if !b.float.contains(extra) {
            return false;
        }
    }
    let out = QTensor {
        name: b.namer.fresh(&format!("{}_q", n.output[0])),
        ..q
    };
    let mut node = n.clone();
    node.input[0] = q.name.clone();
    node.output[0] = out.name.clone();
    b.nodes.push(node);
    b.twins.insert(n.output[0].clone(), out);
    true
}

fn concat(b: &mut Builder, n: &NodeProto) -> bool {
    let qs: Option<Vec<QTensor>> = n.input.iter().map(|i| b.twins.get(i).cloned()).collect();
    let Some(qs) = qs else { return false };
    let Some(first) = qs.first().cloned() else {
        return false;
    };
    if qs.iter().any(|q| q.s != first.s || q.z != first.z) {
        return false;
    }
    let out = QTensor {
        name: b.namer.fresh(&format!("{}_q", n.output[0])),
        ..first
    };
    let mut node = n.clone();
    node.input = qs.iter().map(|q| q.name.clone()).collect();
    node.output[0] = out.name.clone();
    b.nodes.push(node);
    b.twins.insert(n.output[0].clone(), out);
    true
}
