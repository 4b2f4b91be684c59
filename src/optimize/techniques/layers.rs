//! Weight layers (Conv, MatMul, Gemm with a constant weight) seen as a matrix
//! W [out, fan_in], and the second-order statistics of their inputs (H = XᵀX over im2col rows).

use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn};
use tract_onnx::pb::GraphProto;

use super::proto::{self, attr_i, attr_is, GraphIndex};
use crate::optimize::error::{OptimizeError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Conv weight [O, I, kh, kw] -> rows O, columns (i, y, x).
    Conv,
    /// MatMul weight [K, N] -> rows N, columns K.
    MatMul,
    /// Gemm with transB = 1: weight [N, K] already rows N.
    GemmT,
    /// Gemm with transB = 0: weight [K, N].
    Gemm,
}

#[derive(Debug, Clone)]
pub struct ConvGeom {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub auto_pad: String,
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub node: usize,
    pub name: String,
    pub kind: Kind,
    pub input: String,
    pub weight: String,
    pub bias: Option<String>,
    pub shape: Vec<usize>,
    pub geom: Option<ConvGeom>,
}

impl Layer {
    pub fn rows(&self) -> usize {
        match self.kind {
            Kind::Conv | Kind::GemmT => self.shape[0],
            Kind::MatMul | Kind::Gemm => self.shape[1],
        }
    }
    pub fn cols(&self) -> usize {
        match self.kind {
            Kind::Conv => self.shape[1..].iter().product(),
            Kind::GemmT => self.shape[1],
            Kind::MatMul | Kind::Gemm => self.shape[0],
        }
    }
}

/// All layers whose weight is a 2-D/4-D float initializer and which GPTQ/SparseGPT can treat
/// (group-1 2-D Conv, plain MatMul/Gemm).
pub fn find_layers(g: &GraphProto) -> Vec<Layer> {
    let idx = GraphIndex::new(g);
    let mut out = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let kind = match n.op_type.as_str() {
            "Conv" if attr_i(n, "group", 1) == 1 => Kind::Conv,
            "MatMul" => Kind::MatMul,
            "Gemm"
                if attr_i(n, "transA", 0) == 0
                    && proto::attr_f(n, "alpha", 1.0) == 1.0
                    && proto::attr_f(n, "beta", 1.0) == 1.0 =>
            {
                if attr_i(n, "transB", 0) == 1 {
                    Kind::GemmT
                } else {
                    Kind::Gemm
                }
            }
            _ => continue,
        };
        let Some(w) = n.input.get(1) else { continue };
        let Some(&wi) = idx.inits.get(w) else {
            continue;
        };
        let t = &g.initializer[wi];
        if !matches!(t.data_type, proto::FLOAT) {
            continue;
        }
        let Ok(shape) = proto::dims(t) else { continue };
        let ok_rank = match kind {
            Kind::Conv => shape.len() == 4,
            _ => shape.len() == 2,
        };
        if !ok_rank {
            continue;
        }
        let geom = (kind == Kind::Conv).then(|| conv_geom(n, &shape));
        if let Some(gm) = &geom {
            if !(gm.auto_pad.is_empty()
                || gm.auto_pad == "NOTSET"
                || gm.auto_pad == "VALID"
                || gm.auto_pad.starts_with("SAME"))
            {
                continue;
            }
        }
        let bias = n.input.get(2).filter(|b| !b.is_empty()).cloned();
        out.push(Layer {
            node: i,
            name: if n.name.is_empty() {
                n.output[0].clone()
            } else {
                n.name.clone()
            },
            kind,
            input: n.input[0].clone(),
            weight: w.clone(),
            bias,
            shape,
            geom,
        });
    }
    out
}

