//! Graph normalizations every technique starts from: weights made direct initializers,
//! per-channel bias Adds folded into their Conv, inference-time Dropout removed.

use tract_onnx::pb::{GraphProto, ModelProto, NodeProto};

use super::proto::{self, GraphIndex};
use crate::optimize::error::Result;

/// Apply all normalizations. The result computes the same function.
pub fn normalize(model: &mut ModelProto) -> Result<()> {
    model.ir_version = model.ir_version.max(7);
    let g = proto::graph_mut(model)?;
    fold_constant_reshapes(g)?;
    remove_dropout(g);
    fold_conv_bias_add(g)?;
    proto::drop_unused_initializers(g);
    proto::toposort(g)
}

/// Rename every read of `from` into a read of `to` (and graph outputs too).
fn rewire(g: &mut GraphProto, from: &str, to: &str) {
    for n in g.node.iter_mut() {
        for i in n.input.iter_mut() {
            if i == from {
                *i = to.to_string();
            }
        }
    }
}

/// `Reshape(initializer, const shape)` becomes a reshaped initializer: mnist-8's MatMul weight
/// reaches the MatMul this way and the techniques need to see it as a weight.
fn fold_constant_reshapes(g: &mut GraphProto) -> Result<()> {
    let mut keep: Vec<NodeProto> = Vec::with_capacity(g.node.len());
    let nodes = std::mem::take(&mut g.node);
    for n in nodes {
        if n.op_type == "Reshape" && n.input.len() == 2 {
            let data = g.initializer.iter().find(|t| t.name == n.input[0]).cloned();
            let shape = g.initializer.iter().find(|t| t.name == n.input[1]).cloned();
            if let (Some(data), Some(shape)) = (data, shape) {
                if let (Ok(arr), Ok(spec)) =
                    (proto::tensor_to_f32(&data), proto::tensor_to_i64(&shape))
                {
                    if let Some(new_shape) = resolve_shape(arr.shape(), &spec) {
                        let v: Vec<f32> = arr.iter().copied().collect();
                        g.initializer
                            .push(proto::f32_tensor(&n.output[0], &new_shape, &v));
                        continue;
                    }
                }
            }
        }
        keep.push(n);
    }
    g.node = keep;
    Ok(())
}

/// ONNX Reshape shape semantics (0 copies the input dim, -1 infers), None if inconsistent.
pub fn resolve_shape(input: &[usize], spec: &[i64]) -> Option<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            0 => out.push(*input.get(i)?),
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            d if d > 0 => out.push(d as usize),
            _ => return None,
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return None;
        }
        out[i] = total / known;
    }
    (out.iter().product::<usize>() == total).then_some(out)
}

fn remove_dropout(g: &mut GraphProto) {
    let outputs: Vec<String> = g.output.iter().map(|o| o.name.clone()).collect();
    // A mask output that nothing reads (old exports name it anyway) does not keep a Dropout.
    let read = |t: &str| {
        outputs.iter().any(|o| o == t) || g.node.iter().any(|n| n.input.iter().any(|i| i == t))
    };
    let drops: Vec<(String, String)> = g
        .node
        .iter()
        .filter(|n| {
            n.op_type == "Dropout" && n.output.get(1).is_none_or(|m| m.is_empty() || !read(m))
        })
        .map(|n| (n.input[0].clone(), n.output[0].clone()))
        .collect();
    for (x, y) in drops {
        if outputs.contains(&y) {
            continue;
        }
        g.node
            .retain(|n| !(n.op_type == "Dropout" && n.output[0] == y));
        rewire(g, &y, &x);
    }
}

/// `Conv -> Add(const [C,1,1] or [1,C,1,1])` becomes a Conv with bias (mnist-8 is built so).
fn fold_conv_bias_add(g: &mut GraphProto) -> Result<()> {
    loop {
        let idx = GraphIndex::new(g);
        let mut done = None;
        for (ci, conv) in g.node.iter().enumerate() {
            if conv.op_type != "Conv" || conv.input.len() < 2 {
                continue;
            }
            let Some(ai) = idx.sole_consumer(&conv.output[0]) else {
                continue;
            };
            let add = &g.node[ai];
            if add.op_type != "Add" {
                continue;
            }
            let other = if add.input[0] == conv.output[0] {
                &add.input[1]
            } else {
                &add.input[0]
            };
            let Some(&ti) = idx.inits.get(other) else {
                continue;
            };
            let Some(&wi) = idx.inits.get(&conv.input[1]) else {
                continue;
            };
            let Ok(b) = proto::tensor_to_f32(&g.initializer[ti]) else {
                continue;
            };
            let out_ch = g.initializer[wi].dims.first().copied().unwrap_or(0) as usize;
            let s = b.shape();
            let per_channel = b.len() == out_ch && (s == [out_ch, 1, 1] || s == [1, out_ch, 1, 1]);
            if !per_channel {
                continue;
            }
            let mut bias: Vec<f32> = b.iter().copied().collect();
            if let Some(old) = conv.input.get(2).and_then(|n| idx.inits.get(n)) {
                let old = proto::tensor_to_f32(&g.initializer[*old])?;
                for (x, o) in bias.iter_mut().zip(old.iter()) {
                    *x += o;
                }
            }
            done = Some((ci, ai, bias));
            break;
        }
        let Some((ci, ai, bias)) = done else {
            return Ok(());
        };
        let mut namer = proto::Namer::new(g);
        let bname = namer.fresh(&format!("{}_bias", g.node[ci].name));
        let n = bias.len();
        g.initializer.push(proto::f32_tensor(&bname, &[n], &bias));
        let add_out = g.node[ai].output[0].clone();
        let conv = &mut g.node[ci];
        conv.input.truncate(2);
        conv.input.push(bname);
        conv.output[0] = add_out;
        g.node.remove(ai);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::techniques::proto::node;

    fn graph(mask_reader: bool) -> GraphProto {
        let mut g = GraphProto {
            node: vec![
                node("Dropout", "d", &["x"], &["y", "mask"]),
                node("Relu", "r", &["y"], &["z"]),
            ],
            ..Default::default()
        };
        if mask_reader {
            g.node.push(node("Identity", "m", &["mask"], &["m2"]));
        }
        g
    }

    #[test]
    fn dropout_goes_unless_its_mask_is_read() {
        let mut g = graph(false);
        remove_dropout(&mut g);
        assert_eq!(g.node.len(), 1);
        assert_eq!(g.node[0].input, vec!["x".to_string()]);
        let mut g = graph(true);
        remove_dropout(&mut g);
        assert!(g.node.iter().any(|n| n.op_type == "Dropout"));
    }
}
