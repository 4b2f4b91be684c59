//! Evaluation / calibration data: `.npy` inputs and labels (or a folder of images with a labels
//! CSV), turned into the model's input layout by a small preprocessing spec.

use std::ops::Range;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use serde::{Deserialize, Serialize};

use super::error::{OptimizeError, Result};
use super::images;
pub use super::npy::{read_npy_f32, read_npy_labels, read_npy_shape};

/// Memory layout of a 4-D image array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    #[serde(rename = "NHWC", alias = "nhwc")]
    Nhwc,
    #[serde(rename = "NCHW", alias = "nchw")]
    Nchw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelOrder {
    #[serde(rename = "RGB", alias = "rgb")]
    Rgb,
    #[serde(rename = "BGR", alias = "bgr")]
    Bgr,
}

/// Preprocessing spec, e.g. `{"layout": "NHWC", "channel_order": "BGR", "mean": [104,117,123]}`.
/// Every field is optional; an empty spec changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preprocess {
    /// Layout of the DATA file (inferred from its shape when absent). The model's layout is read
    /// from its input shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
    /// Channel order the MODEL wants; data files are RGB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_order: Option<ChannelOrder>,
    /// Multiplies raw values first (1/255 for "pixel/255").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f32>,
    /// Per-channel (in the model's channel order) or single value, subtracted after scaling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel or single divisor, applied last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<Vec<f32>>,
}

impl Preprocess {
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| OptimizeError::invalid_argument("preprocess", e.to_string()))
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| OptimizeError::io(path, e))?;
        Self::from_json(&text).map_err(|e| OptimizeError::io(path, e))
    }
}

/// Preprocessed samples `[N, ...model input dims without batch]` and their optional labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub inputs: ArrayD<f32>,
    pub labels: Option<Vec<i64>>,
}

impl Dataset {
    pub fn new(inputs: ArrayD<f32>, labels: Option<Vec<i64>>) -> Result<Self> {
        if inputs.ndim() == 0 {
            return Err(OptimizeError::InvalidData(
                "inputs must have a sample axis".into(),
            ));
        }
        let n = inputs.shape()[0];
        if let Some(l) = &labels {
            if l.len() != n {
                return Err(OptimizeError::InvalidData(format!(
                    "{} labels for {n} samples",
                    l.len()
                )));
            }
        }
        Ok(Dataset { inputs, labels })
    }

    pub fn len(&self) -> usize {
        self.inputs.shape().first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one sample (the model input without its batch axis).
    pub fn sample_shape(&self) -> &[usize] {
        &self.inputs.shape()[1..]
    }

    /// Samples `range` as a view, batch axis first.
    pub fn batch(&self, range: Range<usize>) -> ArrayViewD<'_, f32> {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        self.inputs.slice_axis(Axis(0), Slice::from(start..end))
    }

    /// A copy holding samples `range` only (clamped to the data set).
    pub fn subset(&self, range: Range<usize>) -> Dataset {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        Dataset {
            inputs: self.batch(start..end).to_owned(),
            labels: self.labels.as_ref().map(|l| l[start..end].to_vec()),
        }
    }
}

/// Reads `inputs` (u8 / f32 / f64 `.npy`, or a folder of images, see [`super::images`]) and
/// optional `labels` (`.npy`, or a CSV with an image folder), and preprocesses the inputs into
/// `model_input`'s layout. `model_input` is the model's full input shape; its batch axis is ignored.
pub fn load_dataset(
    inputs: &Path,
    labels: Option<&Path>,
    pre: &Preprocess,
    model_input: &[usize],
) -> Result<Dataset> {
    if inputs.is_dir() {
        let csv = labels.filter(|l| images::is_csv(l));
        let (raw, csv_labels) = images::read_folder(inputs, csv, model_input)?;
        // Decoded images are NHWC whatever the spec says of data files.
        let pre = Preprocess {
            layout: Some(Layout::Nhwc),
            ..pre.clone()
        };
        let x = prepare(raw, &pre, model_input)?;
        let labels = match (csv_labels, labels) {
            (Some(l), _) => Some(l),
            (None, Some(npy)) => Some(read_npy_labels(npy)?),
            (None, None) => None,
        };
        return Dataset::new(x, labels);
    }
    if let Some(csv) = labels.filter(|l| images::is_csv(l)) {
        return Err(OptimizeError::invalid_argument(
            "labels",
            format!(
                "{}: a labels CSV goes with a folder of images",
                csv.display()
            ),
        ));
    }
    let raw = read_npy_f32(inputs)?;
    check_finite(&raw)
        .map_err(|e| OptimizeError::InvalidData(format!("{}: {e}", inputs.display())))?;
    let x = prepare(raw, pre, model_input)?;
    let labels = labels.map(read_npy_labels).transpose()?;
    Dataset::new(x, labels)
}

