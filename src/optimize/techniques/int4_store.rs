//! Storing int4 block weights so the file really shrinks and both runtimes load it.
//!
//! - MatMul / Gemm: com.microsoft `MatMulNBits` (B uint8 [N, n_blocks, block/2], scales
//!   f32 [N·n_blocks], packed uint8 zero points); tract maps block 32 onto its Q4_0 kernels.
//! - Conv (no int4 conv op exists in tract, and tract rejects INT4 tensors and block-wise
//!   DequantizeLinear): the nibbles are stored packed two per byte in a uint8 initializer and
//!   unpacked in the graph with standard ops that both runtimes run and constant-fold:
//!   `lo = (p << 4) >> 4`, `hi = p >> 4` (BitShift, opset 11), interleaved by Concat, Cast to
//!   float, `(q - zero) * scale` per block (uint8 zero points, f16 scales, each Cast to float),
//!   Reshape/Slice back to [O, I, kh, kw]. ~4.75 bits/weight at block 32 on disk; at run time
//!   the Conv is fp32 (tract folds the unpacking once at load).

use tract_onnx::pb::{ModelProto, NodeProto};

use super::int4::Int4Blocks;
use super::layers::{Kind, Layer};
use super::opset;
use super::proto::{self, attr_int, attr_str, Namer};
use crate::optimize::error::Result;

/// Pack codes two per byte, element 2i in the low nibble (MatMulNBits' order too).
pub fn pack_nibbles(codes: &[u8]) -> Vec<u8> {
    codes
        .chunks(2)
        .map(|c| (c[0] & 15) | (c.get(1).copied().unwrap_or(0) & 15) << 4)
        .collect()
}

pub fn store(model: &mut ModelProto, layers: &[(Layer, Int4Blocks)]) -> Result<()> {
    let has_conv = layers.iter().any(|(l, _)| l.kind == Kind::Conv);
    if has_conv {
        // BitShift needs opset 11; raise to the common target.
        opset::raise_opset(model)?;
    }
    if layers.iter().any(|(l, _)| l.kind != Kind::Conv) {
        proto::ensure_domain(model, "com.microsoft", 1);
    }
    let g = proto::graph_mut(model)?;
    let mut namer = Namer::new(g);
    let mut prelude: Vec<NodeProto> = Vec::new();
    for (layer, q) in layers {
        match layer.kind {
            Kind::Conv => {
                let w = conv_weight(g, &mut namer, &mut prelude, layer, q);
                g.node[layer.node].input[1] = w;
            }
            _ => matmul_nbits(g, &mut namer, layer, q),
        }
    }
    prelude.append(&mut g.node);
    g.node = prelude;
    proto::drop_unused_initializers(g);
    proto::toposort(g)
}

