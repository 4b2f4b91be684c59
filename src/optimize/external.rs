//! External tensor data (`data_location = EXTERNAL`): read into the proto at load time so that a
//! model is self-contained in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use tract_onnx::pb::{self, tensor_proto::DataType, GraphProto, TensorProto};

use super::error::{OptimizeError, Result};
use super::tensor::elem_size;

fn is_external(t: &TensorProto) -> bool {
    t.data_location == Some(pb::tensor_proto::DataLocation::External as i32)
}

fn external_key<'a>(t: &'a TensorProto, key: &str) -> Option<&'a str> {
    t.external_data
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

pub(crate) fn first_external(graph: &GraphProto) -> Option<(String, String)> {
    let mut found = None;
    visit_tensors(graph, &mut |t: &TensorProto| {
        if found.is_none() && is_external(t) {
            found = Some((
                t.name.clone(),
                external_key(t, "location").unwrap_or("?").to_string(),
            ));
        }
    });
    found
}

fn visit_tensors(graph: &GraphProto, f: &mut dyn FnMut(&TensorProto)) {
    graph.initializer.iter().for_each(&mut *f);
    for node in &graph.node {
        for attr in &node.attribute {
            attr.t.iter().for_each(&mut *f);
            attr.tensors.iter().for_each(&mut *f);
            attr.g.iter().for_each(|g| visit_tensors(g, f));
            attr.graphs.iter().for_each(|g| visit_tensors(g, f));
        }
    }
}

pub(crate) fn resolve_external_graph(graph: &mut GraphProto, dir: &Path) -> Result<()> {
    for t in graph.initializer.iter_mut() {
        resolve_external(t, dir)?;
    }
    for node in graph.node.iter_mut() {
        for attr in node.attribute.iter_mut() {
            if let Some(t) = attr.t.as_mut() {
                resolve_external(t, dir)?;
            }
            for t in attr.tensors.iter_mut() {
                resolve_external(t, dir)?;
            }
            if let Some(g) = attr.g.as_mut() {
                resolve_external_graph(g, dir)?;
            }
            for g in attr.graphs.iter_mut() {
                resolve_external_graph(g, dir)?;
            }
        }
    }
    Ok(())
}

/// Reads one external tensor's bytes into `raw_data` and marks it as stored in the proto.
fn resolve_external(t: &mut TensorProto, dir: &Path) -> Result<()> {
    if !is_external(t) {
        return Ok(());
    }
    let bad = |msg: String| OptimizeError::InvalidModel(format!("tensor `{}`: {msg}", t.name));
    let location = external_key(t, "location")
        .ok_or_else(|| bad("external data without a location".into()))?;
    let rel = Path::new(location);
    // Same rule as tract and onnx: external data stays inside the model's directory.
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad(format!("external data location `{location}` must be a relative path inside the model directory")));
    }
    let parse = |key: &str| -> Result<Option<u64>> {
        external_key(t, key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("external data {key} `{v}` is not a number")))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let length = parse("length")?;
    let path = dir.join(rel);
    let mut file = File::open(&path).map_err(|e| OptimizeError::io(&path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| OptimizeError::io(&path, e))?
        .len();
    let length = length.unwrap_or(file_len.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > file_len) {
        return Err(bad(format!(
            "external data `{location}` offset {offset} + length {length} is past its end ({file_len} bytes)"
        )));
    }
    let count: u64 = t.dims.iter().map(|&d| d.max(0) as u64).product();
    if let Some(size) = DataType::try_from(t.data_type).ok().and_then(elem_size) {
        if count * size as u64 != length {
            return Err(bad(format!(
                "external data length {length} does not match {count} elements of {size} bytes"
            )));
        }
    }
    let mut raw = vec![0u8; length as usize];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut raw))
        .map_err(|e| OptimizeError::io(&path, e))?;
    t.raw_data = raw;
    t.external_data.clear();
    t.data_location = Some(pb::tensor_proto::DataLocation::Default as i32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::model::tests::add_model;
    use crate::optimize::model::OnnxModel;
    use prost::Message;

    #[test]
    fn external_data_is_read_in_and_checked() {
        let dir = std::env::temp_dir().join(format!("opt_core_ext_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vals: Vec<u8> = [9.0f32, 8.0, 7.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(dir.join("w.bin"), &vals).unwrap();
        let mut p = add_model(1);
        let w = &mut p.graph.as_mut().unwrap().initializer[0];
        w.raw_data.clear();
        w.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        let kv = |k: &str, v: &str| pb::StringStringEntryProto {
            key: k.into(),
            value: v.into(),
        };
        w.external_data = vec![
            kv("location", "w.bin"),
            kv("offset", "4"),
            kv("length", "12"),
        ];
        let bytes = p.encode_to_vec();
        std::fs::write(dir.join("m.onnx"), &bytes).unwrap();
        assert!(OnnxModel::from_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("w.bin"));
        let m = OnnxModel::load(&dir.join("m.onnx")).unwrap();
        assert_eq!(
            m.initializer("w").unwrap().into_raw_vec_and_offset().0,
            vec![8.0, 7.0, 6.0]
        );
        // Self-contained after loading.
        assert!(OnnxModel::from_bytes(&m.to_bytes()).is_ok());

        let w = &mut p.graph.as_mut().unwrap().initializer[0];
        w.external_data[1] = kv("offset", "8");
        std::fs::write(dir.join("m2.onnx"), p.encode_to_vec()).unwrap();
        let err = OnnxModel::load(&dir.join("m2.onnx"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("past its end"), "{err}");

        let w = &mut p.graph.as_mut().unwrap().initializer[0];
        w.external_data[0] = kv("location", "../w.bin");
        std::fs::write(dir.join("m3.onnx"), p.encode_to_vec()).unwrap();
        let err = OnnxModel::load(&dir.join("m3.onnx"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("relative path"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
