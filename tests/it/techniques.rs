//! Each technique on the real models, checked against the quality targets.
//! Produced models are written to target/optimized/ for tests/ort_check.py.

use std::ops::ControlFlow;

use crate::opt_common::*;
use anyhow::Result;
use runledger::optimize::error::OptimizeError;
use runledger::optimize::model::OnnxModel;
use runledger::optimize::techniques::{apply, CalibMethod, Technique};

fn run(
    model: &OnnxModel,
    t: &Technique,
    calib: &runledger::optimize::data::Dataset,
    out: &str,
) -> Result<OnnxModel> {
    let m = apply(model, t, calib, &mut no_progress())?;
    m.save(&out_dir().join(out))?;
    Ok(m)
}

#[test]
fn mnist8_int8_static_keeps_accuracy() -> Result<()> {
    let model = OnnxModel::load(&model_path("mnist-8.onnx"))?;
    let calib = mnist(
        "mnist_calib_images_u8.npy",
        "mnist_calib_labels_u8.npy",
        0..500,
    )?;
    let eval = mnist(
        "mnist_eval_images_u8.npy",
        "mnist_eval_labels_u8.npy",
        0..5000,
    )?;
    let labels = eval.labels.clone().unwrap_or_default();
    let base = accuracy(&predict(&model, &eval)?, &labels);
    let q = run(
        &model,
        &Technique::Int8Static {
            calibration: CalibMethod::Mse,
        },
        &calib,
        "mnist-8.int8-static.onnx",
    )?;
    let acc = accuracy(&predict(&q, &eval)?, &labels);
    println!("mnist-8 fp32 {base:.2}% int8-static {acc:.2}%");
    assert!(
        base - acc <= 0.05 + 1e-9,
        "accuracy drop {:.2} pt",
        base - acc
    );
    Ok(())
}

#[test]
fn mnist8_every_technique_runs() -> Result<()> {
    let model = OnnxModel::load(&model_path("mnist-8.onnx"))?;
    let calib = mnist(
        "mnist_calib_images_u8.npy",
        "mnist_calib_labels_u8.npy",
        0..200,
    )?;
    let eval = mnist(
        "mnist_eval_images_u8.npy",
        "mnist_eval_labels_u8.npy",
        0..1000,
    )?;
    let base = predict(&model, &eval)?;
    for (t, name, min) in [
        (Technique::Int8Weight, "int8-weight", 99.0),
        (Technique::Fp16, "fp16", 99.5),
        (
            Technique::Int8Static {
                calibration: CalibMethod::MinMax,
            },
            "int8-static-minmax",
            98.0,
        ),
        (
            Technique::Int8Static {
                calibration: CalibMethod::Percentile(99.99),
            },
            "int8-static-p9999",
            98.0,
        ),
        (Technique::Int4Weight { block: 32 }, "int4-weight", 95.0),
        (
            Technique::PruneUnstructured { sparsity: 0.5 },
            "prune-unstructured",
            95.0,
        ),
        (
            Technique::PruneStructured { fraction: 0.3 },
            "prune-structured",
            90.0,
        ),
        (
            Technique::Hybrid {
                prune: Box::new(Technique::PruneUnstructured { sparsity: 0.5 }),
            },
            "hybrid",
            95.0,
        ),
    ] {
        let m = run(&model, &t, &calib, &format!("mnist-8.{name}.onnx"))?;
        let agree = agreement(&base, &predict(&m, &eval)?);
        println!("mnist-8 {name}: agreement {agree:.2}%");
        assert!(agree >= min, "{name}: agreement {agree:.2}% < {min}%");
    }
    Ok(())
}

#[test]
fn mnist_mlp_int4_agrees() -> Result<()> {
    let model = OnnxModel::load(&model_path("mnist-mlp.onnx"))?;
    let calib = mnist(
        "mnist_calib_images_u8.npy",
        "mnist_calib_labels_u8.npy",
        0..500,
    )?;
    let eval = mnist(
        "mnist_eval_images_u8.npy",
        "mnist_eval_labels_u8.npy",
        0..5000,
    )?;
    let base = predict(&model, &eval)?;
    let q = run(
        &model,
        &Technique::Int4Weight { block: 32 },
        &calib,
        "mnist-mlp.int4-weight.onnx",
    )?;
    let agree = agreement(&base, &predict(&q, &eval)?);
    println!("mnist-mlp int4 agreement {agree:.2}%");
    assert!(agree >= 99.6, "agreement {agree:.2}%");
    assert!(
        q.to_bytes().len() * 4 < model.to_bytes().len(),
        "file did not shrink"
    );
    Ok(())
}

