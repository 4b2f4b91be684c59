//! Model intake: an ONNX protobuf held in memory (external data resolved), its real input, its float
//! initializers, and a tract runner for it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use prost::Message;
use tract_onnx::pb::{self, tensor_proto::DataType, GraphProto, ModelProto, TensorProto};

use super::error::{OptimizeError, Result};
use super::external::{first_external, resolve_external_graph};
use super::tensor::tensor_to_f32;

pub use super::runner::{HalfCompute, Runner};

/// An ONNX model, fully in memory: tensors stored as external data are read in at load time, so the
/// proto can be modified, serialized and run without the files that came with it.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    pub proto: ModelProto,
    /// Directory the model was loaded from (where its external data lived), if loaded from a file.
    pub source_dir: Option<PathBuf>,
}

/// The model's real input: a graph input that is not also an initializer (old IR lists both).
#[derive(Debug, Clone, PartialEq)]
pub struct InputInfo {
    pub name: String,
    /// ONNX `TensorProto.DataType` code (1 = float, 10 = float16, ...).
    pub elem_type: i32,
    /// `None` for a symbolic or unknown dimension.
    pub dims: Vec<Option<usize>>,
}

impl OnnxModel {
    /// Reads a model file and pulls any external data (relative to the file's directory) into it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| OptimizeError::io(path, e))?;
        let mut proto = decode(&bytes)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(graph) = proto.graph.as_mut() {
            resolve_external_graph(graph, &dir)?;
        }
        validate(&proto)?;
        Ok(OnnxModel {
            proto,
            source_dir: Some(dir),
        })
    }

    /// Decodes a self-contained model; a model that refers to external data files is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let proto = decode(bytes)?;
        if let Some(graph) = proto.graph.as_ref() {
            if let Some((name, loc)) = first_external(graph) {
                return Err(OptimizeError::InvalidModel(format!(
                    "tensor `{name}` keeps its data in external file `{loc}`; load the model from its path instead"
                )));
            }
        }
        validate(&proto)?;
        Ok(OnnxModel {
            proto,
            source_dir: None,
        })
    }

    pub fn from_proto(proto: ModelProto) -> Result<Self> {
        validate(&proto)?;
        Ok(OnnxModel {
            proto,
            source_dir: None,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }

    /// Size in bytes of the serialized (self-contained) model.
    pub fn file_size(&self) -> u64 {
        self.proto.encoded_len() as u64
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(|e| OptimizeError::io(path, e))
    }

    pub fn graph(&self) -> Result<&GraphProto> {
        self.proto
            .graph
            .as_ref()
            .ok_or_else(|| OptimizeError::InvalidModel("the model has no graph".into()))
    }

    /// Graph inputs that are fed at run time (initializers listed as inputs excluded).
    pub fn real_inputs(&self) -> Vec<&pb::ValueInfoProto> {
        let Some(graph) = self.proto.graph.as_ref() else {
            return vec![];
        };
        let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        graph
            .input
            .iter()
            .filter(|i| !inits.contains(i.name.as_str()))
            .collect()
    }

    /// Name, element type and dims of the first real input.
    pub fn input_info(&self) -> Result<InputInfo> {
        let inputs = self.real_inputs();
        let input = inputs.first().ok_or_else(|| {
            OptimizeError::InvalidModel("the graph has no input that is not an initializer".into())
        })?;
        let tensor = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(t)) => t,
            _ => {
                return Err(OptimizeError::InvalidModel(format!(
                    "input `{}` is not a typed tensor",
                    input.name
                )));
            }
        };
        let dims = tensor
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => {
                            Some(v as usize)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .ok_or_else(|| {
                OptimizeError::InvalidModel(format!("input `{}` has no shape", input.name))
            })?;
        Ok(InputInfo {
            name: input.name.clone(),
            elem_type: tensor.elem_type,
            dims,
        })
    }

    /// Shape of the first real input, with a symbolic batch (axis 0) reported as 1.
    /// Any other symbolic dimension is an error: the data cannot be checked against it.
    pub fn input_shape(&self) -> Result<Vec<usize>> {
        let info = self.input_info()?;
        info.dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match (axis, d) {
                (_, Some(v)) => Ok(*v),
                (0, None) => Ok(1),
                (_, None) => Err(OptimizeError::Unsupported(format!(
                    "input `{}` has a symbolic dimension at axis {axis}; only the batch axis may be symbolic",
                    info.name
                ))),
            })
            .collect()
    }

    /// The batch size the model insists on, or `None` when its batch axis is symbolic.
    pub fn fixed_batch(&self) -> Result<Option<usize>> {
        Ok(self.input_info()?.dims.first().copied().flatten())
    }

    pub fn output_names(&self) -> Vec<String> {
        self.proto
            .graph
            .as_ref()
            .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether any float16 tensor appears (initializer, graph input/output, value_info, Cast to
    /// f16): such graphs are computed in f32 by default (see [`HalfCompute`]).
    pub fn has_f16(&self) -> bool {
        const F16: i32 = DataType::Float16 as i32;
        let Some(g) = self.proto.graph.as_ref() else {
            return false;
        };
        let typed_f16 = |v: &pb::ValueInfoProto| {
            matches!(v.r#type.as_ref().and_then(|t| t.value.as_ref()),
                Some(pb::type_proto::Value::TensorType(t)) if t.elem_type == F16)
        };
        g.initializer.iter().any(|t| t.data_type == F16)
            || g.input
                .iter()
                .chain(&g.output)
                .chain(&g.value_info)
                .any(typed_f16)
            || g.node.iter().any(|n| {
                n.op_type == "Cast"
                    && n.attribute
                        .iter()
                        .any(|a| a.name == "to" && a.i == i64::from(F16))
            })
    }

    pub fn initializer_proto(&self, name: &str) -> Option<&TensorProto> {
        self.proto
            .graph
            .as_ref()?
            .initializer
            .iter()
            .find(|t| t.name == name)
    }

    /// A float initializer (f32, f16, bf16 or f64) as f32; `None` if absent or not a float tensor.
    pub fn initializer(&self, name: &str) -> Option<ArrayD<f32>> {
        tensor_to_f32(self.initializer_proto(name)?).ok()
    }

    /// A tract plan for inputs of shape `[batch, ...]`, optimized, running in one thread.
    /// float16 graphs are computed in f32 (see [`HalfCompute`]); use [`Self::runner_with`] for
    /// exact f16 arithmetic.
    pub fn runner(&self, batch: usize) -> Result<Runner> {
        Runner::new(self, batch, HalfCompute::default())
    }

    pub fn runner_with(&self, batch: usize, half: HalfCompute) -> Result<Runner> {
        Runner::new(self, batch, half)
    }
}

/// Builds an f32 `TensorProto` stored as raw little-endian bytes.
pub fn f32_tensor_proto(name: &str, data: &ArrayViewD<f32>) -> TensorProto {
    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    TensorProto {
        name: name.to_string(),
        dims: data.shape().iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: raw,
        ..Default::default()
    }
}

/// Reshapes a flat vector into an `ArrayD`, failing with a message instead of panicking.
pub(crate) fn array_from(shape: &[usize], data: Vec<f32>, what: &str) -> Result<ArrayD<f32>> {
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| OptimizeError::InvalidModel(format!("{what}: {e} (shape {shape:?})")))
}

