"""Telemetry from a device's and an analyst's point of view: Arrow output read back by
pyarrow, and the live WebSocket stream read by aiohttp while a device posts."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import pyarrow as pa
import pyarrow.ipc

from conftest import auth_headers, authed

ARROW = "application/vnd.apache.arrow.stream"


def _register(server, name, version="7"):
    r = authed().post(
        f"{server.url}/api/v1/devices",
        json={"name": name, "model_name": "kws", "model_version": version},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return body["device"]["device_id"], body["api_key"]


def _events(n, kind="inference", start=None):
    start = start or int(time.time() * 1000) - 60_000
    return [
        {
            "event_id": str(uuid.uuid4()),
            "ts": start + i,
            "kind": kind,
            "latency_ms": float(10 + i % 5),
            "confidence": 0.5 + (i % 10) / 20,
        }
        for i in range(n)
    ]


def _post(server, key, events):
    r = authed().post(
        f"{server.url}/api/v1/telemetry/batch",
        json=events,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_arrow_output_reads_back_in_pyarrow(server):
    device, key = _register(server, "arrow-reader")
    events = _events(250)
    assert _post(server, key, events)["accepted"] == 250

    r = authed().get(
        f"{server.url}/api/v1/analytics/recent-events",
        params={"device": device, "limit": 1000},
        headers={"Accept": ARROW},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == ARROW
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.num_rows == 250
    assert {"event_id", "device_id", "ts_ms", "kind", "n_latency_ms"} <= set(table.column_names)
    assert set(table.column("event_id").to_pylist()) == {e["event_id"] for e in events}
    assert table.schema.field("n_latency_ms").type == pa.float64()
    assert sum(table.column("n_latency_ms").to_pylist()) == sum(e["latency_ms"] for e in events)

    # A named section of a multi-section query; the same numbers as the JSON form.
    stats = authed().get(
        f"{server.url}/api/v1/analytics/statistics",
        params={"device": device, "section": "fields"},
        headers={"Accept": ARROW},
        timeout=30,
    )
    fields = pa.ipc.open_stream(stats.content).read_all().to_pylist()
    as_json = authed().get(
        f"{server.url}/api/v1/analytics/statistics", params={"device": device}, timeout=30
    ).json()["fields"]
    by_name = {f["field"]: f for f in as_json}
    for row in fields:
        if row["count"]:
            assert abs(row["mean"] - by_name[row["field"]]["mean"]) < 1e-9


def test_live_stream_filters_by_device_and_kind(server):
    device, key = _register(server, "live-1")
    _, other_key = _register(server, "live-2")
    ws_url = server.url.replace("http://", "ws://") + f"/ws/telemetry?device={device}&kind=detection"

    async def watch():
        async with aiohttp.ClientSession(headers=auth_headers()) as session:
            async with session.ws_connect(ws_url) as ws:
                await asyncio.sleep(0.3)
                # Only the detections of `device` may arrive.
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, _post, server, other_key, _events(5, "detection"))
                await loop.run_in_executor(None, _post, server, key, _events(3, "inference"))
                wanted = _events(4, "detection")
                await loop.run_in_executor(None, _post, server, key, wanted)
                got = []
                while len(got) < 4:
                    msg = await asyncio.wait_for(ws.receive(), timeout=10)
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    got.append(json.loads(msg.data))
                return wanted, got

    wanted, got = asyncio.run(watch())
    assert [m["event"]["event_id"] for m in got] == [e["event_id"] for e in wanted]
    assert all(m["device_id"] == device and m["event"]["kind"] == "detection" for m in got)
    assert got[0]["event"]["fields"]["latency_ms"] == wanted[0]["latency_ms"]