fn squeezenet_case(t: Technique, out: &str, min_agree: f64) -> Result<(f64, OnnxModel, OnnxModel)> {
    let model = OnnxModel::load(&model_path("squeezenet1.0-fp32.onnx"))?;
    let calib = photos(0..50)?;
    let eval = photos(50..100)?;
    let base = predict(&model, &eval)?;
    let m = run(&model, &t, &calib, out)?;
    let agree = agreement(&base, &predict(&m, &eval)?);
    println!("squeezenet {out}: agreement {agree:.2}%");
    assert!(
        agree >= min_agree,
        "{out}: agreement {agree:.2}% < {min_agree}%"
    );
    Ok((agree, model, m))
}

/// Agreement in tract; the same file in ONNX Runtime is checked by the Python suite. Host
/// latency is not a test's business: `benches/techniques.py` reports it, but the graph must
/// keep the form tract runs fast: every QLinearConv has a scalar weight zero point, so tract
/// wires no zero-point corrections after it (a per-channel one, even of zeros, costs a
/// multiply and a subtraction over every conv output: 105 ms against 89 ms here).
#[test]
fn squeezenet_int8_static() -> Result<()> {
    let (_, _, q) = squeezenet_case(
        Technique::Int8Static {
            calibration: CalibMethod::Mse,
        },
        "squeezenet.int8-static.onnx",
        98.0,
    )?;
    let graph = q.proto.graph.as_ref().expect("a graph");
    let convs: Vec<_> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "QLinearConv")
        .collect();
    assert_eq!(convs.len(), 26, "every conv of squeezenet is a QLinearConv");
    for n in convs {
        let zp = graph
            .initializer
            .iter()
            .find(|t| t.name == n.input[5])
            .expect("the weight zero point is an initializer");
        assert!(
            zp.dims.is_empty(),
            "{}: weight zero point has shape {:?}",
            n.name,
            zp.dims
        );
    }
    Ok(())
}

#[test]
fn squeezenet_int4_weight() -> Result<()> {
    let (_, base, q) = squeezenet_case(
        Technique::Int4Weight { block: 32 },
        "squeezenet.int4-weight.onnx",
        90.0,
    )?;
    assert!(
        q.to_bytes().len() * 4 < base.to_bytes().len() * 3 / 2,
        "file did not shrink enough"
    );
    Ok(())
}

#[test]
fn squeezenet_prune_unstructured_50() -> Result<()> {
    squeezenet_case(
        Technique::PruneUnstructured { sparsity: 0.5 },
        "squeezenet.prune-unstructured.onnx",
        80.0,
    )?;
    Ok(())
}

/// 30 % of the channels go; the work really shrinks. (The wall-clock speed-up is a benchmark
/// figure, `benches/techniques.py`: a timed assertion here failed whenever the machine was busy.)
#[test]
fn squeezenet_prune_structured_30() -> Result<()> {
    let (_, base, p) = squeezenet_case(
        Technique::PruneStructured { fraction: 0.3 },
        "squeezenet.prune-structured.onnx",
        70.0,
    )?;
    let macs = |m: &OnnxModel| -> Result<u64> {
        Ok(runledger::optimize::graph::summarize_proto(&m.proto, None)?.total_macs)
    };
    let (mb, mp) = (macs(&base)?, macs(&p)?);
    println!(
        "squeezenet prune-structured: MACs cut {:.2}x",
        mb as f64 / mp as f64
    );
    assert!(
        mb as f64 / mp as f64 >= 1.3,
        "structured pruning only cut MACs {:.2}x",
        mb as f64 / mp as f64
    );
    Ok(())
}

#[test]
fn squeezenet_cheap_techniques_run() -> Result<()> {
    squeezenet_case(Technique::Int8Weight, "squeezenet.int8-weight.onnx", 96.0)?;
    squeezenet_case(Technique::Fp16, "squeezenet.fp16.onnx", 98.0)?;
    Ok(())
}

