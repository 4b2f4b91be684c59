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
