//! int8 quantization: weight-only (per-output-channel symmetric int8 behind DequantizeLinear)
//! and static (activations calibrated, see `qgraph`).

use tract_onnx::pb::ModelProto;

use super::calibrate::{self, CalibMethod};
use super::layers::{self, Kind};
use super::proto::{self, attr_int, Namer};
use super::{opset, qgraph, Reporter};
use crate::optimize::data::Dataset;
use crate::optimize::error::Result;

/// Symmetric per-channel int8 of W [rows, cols]: (codes row-major, one scale per row).
pub fn quantize_rows_i8(w: &ndarray::Array2<f32>) -> (Vec<i8>, Vec<f32>) {
    let mut codes = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(w.nrows());
    for row in w.rows() {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        codes.extend(
            row.iter()
                .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (codes, scales)
}

/// The channel axis of the weight initializer (where per-axis scales apply).
pub fn channel_axis(kind: Kind) -> i64 {
    match kind {
        Kind::Conv | Kind::GemmT => 0,
        Kind::MatMul | Kind::Gemm => 1,
    }
}

pub fn weight_only(mut model: ModelProto, rep: &mut Reporter) -> Result<ModelProto> {
    opset::raise_opset(&mut model)?;
    let g = proto::graph_mut(&mut model)?;
    let found = layers::find_layers(g);
    let mut namer = Namer::new(g);
    let mut dq_nodes = Vec::new();
    for (li, layer) in found.iter().enumerate() {
        rep.report(
            &format!("int8-weight {}", layer.name),
            li as f32 / found.len().max(1) as f32,
        )?;
        let Some(t) = g.initializer.iter().find(|t| t.name == layer.weight) else {
            continue;
        };
        let w = layers::weight_matrix(layer, &proto::tensor_to_f32(t)?)?;
        let (codes, scales) = quantize_rows_i8(&w);
        // Codes back in the initializer's own layout.
        let codes_f: Vec<f32> = codes.iter().map(|&c| c as f32).collect();
        let codes_m = ndarray::Array2::from_shape_vec(w.dim(), codes_f)
            .map_err(|e| crate::optimize::error::OptimizeError::InvalidModel(e.to_string()))?;
        let laid = layers::weight_tensor(layer, codes_m.view())?;
        let codes_i8: Vec<i8> = laid.iter().map(|&c| c as i8).collect();
        let base = layer.weight.clone();
        let q = namer.fresh(&format!("{base}_q"));
        let s = namer.fresh(&format!("{base}_scale"));
        let z = namer.fresh(&format!("{base}_zp"));
        g.initializer
            .push(proto::i8_tensor(&q, &layer.shape, &codes_i8));
        g.initializer
            .push(proto::f32_tensor(&s, &[scales.len()], &scales));
        g.initializer.push(proto::i8_tensor(
            &z,
            &[scales.len()],
            &vec![0; scales.len()],
        ));
        let deq = namer.fresh(&format!("{base}_dq"));
        let node = proto::node(
            "DequantizeLinear",
            &namer.fresh(&format!("{base}_dequant")),
            &[&q, &s, &z],
            &[&deq],
        );
        dq_nodes.push(proto::with_attrs(
            node,
            vec![attr_int("axis", channel_axis(layer.kind))],
        ));
        g.node[layer.node].input[1] = deq;
    }
    dq_nodes.append(&mut g.node);
    g.node = dq_nodes;
    proto::drop_unused_initializers(g);
    Ok(model)
}

pub fn static_quant(
    model: ModelProto,
    method: CalibMethod,
    data: &Dataset,
    rep: &mut Reporter,
) -> Result<ModelProto> {
    // Calibration runs the model over the data; rewriting the graph is quick.
    let outer = rep.span();
    rep.set_phase(outer, 0.0, 0.8);
    let ranges = calibrate::calibrate(&model, method, data, rep)?;
    rep.set_phase(outer, 0.8, 1.0);
    let out = qgraph::build(model, &ranges, rep);
    rep.set_span(outer.0, outer.1);
    out
}