fn conv_weight(
    g: &mut tract_onnx::pb::GraphProto,
    namer: &mut Namer,
    nodes: &mut Vec<NodeProto>,
    layer: &Layer,
    q: &Int4Blocks,
) -> String {
    let base = layer.weight.clone();
    let nb_total = q.rows * q.n_blocks();
    let packed = pack_nibbles(&q.codes);
    let m = packed.len();
    let mut fresh = |s: &str| namer.fresh(&format!("{base}_{s}"));
    let (p, four, s_h, z_u8) = (
        fresh("int4"),
        fresh("four"),
        fresh("scale_f16"),
        fresh("zero_u8"),
    );
    let (shape_m1, shape_blk, shape_rows, shape_w) = (
        fresh("shape_m1"),
        fresh("shape_blk"),
        fresh("shape_rows"),
        fresh("shape_w"),
    );
    g.initializer.push(proto::u8_tensor(&p, &[m], &packed));
    g.initializer.push(proto::u8_tensor(&four, &[1], &[4]));
    g.initializer
        .push(proto::f16_tensor(&s_h, &[nb_total, 1], &q.scales));
    g.initializer
        .push(proto::u8_tensor(&z_u8, &[nb_total, 1], &q.zeros));
    g.initializer
        .push(proto::i64_tensor(&shape_m1, &[2], &[m as i64, 1]));
    g.initializer.push(proto::i64_tensor(
        &shape_blk,
        &[2],
        &[nb_total as i64, q.block as i64],
    ));
    g.initializer.push(proto::i64_tensor(
        &shape_rows,
        &[2],
        &[q.rows as i64, (q.n_blocks() * q.block) as i64],
    ));
    let shape_i64: Vec<i64> = layer.shape.iter().map(|&d| d as i64).collect();
    g.initializer
        .push(proto::i64_tensor(&shape_w, &[shape_i64.len()], &shape_i64));
    let t: Vec<String> = [
        "shl", "lo", "hi", "lo2", "hi2", "pairs", "codes", "codes_f", "scale", "zero", "centered",
        "blocks", "rows",
    ]
    .iter()
    .map(|s| fresh(s))
    .collect();
    let [shl, lo, hi, lo2, hi2, pairs, codes, codes_f, scale, zero, centered, blocks, rows] =
        <[String; 13]>::try_from(t).unwrap_or_else(|_| unreachable!());
    let mut nm = |s: &str| namer.fresh(&format!("{base}_{s}_node"));
    let shift = |name: String, x: &str, y: &str, dir: &str| {
        proto::with_attrs(
            proto::node("BitShift", &name, &[x, &four], &[y]),
            vec![attr_str("direction", dir)],
        )
    };
    let cast = |name: String, x: &str, y: &str| {
        proto::with_attrs(
            proto::node("Cast", &name, &[x], &[y]),
            vec![attr_int("to", proto::FLOAT as i64)],
        )
    };
    nodes.push(shift(nm("shl"), &p, &shl, "LEFT"));
    nodes.push(shift(nm("lo"), &shl, &lo, "RIGHT"));
    nodes.push(shift(nm("hi"), &p, &hi, "RIGHT"));
    nodes.push(proto::node(
        "Reshape",
        &nm("lo2"),
        &[&lo, &shape_m1],
        &[&lo2],
    ));
    nodes.push(proto::node(
        "Reshape",
        &nm("hi2"),
        &[&hi, &shape_m1],
        &[&hi2],
    ));
    nodes.push(proto::with_attrs(
        proto::node("Concat", &nm("pairs"), &[&lo2, &hi2], &[&pairs]),
        vec![attr_int("axis", 1)],
    ));
    nodes.push(proto::node(
        "Reshape",
        &nm("codes"),
        &[&pairs, &shape_blk],
        &[&codes],
    ));
    nodes.push(cast(nm("codes_f"), &codes, &codes_f));
    nodes.push(cast(nm("scale"), &s_h, &scale));
    nodes.push(cast(nm("zero"), &z_u8, &zero));
    nodes.push(proto::node(
        "Sub",
        &nm("centered"),
        &[&codes_f, &zero],
        &[&centered],
    ));
    nodes.push(proto::node(
        "Mul",
        &nm("blocks"),
        &[&centered, &scale],
        &[&blocks],
    ));
    nodes.push(proto::node(
        "Reshape",
        &nm("rows"),
        &[&blocks, &shape_rows],
        &[&rows],
    ));
    let sliced = if !q.cols.is_multiple_of(q.block) {
        let s = namer.fresh(&format!("{base}_sliced"));
        let (st, en, ax) = (
            namer.fresh(&format!("{base}_st")),
            namer.fresh(&format!("{base}_en")),
            namer.fresh(&format!("{base}_ax")),
        );
        g.initializer.push(proto::i64_tensor(&st, &[1], &[0]));
        g.initializer
            .push(proto::i64_tensor(&en, &[1], &[q.cols as i64]));
        g.initializer.push(proto::i64_tensor(&ax, &[1], &[1]));
        nodes.push(proto::node(
            "Slice",
            &namer.fresh(&format!("{base}_slice_node")),
            &[&rows, &st, &en, &ax],
            &[&s],
        ));
        s
    } else {
        rows
    };
    let w = namer.fresh(&format!("{base}_int4_dq"));
    nodes.push(proto::node(
        "Reshape",
        &namer.fresh(&format!("{base}_w_node")),
        &[&sliced, &shape_w],
        &[&w],
    ));
    w
}

fn matmul_nbits(
    g: &mut tract_onnx::pb::GraphProto,
    namer: &mut Namer,
    layer: &Layer,
    q: &Int4Blocks,
) {
    let base = layer.weight.clone();
    let nb = q.n_blocks();
    let (b, s, z) = (
        namer.fresh(&format!("{base}_q4")),
        namer.fresh(&format!("{base}_q4_scales")),
        namer.fresh(&format!("{base}_q4_zp")),
    );
    g.initializer.push(proto::u8_tensor(
        &b,
        &[q.rows, nb, q.block / 2],
        &pack_nibbles(&q.codes),
    ));
    g.initializer
        .push(proto::f32_tensor(&s, &[q.rows * nb], &q.scales));
    // Zero points: per row, two blocks per byte (padded to whole bytes per row).
    let mut zp = Vec::with_capacity(q.rows * nb.div_ceil(2));
    for r in 0..q.rows {
        zp.extend(pack_nibbles(&q.zeros[r * nb..(r + 1) * nb]));
    }
    g.initializer.push(proto::u8_tensor(&z, &[zp.len()], &zp));
    let old = g.node[layer.node].clone();
    let out = old.output[0].clone();
    let bias = old.input.get(2).filter(|x| !x.is_empty()).cloned();
    let mm_out = if bias.is_some() {
        namer.fresh(&format!("{out}_nobias"))
    } else {
        out.clone()
    };
    let mut n = proto::node(
        "MatMulNBits",
        &old.name,
        &[&layer.input, &b, &s, &z],
        &[&mm_out],
    );
    n.domain = "com.microsoft".into();
    n.attribute = vec![
        attr_int("K", q.cols as i64),
        attr_int("N", q.rows as i64),
        attr_int("bits", 4),
        attr_int("block_size", q.block as i64),
    ];
    g.node[layer.node] = n;
    if let Some(c) = bias {
        g.node.push(proto::node(
            "Add",
            &namer.fresh(&format!("{}_bias", old.name)),
            &[&mm_out, &c],
            &[&out],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_low_first() {
        assert_eq!(pack_nibbles(&[1, 2, 15]), vec![0x21, 0x0f]);
    }
}
