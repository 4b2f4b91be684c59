//! prune-structured: whole output channels of Convs are removed, together with the matching
//! input channels of every Conv that reads them (through Relu/MaxPool/Identity and Concat,
//! where a branch's channels sit at an offset), so tensors and MACs really shrink.
//! `fraction` is the share of all prunable channels removed; which ones, and so how many per
//! layer, is chosen by group Optimal Brain Surgeon over their consumers (`channels`). Each
//! consumer is then refitted by least squares on calibration activations (with its bias as an
//! extra column): W' = W·H[:, S]·H[S, S]⁻¹ over the kept inputs S.
//! Convs whose outputs reach anything else (the classifier, graph outputs, Flatten) are kept.

use std::collections::{HashMap, HashSet};

use ndarray::{Array1, Array2};
use tract_onnx::pb::ModelProto;

use super::channels::{self, Consumer, Producer};
use super::int4::current_weight;
use super::layers::{self, Hessian, Kind, Layer};
use super::proto::{self, GraphIndex};
use super::{hessian, linalg, sequential, Reporter};
use crate::optimize::data::Dataset;
use crate::optimize::error::{OptimizeError, Result};

/// Dampening of the consumers' Hessians (share of the mean diagonal), as in GPTQ.
const PERCDAMP: f64 = 0.01;

/// No Conv loses more than this share of its output channels.
const MAX_SHARE: f32 = 0.8;

/// Ops that keep the channel axis as is (pure per-channel or spatial).
const CHANNEL_PRESERVING: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Identity",
    // Inference-time identity.
    "Dropout",
    "MaxPool",
    "AveragePool",
    "Clip",
    "Sigmoid",
    "Tanh",
];

/// A tensor's channels as segments (producer layer index, its channel count), in order.
type Segments = Vec<(usize, usize)>;

struct Plan {
    /// layer index -> kept output channels (sorted), for pruned producers
    keep_out: HashMap<usize, Vec<usize>>,
    /// consumer layer index -> its input segments
    consumer_segments: HashMap<usize, Segments>,
}

/// Find prunable producers and the segments each consumer reads.
fn analyse(
    g: &tract_onnx::pb::GraphProto,
    found: &[Layer],
) -> (HashSet<usize>, HashMap<usize, Segments>) {
    let idx = GraphIndex::new(g);
    let layer_at: HashMap<usize, usize> =
        found.iter().enumerate().map(|(i, l)| (l.node, i)).collect();
    // Forward: segments of every tensor that is made only of conv outputs.
    let mut seg: HashMap<String, Segments> = HashMap::new();
    for (ni, n) in g.node.iter().enumerate() {
        if let Some(&li) = layer_at.get(&ni) {
            if found[li].kind == Kind::Conv {
                seg.insert(n.output[0].clone(), vec![(li, found[li].rows())]);
            }
            continue;
        }
        if CHANNEL_PRESERVING.contains(&n.op_type.as_str()) && n.output.len() == 1 {
            if let Some(s) = seg.get(&n.input[0]).cloned() {
                seg.insert(n.output[0].clone(), s);
            }
        } else if n.op_type == "Concat" && proto::attr_i(n, "axis", 1) == 1 {
            let parts: Option<Vec<Segments>> =
                n.input.iter().map(|i| seg.get(i).cloned()).collect();
            if let Some(parts) = parts {
                seg.insert(n.output[0].clone(), parts.concat());
            }
        }
    }
    // A producer is prunable when every use of every tensor carrying its channels is a
    // channel-preserving op, a channel Concat, or a Conv layer's data input.
    let mut blocked: HashSet<usize> = HashSet::new();
    let mut consumer_segments = HashMap::new();
    for (t, s) in &seg {
        let bad_use = idx.outputs.contains(t)
            || idx.consumers_of(t).iter().any(|&ci| {
                let c = &g.node[ci];
                let conv_in = layer_at
                    .get(&ci)
                    .is_some_and(|&li| found[li].kind == Kind::Conv && c.input[0] == *t);
                let passes = (CHANNEL_PRESERVING.contains(&c.op_type.as_str())
                    && c.input[0] == *t
                    && seg.contains_key(&c.output[0]))
                    || (c.op_type == "Concat" && seg.contains_key(&c.output[0]));
                !(conv_in || passes)
            });
        if bad_use {
            blocked.extend(s.iter().map(|(p, _)| *p));
        }
        for &ci in idx.consumers_of(t) {
            if let Some(&li) = layer_at.get(&ci) {
                if found[li].kind == Kind::Conv && g.node[ci].input[0] == *t {
                    consumer_segments.insert(li, s.clone());
                }
            }
        }
    }
    let prunable = found
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            l.kind == Kind::Conv
                && !blocked.contains(i)
                && seg.values().any(|s| s.iter().any(|(p, _)| p == i))
        })
        .map(|(i, _)| i)
        .collect();
    (prunable, consumer_segments)
}

