"""Optimization jobs through the real server: uploads, a job on mnist-8 with three techniques
and two boards watched over `/ws/jobs/{id}` by three clients (one from the start, one joining
late, one reconnecting with `?after=`), checked message by message; then the same job seen
through the official mlflow client as a parent run with one child run per technique."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import mlflow

from conftest import shared_data, auth_headers, authed

TECHNIQUES = ["int8-static", "fp16", "prune-unstructured"]
BOARDS = ["rpi4", "stm32h743"]
PROGRESS_KEYS = {"type", "job_id", "position", "current_technique", "overall_progress", "metrics"}


def _upload_file(api, name):
    r = authed().post(f"{api}/datasets/files", data=(shared_data() / "datasets" / name).read_bytes(), timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["sha256"]


def _dataset(api, images, labels):
    body = {
        "name": images,
        "inputs_sha256": _upload_file(api, images),
        "labels_sha256": _upload_file(api, labels),
        "preprocess": {"scale": 1 / 255},
    }
    r = authed().post(f"{api}/datasets", json=body, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()


def _start_job(server):
    api = server.url + "/api/v1"
    model = authed().post(
        f"{api}/models",
        params={"name": "mnist-8"},
        data=(shared_data() / "models" / "mnist-8.onnx").read_bytes(),
        timeout=60,
    )
    assert model.status_code == 201, model.text
    assert model.json()["summary"]["inputs"][0]["shape"] == [1, 1, 28, 28]
    calib = _dataset(api, "mnist_calib_images_u8.npy", "mnist_calib_labels_u8.npy")
    evaluation = _dataset(api, "mnist_eval_images_u8.npy", "mnist_eval_labels_u8.npy")
    assert evaluation["samples"] == 5000 and evaluation["sample_shape"] == [28, 28]
    job = authed().post(
        f"{api}/jobs",
        json={
            "name": "mnist-8 for the edge",
            "model_id": model.json()["model_id"],
            "calibration_dataset_id": calib["dataset_id"],
            "evaluation_dataset_id": evaluation["dataset_id"],
            "techniques": [{"name": t} for t in TECHNIQUES],
            "boards": [{"board": b} for b in BOARDS],
            "constraints": {"max_accuracy_drop": 1.0},
            "goal": "balanced",
        },
        timeout=60,
    )
    assert job.status_code == 201, job.text
    return job.json()


async def _read(ws, until, timeout=120):
    """Messages until one satisfies `until` (inclusive)."""
    out = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        m = json.loads(msg.data)
        out.append(m)
        if until(m):
            return out


def _finished(m):
    return m["type"] == "job_finished"


async def _watch(url):
    async with aiohttp.ClientSession(headers=auth_headers()) as s:
        first_done = asyncio.Event()

        async def early():
            async with s.ws_connect(url) as ws:
                msgs = await _read(ws, lambda m: m["type"] == "technique_completed")
                first_done.set()
                return msgs + await _read(ws, _finished)

        async def late():
            await first_done.wait()
            async with s.ws_connect(url) as ws:
                return await _read(ws, _finished)

        async def reconnecting():
            async with s.ws_connect(url) as ws:
                part1 = await _read(ws, lambda m: m["type"] == "progress_update")
                part1 += await _read(ws, lambda m: m["type"] == "progress_update")
            await asyncio.sleep(0.5)
            async with s.ws_connect(url + f"?after={part1[-1]['position']}") as ws:
                part2 = await _read(ws, _finished)
            return part1, part2

        return await asyncio.gather(early(), late(), reconnecting())


def _key(m):
    return (m["position"], m["type"])


def test_job_progress_stream_and_mlflow_run_tree(server):
    job = _start_job(server)
    job_id = job["job_id"]
    assert job["status"] in ("queued", "running")
    url = server.url.replace("http://", "ws://") + f"/ws/jobs/{job_id}"
    a, c, (b1, b2) = asyncio.run(_watch(url))

    # The first client: a snapshot, then every step in log order.
    assert a[0]["type"] == "snapshot" and a[0]["job"]["job_id"] == job_id
    body = a[1:]
    positions = [m["position"] for m in body]
    assert positions == sorted(positions)
    assert [m["technique"] for m in body if m["type"] == "technique_completed"] == TECHNIQUES
    assert [m["type"] for m in body[-2:]] == ["recommendation", "job_finished"]
    assert body[-1]["status"] == "completed"
    assert body[-1]["overall_progress"]["completed_techniques"] == 3
    updates = [m for m in body if m["type"] == "progress_update"]
    assert len(updates) >= 6
    for m in updates:
        assert set(m) == PROGRESS_KEYS
        assert set(m["overall_progress"]) == {"completed_techniques", "total_techniques", "progress_percent", "eta_seconds"}
        assert m["overall_progress"]["total_techniques"] == 3
        assert set(m["metrics"]) == {"original_accuracy", "current_accuracy", "original_size_mb", "current_size_mb"}
        cur = m["current_technique"]
        if cur is not None:
            assert set(cur) == {"name", "progress_percent", "eta_seconds", "stage"}
            assert 0 <= cur["progress_percent"] <= 100
    overall = [m["overall_progress"]["progress_percent"] for m in updates]
    assert overall == sorted(overall), overall
    # ETAs are measured: some progress report carries one, and none is negative.
    etas = [m["current_technique"]["eta_seconds"] for m in updates if m["current_technique"]]
    assert any(e is not None and e > 0 for e in etas)
    assert all(e is None or e >= 0 for e in etas)
    # The original's accuracy is known once measured: mnist-8 on these 5000 images.
    assert abs(updates[-1]["metrics"]["original_accuracy"] - 0.9834) < 1e-9

    # The late client: a snapshot with the first result in it, then exactly what the first saw.
    assert c[0]["type"] == "snapshot"
    assert any(t["status"] == "completed" for t in c[0]["job"]["techniques"])
    after_c = [_key(m) for m in body if m["position"] > c[0]["position"]]
    assert [_key(m) for m in c[1:]] == after_c

    # The reconnecting client missed nothing and got nothing twice.
    assert b1[0]["type"] == "snapshot"
    got = [_key(m) for m in b1[1:] + b2]
    assert got == [_key(m) for m in body if m["position"] > b1[0]["position"]]
    assert len(got) == len(set(got))

    # The job as the API reports it.
    final = authed().get(f"{server.url}/api/v1/jobs/{job_id}", timeout=30).json()
    assert final["status"] == "completed"
    for t in final["techniques"]:
        assert t["status"] == "completed"
        assert set(t["result"]["estimates"]) == set(BOARDS)
        assert t["result"]["accuracy"] > 0.97
    rec = authed().get(f"{server.url}/api/v1/jobs/{job_id}/recommendation", timeout=30).json()
    assert rec["winner"] in TECHNIQUES + ["original"]
    assert {r["name"] for r in rec["ranking"]} == set(TECHNIQUES) | {"original"}

    # The same job through the mlflow client: a parent run and one child run per technique.
    client = mlflow.MlflowClient()
    runs = client.search_runs(["0"], filter_string=f"tags.runledger.job_id = '{job_id}'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.run_id == final["parent_run_id"]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["runledger.recommended"] == rec["winner"]
    assert parent.data.params["techniques"] == ",".join(TECHNIQUES)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        technique = child.data.params["technique"]
        result = next(t for t in final["techniques"] if t["key"] == technique)["result"]
        assert child.data.metrics["accuracy"] == result["accuracy"]
        assert child.data.metrics["size_bytes"] == result["size_bytes"]
        for b in BOARDS:
            assert child.data.metrics[f"est_latency_ms.{b}"] == result["estimates"][b]["latency_ms"]
        files = [f.path for f in client.list_artifacts(child.info.run_id)]
        assert files == ["model.onnx"]
        local = client.download_artifacts(child.info.run_id, "model.onnx")
        assert Path(local).stat().st_size == result["size_bytes"]
