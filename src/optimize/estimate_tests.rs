//! Tests of the estimator, its shipped data and its cross-validated accuracy.
//!
//! Regenerate the shipped data after changing the graph analysis or the model, in two steps
//! (the calibration reads the features compiled in, so rebuild in between):
//! `UPDATE_ESTIMATOR_DATA=1 cargo test estimator_data_model_features` then
//! `UPDATE_ESTIMATOR_DATA=1 cargo test estimator_data_calibration`.

use std::path::Path;

use super::*;
use crate::optimize::calibrate::{calibrate, Sigmas};
use crate::optimize::graph::summarize;
use crate::optimize::validation::{lomo_baseline, lomo_predictions, ErrorStats};

const DATA_DIR: &str = "src/optimize/estimator_data";

fn update() -> bool {
    std::env::var("UPDATE_ESTIMATOR_DATA").is_ok_and(|v| v == "1")
}

fn summary_of(mf: &str) -> GraphSummary {
    let features = parse_features(FEATURES_CSV).unwrap();
    let (macs, layers, params, peak) = features[mf];
    GraphSummary {
        inputs: vec![],
        outputs: vec![],
        params,
        bytes_per_dtype: Default::default(),
        weight_bytes: params * 4,
        macs,
        total_macs: macs.total(),
        layers,
        compute_nodes: 0,
        peak_activation_bytes: peak * 4,
        peak_activation_elements: peak,
        op_histogram: Default::default(),
        warnings: vec![],
    }
}

fn req(device: &str, runtime: Option<&str>, dtype: &str, threads: u32) -> EstimateRequest {
    EstimateRequest {
        device: device.into(),
        runtime: runtime.map(String::from),
        dtype: dtype.into(),
        threads,
        clock_mhz: None,
    }
}

#[test]
fn estimator_data_model_features_match_the_graphs() {
    let Some(dir) = crate::optimize::graph::tests::shared_data("devices/models") else {
        return;
    };
    let dir = Path::new(&dir);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    names.sort();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(vec![]);
    for n in &names {
        let s = summarize(&dir.join(n)).unwrap();
        assert!(s.warnings.is_empty(), "{n}: {:?}", s.warnings);
        w.serialize(FeatureRecord::new(n, &s)).unwrap();
    }
    let fresh = String::from_utf8(w.into_inner().unwrap()).unwrap();
    if update() {
        std::fs::write(format!("{DATA_DIR}/model_features.csv"), &fresh).unwrap();
    } else {
        assert_eq!(
            fresh, FEATURES_CSV,
            "model_features.csv is stale: regenerate it (see module doc)"
        );
    }
}

#[test]
fn estimator_data_calibration_is_reproduced_by_refitting() {
    let rows = calibration_rows().unwrap();
    let fresh = calibrate(rows, &Sigmas::default()).unwrap();
    if update() {
        let json = serde_json::to_string_pretty(&fresh).unwrap();
        std::fs::write(format!("{DATA_DIR}/calibration.json"), json + "\n").unwrap();
        return;
    }
    let shipped = shipped_calibration().unwrap();
    assert_eq!(shipped.rows, rows.len());
    assert_eq!(shipped.params.len(), fresh.params.len());
    for (k, v) in &fresh.params {
        let s = shipped.params[k];
        assert!(
            (s - v).abs() <= 1e-6 * v.abs().max(1.0),
            "{k}: shipped {s} vs refit {v}"
        );
    }
}

#[test]
fn every_measured_device_and_runtime_is_in_the_catalogue() {
    for r in calibration_rows().unwrap() {
        let b = boards::board(&r.device).unwrap();
        assert!(
            b.runtimes.contains(&r.runtime.as_str()),
            "{} lacks {}",
            b.id,
            r.runtime
        );
        assert!(
            boards::runtime(&r.runtime)
                .unwrap()
                .dtypes
                .contains(&r.dtype.as_str()),
            "{} {}",
            r.runtime,
            r.dtype
        );
    }
}