fn conv_geom(n: &tract_onnx::pb::NodeProto, shape: &[usize]) -> ConvGeom {
    let two = |v: Option<Vec<i64>>, d: usize| -> [usize; 2] {
        match v.as_deref() {
            Some([a, b]) => [*a as usize, *b as usize],
            _ => [d, d],
        }
    };
    let pads = match attr_is(n, "pads").as_deref() {
        Some([a, b, c, d]) => [*a as usize, *b as usize, *c as usize, *d as usize],
        _ => [0; 4],
    };
    let auto_pad = proto::get_attr(n, "auto_pad")
        .map(|a| String::from_utf8_lossy(&a.s).to_string())
        .unwrap_or_default();
    ConvGeom {
        kernel: [shape[2], shape[3]],
        strides: two(attr_is(n, "strides"), 1),
        dilations: two(attr_is(n, "dilations"), 1),
        pads,
        auto_pad,
    }
}

/// The weight of `layer` as W [rows, cols].
pub fn weight_matrix(layer: &Layer, w: &ArrayD<f32>) -> Result<Array2<f32>> {
    let (r, c) = (layer.rows(), layer.cols());
    let flat = w.as_standard_layout().into_owned();
    let m = flat
        .into_shape_with_order((w.shape()[0], w.len() / w.shape()[0].max(1)))
        .map_err(|e| OptimizeError::InvalidModel(e.to_string()))?;
    Ok(match layer.kind {
        Kind::Conv | Kind::GemmT => m
            .into_shape_with_order((r, c))
            .map_err(|e| OptimizeError::InvalidModel(e.to_string()))?,
        Kind::MatMul | Kind::Gemm => m.t().to_owned(),
    })
}

/// Inverse of `weight_matrix`: back to the initializer's layout.
pub fn weight_tensor(layer: &Layer, m: ArrayView2<f32>) -> Result<ArrayD<f32>> {
    let m = match layer.kind {
        Kind::Conv | Kind::GemmT => m.to_owned(),
        Kind::MatMul | Kind::Gemm => m.t().as_standard_layout().into_owned(),
    };
    let v: Vec<f32> = m.iter().copied().collect();
    ArrayD::from_shape_vec(IxDyn(&layer.shape), v)
        .map_err(|e| OptimizeError::InvalidModel(e.to_string()))
}

/// Resolved padding (top, left, bottom, right) for input spatial size (h, w).
pub fn resolve_pads(g: &ConvGeom, h: usize, w: usize) -> [usize; 4] {
    if g.auto_pad.starts_with("SAME") {
        let mut p = [0usize; 4];
        for (ax, size) in [h, w].into_iter().enumerate() {
            let out = size.div_ceil(g.strides[ax]);
            let eff = (g.kernel[ax] - 1) * g.dilations[ax] + 1;
            let total = ((out - 1) * g.strides[ax] + eff).saturating_sub(size);
            let (a, b) = if g.auto_pad == "SAME_UPPER" {
                (total / 2, total - total / 2)
            } else {
                (total - total / 2, total / 2)
            };
            p[ax] = a;
            p[ax + 2] = b;
        }
        p
    } else if g.auto_pad == "VALID" {
        [0; 4]
    } else {
        g.pads
    }
}

/// im2col rows of one sample x [C, H, W] (batch removed) for a Conv, at most `max_rows` output
/// positions, evenly strided so the statistics cover the whole image.
pub fn im2col(x: ndarray::ArrayView3<f32>, g: &ConvGeom, max_rows: usize) -> Array2<f32> {
    let (c, h, w) = x.dim();
    let p = resolve_pads(g, h, w);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [dh, dw] = g.dilations;
    let (oh, ow) = out_size(g, h, w);
    let total = oh * ow;
    let step = total.div_ceil(max_rows.max(1)).max(1);
    let n = total.div_ceil(step);
    let k = c * kh * kw;
    let mut out = Array2::<f32>::zeros((n, k));
    for (row, pos) in (0..total).step_by(step).enumerate() {
        let (oy, ox) = (pos / ow, pos % ow);
        let mut dst = out.row_mut(row);
        let mut col = 0;
        for ci in 0..c {
            for ky in 0..kh {
                let iy = (oy * sh + ky * dh) as isize - p[0] as isize;
                for kx in 0..kw {
                    let ix = (ox * sw + kx * dw) as isize - p[1] as isize;
                    if iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w {
                        dst[col] = x[[ci, iy as usize, ix as usize]];
                    }
                    col += 1;
                }
            }
        }
    }
    out
}

