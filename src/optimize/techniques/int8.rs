//! int8 quantization: weight-only (per-output-channel symmetric int8 behind DequantizeLinear)
//! and static (activations calibrated, 7-bit weights rounded by GPTQ, see `qgraph`).

use std::collections::HashMap;

use ndarray::Array2;
use tract_onnx::pb::ModelProto;

use super::calibrate::{self, CalibMethod};
use super::layers::{self, Kind};
use super::proto::{self, attr_int, Namer};
use super::{gptq, int4, opset, qgraph, sequential, Reporter};
use crate::optimize::data::Dataset;
use crate::optimize::error::{OptimizeError, Result};

/// Per-channel int8 weights of a layer: codes of W [rows, cols] row-major, one scale per row.
pub type RowCodes = (Vec<i8>, Vec<f32>);

/// Largest weight code of `int8-weight`: the weights are dequantized before any arithmetic.
pub const WEIGHT_ONLY_MAX: f32 = 127.0;

/// Largest weight code of `int8-static` (7-bit weights, ONNX Runtime's `reduce_range`). On
/// x86 CPUs with AVX2 but no VNNI, ONNX Runtime multiplies uint8 activations by int8 weights
/// with `vpmaddubsw`, which adds pairs of products in int16 and saturates beyond 32,767:
/// 2 x 255 x 127 overflows, 2 x 255 x 63 does not. With ±127 squeezenet agreed 74 % with
/// fp32 in ONNX Runtime on such a CPU (AMD EPYC, Zen 3) and 98 % in tract; with ±63 and GPTQ
/// rounding, 100 % in both (output SQNR 24.4 dB against 24.5 dB with ±127).
pub const STATIC_WEIGHT_MAX: f32 = 63.0;

/// Symmetric per-channel int8 of W [rows, cols], codes within ±`qmax`.
pub fn quantize_rows_i8(w: &Array2<f32>, qmax: f32) -> RowCodes {
    let scales = row_scales(w, qmax);
    let codes = w
        .rows()
        .into_iter()
        .zip(&scales)
        .flat_map(|(row, &s)| {
            row.into_iter()
                .map(move |v| (v / s).round().clamp(-qmax, qmax) as i8)
        })
        .collect();
    (codes, scales)
}

/// One scale per row that maps its largest magnitude to `qmax`.
fn row_scales(w: &Array2<f32>, qmax: f32) -> Vec<f32> {
    w.rows()
        .into_iter()
        .map(|row| {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            if max > 0.0 {
                max / qmax
            } else {
                1.0
            }
        })
        .collect()
}

/// Per-channel symmetric int8 of W [rows, cols] rounded by GPTQ against the (unnormalized)
/// Hessian `h` of the layer's inputs: each column's rounding error is pushed onto the columns
/// not yet rounded, so the layer's output, not each weight, stays closest to the float one.
/// Weights that are exactly zero (pruned) stay zero.
pub fn gptq_rows_i8(w: &Array2<f32>, h: &Array2<f64>, qmax: f32) -> Result<RowCodes> {
    let cols = w.ncols();
    let scales = row_scales(w, qmax);
    let mut codes = vec![0i8; w.len()];
    gptq::sweep(w, h, |row, r, c| {
        let s = f64::from(scales[r]);
        let q = if w[[r, c]] == 0.0 {
            0.0
        } else {
            (row[c] / s)
                .round()
                .clamp(-f64::from(qmax), f64::from(qmax))
        };
        codes[r * cols + c] = q as i8;
        q * s
    })?;
    Ok((codes, scales))
}

