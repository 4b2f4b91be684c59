//! ONNX protobuf helpers: tensor conversion, node builders, attribute access, graph indexes.

use std::collections::{HashMap, HashSet};

use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto,
};

use crate::optimize::error::{OptimizeError, Result};

pub const FLOAT: i32 = 1;
pub const UINT8: i32 = 2;
pub const INT8: i32 = 3;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const FLOAT16: i32 = 10;
pub const DOUBLE: i32 = 11;

fn bad(msg: impl Into<String>) -> OptimizeError {
    OptimizeError::InvalidModel(msg.into())
}

pub fn graph(model: &ModelProto) -> Result<&GraphProto> {
    model
        .graph
        .as_ref()
        .ok_or_else(|| bad("model has no graph"))
}

pub fn graph_mut(model: &mut ModelProto) -> Result<&mut GraphProto> {
    model
        .graph
        .as_mut()
        .ok_or_else(|| bad("model has no graph"))
}

pub fn dims(t: &TensorProto) -> Result<Vec<usize>> {
    t.dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("{}: negative dim", t.name))))
        .collect()
}

/// Any float tensor (f32, f16, f64; raw or typed storage) as an f32 array.
pub fn tensor_to_f32(t: &TensorProto) -> Result<ArrayD<f32>> {
    if t.data_location == Some(1) {
        return Err(bad(format!("{}: external data not resolved", t.name)));
    }
    let shape = dims(t)?;
    let n: usize = shape.iter().product();
    let raw = &t.raw_data;
    let v: Vec<f32> = match t.data_type {
        FLOAT if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        FLOAT => t.float_data.clone(),
        FLOAT16 if !raw.is_empty() => raw
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        // f16 values live in int32_data as their bit patterns.
        FLOAT16 => t
            .int32_data
            .iter()
            .map(|&b| half::f16::from_bits(b as u16).to_f32())
            .collect(),
        DOUBLE if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        DOUBLE => t.double_data.iter().map(|&d| d as f32).collect(),
        dt => {
            return Err(bad(format!(
                "{}: data type {dt} is not a float type",
                t.name
            )))
        }
    };
    if v.len() != n {
        return Err(bad(format!(
            "{}: {} values for shape {:?}",
            t.name,
            v.len(),
            shape
        )));
    }
    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| bad(format!("{}: {e}", t.name)))
}

/// Integer tensor (i64 or i32) as i64 values, used for Reshape shapes and axes.
pub fn tensor_to_i64(t: &TensorProto) -> Result<Vec<i64>> {
    let raw = &t.raw_data;
    Ok(match t.data_type {
        INT64 if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                i64::from_le_bytes(b)
            })
            .collect(),
        INT64 => t.int64_data.clone(),
        INT32 if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        INT32 => t.int32_data.iter().map(|&v| v as i64).collect(),
        dt => {
            return Err(bad(format!(
                "{}: data type {dt} is not an integer type",
                t.name
            )))
        }
    })
}

fn tensor(name: &str, dt: i32, shape: &[usize], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        data_type: dt,
        dims: shape.iter().map(|&d| d as i64).collect(),
        raw_data: raw,
        ..Default::default()
    }
}