fn decode(bytes: &[u8]) -> Result<ModelProto> {
    if bytes.is_empty() {
        return Err(OptimizeError::InvalidModel("the file is empty".into()));
    }
    ModelProto::decode(bytes).map_err(|e| {
        OptimizeError::InvalidModel(format!(
            "protobuf decoding failed ({}); the file is truncated or not an ONNX model",
            super::error::one_line(&e.to_string())
        ))
    })
}

/// Cheap structural checks that catch random bytes or a truncation that happened to decode.
fn validate(proto: &ModelProto) -> Result<()> {
    let graph = proto.graph.as_ref().ok_or_else(|| {
        OptimizeError::InvalidModel(
            "no graph in the protobuf; the file is truncated or not an ONNX model".into(),
        )
    })?;
    if graph.output.is_empty() {
        return Err(OptimizeError::InvalidModel(
            "the graph has no outputs".into(),
        ));
    }
    if proto.opset_import.is_empty() && proto.ir_version <= 0 {
        return Err(OptimizeError::InvalidModel(
            "no ir_version and no opset_import; not an ONNX model".into(),
        ));
    }
    let mut known: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    known.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    known.insert("");
    for node in &graph.node {
        // Names used by subgraphs (If/Loop bodies) are resolved by tract; check only the main graph.
        if let Some(missing) = node.input.iter().find(|i| !known.contains(i.as_str())) {
            return Err(OptimizeError::InvalidModel(format!(
                "node `{}` ({}) reads `{missing}`, which nothing produces (truncated or malformed graph)",
                node.name, node.op_type
            )));
        }
        known.extend(node.output.iter().map(String::as_str));
    }
    if let Some(out) = graph
        .output
        .iter()
        .find(|o| !known.contains(o.name.as_str()))
    {
        return Err(OptimizeError::InvalidModel(format!(
            "graph output `{}` is produced by no node",
            out.name
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tract_onnx::pb::{
        tensor_shape_proto::{dimension::Value as DimV, Dimension},
        type_proto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };

    fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|&d| Dimension {
                value: Some(if d < 0 {
                    DimV::DimParam("N".into())
                } else {
                    DimV::DimValue(d)
                }),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// y = x + w with w an initializer also listed as a graph input (old IR style).
    pub(crate) fn add_model(batch: i64) -> ModelProto {
        let w = f32_tensor_proto("w", &ndarray::arr1(&[1.0f32, 2.0, 3.0]).into_dyn().view());
        ModelProto {
            ir_version: 3,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 8,
            }],
            graph: Some(GraphProto {
                name: "g".into(),
                node: vec![NodeProto {
                    name: "add".into(),
                    op_type: "Add".into(),
                    input: vec!["x".into(), "w".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                }],
                initializer: vec![w],
                input: vec![value_info("w", &[3]), value_info("x", &[batch, 3])],
                output: vec![value_info("y", &[batch, 3])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn real_input_skips_initializers() {
        let m = OnnxModel::from_proto(add_model(-1)).unwrap();
        assert_eq!(m.input_info().unwrap().name, "x");
        assert_eq!(m.input_shape().unwrap(), vec![1, 3]);
        assert_eq!(m.fixed_batch().unwrap(), None);
        assert_eq!(
            m.initializer("w").unwrap().into_raw_vec_and_offset().0,
            vec![1.0, 2.0, 3.0]
        );
        assert!(m.initializer("nope").is_none());
        assert_eq!(m.output_names(), vec!["y".to_string()]);
    }

    #[test]
    fn roundtrip_and_run() {
        let m = OnnxModel::from_proto(add_model(2)).unwrap();
        let m2 = OnnxModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(m2.file_size(), m.to_bytes().len() as u64);
        let r = m2.runner(2).unwrap();
        let x = ndarray::arr2(&[[0.0f32, 0.0, 0.0], [1.0, 1.0, 1.0]]).into_dyn();
        let y = r.run(x.view()).unwrap();
        assert_eq!(
            y.into_raw_vec_and_offset().0,
            vec![1.0, 2.0, 3.0, 2.0, 3.0, 4.0]
        );
        assert!(matches!(
            m2.runner(3),
            Err(OptimizeError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(OnnxModel::from_bytes(b"").is_err());
        assert!(
            OnnxModel::from_bytes(b"hello, this is not a protobuf at all \xff\xff\xff").is_err()
        );
        let bytes = OnnxModel::from_proto(add_model(1)).unwrap().to_bytes();
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 3] {
            let e = OnnxModel::from_bytes(&bytes[..cut]);
            assert!(e.is_err(), "truncated at {cut} decoded");
        }
    }

    #[test]
    fn dangling_node_input_is_reported() {
        let mut p = add_model(1);
        p.graph.as_mut().unwrap().node[0].input[1] = "ghost".into();
        let err = OnnxModel::from_proto(p).unwrap_err().to_string();
        assert!(err.contains("ghost"), "{err}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let e = OnnxModel::load(Path::new("/nonexistent/x.onnx")).unwrap_err();
        assert!(matches!(e, OptimizeError::Io { .. }));
    }
}