/// Fails on NaN/Inf, naming how many and where the first one is.
pub fn check_finite(x: &ArrayD<f32>) -> std::result::Result<(), String> {
    let mut count = 0usize;
    let mut first = None;
    for (i, v) in x.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        None => Ok(()),
        Some(flat) => Err(format!(
            "{count} NaN/Inf values, the first at index {:?}",
            unravel(flat, x.shape())
        )),
    }
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (slot, &dim) in idx.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = flat % dim;
            flat /= dim;
        }
    }
    idx
}

/// Where the channel axis of one sample is, judged from the model's sample dims: channels are
/// the dim that is 1 or 3 (first axis preferred: NCHW). `None` for non-image inputs.
pub fn model_channel_axis(sample: &[usize]) -> Option<usize> {
    let is_c = |d: usize| d == 1 || d == 3;
    match sample {
        [c, _, _] if is_c(*c) => Some(0),
        [_, _, c] if is_c(*c) => Some(2),
        _ => None,
    }
}

/// Turns raw data `[N, ...]` into preprocessed model input `[N, ...model sample dims]`.
pub fn prepare(raw: ArrayD<f32>, pre: &Preprocess, model_input: &[usize]) -> Result<ArrayD<f32>> {
    let model = model_input.get(1..).unwrap_or(&[]);
    let data_shape = raw.shape().to_vec();
    let mismatch = |why: &str| {
        OptimizeError::InvalidData(format!(
            "data shape {data_shape:?} does not match the model input {model_input:?}{why}"
        ))
    };
    if raw.ndim() == 0 {
        return Err(mismatch(" (the data has no sample axis)"));
    }
    let ch = model_channel_axis(model);
    let mut x = raw;
    let sample = data_shape[1..].to_vec();
    if let (Some(c), 2, 3) = (ch, sample.len(), model.len()) {
        // Grayscale (N,H,W) feeding a one-channel image input.
        if model[c] == 1 {
            x = x.insert_axis(Axis(c + 1));
        }
    } else if let (Some(c), 3, 3) = (ch, sample.len(), model.len()) {
        let model_layout = if c == 0 { Layout::Nchw } else { Layout::Nhwc };
        let data_layout = pre.layout.unwrap_or(if sample == model {
            model_layout
        } else if model_channel_axis(&sample) == Some(0) {
            Layout::Nchw
        } else {
            Layout::Nhwc
        });
        x = match (data_layout, model_layout) {
            (Layout::Nhwc, Layout::Nchw) => x.permuted_axes(IxDyn(&[0, 3, 1, 2])),
            (Layout::Nchw, Layout::Nhwc) => x.permuted_axes(IxDyn(&[0, 2, 3, 1])),
            _ => x,
        };
    } else if sample.len() == 1 && sample[0] == model.iter().product::<usize>() && sample != model {
        // Flattened samples (N, H*W*C) for a shaped input: trust the element count.
        let mut full = vec![data_shape[0]];
        full.extend_from_slice(model);
        x = x
            .into_shape_with_order(IxDyn(&full))
            .map_err(|e| mismatch(&format!(" ({e})")))?;
    }
    if x.shape()[1..] != *model {
        let how = if x.shape() != data_shape.as_slice() {
            format!(" (rearranged to {:?})", x.shape())
        } else {
            String::new()
        };
        return Err(mismatch(&how));
    }
    let mut x = x.as_standard_layout().into_owned();
    normalize(&mut x, pre, ch.map(|c| c + 1))?;
    Ok(x)
}