/// W [rows, cols] that `codes` stand for.
fn dequantize_rows(codes: &RowCodes, cols: usize) -> Array2<f32> {
    let (c, s) = codes;
    Array2::from_shape_fn((s.len(), cols), |(r, j)| f32::from(c[r * cols + j]) * s[r])
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
        let (codes, scales) = quantize_rows_i8(&w, WEIGHT_ONLY_MAX);
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
    let outer = rep.span();
    rep.set_phase(outer, 0.0, 0.5);
    let (model, weights) = match gptq_weights(&model, data, rep) {
        Ok(rounded) => rounded,
        Err(OptimizeError::Cancelled) => return Err(OptimizeError::Cancelled),
        // A layer GPTQ cannot handle (say, a Hessian that stays singular) costs quality,
        // not the variant: every weight is then rounded to nearest, as before GPTQ.
        Err(e) => {
            // At the end of the GPTQ share, so progress never moves back.
            rep.set_phase(outer, 0.5, 0.5);
            rep.report(
                &format!("int8-static: GPTQ not possible ({e}); rounding to nearest"),
                0.0,
            )?;
            (model, HashMap::new())
        }
    };
    // Activation ranges are calibrated on the model with its rounded weights. Calibration
    // runs the model over the data; rewriting the graph is quick.
    rep.set_phase(outer, 0.5, 0.9);
    let ranges = calibrate::calibrate(&model, method, data, rep)?;
    rep.set_phase(outer, 0.9, 1.0);
    let out = qgraph::build(model, &ranges, weights, rep);
    rep.set_span(outer.0, outer.1);
    out
}

/// Round every layer's weights to per-channel int8 by GPTQ, layer by layer in graph order on
/// the inputs the already-rounded upstream produces (as `int4`). Returns a copy of `model`
/// with the rounded weights, and their codes by weight name for `qgraph` to store as they are.
fn gptq_weights(
    model: &ModelProto,
    data: &Dataset,
    rep: &mut Reporter,
) -> Result<(ModelProto, HashMap<String, RowCodes>)> {
    let found = layers::find_layers(proto::graph(model)?);
    let mut rounded = model.clone();
    let mut codes = HashMap::new();
    sequential::run(
        &mut rounded,
        model,
        &found,
        data,
        false,
        "int8: GPTQ",
        rep,
        |m, li, st| {
            let layer = &found[li];
            let w = int4::current_weight(m, layer)?;
            // Unlike int4, the error-corrected target (`sequential::error_corrected`) is not
            // rounded here: on squeezenet it cost 4.7 dB of output SQNR (19.9 vs 24.6 dB),
            // as the activations it was fitted on are quantized afterwards.
            let c = gptq_rows_i8(&w, &st.hat.h.mapv(|v| 2.0 * v), STATIC_WEIGHT_MAX)?;
            sequential::set_layer_weight(m, layer, &dequantize_rows(&c, w.ncols()))?;
            codes.insert(layer.weight.clone(), c);
            Ok(())
        },
    )?;
    Ok((rounded, codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gptq_rows_beat_round_to_nearest_and_keep_range_and_zeros() {
        // Correlated input columns: GPTQ's output error must be below round-to-nearest's.
        let (n, k) = (200, 48);
        let x = Array2::from_shape_fn((n, k), |(i, j)| {
            ((i * 7 + j * 3) % 11) as f32 / 11.0 + ((i % 5) as f32)
        });
        let mut w =
            Array2::from_shape_fn((8, k), |(r, c)| ((r * 13 + c * 5) % 17) as f32 / 17.0 - 0.5);
        w[[3, 10]] = 0.0; // a pruned weight
        let h = x.t().dot(&x).mapv(|v| 2.0 * v as f64);
        // A coarse grid (±7) makes the rounding error visible.
        let g = gptq_rows_i8(&w, &h, 7.0).unwrap();
        let rtn = quantize_rows_i8(&w, 7.0);
        let err = |c: &RowCodes| {
            let wq = dequantize_rows(c, k);
            (x.dot(&w.t()) - x.dot(&wq.t())).mapv(|v| v * v).sum()
        };
        assert!(err(&g) < err(&rtn), "{} vs {}", err(&g), err(&rtn));
        assert!(g.0.iter().all(|c| (-7..=7).contains(c)));
        assert_eq!(g.0[3 * k + 10], 0);
        assert_eq!(g.1, rtn.1, "the same per-row scales");
    }

    #[test]
    fn static_weights_cannot_saturate_int16_pair_sums() {
        // uint8 x int8 products summed in pairs must fit in i16 (see STATIC_WEIGHT_MAX).
        assert!(2.0 * 255.0 * STATIC_WEIGHT_MAX <= f32::from(i16::MAX));
        let w = Array2::from_shape_fn((2, 4), |(r, c)| (r as f32 - 0.5) * (c as f32 + 1.0));
        let (codes, _) = quantize_rows_i8(&w, STATIC_WEIGHT_MAX);
        assert!(codes
            .iter()
            .all(|c| c.unsigned_abs() as f32 <= STATIC_WEIGHT_MAX));
    }
}