/// Leave-one-model-out cross-validation of the shipped model and of the README's baselines.
/// `cargo test --release lomo -- --nocapture` prints the figures for BENCHMARKS.md.
#[test]
fn lomo_error_meets_the_target_and_beats_the_baselines() {
    let rows = calibration_rows().unwrap();
    let measured: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
    let pairs = |pred: &[f64]| {
        pred.iter()
            .copied()
            .zip(measured.iter().copied())
            .collect::<Vec<_>>()
    };
    let ours = ErrorStats::from_pairs(&pairs(&lomo_predictions(rows, &Sigmas::default()).unwrap()));
    let base = ErrorStats::from_pairs(&pairs(&lomo_baseline(rows, false)));
    let base_rt = ErrorStats::from_pairs(&pairs(&lomo_baseline(rows, true)));
    let shipped = shipped_calibration().unwrap();
    let in_sample: Vec<f64> = rows
        .iter()
        .map(|r| {
            shipped
                .predict_ms(
                    &r.device,
                    &r.runtime,
                    &r.dtype,
                    &r.work,
                    r.clock_mhz,
                    r.threads,
                )
                .unwrap()
        })
        .collect();
    let fit = ErrorStats::from_pairs(&pairs(&in_sample));
    println!("LOMO over {} rows / 24 models:", rows.len());
    println!(
        "  estimator                     median APE {:5.1} %  within ±30 % {:5.1} %",
        ours.median_ape * 100.0,
        ours.within_30 * 100.0
    );
    println!(
        "  MACs/s per (device, dtype)    median APE {:5.1} %  within ±30 % {:5.1} %",
        base.median_ape * 100.0,
        base.within_30 * 100.0
    );
    println!(
        "  MACs/s per (device, runtime, dtype) median APE {:5.1} %  within ±30 % {:5.1} %",
        base_rt.median_ape * 100.0,
        base_rt.within_30 * 100.0
    );
    println!(
        "  estimator in-sample           median APE {:5.1} %  within ±30 % {:5.1} %",
        fit.median_ape * 100.0,
        fit.within_30 * 100.0
    );
    assert!(ours.median_ape <= 0.20, "{ours:?}");
    assert!(ours.within_30 >= 0.75, "{ours:?}");
    assert!(ours.median_ape < base.median_ape && ours.median_ape < base_rt.median_ape);
}

#[test]
fn memory_estimates_track_the_published_ram_and_flash() {
    let rows = calibration_rows().unwrap();
    let shipped = shipped_calibration().unwrap();
    // In-sample (overheads fitted on these rows) and leave-one-model-out (fitted on the others).
    for lomo in [false, true] {
        let mut ram = vec![];
        let mut flash = vec![];
        for r in rows
            .iter()
            .filter(|r| r.ram_kb.is_some() && r.flash_kb.is_some())
        {
            let cal = if lomo {
                let others: Vec<_> = rows
                    .iter()
                    .filter(|o| o.model_file != r.model_file)
                    .cloned()
                    .collect();
                Calibration {
                    memory: calibrate::fit_memory(&others),
                    ..shipped.clone()
                }
            } else {
                shipped.clone()
            };
            let rt = boards::runtime(&r.runtime).unwrap();
            let (pr, pf) = memory_kb(
                &summary_of(&r.model_file),
                rt,
                boards::dtype_bytes(&r.dtype).unwrap(),
                &cal,
            );
            ram.push((pr, r.ram_kb.unwrap()));
            flash.push((pf, r.flash_kb.unwrap()));
        }
        let (ram, flash) = (ErrorStats::from_pairs(&ram), ErrorStats::from_pairs(&flash));
        let how = if lomo {
            "leave-one-model-out"
        } else {
            "in-sample"
        };
        println!(
            "RAM   vs {} published rows ({how}): median APE {:5.1} %  within ±30 % {:5.1} %",
            ram.predictions,
            ram.median_ape * 100.0,
            ram.within_30 * 100.0
        );
        println!(
            "flash vs {} published rows ({how}): median APE {:5.1} %  within ±30 % {:5.1} %",
            flash.predictions,
            flash.median_ape * 100.0,
            flash.within_30 * 100.0
        );
        assert_eq!(ram.predictions, 16);
        assert!(flash.median_ape <= 0.10, "{flash:?}");
        assert!(ram.median_ape <= 0.20, "{ram:?}");
    }
}