pub fn f32_tensor(name: &str, shape: &[usize], v: &[f32]) -> TensorProto {
    tensor(
        name,
        FLOAT,
        shape,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

pub fn f16_tensor(name: &str, shape: &[usize], v: &[f32]) -> TensorProto {
    let raw = v
        .iter()
        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
        .collect();
    tensor(name, FLOAT16, shape, raw)
}

pub fn u8_tensor(name: &str, shape: &[usize], v: &[u8]) -> TensorProto {
    tensor(name, UINT8, shape, v.to_vec())
}

pub fn i8_tensor(name: &str, shape: &[usize], v: &[i8]) -> TensorProto {
    tensor(name, INT8, shape, v.iter().map(|&x| x as u8).collect())
}

pub fn i32_tensor(name: &str, shape: &[usize], v: &[i32]) -> TensorProto {
    tensor(
        name,
        INT32,
        shape,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

pub fn i64_tensor(name: &str, shape: &[usize], v: &[i64]) -> TensorProto {
    tensor(
        name,
        INT64,
        shape,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op.to_string(),
        name: name.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn with_attrs(mut n: NodeProto, attrs: Vec<AttributeProto>) -> NodeProto {
    n.attribute.extend(attrs);
    n
}

pub fn get_attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

pub fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    get_attr(n, name).map(|a| a.i).unwrap_or(default)
}

pub fn attr_is(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    get_attr(n, name).map(|a| a.ints.clone())
}

pub fn attr_f(n: &NodeProto, name: &str, default: f32) -> f32 {
    get_attr(n, name).map(|a| a.f).unwrap_or(default)
}

/// Opset version of the default ONNX domain.
pub fn default_opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1)
}

pub fn ensure_domain(model: &mut ModelProto, domain: &str, version: i64) {
    if !model.opset_import.iter().any(|o| o.domain == domain) {
        model.opset_import.push(tract_onnx::pb::OperatorSetIdProto {
            domain: domain.into(),
            version,
        });
    }
}

/// Lookup tables over a graph: who produces / consumes each tensor, and the initializers.
pub struct GraphIndex {
    pub producer: HashMap<String, usize>,
    pub consumers: HashMap<String, Vec<usize>>,
    pub inits: HashMap<String, usize>,
    pub outputs: HashSet<String>,
}

impl GraphIndex {
    pub fn new(g: &GraphProto) -> Self {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.clone(), i);
            }
            for inp in &n.input {
                if !inp.is_empty() {
                    consumers.entry(inp.clone()).or_default().push(i);
                }
            }
        }
        let inits = g
            .initializer
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let outputs = g.output.iter().map(|o| o.name.clone()).collect();
        Self {
            producer,
            consumers,
            inits,
            outputs,
        }
    }

    pub fn consumers_of(&self, t: &str) -> &[usize] {
        self.consumers.get(t).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The single consumer of `t`, if exactly one node reads it and it is not a graph output.
    pub fn sole_consumer(&self, t: &str) -> Option<usize> {
        match self.consumers_of(t) {
            [one] if !self.outputs.contains(t) => Some(*one),
            _ => None,
        }
    }
}

/// Fresh tensor/node names that cannot collide with existing ones.
pub struct Namer {
    used: HashSet<String>,
}

impl Namer {
    pub fn new(g: &GraphProto) -> Self {
        let mut used = HashSet::new();
        for n in &g.node {
            used.extend(n.output.iter().cloned());
            used.extend(n.input.iter().cloned());
            used.insert(n.name.clone());
        }
        used.extend(g.initializer.iter().map(|t| t.name.clone()));
        used.extend(g.input.iter().map(|t| t.name.clone()));
        Self { used }
    }

    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }
}

/// Remove initializers nobody reads any more, and drop initializers from the graph-input list
/// (old IR listed them there; from IR 4 on that would make them overridable, non-constant
/// inputs, which stops ONNX Runtime from folding them).
pub fn drop_unused_initializers(g: &mut GraphProto) {
    let used: HashSet<String> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(g.output.iter().map(|o| o.name.clone()))
        .collect();
    let all_inits: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    g.initializer.retain(|t| used.contains(&t.name));
    g.input.retain(|i| !all_inits.contains(&i.name));
}

/// Replace (or add) the initializer called `t.name`.
pub fn set_initializer(g: &mut GraphProto, t: TensorProto) {
    if let Some(slot) = g.initializer.iter_mut().find(|x| x.name == t.name) {
        *slot = t;
    } else {
        g.initializer.push(t);
    }
}

/// Topologically sort nodes (in place), so inserted nodes may be appended anywhere.
pub fn toposort(g: &mut GraphProto) -> Result<()> {
    let mut available: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    available.extend(g.input.iter().map(|i| i.name.clone()));
    available.insert(String::new());
    let mut pending: Vec<NodeProto> = std::mem::take(&mut g.node);
    let mut out = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for n in pending {
            if n.input.iter().all(|i| available.contains(i)) {
                available.extend(n.output.iter().cloned());
                out.push(n);
            } else {
                rest.push(n);
            }
        }
        if rest.len() == before {
            let missing: Vec<&String> = rest[0]
                .input
                .iter()
                .filter(|i| !available.contains(*i))
                .collect();
            return Err(bad(format!(
                "node {} reads undefined tensors {:?}",
                rest[0].name, missing
            )));
        }
        pending = rest;
    }
    g.node = out;
    Ok(())
}
