//! Element-type names and sizes for the graph summary.

use tract_onnx::prelude::DatumType;

/// Weight element types that count as parameters (not shapes or indices).
pub(crate) fn is_param_type(dt: DatumType) -> bool {
    dt.is_float()
        || matches!(dt, DatumType::I8 | DatumType::U8 | DatumType::I32)
        || dt.is_quantized()
}

/// ONNX TensorProto.DataType code to (name, bits per element).
pub(crate) fn onnx_elem_type(code: i32) -> (&'static str, u64) {
    match code {
        1 => ("float32", 32),
        2 => ("uint8", 8),
        3 => ("int8", 8),
        4 => ("uint16", 16),
        5 => ("int16", 16),
        6 => ("int32", 32),
        7 => ("int64", 64),
        9 => ("bool", 8),
        10 => ("float16", 16),
        11 => ("float64", 64),
        12 => ("uint32", 32),
        13 => ("uint64", 64),
        16 => ("bfloat16", 16),
        17..=20 => ("float8", 8),
        21 => ("uint4", 4),
        22 => ("int4", 4),
        _ => ("other", 8),
    }
}

pub(crate) fn dtype_name(dt: DatumType) -> &'static str {
    match dt {
        DatumType::F16 => "float16",
        DatumType::F32 => "float32",
        DatumType::F64 => "float64",
        DatumType::I8 | DatumType::QI8(_) => "int8",
        DatumType::U8 | DatumType::QU8(_) => "uint8",
        DatumType::I16 => "int16",
        DatumType::U16 => "uint16",
        DatumType::I32 | DatumType::QI32(_) => "int32",
        DatumType::U32 => "uint32",
        DatumType::I64 => "int64",
        DatumType::U64 => "uint64",
        DatumType::Bool => "bool",
        _ => "other",
    }
}