/// Input-channel positions of `producer`'s channels inside a consumer reading `segs`.
fn offset_of(segs: &Segments, producer: usize) -> Option<usize> {
    let mut off = 0;
    for &(p, c) in segs {
        if p == producer {
            return Some(off);
        }
        off += c;
    }
    None
}

/// Least-squares refit of a layer onto the kept inputs S of the compressed model's input x̂:
/// min E‖W·x + b − (W'·x̂_S + b')‖², solved over [x̂_S, 1] from E[x̂x̂ᵀ], E[x̂], E[x x̂ᵀ] and E[x].
/// Returns W' [rows, |S|] and b'.
pub struct RefitStats<'a> {
    pub hh: &'a Array2<f64>,
    pub hat_mean: &'a Array1<f64>,
    /// E[x x̂ᵀ] [k, k̂]
    pub xf_xh: &'a Array2<f64>,
    pub float_mean: &'a Array1<f64>,
}

pub fn refit(
    w: &Array2<f32>,
    bias: &Array1<f32>,
    st: &RefitStats,
    kept: &[usize],
) -> Result<(Array2<f32>, Array1<f32>)> {
    let k = w.ncols();
    let m = kept.len() + 1;
    // G = E[x̂a x̂aᵀ] over x̂a = [x̂_S, 1]
    let mut g = Array2::<f64>::zeros((m, m));
    for (a, &i) in kept.iter().enumerate() {
        for (b, &j) in kept.iter().enumerate() {
            g[[a, b]] = st.hh[[i, j]];
        }
        g[[a, m - 1]] = st.hat_mean[i];
        g[[m - 1, a]] = st.hat_mean[i];
    }
    g[[m - 1, m - 1]] = 1.0;
    let damp = 1e-3 * (0..m).map(|i| g[[i, i]]).sum::<f64>() / m as f64;
    for i in 0..m - 1 {
        g[[i, i]] += damp;
    }
    let inv = linalg::spd_inverse(&g)
        .ok_or_else(|| OptimizeError::InvalidData("refit statistics are singular".into()))?;
    // P = E[xa x̂aᵀ] over xa = [x, 1]  -> [k+1, m]
    let mut p = Array2::<f64>::zeros((k + 1, m));
    for (b, &j) in kept.iter().enumerate() {
        for i in 0..k {
            p[[i, b]] = st.xf_xh[[i, j]];
        }
        p[[k, b]] = st.hat_mean[j];
    }
    for i in 0..k {
        p[[i, m - 1]] = st.float_mean[i];
    }
    p[[k, m - 1]] = 1.0;
    let mut wa = Array2::<f64>::zeros((w.nrows(), k + 1));
    wa.slice_mut(ndarray::s![.., ..k])
        .assign(&w.mapv(|v| v as f64));
    for r in 0..w.nrows() {
        wa[[r, k]] = bias[r] as f64;
    }
    let sol = wa.dot(&p).dot(&inv);
    let new_w = sol.slice(ndarray::s![.., ..m - 1]).mapv(|v| v as f32);
    let new_b = sol.column(m - 1).mapv(|v| v as f32);
    Ok((new_w, new_b))
}

