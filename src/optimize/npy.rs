//! Reading `.npy` files (numeric, C or Fortran order) with npyz.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use npyz::{DType, NpyFile, Order, TypeChar};

use super::error::{OptimizeError, Result};

/// Reads a numeric `.npy` as f32 (C or Fortran order).
pub fn read_npy_f32(path: &Path) -> Result<ArrayD<f32>> {
    let npy = open_npy(path)?;
    let (kind, size) = plain_type(&npy, path)?;
    let (shape, fortran) = (npy_shape(&npy), npy.order() == Order::Fortran);
    let bad = |e: std::io::Error| OptimizeError::InvalidData(format!("{}: {e}", path.display()));
    let values: Vec<f32> = match (kind, size) {
        (TypeChar::Uint, 1) => npy
            .into_vec::<u8>()
            .map_err(bad)?
            .into_iter()
            .map(f32::from)
            .collect(),
        (TypeChar::Float, 4) => npy.into_vec::<f32>().map_err(bad)?,
        (TypeChar::Float, 8) => npy
            .into_vec::<f64>()
            .map_err(bad)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => {
            return Err(OptimizeError::InvalidData(format!(
                "{}: dtype {kind}{size} is not supported for inputs; use uint8 or float32",
                path.display()
            )))
        }
    };
    shaped(values, &shape, fortran, path)
}

/// Reads integer class labels (u8, i32, i64, and other integer widths) from a 1-D or (N,1) `.npy`.
pub fn read_npy_labels(path: &Path) -> Result<Vec<i64>> {
    let npy = open_npy(path)?;
    let (kind, size) = plain_type(&npy, path)?;
    let shape = npy_shape(&npy);
    if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
        return Err(OptimizeError::InvalidData(format!(
            "{}: labels must be 1-D, got shape {shape:?}",
            path.display()
        )));
    }
    let bad = |e: std::io::Error| OptimizeError::InvalidData(format!("{}: {e}", path.display()));
    let labels: Vec<i64> = match (kind, size) {
        (TypeChar::Uint, 1) => npy
            .into_vec::<u8>()
            .map_err(bad)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 1) => npy
            .into_vec::<i8>()
            .map_err(bad)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Uint, 2) => npy
            .into_vec::<u16>()
            .map_err(bad)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 2) => npy
            .into_vec::<i16>()
            .map_err(bad)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Uint, 4) => npy
            .into_vec::<u32>()
            .map_err(bad)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 4) => npy
            .into_vec::<i32>()
            .map_err(bad)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(bad)?,
        _ => {
            return Err(OptimizeError::InvalidData(format!(
                "{}: dtype {kind}{size} is not supported for labels; use an integer type",
                path.display()
            )))
        }
    };
    Ok(labels)
}

/// Shape of a numeric `.npy` whose data reads completely: inputs (uint8/float) or labels
/// (integers, reported as 1-D).
pub fn read_npy_shape(path: &Path) -> Result<Vec<u64>> {
    match read_npy_f32(path) {
        Ok(a) => Ok(a.shape().iter().map(|&d| d as u64).collect()),
        Err(inputs_error) => read_npy_labels(path)
            .map(|l| vec![l.len() as u64])
            .map_err(|_| inputs_error),
    }
}

fn open_npy(path: &Path) -> Result<NpyFile<BufReader<File>>> {
    let file = File::open(path).map_err(|e| OptimizeError::io(path, e))?;
    NpyFile::new(BufReader::new(file)).map_err(|e| {
        OptimizeError::InvalidData(format!(
            "{}: not a readable .npy file ({e})",
            path.display()
        ))
    })
}

fn plain_type<R: std::io::Read>(npy: &NpyFile<R>, path: &Path) -> Result<(TypeChar, u64)> {
    match npy.dtype() {
        DType::Plain(ts) => Ok((ts.type_char(), ts.size_field())),
        other => Err(OptimizeError::InvalidData(format!(
            "{}: structured dtype {other:?} is not supported",
            path.display()
        ))),
    }
}

fn npy_shape<R: std::io::Read>(npy: &NpyFile<R>) -> Vec<usize> {
    npy.shape().iter().map(|&d| d as usize).collect()
}

fn shaped(values: Vec<f32>, shape: &[usize], fortran: bool, path: &Path) -> Result<ArrayD<f32>> {
    let bad = |e: ndarray::ShapeError| {
        OptimizeError::InvalidData(format!("{}: {e} for shape {shape:?}", path.display()))
    };
    if fortran {
        // Fortran order is C order of the reversed shape; transpose back into a standard array.
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        let a = ArrayD::from_shape_vec(IxDyn(&rev), values).map_err(bad)?;
        Ok(a.reversed_axes().as_standard_layout().into_owned())
    } else {
        ArrayD::from_shape_vec(IxDyn(shape), values).map_err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("opt_core_npy_{}_{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn fortran_order_and_dtypes() {
        let p = temp(
            "f.npy",
            &npy_bytes("|u1", true, "(2, 3)", &[0, 1, 2, 3, 4, 5]),
        );
        let a = read_npy_f32(&p).unwrap();
        assert_eq!(
            a.into_raw_vec_and_offset().0,
            vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
        );
        let data: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let p = temp("d.npy", &npy_bytes("<f8", false, "(2,)", &data));
        assert_eq!(
            read_npy_f32(&p).unwrap().into_raw_vec_and_offset().0,
            vec![1.5, -2.0]
        );
        let p = temp("i.npy", &npy_bytes("<i2", false, "(1,)", &[1, 0]));
        assert!(read_npy_f32(&p)
            .unwrap_err()
            .to_string()
            .contains("use uint8 or float32"));
    }

    #[test]
    fn labels() {
        let data: Vec<u8> = [3i64, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = temp("l.npy", &npy_bytes("<i8", false, "(2, 1)", &data));
        assert_eq!(read_npy_labels(&p).unwrap(), vec![3, 7]);
        let p = temp("l2.npy", &npy_bytes("<f4", false, "(1,)", &[0, 0, 0, 0]));
        assert!(read_npy_labels(&p)
            .unwrap_err()
            .to_string()
            .contains("integer"));
        let p = temp("l3.npy", &npy_bytes("|u1", false, "(2, 2)", &[0, 0, 0, 0]));
        assert!(read_npy_labels(&p).unwrap_err().to_string().contains("1-D"));
        let p = temp("bad.npy", b"not an npy file");
        assert!(read_npy_labels(&p)
            .unwrap_err()
            .to_string()
            .contains("not a readable .npy"));
    }
}