#[test]
fn given_resnet8_when_estimated_on_an_stm32_then_latency_memory_and_energy_are_consistent() {
    let s = summary_of("mlperf_resnet8_ic.onnx");
    let e = estimate(&s, &req("stm32l4r5", Some("x-cube-ai"), "int8", 1)).unwrap();
    // Measured: 165 ms (MLPerf Tiny); the in-sample estimate must be close.
    assert!((e.latency_ms / 165.0 - 1.0).abs() < 0.3, "{e:?}");
    assert!((e.energy_uj - e.latency_ms * 42.0).abs() < 1e-6);
    assert!(e.fits && e.calibration_rows >= 4);
    assert!(e.flash_kb > 77_706.0 / 1024.0);
    // Faster clock, faster board.
    let mut fast = req("stm32l4r5", Some("x-cube-ai"), "int8", 1);
    fast.clock_mhz = Some(60.0);
    assert!((estimate(&s, &fast).unwrap().latency_ms / e.latency_ms - 2.0).abs() < 1e-9);
}

#[test]
fn given_more_threads_when_estimated_then_latency_drops_sub_linearly() {
    let s = summary_of("ncnn_resnet18.onnx");
    let one = estimate(&s, &req("rpi4", Some("ncnn"), "fp32", 1)).unwrap();
    let four = estimate(&s, &req("rpi4", Some("ncnn"), "fp32", 4)).unwrap();
    let speedup = one.latency_ms / four.latency_ms;
    assert!(speedup > 1.2 && speedup < 4.0, "{speedup}");
}

#[test]
fn given_a_big_model_when_estimated_on_a_small_mcu_then_it_does_not_fit() {
    let s = summary_of("ncnn_resnet18.onnx");
    let e = estimate(&s, &req("stm32g0b1", None, "int8", 1)).unwrap();
    assert!(!e.fits && !e.fits_with_external);
    assert_eq!(e.runtime, "x-cube-ai");
}

#[test]
fn given_an_unmeasured_combination_when_estimated_then_a_note_says_so() {
    let s = summary_of("ncnn_mobilenet.onnx");
    let e = estimate(&s, &req("rpi5", Some("onnxruntime"), "fp32", 4)).unwrap();
    assert_eq!(e.calibration_rows, 0);
    assert!(
        e.notes.iter().any(|n| n.contains("extrapolated")),
        "{:?}",
        e.notes
    );
    assert!(e.latency_ms.is_finite() && e.latency_ms > 0.0);
}

#[test]
fn given_bad_arguments_when_estimated_then_errors_name_the_valid_choices() {
    let s = summary_of("mlperf_dscnn_kws.onnx");
    let err = |r: EstimateRequest| estimate(&s, &r).unwrap_err().to_string();
    let e = err(req("jetson", None, "int8", 1));
    assert!(e.contains("device") && e.contains("stm32h743"), "{e}");
    let e = err(req("rpi4", Some("x-cube-ai"), "int8", 1));
    assert!(e.contains("runtime") && e.contains("ncnn, tflite"), "{e}");
    let e = err(req("rpi4", Some("ncnn"), "int4", 1));
    assert!(e.contains("dtype") && e.contains("int8"), "{e}");
    let e = err(req("stm32h743", Some("cmsis-nn"), "fp32", 1));
    assert!(
        e.contains("cmsis-nn does not run fp32") && e.contains("int8"),
        "{e}"
    );
    let e = err(req("rpi4", None, "fp32", 8));
    assert!(e.contains("threads") && e.contains("4 core"), "{e}");
}

/// Energy = estimated latency × the catalogue's typical power, against the MLPerf Tiny rows that
/// publish energy (in-sample latency; the power figures are datasheet-level, not fitted).
#[test]
fn energy_estimates_track_the_published_energy() {
    let shipped = shipped_calibration().unwrap();
    let pairs: Vec<(f64, f64)> = calibration_rows()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let e = r.energy_uj?;
            let ms = shipped
                .predict_ms(
                    &r.device,
                    &r.runtime,
                    &r.dtype,
                    &r.work,
                    r.clock_mhz,
                    r.threads,
                )
                .ok()?;
            Some((ms * boards::board(&r.device).ok()?.active_power_mw, e))
        })
        .collect();
    let st = ErrorStats::from_pairs(&pairs);
    println!(
        "energy vs {} published rows: median APE {:5.1} %  within ±30 % {:5.1} %",
        st.predictions,
        st.median_ape * 100.0,
        st.within_30 * 100.0
    );
    assert!(st.predictions >= 40 && st.median_ape <= 0.30, "{st:?}");
}
