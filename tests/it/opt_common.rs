//! Shared helpers for the technique tests: real data sets, evaluation (top-1 accuracy /
//! agreement), sizes and tract latency.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ndarray::{Array4, ArrayD, Axis, IxDyn};
use runledger::optimize::data::Dataset;
use runledger::optimize::model::OnnxModel;

pub fn data_dir() -> PathBuf {
    if let Ok(d) = std::env::var("RUNLEDGER_TEST_DATA") {
        return PathBuf::from(d);
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if beside.exists() {
        beside
    } else {
        PathBuf::from("/work/shared/data")
    }
}

pub fn model_path(name: &str) -> PathBuf {
    data_dir().join("models").join(name)
}

pub fn read_npy_u8(path: &Path) -> Result<(Vec<u64>, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let npy = npyz::NpyFile::new(&bytes[..])?;
    let shape = npy.shape().to_vec();
    let data: Vec<u8> = npy.into_vec()?;
    Ok((shape, data))
}

/// MNIST images (N,28,28) u8 -> [N,1,28,28] pixel/255, with labels; `range` selects samples.
pub fn mnist(images: &str, labels: &str, range: std::ops::Range<usize>) -> Result<Dataset> {
    let dir = data_dir().join("datasets");
    let (shape, px) = read_npy_u8(&dir.join(images))?;
    let (_, lab) = read_npy_u8(&dir.join(labels))?;
    let n = shape[0] as usize;
    let all = ArrayD::from_shape_vec(
        IxDyn(&[n, 1, 28, 28]),
        px.iter().map(|&p| p as f32 / 255.0).collect(),
    )?;
    let r = range.start..range.end.min(n);
    Ok(Dataset {
        inputs: all.slice_axis(Axis(0), (r.start..r.end).into()).to_owned(),
        labels: Some(lab[r].iter().map(|&l| l as i64).collect()),
    })
}

/// Squeezenet photos: RGB u8 NHWC -> BGR, minus mean (104,117,123), NCHW.
pub fn photos(range: std::ops::Range<usize>) -> Result<Dataset> {
    let (shape, px) = read_npy_u8(&data_dir().join("datasets/photos224_calib_rgb_u8.npy"))?;
    let n = shape[0] as usize;
    let r = range.start..range.end.min(n);
    let mean = [104.0f32, 117.0, 123.0];
    let mut out = Array4::<f32>::zeros((r.len(), 3, 224, 224));
    for (oi, i) in r.clone().enumerate() {
        for y in 0..224 {
            for x in 0..224 {
                let base = ((i * 224 + y) * 224 + x) * 3;
                for c in 0..3 {
                    // BGR: output channel c reads RGB channel 2 - c.
                    out[[oi, c, y, x]] = px[base + 2 - c] as f32 - mean[c];
                }
            }
        }
    }
    Ok(Dataset {
        inputs: out.into_dyn(),
        labels: None,
    })
}

/// Top-1 class per sample (batch-1 runs: mnist-8 has a fixed batch).
pub fn predict(model: &OnnxModel, data: &Dataset) -> Result<Vec<usize>> {
    let runner = model.runner(1)?;
    let mut out = Vec::new();
    for x in data.inputs.axis_iter(Axis(0)) {
        let y = runner.run(x.insert_axis(Axis(0)).view())?;
        let mut best = (f32::MIN, 0);
        for (i, &v) in y.iter().enumerate() {
            if v > best.0 {
                best = (v, i);
            }
        }
        out.push(best.1);
    }
    Ok(out)
}

pub fn accuracy(pred: &[usize], labels: &[i64]) -> f64 {
    let ok = pred
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p as i64 == **l)
        .count();
    100.0 * ok as f64 / pred.len().max(1) as f64
}

pub fn agreement(a: &[usize], b: &[usize]) -> f64 {
    let ok = a.iter().zip(b).filter(|(x, y)| x == y).count();
    100.0 * ok as f64 / a.len().max(1) as f64
}

pub fn gzip_size(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(bytes);
    e.finish().map(|v| v.len()).unwrap_or(0)
}

pub fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/optimized");
    let _ = std::fs::create_dir_all(&d);
    d
}

pub fn no_progress(
) -> impl FnMut(runledger::optimize::techniques::Progress) -> std::ops::ControlFlow<()> {
    |_| std::ops::ControlFlow::Continue(())
}