/// Channel reorder and `(x*scale - mean[c]) / std[c]` along `channel_axis` of the batch array.
fn normalize(x: &mut ArrayD<f32>, pre: &Preprocess, channel_axis: Option<usize>) -> Result<()> {
    let channels = channel_axis.map(|a| x.shape()[a]).unwrap_or(1);
    if pre.channel_order == Some(ChannelOrder::Bgr) {
        match channel_axis {
            Some(a) if channels == 3 => x.invert_axis(Axis(a)),
            _ => {
                return Err(OptimizeError::invalid_argument(
                    "channel_order",
                    format!(
                        "BGR needs a 3-channel image input, the model input has shape {:?}",
                        &x.shape()[1..]
                    ),
                ))
            }
        }
        *x = x.as_standard_layout().into_owned();
    }
    let per_channel = |name: &str, v: &Option<Vec<f32>>, default: f32| -> Result<Vec<f32>> {
        match v.as_deref() {
            None => Ok(vec![default; channels]),
            Some([one]) => Ok(vec![*one; channels]),
            Some(vals) if vals.len() == channels => Ok(vals.to_vec()),
            Some(vals) => Err(OptimizeError::invalid_argument(
                name,
                format!("{} values for {channels} channels", vals.len()),
            )),
        }
    };
    let mean = per_channel("mean", &pre.mean, 0.0)?;
    let std = per_channel("std", &pre.std, 1.0)?;
    let scale = pre.scale.unwrap_or(1.0);
    if let Some(bad) = std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
        return Err(OptimizeError::invalid_argument(
            "std",
            format!("{bad} is not a usable divisor"),
        ));
    }
    if !scale.is_finite() || mean.iter().any(|m| !m.is_finite()) {
        return Err(OptimizeError::invalid_argument(
            "preprocess",
            "scale and mean must be finite",
        ));
    }
    if scale == 1.0 && mean.iter().all(|&m| m == 0.0) && std.iter().all(|&s| s == 1.0) {
        return Ok(());
    }
    match channel_axis {
        Some(a) => {
            for (c, mut lane) in x.axis_iter_mut(Axis(a)).enumerate() {
                let (m, s) = (mean[c], std[c]);
                lane.mapv_inplace(|v| (v * scale - m) / s);
            }
        }
        None => x.mapv_inplace(|v| (v * scale - mean[0]) / std[0]),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn nhwc_rgb() -> ArrayD<f32> {
        // 1 image 2x2, pixel (h,w) = [R,G,B] = [10h+w, 100+10h+w, 200+10h+w]
        Array::from_shape_fn(IxDyn(&[1, 2, 2, 3]), |ix| {
            (ix[3] * 100 + ix[1] * 10 + ix[2]) as f32
        })
    }

    #[test]
    fn spec_parses_and_rejects_unknown_keys() {
        let p = Preprocess::from_json(r#"{"layout":"NHWC","channel_order":"BGR","scale":1.0,"mean":[104,117,123],"std":[1,1,1]}"#)
            .unwrap();
        assert_eq!(p.layout, Some(Layout::Nhwc));
        assert_eq!(p.channel_order, Some(ChannelOrder::Bgr));
        assert_eq!(Preprocess::from_json("{}").unwrap(), Preprocess::default());
        let e = Preprocess::from_json(r#"{"scale":1,"meen":[1]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("meen"), "{e}");
        assert!(Preprocess::from_json(r#"{"layout":"HWC"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Preprocess {
                scale: Some(0.5),
                ..Default::default()
            })
            .unwrap(),
            r#"{"scale":0.5}"#
        );
    }

    #[test]
    fn nhwc_rgb_to_nchw_bgr_with_mean() {
        let pre = Preprocess::from_json(r#"{"channel_order":"BGR","mean":[200,100,0]}"#).unwrap();
        let x = prepare(nhwc_rgb(), &pre, &[1, 3, 2, 2]).unwrap();
        assert_eq!(x.shape(), &[1, 3, 2, 2]);
        // channel 0 is B (raw 200+..) minus 200; channel 2 is R minus 0.
        assert_eq!(x[[0, 0, 1, 0]], 10.0);
        assert_eq!(x[[0, 1, 0, 1]], 1.0);
        assert_eq!(x[[0, 2, 1, 1]], 11.0);
    }

    #[test]
    fn layout_kept_when_it_matches_and_explicit_layout_wins() {
        let x = prepare(nhwc_rgb(), &Preprocess::default(), &[1, 2, 2, 3]).unwrap();
        assert_eq!(x, nhwc_rgb());
        let pre = Preprocess {
            layout: Some(Layout::Nchw),
            ..Default::default()
        };
        let e = prepare(nhwc_rgb(), &pre, &[1, 3, 2, 2])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[1, 2, 2, 3]") && e.contains("[1, 3, 2, 2]"),
            "{e}"
        );
    }

    #[test]
    fn grayscale_and_scale() {
        let raw = Array::from_elem(IxDyn(&[4, 28, 28]), 255.0f32);
        let pre = Preprocess::from_json(r#"{"scale": 0.00392156862745098}"#).unwrap();
        let x = prepare(raw.clone(), &pre, &[1, 1, 28, 28]).unwrap();
        assert_eq!(x.shape(), &[4, 1, 28, 28]);
        assert!((x[[3, 0, 27, 27]] - 1.0).abs() < 1e-6);
        let x = prepare(raw.clone(), &pre, &[1, 28, 28, 1]).unwrap();
        assert_eq!(x.shape(), &[4, 28, 28, 1]);
        let e = prepare(raw, &pre, &[1, 1, 32, 32]).unwrap_err().to_string();
        assert!(
            e.contains("[4, 28, 28]") && e.contains("[1, 1, 32, 32]"),
            "{e}"
        );
    }

    #[test]
    fn flat_vectors_and_bad_params() {
        let raw = Array::from_elem(IxDyn(&[2, 784]), 1.0f32);
        assert_eq!(
            prepare(raw.clone(), &Preprocess::default(), &[1, 1, 28, 28])
                .unwrap()
                .shape(),
            &[2, 1, 28, 28]
        );
        assert_eq!(
            prepare(raw.clone(), &Preprocess::default(), &[1, 784])
                .unwrap()
                .shape(),
            &[2, 784]
        );
        let bgr = Preprocess {
            channel_order: Some(ChannelOrder::Bgr),
            ..Default::default()
        };
        assert!(prepare(raw.clone(), &bgr, &[1, 784]).is_err());
        let m = Preprocess {
            mean: Some(vec![1.0, 2.0]),
            ..Default::default()
        };
        assert!(prepare(raw.clone(), &m, &[1, 784]).is_err());
        let s = Preprocess {
            std: Some(vec![0.0]),
            ..Default::default()
        };
        assert!(prepare(raw, &s, &[1, 784]).is_err());
    }

    #[test]
    fn nan_is_located() {
        let mut x = Array::zeros(IxDyn(&[3, 2, 2]));
        x[[1, 0, 1]] = f32::NAN;
        x[[2, 1, 1]] = f32::INFINITY;
        assert_eq!(
            check_finite(&x).unwrap_err(),
            "2 NaN/Inf values, the first at index [1, 0, 1]"
        );
        assert!(check_finite(&Array::zeros(IxDyn(&[2]))).is_ok());
    }

    #[test]
    fn dataset_checks_label_count_and_subsets() {
        let x = Array::zeros(IxDyn(&[3, 2]));
        assert!(Dataset::new(x.clone(), Some(vec![1, 2]))
            .unwrap_err()
            .to_string()
            .contains("2 labels for 3 samples"));
        let d = Dataset::new(x, Some(vec![1, 2, 3])).unwrap();
        let s = d.subset(1..10);
        assert_eq!((s.len(), s.labels.unwrap()), (2, vec![2, 3]));
        assert_eq!(d.batch(2..3).shape(), &[1, 2]);
    }
}
