//! Graph analysis against the real models of the shared test data (skipped when absent).

use std::path::{Path, PathBuf};

use super::*;

/// `shared/data/<sub>`: `$RUNLEDGER_TEST_DATA`, beside the repository (`../shared/data`) or at
/// `/work/shared/data`. Missing test data fails the test: a skipped check proves nothing.
pub(crate) fn shared_data(sub: &str) -> Option<String> {
    let env = std::env::var("RUNLEDGER_TEST_DATA").map(|d| format!("{d}/{sub}"));
    let beside = format!("{}/../shared/data/{sub}", env!("CARGO_MANIFEST_DIR"));
    let found = env
        .into_iter()
        .chain([beside, format!("/work/shared/data/{sub}")])
        .find(|d| Path::new(d).exists());
    assert!(
        found.is_some(),
        "test data shared/data/{sub} not found: set RUNLEDGER_TEST_DATA"
    );
    found
}

/// Every device graph's MAC count and parameter count against `models.csv` (`macs_onnx`,
/// `params`): MACs must agree within 1 %, parameters within 0.1 %.
#[test]
fn macs_and_params_agree_with_models_csv() {
    let Some(devices) = shared_data("devices") else {
        return;
    };
    let mut rdr = csv::Reader::from_path(format!("{devices}/models.csv")).unwrap();
    let mut checked = 0;
    for rec in rdr.deserialize::<std::collections::HashMap<String, String>>() {
        let rec = rec.unwrap();
        let path = PathBuf::from(&devices).join("models").join(&rec["onnx"]);
        let s = summarize(&path).unwrap();
        let macs: f64 = rec["macs_onnx"].parse().unwrap();
        let params: f64 = rec["params"].parse().unwrap();
        let dm = (s.total_macs as f64 / macs - 1.0).abs();
        let dp = (s.params as f64 / params - 1.0).abs();
        println!(
            "{:36} MACs {:>13} vs {:>13} ({:+.4} %)  params {:>9} vs {:>9}",
            rec["onnx"],
            s.total_macs,
            macs,
            dm * 100.0,
            s.params,
            params
        );
        assert!(
            dm <= 0.01,
            "{}: MACs {} vs {macs}",
            rec["onnx"],
            s.total_macs
        );
        assert!(
            dp <= 0.001,
            "{}: params {} vs {params}",
            rec["onnx"],
            s.params
        );
        assert_eq!(
            s.macs.conv_other,
            s.macs.conv_pointwise
                + s.macs.conv_stem
                + (s.macs.conv_other - s.macs.conv_pointwise - s.macs.conv_stem)
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        checked += 1;
    }
    assert_eq!(checked, 24);
}

#[test]
fn mnist8_weight_through_reshape_counts_once_as_fully_connected() {
    let Some(models) = shared_data("models") else {
        return;
    };
    let s = summarize(Path::new(&format!("{models}/mnist-8.onnx"))).unwrap();
    // Conv 5x5 1->8 on 28x28 and 8->16 on 14x14; MatMul 256x10.
    assert_eq!(s.macs.conv_other, 28 * 28 * 8 * 25 + 14 * 14 * 16 * 8 * 25);
    assert_eq!(s.macs.fully_connected, 2560);
    assert_eq!(s.inputs.len(), 1);
    assert_eq!(s.inputs[0].shape, Some(vec![1, 1, 28, 28]));
    assert_eq!(s.outputs[0].shape, Some(vec![1, 10]));
    // 8·25+8 + 16·8·25+16 + 256·10 + 10 (the bias of shape [1, 10]).
    assert_eq!(s.params, 208 + 3216 + 2560 + 10);
    assert_eq!(s.op_histogram["Conv"], 2);
}

#[test]
fn squeezenet_initializers_listed_as_inputs_are_weights_not_inputs() {
    let Some(models) = shared_data("models") else {
        return;
    };
    let s = summarize(Path::new(&format!("{models}/squeezenet1.0-fp32.onnx"))).unwrap();
    assert_eq!(s.inputs.len(), 1, "{:?}", s.inputs);
    assert_eq!(s.params, 1_235_496);
    assert_eq!(s.op_histogram["Conv"], 26);
    assert_eq!(s.bytes_per_dtype["float32"], 1_235_496 * 4);
    let fp16 = summarize(Path::new(&format!("{models}/squeezenet1.0-fp16.onnx"))).unwrap();
    assert_eq!(fp16.total_macs, s.total_macs);
    assert_eq!(fp16.bytes_per_dtype["float16"], 1_235_496 * 2);
    assert_eq!(fp16.peak_activation_elements, s.peak_activation_elements);
    assert_eq!(fp16.peak_activation_bytes * 2, s.peak_activation_bytes);
}

#[test]
fn a_symbolic_batch_is_sized_as_one() {
    let Some(models) = shared_data("models") else {
        return;
    };
    let s = summarize(Path::new(&format!("{models}/mnist-mlp.onnx"))).unwrap();
    assert_eq!(s.inputs[0].shape, Some(vec![1, 1, 28, 28]));
    assert_eq!(s.macs.fully_connected, 784 * 256 + 256 * 128 + 128 * 10);
    assert_eq!(s.layers, 3);
}

#[test]
fn bytes_without_external_data_work_and_garbage_is_an_error() {
    let Some(models) = shared_data("models") else {
        return;
    };
    let bytes = std::fs::read(format!("{models}/mnist-8.onnx")).unwrap();
    assert_eq!(
        summarize_bytes(&bytes).unwrap().total_macs,
        summarize(Path::new(&format!("{models}/mnist-8.onnx")))
            .unwrap()
            .total_macs
    );
    let e = summarize_bytes(b"not a model").unwrap_err().to_string();
    assert!(e.starts_with("not a valid ONNX model"), "{e}");
    let e = summarize(Path::new("/nonexistent/m.onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/m.onnx:"), "{e}");
}