pub fn prune(
    mut model: ModelProto,
    fraction: f32,
    data: &Dataset,
    rep: &mut Reporter,
) -> Result<ModelProto> {
    let g = proto::graph(&model)?;
    let found = layers::find_layers(g);
    let (prunable, consumer_segments) = analyse(g, &found);
    if prunable.is_empty() {
        return Err(OptimizeError::Unsupported(
            "no Conv whose output channels can be removed (all feed heads or outputs)".into(),
        ));
    }
    let mut consumers: Vec<usize> = consumer_segments.keys().copied().collect();
    consumers.sort_unstable();
    let cons_layers: Vec<Layer> = consumers.iter().map(|&i| found[i].clone()).collect();
    let outer = rep.span();
    rep.set_phase(outer, 0.0, 0.3);
    // Every layer's statistics: consumers' for the choice, producers' for the MACs saved.
    let hs: Vec<Hessian> =
        hessian::collect(&model, &found, data, "prune-structured: statistics", rep)?;
    let mut weights: HashMap<usize, Array2<f32>> = HashMap::new();
    for (i, l) in found.iter().enumerate() {
        weights.insert(i, current_weight(&model, l)?);
    }
    let kk = |li: usize| {
        found[li]
            .geom
            .as_ref()
            .map(|g| g.kernel[0] * g.kernel[1])
            .unwrap_or(1)
    };
    let mut state: Vec<Consumer> = consumers
        .iter()
        .map(|&ci| Consumer::new(&weights[&ci], &hs[ci].h, kk(ci), PERCDAMP))
        .collect::<Result<_>>()?;
    let mut producers: Vec<usize> = prunable.into_iter().collect();
    producers.sort_unstable();
    let channel_users: Vec<Producer> = producers
        .iter()
        .map(|&p| {
            let users: Vec<(usize, usize)> = consumers
                .iter()
                .enumerate()
                .filter_map(|(k, ci)| offset_of(&consumer_segments[ci], p).map(|off| (k, off)))
                .collect();
            // One channel's MACs: its row in the producer, its columns in each consumer.
            let macs = found[p].cols() * hs[p].positions
                + users
                    .iter()
                    .map(|&(k, _)| {
                        let ci = consumers[k];
                        found[ci].rows() * kk(ci) * hs[ci].positions
                    })
                    .sum::<usize>();
            Producer {
                channels: found[p].rows(),
                consumers: users,
                macs: macs as f64,
            }
        })
        .collect();
    let all: usize = channel_users.iter().map(|p| p.channels).sum();
    let total = (all as f32 * fraction).round() as usize;
    let keep = channels::select(&channel_users, &mut state, total, MAX_SHARE);
    let plan = Plan {
        keep_out: producers.into_iter().zip(keep).collect(),
        consumer_segments,
    };
    let float = model.clone();
    // Removed channels are first zeroed (weights and bias), so shapes stay valid while the
    // consumers are refitted in graph order on the inputs the pruned model really produces.
    for (&p, keep) in &plan.keep_out {
        let layer = &found[p];
        let mut w = weights[&p].clone();
        let mut b = sequential::layer_bias(&model, layer)?;
        zero_rows(&mut w, &mut b, keep);
        sequential::set_layer_weight(&mut model, layer, &w)?;
        sequential::set_layer_bias(&mut model, layer, &b)?;
    }
    let kept_cols: HashMap<usize, Vec<usize>> =
        plan.consumer_segments
            .iter()
            .map(|(&li, segs)| {
                let kk = found[li]
                    .geom
                    .as_ref()
                    .map(|g| g.kernel[0] * g.kernel[1])
                    .unwrap_or(1);
                let mut cols = Vec::new();
                let mut off = 0;
                for &(p, c) in segs {
                    match plan.keep_out.get(&p) {
                        Some(keep) => cols
                            .extend(keep.iter().flat_map(|k| (off + k) * kk..(off + k + 1) * kk)),
                        None => cols.extend(off * kk..(off + c) * kk),
                    }
                    off += c;
                }
                (li, cols)
            })
            .collect();
    rep.set_phase(outer, 0.3, 0.95);
    sequential::run(
        &mut model,
        &float,
        &cons_layers,
        data,
        true,
        "prune-structured: refit",
        rep,
        |m, ci, st| {
            let li = consumers[ci];
            let layer = &found[li];
            let cols = &kept_cols[&li];
            let w = &weights[&li];
            let b0 = original_bias(&float, layer)?;
            let (hh, hat_mean) = st.hat.normalized();
            let n = st.hat.n.max(1) as f64;
            let cross = st
                .cross
                .as_ref()
                .map(|c| c.t().mapv(|v| v / n))
                .unwrap_or_else(|| hh.clone());
            let rs = RefitStats {
                hh: &hh,
                hat_mean: &hat_mean,
                xf_xh: &cross,
                float_mean: &st.float_mean,
            };
            let (nw, mut nb) = refit(w, &b0, &rs, cols)?;
            let mut full = Array2::<f32>::zeros(w.dim());
            for (a, &c) in cols.iter().enumerate() {
                full.column_mut(c).assign(&nw.column(a));
            }
            if let Some(keep) = plan.keep_out.get(&li) {
                zero_rows(&mut full, &mut nb, keep);
            }
            sequential::set_layer_weight(m, layer, &full)?;
            sequential::set_layer_bias(m, layer, &nb).map(|_| ())
        },
    )?;
    rep.set_phase(outer, 0.95, 1.0);
    // Physically remove the zeroed rows and columns.
    for (li, layer) in found.iter().enumerate() {
        rep.report(
            &format!("prune-structured: shrink {}", layer.name),
            li as f32 / found.len() as f32,
        )?;
        if layer.kind != Kind::Conv
            || (!plan.keep_out.contains_key(&li) && !kept_cols.contains_key(&li))
        {
            continue;
        }
        let mut w = current_weight(&model, layer)?;
        let mut b = sequential::layer_bias(&model, layer)?;
        if let Some(cols) = kept_cols.get(&li) {
            w = w.select(ndarray::Axis(1), cols);
        }
        if let Some(keep) = plan.keep_out.get(&li) {
            w = w.select(ndarray::Axis(0), keep);
            b = b.select(ndarray::Axis(0), keep);
        }
        let mut shape = layer.shape.clone();
        shape[0] = w.nrows();
        shape[1] = w.ncols() / (shape[2] * shape[3]).max(1);
        let v: Vec<f32> = w.iter().copied().collect();
        proto::set_initializer(
            proto::graph_mut(&mut model)?,
            proto::f32_tensor(&layer.weight, &shape, &v),
        );
        let mut l2 = layer.clone();
        l2.bias = proto::graph(&model)?.node[layer.node].input.get(2).cloned();
        sequential::set_layer_bias(&mut model, &l2, &b)?;
    }
    rep.set_span(outer.0, outer.1);
    // Shapes changed: drop stale shape annotations of intermediate tensors.
    proto::graph_mut(&mut model)?.value_info.clear();
    Ok(model)
}

