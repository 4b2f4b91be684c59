//! ONNX `TensorProto` <-> ndarray conversions for float tensors.

use half::{bf16, f16};
use ndarray::ArrayD;
use tract_onnx::pb::{tensor_proto::DataType, TensorProto};

use super::error::{OptimizeError, Result};
use super::model::array_from;

/// Bytes per element of a fixed-size ONNX data type (`None` for strings and sub-byte types).
pub fn elem_size(dt: DataType) -> Option<usize> {
    use DataType::*;
    Some(match dt {
        Bool | Int8 | Uint8 | Float8e4m3fn | Float8e4m3fnuz | Float8e5m2 | Float8e5m2fnuz => 1,
        Int16 | Uint16 | Float16 | Bfloat16 => 2,
        Int32 | Uint32 | Float => 4,
        Int64 | Uint64 | Double | Complex64 => 8,
        Complex128 => 16,
        _ => return None,
    })
}

/// Name of an ONNX data type code, for messages ("FLOAT16", or the number if unknown).
pub fn dtype_name(code: i32) -> String {
    DataType::try_from(code)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| format!("type {code}"))
}

/// A float tensor (FLOAT, FLOAT16, BFLOAT16, DOUBLE) as f32. Integer tensors are refused so that
/// callers do not mistake shapes or quantized weights for float weights.
pub fn tensor_to_f32(t: &TensorProto) -> Result<ArrayD<f32>> {
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            OptimizeError::InvalidModel(format!("tensor `{}` has a negative dimension", t.name))
        })?;
    let count: usize = shape.iter().product();
    let dt = DataType::try_from(t.data_type).map_err(|_| {
        OptimizeError::InvalidModel(format!(
            "tensor `{}` has unknown data type {}",
            t.name, t.data_type
        ))
    })?;
    if t.data_location == Some(tract_onnx::pb::tensor_proto::DataLocation::External as i32)
        && t.raw_data.is_empty()
    {
        return Err(OptimizeError::InvalidModel(format!(
            "tensor `{}` still refers to external data",
            t.name
        )));
    }
    let raw = &t.raw_data;
    let values: Vec<f32> = match dt {
        DataType::Float if !raw.is_empty() => le_chunks::<4>(raw).map(f32::from_le_bytes).collect(),
        DataType::Float => t.float_data.clone(),
        DataType::Double if !raw.is_empty() => le_chunks::<8>(raw)
            .map(|b| f64::from_le_bytes(b) as f32)
            .collect(),
        DataType::Double => t.double_data.iter().map(|&v| v as f32).collect(),
        // Half types without raw_data keep their bit patterns in int32_data.
        DataType::Float16 if !raw.is_empty() => le_chunks::<2>(raw)
            .map(|b| f16::from_le_bytes(b).to_f32())
            .collect(),
        DataType::Float16 => t
            .int32_data
            .iter()
            .map(|&v| f16::from_bits(v as u16).to_f32())
            .collect(),
        DataType::Bfloat16 if !raw.is_empty() => le_chunks::<2>(raw)
            .map(|b| bf16::from_le_bytes(b).to_f32())
            .collect(),
        DataType::Bfloat16 => t
            .int32_data
            .iter()
            .map(|&v| bf16::from_bits(v as u16).to_f32())
            .collect(),
        other => {
            return Err(OptimizeError::InvalidArgument {
                name: t.name.clone(),
                reason: format!("{} is not a float tensor", other.as_str_name()),
            })
        }
    };
    if values.len() != count
        || (!raw.is_empty() && elem_size(dt).map(|s| s * count) != Some(raw.len()))
    {
        return Err(OptimizeError::InvalidModel(format!(
            "tensor `{}`: {} stored values for shape {shape:?}",
            t.name,
            values.len()
        )));
    }
    array_from(&shape, values, &format!("tensor `{}`", t.name))
}

fn le_chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    raw.chunks_exact(N).map(|c| {
        let mut b = [0u8; N];
        b.copy_from_slice(c);
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(dt: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: "t".into(),
            dims: dims.to_vec(),
            data_type: dt as i32,
            ..Default::default()
        }
    }

    #[test]
    fn converts_every_float_encoding() {
        let mut t = proto(DataType::Float, &[2]);
        t.float_data = vec![1.5, -2.0];
        assert_eq!(
            tensor_to_f32(&t).unwrap().into_raw_vec_and_offset().0,
            vec![1.5, -2.0]
        );

        let mut t = proto(DataType::Float16, &[2]);
        t.raw_data = [f16::from_f32(0.5), f16::from_f32(-3.0)]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            tensor_to_f32(&t).unwrap().into_raw_vec_and_offset().0,
            vec![0.5, -3.0]
        );

        let mut t = proto(DataType::Float16, &[1]);
        t.int32_data = vec![f16::from_f32(2.0).to_bits() as i32];
        assert_eq!(
            tensor_to_f32(&t).unwrap().into_raw_vec_and_offset().0,
            vec![2.0]
        );

        let mut t = proto(DataType::Double, &[1, 1]);
        t.raw_data = 4.25f64.to_le_bytes().to_vec();
        assert_eq!(tensor_to_f32(&t).unwrap().shape(), &[1, 1]);

        let mut t = proto(DataType::Bfloat16, &[1]);
        t.raw_data = bf16::from_f32(1.0).to_le_bytes().to_vec();
        assert_eq!(tensor_to_f32(&t).unwrap()[[0]], 1.0);
    }

    #[test]
    fn refuses_ints_and_bad_sizes() {
        let mut t = proto(DataType::Int64, &[1]);
        t.int64_data = vec![3];
        assert!(tensor_to_f32(&t).is_err());
        let mut t = proto(DataType::Float, &[3]);
        t.raw_data = vec![0; 8];
        assert!(tensor_to_f32(&t).is_err());
        assert_eq!(dtype_name(10), "FLOAT16");
        assert_eq!(elem_size(DataType::Float16), Some(2));
    }
}