#[test]
fn cancel_stops_promptly() -> Result<()> {
    let model = OnnxModel::load(&model_path("mnist-8.onnx"))?;
    let calib = mnist(
        "mnist_calib_images_u8.npy",
        "mnist_calib_labels_u8.npy",
        0..20,
    )?;
    let mut calls = 0;
    let r = apply(
        &model,
        &Technique::Int4Weight { block: 32 },
        &calib,
        &mut |_| {
            calls += 1;
            if calls > 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    assert!(matches!(r, Err(OptimizeError::Cancelled)));
    assert_eq!(calls, 4);
    Ok(())
}

/// Regression floor for the hybrid on top of structured pruning (int8-static alone has its
/// target test above).
#[test]
fn squeezenet_hybrid_regression_floor() -> Result<()> {
    squeezenet_case(
        Technique::Hybrid {
            prune: Box::new(Technique::PruneStructured { fraction: 0.3 }),
        },
        "squeezenet.hybrid.onnx",
        60.0,
    )?;
    Ok(())
}

/// Progress starts at 0, ends at 1 and never goes back, also across the phases of int8-static
/// (calibration, then the graph) and of the hybrids (pruning, then int8-static).
#[test]
fn progress_only_moves_forward() -> Result<()> {
    let model = OnnxModel::load(&model_path("mnist-8.onnx"))?;
    let calib = mnist(
        "mnist_calib_images_u8.npy",
        "mnist_calib_labels_u8.npy",
        0..50,
    )?;
    for t in [
        "int8-weight",
        "int8-static",
        "fp16",
        "int4-weight",
        "prune-unstructured",
        "prune-structured",
        "hybrid",
    ] {
        let mut seen: Vec<(String, f32)> = Vec::new();
        apply(&model, &t.parse()?, &calib, &mut |p| {
            seen.push((p.stage, p.fraction));
            ControlFlow::Continue(())
        })?;
        let fractions: Vec<f32> = seen.iter().map(|(_, f)| *f).collect();
        assert_eq!(fractions.first(), Some(&0.0), "{t}: {seen:?}");
        assert_eq!(fractions.last(), Some(&1.0), "{t}: {seen:?}");
        assert!(
            fractions.windows(2).all(|w| w[0] <= w[1]),
            "{t} went back: {seen:?}"
        );
    }
    Ok(())
}

/// Degenerate calibration data (all-black images) must still give a valid int8-static model:
/// GPTQ meets all-zero layer inputs, and the activation ranges collapse.
#[test]
fn int8_static_survives_blank_calibration_images() -> Result<()> {
    let model = OnnxModel::load(&model_path("mnist-8.onnx"))?;
    let mut calib = mnist(
        "mnist_calib_images_u8.npy",
        "mnist_calib_labels_u8.npy",
        0..20,
    )?;
    calib.inputs.fill(0.0);
    let q = run(
        &model,
        &"int8-static".parse()?,
        &calib,
        "mnist-8.int8-static-blank.onnx",
    )?;
    let eval = mnist(
        "mnist_eval_images_u8.npy",
        "mnist_eval_labels_u8.npy",
        0..20,
    )?;
    assert_eq!(predict(&q, &eval)?.len(), 20);
    Ok(())
}

/// The vendored tract-linalg (vendor/README.md) must keep its AVX kernels free of legacy-SSE
/// moves: one in the int8 kernel's inner loop made every quantized model ~7x slower here.
#[test]
fn vendored_tract_kernels_have_no_legacy_sse_moves() -> Result<()> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/tract-linalg/x86_64/fma");
    let mut legacy = Vec::new();
    let mut kernels = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "j2") {
            kernels += 1;
            for (i, line) in std::fs::read_to_string(&path)?.lines().enumerate() {
                let op = line.split_whitespace().next().unwrap_or("");
                if matches!(
                    op,
                    "movq" | "movd" | "movaps" | "movups" | "movdqa" | "movdqu"
                ) {
                    legacy.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        kernels > 10,
        "expected the AVX kernel templates in {}",
        dir.display()
    );
    assert!(
        legacy.is_empty(),
        "legacy-SSE moves in AVX kernels:\n{}",
        legacy.join("\n")
    );
    Ok(())
}