fn zero_rows(w: &mut Array2<f32>, b: &mut Array1<f32>, keep: &[usize]) {
    let keep: HashSet<usize> = keep.iter().copied().collect();
    for r in 0..w.nrows() {
        if !keep.contains(&r) {
            w.row_mut(r).fill(0.0);
            b[r] = 0.0;
        }
    }
}

fn original_bias(float: &ModelProto, layer: &Layer) -> Result<Array1<f32>> {
    sequential::layer_bias(float, layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refit_recovers_dropped_correlated_input() {
        // x2 = x0 + x1, so dropping x2 is exactly compensated on x0 and x1.
        let n = 100;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| {
            let a = (i % 7) as f64;
            let b = (i % 5) as f64 * 0.5;
            [a, b, a + b][j]
        });
        let h = x.t().dot(&x) / n as f64;
        let mean = x.mean_axis(ndarray::Axis(0)).unwrap();
        let w = Array2::from_shape_vec((1, 3), vec![1.0f32, 2.0, 3.0]).unwrap();
        let rs = RefitStats {
            hh: &h,
            hat_mean: &mean,
            xf_xh: &h,
            float_mean: &mean,
        };
        let (nw, _) = refit(&w, &Array1::zeros(1), &rs, &[0, 1]).unwrap();
        assert!((nw[[0, 0]] - 4.0).abs() < 0.1, "{nw:?}");
        assert!((nw[[0, 1]] - 5.0).abs() < 0.1, "{nw:?}");
    }
}
