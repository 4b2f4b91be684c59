"""Every technique's output is a model ONNX Runtime runs too: `runledger optimize` writes
each variant of mnist-8, ONNX Runtime (graph optimizations off, so it computes what the file
says) runs it on held-out images, and its top-1 answers must agree with its own fp32 answers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import shared_data

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("RUNLEDGER_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "runledger"
)


def _top1(model: Path, images: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.array([int(np.argmax(sess.run(None, {name: x[None]})[0])) for x in images])


@pytest.mark.parametrize(
    "technique",
    ["int8-weight", "int8-static", "fp16", "int4-weight", "prune-unstructured", "prune-structured"],
)
def test_variant_runs_in_onnx_runtime(technique, tmp_path):
    data = shared_data()
    spec = tmp_path / "pre.json"
    spec.write_text(json.dumps({"scale": 1 / 255}))
    out = tmp_path / f"{technique}.onnx"
    r = subprocess.run(
        [BIN, "optimize", str(data / "models" / "mnist-8.onnx"), "--technique", technique,
         "--calibration", str(data / "datasets" / "mnist_calib_images_u8.npy"),
         "--preprocess", str(spec), "-o", str(out), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output_bytes"] == out.stat().st_size

    images = np.load(data / "datasets" / "mnist_eval_images_u8.npy")[:500].astype(np.float32) / 255
    images = images[:, None, :, :]
    reference = _top1(data / "models" / "mnist-8.onnx", images)
    agreement = float(np.mean(_top1(out, images) == reference))
    assert agreement >= 0.99, f"{technique}: {agreement:.4f} agreement in ONNX Runtime"


def test_squeezenet_int8_static_agrees_in_onnx_runtime(tmp_path):
    """Full int8 squeezenet in ONNX Runtime. On x86 CPUs without VNNI, ONNX Runtime's
    uint8 x int8 kernels saturate in int16 unless weights keep to 7 bits; with 8-bit weights
    this file agreed 74 % with fp32 here, so this checks the weights stay in range."""
    data = shared_data()
    photos = np.load(data / "datasets" / "photos224_calib_rgb_u8.npy")
    np.save(tmp_path / "calib.npy", photos[:50])
    spec = tmp_path / "pre.json"
    spec.write_text(json.dumps({"layout": "NHWC", "channel_order": "BGR", "scale": 1.0,
                                "mean": [104, 117, 123], "std": [1, 1, 1]}))
    base = data / "models" / "squeezenet1.0-fp32.onnx"
    out = tmp_path / "int8-static.onnx"
    r = subprocess.run(
        [BIN, "optimize", str(base), "--technique", "int8-static",
         "--calibration", str(tmp_path / "calib.npy"), "--preprocess", str(spec),
         "-o", str(out), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    # The model's own preprocessing: BGR, mean subtracted, NCHW; held-out photos 50-99.
    x = photos[50:].astype(np.float32)[..., ::-1] - np.array([104, 117, 123], np.float32)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    agreement = float(np.mean(_top1(out, x) == _top1(base, x)))
    assert agreement >= 0.98, f"{agreement:.2f} agreement in ONNX Runtime"
