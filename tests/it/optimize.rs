//! Model intake, data loading and evaluation on the real models and data sets of shared/data.

use std::path::{Path, PathBuf};

use crate::opt_common::data_dir;

use runledger::optimize::data::{load_dataset, Preprocess};
use runledger::optimize::evaluate::{evaluate, predictions, EvalOptions};
use runledger::optimize::model::OnnxModel;
use runledger::optimize::OptimizeError;

fn model(name: &str) -> OnnxModel {
    OnnxModel::load(&data_dir().join("models").join(name)).expect(name)
}

fn ds(name: &str) -> PathBuf {
    data_dir().join("datasets").join(name)
}

fn mnist_pre() -> Preprocess {
    Preprocess::from_json(r#"{"scale": 0.00392156862745098}"#).unwrap()
}

fn squeezenet_pre() -> Preprocess {
    Preprocess::from_json(
        r#"{"layout":"NHWC","channel_order":"BGR","scale":1.0,"mean":[104,117,123],"std":[1,1,1]}"#,
    )
    .unwrap()
}

/// A minimal version-1 `.npy` writer for f32 test files.
fn write_npy_f32(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("opt_core_{tag}_{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_four_models_load_with_their_real_inputs() {
    let m8 = model("mnist-8.onnx");
    assert_eq!(m8.input_shape().unwrap(), vec![1, 1, 28, 28]);
    assert_eq!(m8.fixed_batch().unwrap(), Some(1));
    assert!(matches!(
        m8.runner(4),
        Err(OptimizeError::InvalidArgument { .. })
    ));

    let mlp = model("mnist-mlp.onnx");
    assert_eq!(mlp.input_shape().unwrap(), vec![1, 1, 28, 28]);
    assert_eq!(mlp.fixed_batch().unwrap(), None);
    assert_eq!(mlp.runner(7).unwrap().output_shape(), Some(vec![7, 10]));

    // Old IR: every initializer is also a graph input; the real one is data_0.
    let sq32 = model("squeezenet1.0-fp32.onnx");
    assert!(sq32.real_inputs().len() == 1 && sq32.proto.graph.as_ref().unwrap().input.len() > 1);
    assert_eq!(sq32.input_info().unwrap().name, "data_0");
    assert_eq!(sq32.input_shape().unwrap(), vec![1, 3, 224, 224]);
    let sq16 = model("squeezenet1.0-fp16.onnx");
    assert_eq!(sq16.input_info().unwrap().elem_type, 10);
    // Float16 weights read back as f32, equal to the widened fp32 file's.
    let name = &sq16.proto.graph.as_ref().unwrap().initializer[0].name;
    let (w16, w32) = (
        sq16.initializer(name).unwrap(),
        sq32.initializer(name).unwrap(),
    );
    assert_eq!(w16.shape(), w32.shape());
    assert!(w16.iter().zip(w32.iter()).all(|(a, b)| a == b));
    assert_eq!(sq16.output_names(), vec!["softmaxout_1".to_string()]);
}

#[test]
fn mnist8_accuracy_on_5000_test_images() {
    let m = model("mnist-8.onnx");
    let data = load_dataset(
        &ds("mnist_eval_images_u8.npy"),
        Some(&ds("mnist_eval_labels_u8.npy")),
        &mnist_pre(),
        &m.input_shape().unwrap(),
    )
    .unwrap();
    assert_eq!(data.inputs.shape(), &[5000, 1, 28, 28]);
    let e = evaluate(
        &m,
        None,
        &data,
        EvalOptions {
            latency_runs: 50,
            warmup: 5,
        },
    )
    .unwrap();
    eprintln!("mnist-8: {}", serde_json::to_string(&e).unwrap());
    let acc = e.accuracy.unwrap();
    // README: 98.90 % on all 10,000 test images. On these first 5,000 ONNX Runtime 1.23 gets
    // exactly 98.34 % with the same pixel/255 input (checked with the venv); allow a flip or two.
    assert!((acc - 0.9834).abs() <= 0.0004, "accuracy {acc}");
    assert_eq!(e.samples, 5000);
    assert_eq!(e.outputs_per_sample, 10);
    assert!(e.gzip_size_bytes < e.file_size_bytes);
}

#[test]
fn mnist_mlp_accuracy_and_self_agreement() {
    let m = model("mnist-mlp.onnx");
    let data = load_dataset(
        &ds("mnist_eval_images_u8.npy"),
        Some(&ds("mnist_eval_labels_u8.npy")),
        &mnist_pre(),
        &m.input_shape().unwrap(),
    )
    .unwrap();
    let e = evaluate(
        &m,
        Some(&m),
        &data,
        EvalOptions {
            latency_runs: 50,
            warmup: 5,
        },
    )
    .unwrap();
    eprintln!("mnist-mlp: {}", serde_json::to_string(&e).unwrap());
    let acc = e.accuracy.unwrap();
    // README: 98.19 % on the full test set; ONNX Runtime gives 97.42 % on these first 5,000.
    assert!((acc - 0.9742).abs() <= 0.0004, "accuracy {acc}");
    assert_eq!(e.agreement, Some(1.0));
}

#[test]
fn squeezenet_fp16_agrees_with_fp32_on_photos() {
    let (m32, m16) = (
        model("squeezenet1.0-fp32.onnx"),
        model("squeezenet1.0-fp16.onnx"),
    );
    let data = load_dataset(
        &ds("photos224_calib_rgb_u8.npy"),
        None,
        &squeezenet_pre(),
        &m32.input_shape().unwrap(),
    )
    .unwrap();
    assert_eq!(data.inputs.shape(), &[100, 3, 224, 224]);
    // Photo 0, pixel (10, 20): channel 0 holds B - 104, channel 2 R - 123.
    let raw = runledger::optimize::data::read_npy_f32(&ds("photos224_calib_rgb_u8.npy")).unwrap();
    assert_eq!(data.inputs[[0, 0, 10, 20]], raw[[0, 10, 20, 2]] - 104.0);
    assert_eq!(data.inputs[[0, 2, 10, 20]], raw[[0, 10, 20, 0]] - 123.0);
    let reference = predictions(&m32, &data).unwrap();
    assert_eq!(reference.shape(), &[100, 1000]);
    // Softmax rows sum to 1: the outputs are real probabilities, not garbage.
    assert!(reference
        .rows()
        .into_iter()
        .all(|r| (r.sum() - 1.0).abs() < 1e-3));
    let e = runledger::optimize::evaluate::evaluate_against(
        &m16,
        Some(&reference),
        &data,
        EvalOptions {
            latency_runs: 10,
            warmup: 2,
        },
    )
    .unwrap();
    eprintln!(
        "squeezenet fp16 vs fp32: {}",
        serde_json::to_string(&e).unwrap()
    );
    assert!(e.agreement.unwrap() >= 0.97, "{e:?}");
    assert!(e.sqnr_db.unwrap() > 30.0, "{e:?}");
    assert!(e.file_size_bytes * 19 / 10 < m32.file_size());
    assert!(e.f16_computed_as_f32 && !m32.has_f16() && m16.has_f16());
}

#[test]
fn device_graphs_with_external_data_become_self_contained() {
    let dir = data_dir().join("devices/models");
    for (name, input, external) in [
        ("ncnn_squeezenet.onnx", vec![1, 3, 227, 227], true),
        ("tf_mobilenet_v1_100_224.onnx", vec![1, 224, 224, 3], true),
        ("mlperf_resnet8_ic.onnx", vec![1, 32, 32, 3], false),
    ] {
        let path = dir.join(name);
        let m = OnnxModel::load(&path).unwrap();
        assert_eq!(m.input_shape().unwrap(), input, "{name}");
        let on_disk = std::fs::metadata(&path).unwrap().len();
        let copy = OnnxModel::from_bytes(&m.to_bytes()).unwrap();
        // External weights now live inside the proto.
        assert_eq!(copy.file_size() > on_disk * 10, external, "{name}");
        let runner = copy.runner(1).unwrap();
        let out = runner
            .run(ndarray::ArrayD::zeros(input.clone()).view())
            .unwrap();
        assert!(out.iter().all(|v| v.is_finite()), "{name}");
        eprintln!(
            "{name}: {on_disk} bytes on disk, {} in memory, output {:?}",
            copy.file_size(),
            out.shape()
        );
    }
}

#[test]
fn bad_models_are_one_line_errors() {
    let bytes = std::fs::read(data_dir().join("models/mnist-8.onnx")).unwrap();
    let dir = temp_dir("bad_models");
    for cut in [10, 100, bytes.len() / 2, bytes.len() - 1] {
        let p = dir.join(format!("cut{cut}.onnx"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = OnnxModel::load(&p).and_then(|m| m.runner(1).map(|_| ()));
        let msg = e.expect_err("truncated model accepted").to_string();
        assert!(!msg.contains('\n'), "{msg}");
    }
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let msg = OnnxModel::from_bytes(&noise).unwrap_err().to_string();
    assert!(msg.starts_with("not a valid ONNX model"), "{msg}");
    let msg = OnnxModel::load(&data_dir().join("datasets/mnist_calib_labels_u8.npy"))
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("not a valid ONNX model"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_data_is_reported() {
    let m = model("mnist-8.onnx");
    let shape = m.input_shape().unwrap();
    // Labels of another set: count mismatch.
    let e = load_dataset(
        &ds("mnist_eval_images_u8.npy"),
        Some(&ds("mnist_calib_labels_u8.npy")),
        &mnist_pre(),
        &shape,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("500 labels for 5000 samples"), "{e}");
    // Photos for a 28x28 model: both shapes named.
    let e = load_dataset(
        &ds("photos224_calib_rgb_u8.npy"),
        None,
        &mnist_pre(),
        &shape,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("[100, 224, 224, 3]") && e.contains("[1, 1, 28, 28]"),
        "{e}"
    );
    // NaN in float data.
    let dir = temp_dir("bad_data");
    let mut v = vec![0.5f32; 3 * 28 * 28];
    v[28 * 28 + 5] = f32::NAN;
    write_npy_f32(&dir.join("nan.npy"), &[3, 28, 28], &v);
    let e = load_dataset(&dir.join("nan.npy"), None, &Preprocess::default(), &shape)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 NaN/Inf values, the first at index [1, 0, 5]"),
        "{e}"
    );
    // Float data that is fine loads, and runs.
    v[28 * 28 + 5] = 0.0;
    write_npy_f32(&dir.join("ok.npy"), &[3, 28, 28], &v);
    let d = load_dataset(&dir.join("ok.npy"), None, &Preprocess::default(), &shape).unwrap();
    assert_eq!(predictions(&m, &d).unwrap().shape(), &[3, 10]);
    // Not an npy at all.
    let e = load_dataset(
        &data_dir().join("models/mnist-8.onnx"),
        None,
        &Preprocess::default(),
        &shape,
    )
    .unwrap_err();
    assert!(matches!(e, OptimizeError::InvalidData(_)), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A folder of PNGs with a labels CSV loads exactly as the `.npy` holding the same pixels: MNIST
/// (grayscale into a one-channel input) and squeezenet's photos (RGB, the spec's BGR and mean).
#[test]
fn image_folder_with_labels_csv_matches_npy() {
    use crate::opt_common::{mnist, photos};
    let dir = temp_dir("images");
    let m8 = model("mnist-8.onnx");
    let want = mnist(
        "mnist_eval_images_u8.npy",
        "mnist_eval_labels_u8.npy",
        0..300,
    )
    .unwrap();
    let mut csv = String::from("filename,label\n");
    for (i, img) in want.inputs.outer_iter().enumerate() {
        let px: Vec<u8> = img.iter().map(|v| (v * 255.0).round() as u8).collect();
        let name = format!("digit{i:03}.png");
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(dir.join(&name))
            .unwrap();
        csv.push_str(&format!("{name},{}\n", want.labels.as_ref().unwrap()[i]));
    }
    std::fs::write(dir.join("labels.csv"), csv).unwrap();
    let got = load_dataset(
        &dir,
        Some(&dir.join("labels.csv")),
        &mnist_pre(),
        &m8.input_shape().unwrap(),
    )
    .unwrap();
    assert_eq!(got.labels, want.labels);
    let diff = (&got.inputs - &want.inputs)
        .mapv(f32::abs)
        .fold(0f32, |m, v| m.max(*v));
    assert!(diff < 1e-6, "pixels differ by {diff}");

    let sq = model("squeezenet1.0-fp32.onnx");
    let photo_dir = dir.join("photos");
    std::fs::create_dir_all(&photo_dir).unwrap();
    let (shape, px) = crate::opt_common::read_npy_u8(&ds("photos224_calib_rgb_u8.npy")).unwrap();
    let per = (shape[1] * shape[2] * shape[3]) as usize;
    for i in 50..55 {
        image::RgbImage::from_raw(224, 224, px[i * per..(i + 1) * per].to_vec())
            .unwrap()
            .save(photo_dir.join(format!("photo{i}.png")))
            .unwrap();
    }
    let got = load_dataset(
        &photo_dir,
        None,
        &squeezenet_pre(),
        &sq.input_shape().unwrap(),
    )
    .unwrap();
    assert_eq!(got.inputs, photos(50..55).unwrap().inputs);
    std::fs::remove_dir_all(&dir).ok();
}
