//! fp16: float initializers stored as float16, each read through a Cast back to float so the
//! compute stays fp32 (tract and ONNX Runtime both fold the Cast at load time).

use tract_onnx::pb::ModelProto;

use super::proto::{self, attr_int, Namer};
use super::Reporter;
use crate::optimize::error::Result;

/// Tensors smaller than this stay fp32: the Cast would cost more bytes than it saves.
const MIN_ELEMENTS: usize = 16;

pub fn convert(mut model: ModelProto, rep: &mut Reporter) -> Result<ModelProto> {
    let g = proto::graph_mut(&mut model)?;
    let mut namer = Namer::new(g);
    let total = g.initializer.len().max(1);
    let mut casts = Vec::new();
    for (i, t) in g.initializer.iter_mut().enumerate() {
        rep.report("fp16", i as f32 / total as f32)?;
        if t.data_type != proto::FLOAT {
            continue;
        }
        let arr = proto::tensor_to_f32(t)?;
        if arr.len() < MIN_ELEMENTS {
            continue;
        }
        let original = t.name.clone();
        let half_name = namer.fresh(&format!("{original}_fp16"));
        let v: Vec<f32> = arr.iter().copied().collect();
        *t = proto::f16_tensor(&half_name, arr.shape(), &v);
        let cast = proto::node(
            "Cast",
            &namer.fresh(&format!("{original}_cast")),
            &[&half_name],
            &[&original],
        );
        casts.push(proto::with_attrs(
            cast,
            vec![attr_int("to", proto::FLOAT as i64)],
        ));
    }
    // Casts go first so every reader still finds its (now computed) float tensor.
    casts.append(&mut g.node);
    g.node = casts;
    proto::drop_unused_initializers(g);
    Ok(model)
}
