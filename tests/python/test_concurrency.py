"""Concurrent requests (raw REST via aiohttp): nothing lost, uniqueness still enforced."""

import asyncio
import json

import aiohttp
import mlflow

from conftest import uniq, auth_headers

JSON = {"Content-Type": "application/json"}


def _run(coro):
    return asyncio.run(coro)


def _session():
    # 8 requests in flight at a time (MLflow's own SQLAlchemy pool gives up beyond ~15).
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8), headers=auth_headers())


def test_concurrent_metric_logging_loses_nothing(client, run_id, server):
    url = f"{server.url}/api/2.0/mlflow/runs/log-metric"
    n = 64

    async def main():
        async with _session() as session:
            async def one(i):
                body = {"run_id": run_id, "key": "c", "value": float(i), "timestamp": 1000 + i,
                        "step": i}
                async with session.post(url, data=json.dumps(body), headers=JSON) as resp:
                    return resp.status
            return await asyncio.gather(*(one(i) for i in range(n)))

    assert _run(main()) == [200] * n
    hist = client.get_metric_history(run_id, "c")
    assert sorted(m.step for m in hist) == list(range(n))
    assert client.get_run(run_id).data.metrics["c"] == float(n - 1)


def test_concurrent_batches_to_many_runs(client, experiment_id, server):
    run_ids = [client.create_run(experiment_id).info.run_id for _ in range(8)]
    url = f"{server.url}/api/2.0/mlflow/runs/log-batch"

    async def main():
        async with _session() as session:
            async def one(rid, chunk):
                body = {"run_id": rid, "metrics": [
                    {"key": "b", "value": float(s), "timestamp": s, "step": s}
                    for s in range(chunk * 100, chunk * 100 + 100)]}
                async with session.post(url, data=json.dumps(body), headers=JSON) as resp:
                    return resp.status, await resp.text()
            return await asyncio.gather(*(one(r, c) for r in run_ids for c in range(4)))

    results = _run(main())
    assert [r for r in results if r[0] != 200] == []
    for rid in run_ids:
        assert len(client.get_metric_history(rid, "b")) == 400
        assert client.get_run(rid).data.metrics["b"] == 399.0


def test_concurrent_distinct_searches_all_answer(client, experiment_id, server):
    """Many different searches at once (none served from the page cache) each get the full,
    right answer: they queue for DuckDB rather than fail for its memory limit."""
    runs = {}
    for i in range(120):
        rid = client.create_run(experiment_id).info.run_id
        client.log_batch(rid, metrics=[mlflow.entities.Metric(f"m{k}", float(i + k), 0, 0)
                                       for k in range(5)],
                         params=[mlflow.entities.Param(f"p{k}", str(i * k)) for k in range(5)],
                         tags=[mlflow.entities.RunTag("t", f"tag-{i}")])
        runs[rid] = i
    url = f"{server.url}/api/2.0/mlflow/runs/search"
    n = 48

    async def main():
        async with _session() as session:
            async def one(j):
                body = {"experiment_ids": [experiment_id], "filter": f"metrics.m0 >= {j}",
                        "order_by": ["metrics.m1 DESC"], "max_results": 1000}
                async with session.post(url, data=json.dumps(body), headers=JSON) as resp:
                    return resp.status, await resp.json()
            return await asyncio.gather(*(one(j) for j in range(n)))

    for j, (status, body) in enumerate(_run(main())):
        assert status == 200, body
        got = [(r["info"]["run_id"], len(r["data"]["params"]), len(r["data"]["metrics"]))
               for r in body["runs"]]
        expected = sorted((rid for rid, i in runs.items() if i >= j), key=lambda r: -runs[r])
        assert got == [(rid, 5, 5) for rid in expected]


def test_concurrent_create_experiment_same_name(client, server):
    name = uniq("race")
    url = f"{server.url}/api/2.0/mlflow/experiments/create"

    async def main():
        async with _session() as session:
            async def one():
                async with session.post(url, data=json.dumps({"name": name}),
                                        headers=JSON) as resp:
                    return resp.status, await resp.json(content_type=None)
            return await asyncio.gather(*(one() for _ in range(10)))

    results = _run(main())
    ok = [body for status, body in results if status == 200]
    failed = [(status, body) for status, body in results if status != 200]
    assert len(ok) == 1, results
    assert all(s == 400 and b["error_code"] == "RESOURCE_ALREADY_EXISTS" for s, b in failed), failed
    assert client.get_experiment_by_name(name).experiment_id == ok[0]["experiment_id"]
