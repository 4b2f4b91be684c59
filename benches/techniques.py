"""squeezenet through every technique: agreement with fp32 in tract and in ONNX Runtime,
sizes, and the tract speed-up over fp32 (alternating runs, medians).

Calibration: photos 0-49 of the shared photo set; evaluation: photos 50-99 (held out).
Each variant is written by `runledger optimize`, scored by `runledger evaluate --baseline`
(tract, one thread), and run again by ONNX Runtime with graph optimizations off.

    python benches/techniques.py --bin $CARGO_TARGET_DIR/release/runledger --data ../shared/data [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

TECHNIQUES = [
    ("int8-weight", []),
    ("int8-static", []),
    ("fp16", []),
    ("int4-weight", ["--block", "32"]),
    ("prune-unstructured", ["--sparsity", "0.5"]),
    ("prune-structured", ["--fraction", "0.3"]),
    ("hybrid", ["--fraction", "0.3"]),
]
SPEC = {"layout": "NHWC", "channel_order": "BGR", "scale": 1.0, "mean": [104, 117, 123], "std": [1, 1, 1]}


def evaluate(bin_, model, work, baseline=None):
    cmd = [bin_, "evaluate", str(model), "--data", str(work / "eval.npy"),
           "--preprocess", str(work / "spec.json"), "--json"]
    if baseline:
        cmd += ["--baseline", str(baseline)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def ort_outputs(model, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0].reshape(1, -1) for i in range(len(x))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--repeat", type=int, default=5, help="alternating latency runs per variant")
    a = ap.parse_args()
    base = a.data / "models/squeezenet1.0-fp32.onnx"
    photos = np.load(a.data / "datasets/photos224_calib_rgb_u8.npy")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        np.save(work / "calib.npy", photos[:50])
        np.save(work / "eval.npy", photos[50:])
        (work / "spec.json").write_text(json.dumps(SPEC))
        # The model's own preprocessing, for ONNX Runtime: BGR, mean subtracted, NCHW.
        x = photos[50:].astype(np.float32)[..., ::-1] - np.array([104, 117, 123], np.float32)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        ref = ort_outputs(base, x)
        rows = []
        for name, extra in TECHNIQUES:
            out = work / f"{name}.onnx"
            subprocess.run([a.bin, "optimize", str(base), "--technique", name, *extra,
                            "--calibration", str(work / "calib.npy"),
                            "--preprocess", str(work / "spec.json"), "-o", str(out)],
                           check=True, capture_output=True)
            ev = evaluate(a.bin, out, work, baseline=base)
            got = ort_outputs(out, x)
            ort_agree = float((got.argmax(1) == ref.argmax(1)).mean())
            # Alternate fp32 and variant so both see the same machine load.
            fp32_ms, var_ms = [], []
            for _ in range(a.repeat):
                fp32_ms.append(evaluate(a.bin, base, work)["latency"]["median_ms"])
                var_ms.append(evaluate(a.bin, out, work)["latency"]["median_ms"])
            rows.append({
                "technique": " ".join([name, *extra]),
                "tract_agreement": ev["agreement"],
                "ort_agreement": ort_agree,
                "sqnr_db": ev["sqnr_db"],
                "size": ev["file_size_bytes"],
                "gzip": ev["gzip_size_bytes"],
                "fp32_ms": statistics.median(fp32_ms),
                "ms": statistics.median(var_ms),
                "speedup": statistics.median(f / v for f, v in zip(fp32_ms, var_ms)),
            })
            print(json.dumps(rows[-1]), flush=True)
    print("\n| technique | agreement (tract) | agreement (ORT) | SQNR dB | size KB | gzip KB "
          "| tract ms (fp32 ms) | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['technique']} | {r['tract_agreement'] * 100:.0f} % | {r['ort_agreement'] * 100:.0f} % "
              f"| {r['sqnr_db']:.1f} | {r['size'] / 1024:.0f} | {r['gzip'] / 1024:.0f} "
              f"| {r['ms']:.1f} ({r['fp32_ms']:.1f}) | {r['speedup']:.2f}x |")


if __name__ == "__main__":
    main()