/// Output height and width of a Conv on an h × w input.
fn out_size(g: &ConvGeom, h: usize, w: usize) -> (usize, usize) {
    let p = resolve_pads(g, h, w);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [dh, dw] = g.dilations;
    let oh = (h + p[0] + p[2]).saturating_sub((kh - 1) * dh + 1) / sh + 1;
    let ow = (w + p[1] + p[3]).saturating_sub((kw - 1) * dw + 1) / sw + 1;
    (oh, ow)
}

/// Rows of X per sample before sampling (output positions of a Conv, tokens of a MatMul):
/// the layer's MACs per sample are rows × cols × this.
pub fn positions(layer: &Layer, x_shape: &[usize]) -> usize {
    match (&layer.geom, x_shape) {
        (Some(g), [_, _, h, w]) => {
            let (oh, ow) = out_size(g, *h, *w);
            oh * ow
        }
        _ => x_shape.iter().product::<usize>() / layer.cols().max(1),
    }
}

/// Rows of the layer's input matrix X (one row per output position / token) for one sample.
pub fn input_rows(layer: &Layer, x: &ArrayD<f32>, max_rows: usize) -> Result<Array2<f32>> {
    let bad = |why: &str| {
        OptimizeError::InvalidData(format!(
            "{}: {why}, input shape {:?}",
            layer.name,
            x.shape()
        ))
    };
    match layer.kind {
        Kind::Conv => {
            let geom = layer.geom.as_ref().ok_or_else(|| bad("no conv geometry"))?;
            if x.ndim() != 4 {
                return Err(bad("conv input is not 4-D"));
            }
            let mut rows = Vec::new();
            for b in x.axis_iter(Axis(0)) {
                let b3 = b
                    .into_dimensionality::<ndarray::Ix3>()
                    .map_err(|_| bad("rank"))?;
                rows.push(im2col(b3, geom, max_rows));
            }
            let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
            ndarray::concatenate(Axis(0), &views).map_err(|_| bad("concat"))
        }
        _ => {
            let k = layer.cols();
            if !x.len().is_multiple_of(k) {
                return Err(bad("input size is not a multiple of the fan-in"));
            }
            let flat = x.as_standard_layout().into_owned();
            flat.into_shape_with_order((x.len() / k, k))
                .map_err(|_| bad("reshape"))
        }
    }
}

/// Running H = Σ xᵀx over input rows (f64 accumulation keeps the sums exact enough).
pub struct Hessian {
    pub h: Array2<f64>,
    pub mean: ndarray::Array1<f64>,
    pub n: usize,
    /// Output positions per sample (see [`positions`]); set by `hessian::collect`.
    pub positions: usize,
}

impl Hessian {
    pub fn new(k: usize) -> Self {
        Self {
            h: Array2::zeros((k, k)),
            mean: ndarray::Array1::zeros(k),
            n: 0,
            positions: 0,
        }
    }

    pub fn add(&mut self, rows: &Array2<f32>) {
        let xt = rows.t();
        let prod = xt.dot(rows);
        self.h.zip_mut_with(&prod, |a, b| *a += *b as f64);
        for (m, s) in self.mean.iter_mut().zip(rows.sum_axis(Axis(0)).iter()) {
            *m += *s as f64;
        }
        self.n += rows.nrows();
    }

    /// H / n (the second moment E[xxᵀ]) and E[x].
    pub fn normalized(&self) -> (Array2<f64>, ndarray::Array1<f64>) {
        let n = self.n.max(1) as f64;
        (self.h.mapv(|v| v / n), self.mean.mapv(|v| v / n))
    }
}
