//! prune-unstructured: SparseGPT (Frantar & Alistarh 2023). Per layer, weights are removed in
//! blocks of columns by the OBS saliency w² / [H⁻¹]ⱼⱼ² and each removal's error is compensated
//! on the remaining columns through the upper Cholesky factor of H⁻¹. The per-layer sparsity
//! follows a global magnitude threshold (so layers with many small weights give more), capped
//! so no layer is emptied. (Choosing each layer's share by its own relative output error measured
//! worse on squeezenet, 78 % vs 84 % agreement: it over-prunes the classifier.) Layers are
//! processed in graph order on the inputs the model pruned upstream really produces, with the
//! float model's outputs as the target (`sequential::error_corrected`) and a bias correction of
//! the mean, so later layers also absorb earlier errors.
//! Zeros are stored densely: tract cannot load sparse initializers, the gzip size shows the gain.

use ndarray::Array2;
use tract_onnx::pb::ModelProto;

use super::gptq::{self, PERCDAMP};
use super::int4::current_weight;
use super::layers;
use super::{proto, sequential, Reporter};
use crate::optimize::data::Dataset;
use crate::optimize::error::{OptimizeError, Result};

/// Columns whose mask is chosen together.
const MASK_BLOCK: usize = 128;
/// No layer loses more than this share of its weights.
const MAX_LAYER_SPARSITY: f32 = 0.85;

/// SparseGPT on W [rows, cols] with Hessian `h`; returns the pruned, compensated weights.
pub fn sparsegpt_layer(w: &Array2<f32>, h: &Array2<f64>, sparsity: f32) -> Result<Array2<f32>> {
    let (rows, cols) = w.dim();
    let (mut w, u) = gptq::prepare(w, h)?;
    let mut mask = Array2::<bool>::from_elem((rows, cols), false);
    for b0 in (0..cols).step_by(MASK_BLOCK) {
        let b1 = (b0 + MASK_BLOCK).min(cols);
        let mut scores: Vec<(f64, usize, usize)> = Vec::with_capacity(rows * (b1 - b0));
        for r in 0..rows {
            for c in b0..b1 {
                let d = u[[c, c]];
                scores.push((w[[r, c]] * w[[r, c]] / (d * d), r, c));
            }
        }
        let k = (scores.len() as f32 * sparsity).round() as usize;
        if k > 0 {
            scores.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
            for &(_, r, c) in &scores[..k] {
                mask[[r, c]] = true;
            }
        }
        for c in b0..b1 {
            let d = u[[c, c]];
            for r in 0..rows {
                if !mask[[r, c]] {
                    continue;
                }
                let err = w[[r, c]] / d;
                w[[r, c]] = 0.0;
                for j in c + 1..cols {
                    w[[r, j]] -= err * u[[c, j]];
                }
            }
        }
    }
    Ok(w.mapv(|v| v as f32))
}

/// Per-layer sparsities from one global magnitude threshold (capped per layer).
pub fn global_sparsities(weights: &[Array2<f32>], target: f32) -> Vec<f32> {
    let mut all: Vec<f32> = weights
        .iter()
        .flat_map(|w| w.iter().map(|v| v.abs()))
        .collect();
    if all.is_empty() || target <= 0.0 {
        return vec![0.0; weights.len()];
    }
    let k = ((all.len() as f32 * target) as usize).min(all.len() - 1);
    all.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    let thr = all[k];
    weights
        .iter()
        .map(|w| {
            let below = w.iter().filter(|v| v.abs() < thr).count();
            (below as f32 / w.len().max(1) as f32).min(MAX_LAYER_SPARSITY)
        })
        .collect()
}

pub fn sparsegpt(
    mut model: ModelProto,
    sparsity: f32,
    data: &Dataset,
    rep: &mut Reporter,
) -> Result<ModelProto> {
    let found = layers::find_layers(proto::graph(&model)?);
    if found.is_empty() {
        return Err(OptimizeError::Unsupported(
            "no Conv/MatMul/Gemm with a constant weight to prune".into(),
        ));
    }
    let weights: Vec<Array2<f32>> = found
        .iter()
        .map(|l| current_weight(&model, l))
        .collect::<Result<_>>()?;
    let targets = global_sparsities(&weights, sparsity);
    let float = model.clone();
    sequential::run(
        &mut model,
        &float,
        &found,
        data,
        true,
        "sparsegpt",
        rep,
        |m, li, st| {
            let layer = &found[li];
            let w = sequential::error_corrected(&weights[li], st, PERCDAMP)?;
            let pruned = sparsegpt_layer(&w, &st.hat.h, targets[li])?;
            // Pruning shifts the mean output too; the bias takes it back.
            let (_, hat_mean) = st.hat.normalized();
            let b = sequential::layer_bias(m, layer)?;
            let b =
                sequential::corrected_bias(&b, &weights[li], &pruned, &st.float_mean, &hat_mean);
            sequential::set_layer_bias(m, layer, &b)?;
            sequential::set_layer_weight(m, layer, &pruned)
        },
    )?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparsity_is_reached_and_beats_magnitude() {
        let n = 300;
        let k = 32;
        let x = Array2::from_shape_fn((n, k), |(i, j)| {
            ((i * 7 + j * 3) % 13) as f32 / 13.0 + (i % 3) as f32 * 0.5
        });
        let w = Array2::from_shape_fn((6, k), |(r, c)| ((r * 11 + c * 5) % 19) as f32 / 19.0 - 0.5);
        let h = x.t().dot(&x).mapv(|v| v as f64);
        let p = sparsegpt_layer(&w, &h, 0.5).unwrap();
        let zeros = p.iter().filter(|v| **v == 0.0).count();
        assert!((zeros as f32 / p.len() as f32 - 0.5).abs() < 0.05);
        let err = |wq: &Array2<f32>| (x.dot(&w.t()) - x.dot(&wq.t())).mapv(|v| v * v).sum();
        let mut mag = w.clone();
        let mut all: Vec<f32> = w.iter().map(|v| v.abs()).collect();
        all.sort_by(|a, b| a.total_cmp(b));
        let thr = all[all.len() / 2];
        mag.mapv_inplace(|v| if v.abs() < thr { 0.0 } else { v });
        assert!(err(&p) < err(&mag));
    }

    #[test]
    fn global_threshold_hits_target() {
        let a = Array2::from_shape_fn((4, 4), |(i, j)| (i * 4 + j) as f32);
        let s = global_sparsities(&[a.clone(), a], 0.5);
        assert!((s[0] - 0.5).abs() < 0.1);
    }
}
