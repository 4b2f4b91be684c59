"""Job wall time per technique in the server against the engine's CLI doing the same work.

The server runs a job on mnist-8 (calibration 100 MNIST images, evaluation 5000) with each
technique; a technique's server time is TechniqueStarted -> TechniqueCompleted (apply,
evaluate, estimate, store the variant, log its MLflow run). The CLI time is
`runledger optimize` + `runledger evaluate --baseline` on the same files, as two processes.
Each is repeated; medians are reported.

    python benches/jobs.py --bin $CARGO_TARGET_DIR/release/runledger --data ../shared/data [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests

TECHNIQUES = ["int8-weight", "int8-static", "fp16", "int4-weight", "prune-unstructured", "prune-structured"]


def start(bin_, data, work):
    (work / "runledger.toml").write_text(f'[jobs]\ndatasets_dir = "{data / "datasets"}"\n')
    out = open(work / "stdout", "w")
    p = subprocess.Popen([bin_, "serve", "--data-dir", str(work / "d"), "--bind", "127.0.0.1:0", "--auth", "disabled"],
                         cwd=work, stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(600):
        m = re.search(r"listening on (http://\S+)", (work / "stdout").read_text())
        if m:
            return p, m.group(1) + "/api/v1"
        time.sleep(0.05)
    raise SystemExit("server did not start")


def server_times(api, data, repeat):
    model = requests.post(f"{api}/models", params={"name": "mnist-8"},
                          data=(data / "models/mnist-8.onnx").read_bytes()).json()["model_id"]
    calib = requests.post(f"{api}/datasets", json={"preset": "mnist-calibration"}).json()["dataset_id"]
    evaluation = requests.post(f"{api}/datasets", json={"preset": "mnist-evaluation"}).json()["dataset_id"]
    times = {t: [] for t in TECHNIQUES}
    for _ in range(repeat):
        job = requests.post(f"{api}/jobs", json={
            "model_id": model, "calibration_dataset_id": calib, "evaluation_dataset_id": evaluation,
            "techniques": [{"name": t} for t in TECHNIQUES], "boards": [{"board": "rpi4"}],
        }).json()["job_id"]
        while True:
            j = requests.get(f"{api}/jobs/{job}").json()
            if j["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.2)
        assert j["status"] == "completed", j
        for t in j["techniques"]:
            times[t["key"]].append((t["finished_ms"] - t["started_ms"]) / 1000)
    return times


def cli_times(bin_, data, repeat, work):
    pre = work / "pre.json"
    pre.write_text(json.dumps({"scale": 1 / 255}))
    ds, model = data / "datasets", data / "models/mnist-8.onnx"
    times = {t: [] for t in TECHNIQUES}
    for _ in range(repeat):
        for t in TECHNIQUES:
            out = work / f"{t}.onnx"
            start = time.perf_counter()
            subprocess.run([bin_, "optimize", str(model), "--technique", t, "--calibration",
                            str(ds / "mnist_calib_images_u8.npy"), "--preprocess", str(pre), "-o", str(out),
                            "--json"], check=True, capture_output=True)
            subprocess.run([bin_, "evaluate", str(out), "--baseline", str(model), "--data",
                            str(ds / "mnist_eval_images_u8.npy"), "--labels", str(ds / "mnist_eval_labels_u8.npy"),
                            "--preprocess", str(pre), "--json"], check=True, capture_output=True)
            times[t].append(time.perf_counter() - start)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as w:
        work = Path(w)
        proc, api = start(a.bin, a.data.resolve(), work)
        try:
            server = server_times(api, a.data, a.repeat)
        finally:
            proc.terminate()
            proc.wait()
        cli = cli_times(a.bin, a.data, a.repeat, work)
    print("| technique | server job (median s) | CLI optimize + evaluate (median s) | ratio |")
    print("|---|---:|---:|---:|")
    total_s = total_c = 0.0
    for t in TECHNIQUES:
        s, c = statistics.median(server[t]), statistics.median(cli[t])
        total_s += s
        total_c += c
        print(f"| {t} | {s:.3f} | {c:.3f} | {s / c:.2f} |")
    print(f"| all six | {total_s:.3f} | {total_c:.3f} | {total_s / total_c:.2f} |")


if __name__ == "__main__":
    main()
