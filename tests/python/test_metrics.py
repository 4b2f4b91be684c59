"""Metrics: log_metric(s), history (order, pagination), latest-value semantics, NaN/±Infinity."""

import math

import mlflow
from mlflow.entities import Metric

from conftest import assert_api_error, expect_mlflow_error, now_ms

BIG = 1e308  # ±Infinity may come back as ±inf or clamped to ±1.7976931348623157e308


def _hist(client, run_id, key):
    return [(m.timestamp, m.step, m.value) for m in client.get_metric_history(run_id, key)]


def test_log_metric_and_history(client, run_id):
    client.log_metric(run_id, "loss", 0.5, timestamp=1000, step=0)
    client.log_metric(run_id, "loss", 0.25, timestamp=2000, step=1)
    client.log_metric(run_id, "loss", 0.125, timestamp=3000, step=2)
    hist = client.get_metric_history(run_id, "loss")
    assert [(m.key, m.value, m.timestamp, m.step) for m in hist] == [
        ("loss", 0.5, 1000, 0),
        ("loss", 0.25, 2000, 1),
        ("loss", 0.125, 3000, 2),
    ]
    assert client.get_run(run_id).data.metrics == {"loss": 0.125}


def test_history_order_is_timestamp_step_value(client, run_id):
    for ts, step, value in [(300, 0, 1.0), (100, 2, 5.0), (100, 1, 9.0), (100, 1, 3.0)]:
        client.log_metric(run_id, "m", value, timestamp=ts, step=step)
    assert _hist(client, run_id, "m") == [
        (100, 1, 3.0),
        (100, 1, 9.0),
        (100, 2, 5.0),
        (300, 0, 1.0),
    ]


def test_metric_defaults(client, run_id):
    before = now_ms()
    client.log_metric(run_id, "d", 3)
    after = now_ms()
    (m,) = client.get_metric_history(run_id, "d")
    assert m.step == 0
    assert m.value == 3.0 and isinstance(m.value, float)
    assert before - 5000 <= m.timestamp <= after + 5000


def test_latest_metric_max_step_wins(client, run_id):
    client.log_metric(run_id, "m", 1.0, timestamp=100, step=5)
    client.log_metric(run_id, "m", 2.0, timestamp=999, step=3)  # newer, but lower step
    assert client.get_run(run_id).data.metrics["m"] == 1.0


def test_latest_metric_then_max_timestamp(client, run_id):
    client.log_metric(run_id, "m", 7.0, timestamp=200, step=1)
    client.log_metric(run_id, "m", 1.0, timestamp=100, step=1)
    assert client.get_run(run_id).data.metrics["m"] == 7.0
    client.log_metric(run_id, "m", 0.5, timestamp=300, step=1)
    assert client.get_run(run_id).data.metrics["m"] == 0.5


def test_latest_metric_then_max_value(client, run_id):
    client.log_metric(run_id, "m", 4.0, timestamp=100, step=1)
    client.log_metric(run_id, "m", 9.0, timestamp=100, step=1)
    client.log_metric(run_id, "m", 2.0, timestamp=100, step=1)
    assert client.get_run(run_id).data.metrics["m"] == 9.0


def test_latest_metric_used_by_search(client, experiment_id):
    r = client.create_run(experiment_id).info.run_id
    client.log_metric(r, "m", 100.0, timestamp=5, step=10)
    client.log_metric(r, "m", 1.0, timestamp=9, step=2)
    assert [x.info.run_id for x in client.search_runs([experiment_id], "metrics.m = 100")] == [r]
    assert client.search_runs([experiment_id], "metrics.m = 1") == []
    found = client.search_runs([experiment_id])
    assert found[0].data.metrics == {"m": 100.0}


def test_latest_metric_out_of_order_batch(client, run_id):
    metrics = [
        Metric("a", 3.0, 10, 2),
        Metric("a", 1.0, 50, 1),
        Metric("a", 5.0, 10, 2),
        Metric("b", -1.0, 1, 0),
    ]
    client.log_batch(run_id, metrics=metrics)
    assert client.get_run(run_id).data.metrics == {"a": 5.0, "b": -1.0}
    assert len(client.get_metric_history(run_id, "a")) == 3


def test_fluent_log_metrics(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("acc", 0.9, step=1)
        mlflow.log_metrics({"acc": 0.95, "f1": 0.5}, step=2)
        mlflow.log_metric("ts", 1.0, timestamp=12345)
    got = client.get_run(run.info.run_id).data.metrics
    assert got == {"acc": 0.95, "f1": 0.5, "ts": 1.0}
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "acc")] == [
        (1, 0.9),
        (2, 0.95),
    ]
    assert client.get_metric_history(run.info.run_id, "ts")[0].timestamp == 12345


def test_metric_key_characters(client, run_id):
    key = "train/loss.v-1 x:y_z"
    client.log_metric(run_id, key, 1.0)
    assert client.get_run(run_id).data.metrics == {key: 1.0}
    assert len(client.get_metric_history(run_id, key)) == 1


def test_large_step_and_timestamp(client, run_id):
    client.log_metric(run_id, "s", 1.0, timestamp=2**42, step=2**40)
    (m,) = client.get_metric_history(run_id, "s")
    assert (m.timestamp, m.step) == (2**42, 2**40)


def test_metric_value_precision(client, run_id):
    values = [0.1, 1 / 3, 1e-300, -2.5e300, 123456789.123456789, 0.0, -0.0]
    for i, v in enumerate(values):
        client.log_metric(run_id, "p", v, timestamp=1000 + i, step=i)
    assert [m.value for m in client.get_metric_history(run_id, "p")] == values


def test_nan_and_infinity(client, run_id):
    client.log_metric(run_id, "nan", float("nan"), timestamp=10, step=0)
    client.log_metric(run_id, "pinf", float("inf"), timestamp=10, step=0)
    client.log_metric(run_id, "ninf", float("-inf"), timestamp=10, step=0)
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pinf"] >= BIG
    assert metrics["ninf"] <= -BIG
    (h,) = client.get_metric_history(run_id, "nan")
    assert math.isnan(h.value)
    (h,) = client.get_metric_history(run_id, "pinf")
    assert h.value >= BIG
    (h,) = client.get_metric_history(run_id, "ninf")
    assert h.value <= -BIG


def test_nan_infinity_raw_json_strings(api, client, run_id):
    for key, value in [("n", "NaN"), ("pi", "Infinity"), ("ni", "-Infinity")]:
        resp = api.post(
            "runs/log-metric",
            {"run_id": run_id, "key": key, "value": value, "timestamp": 5, "step": 0},
        )
        assert resp.status_code == 200, resp.text
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["n"])
    assert metrics["pi"] >= BIG
    assert metrics["ni"] <= -BIG
    body = api.get("runs/get", params={"run_id": run_id}).json()
    by_key = {m["key"]: m["value"] for m in body["run"]["data"]["metrics"]}
    assert by_key["n"] == "NaN"


def test_nan_latest_value_and_history_mixed(client, run_id):
    client.log_metric(run_id, "m", 1.0, timestamp=1, step=0)
    client.log_metric(run_id, "m", float("nan"), timestamp=2, step=1)
    assert math.isnan(client.get_run(run_id).data.metrics["m"])
    values = [m.value for m in client.get_metric_history(run_id, "m")]
    assert values[0] == 1.0 and math.isnan(values[1])
    client.log_metric(run_id, "m", 3.0, timestamp=3, step=2)
    assert client.get_run(run_id).data.metrics["m"] == 3.0


def test_history_unknown_key_and_run(client, api, run_id):
    assert client.get_metric_history(run_id, "never-logged") == []
    missing = "fedcba9876543210fedcba9876543210"
    assert client.get_metric_history(missing, "m") == []
    resp = api.get("metrics/get-history", params={"run_id": missing, "metric_key": "m"})
    assert resp.status_code == 200, resp.text
    assert resp.json().get("metrics", []) == []


def test_history_raw_pagination(api, client, run_id):
    client.log_batch(run_id, metrics=[Metric("pg", float(i), 1000 + i, i) for i in range(25)])
    seen, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "metric_key": "pg", "max_results": 10}
        if token:
            params["page_token"] = token
        resp = api.get("metrics/get-history", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        seen.extend(m["step"] for m in body.get("metrics", []))
        token = body.get("next_page_token")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert seen == list(range(25))
    # Last page exactly full: no token.
    resp = api.get("metrics/get-history",
                   params={"run_id": run_id, "metric_key": "pg", "max_results": 25})
    body = resp.json()
    assert len(body["metrics"]) == 25
    assert not body.get("next_page_token")


def test_history_more_than_25000_points(client, run_id):
    n = 25_050
    for start in range(0, n, 1000):
        chunk = [Metric("big", float(i) * 0.5, 10_000 + i, i) for i in range(start, min(n, start + 1000))]
        client.log_batch(run_id, metrics=chunk)
    hist = client.get_metric_history(run_id, "big")
    assert len(hist) == n
    assert [m.step for m in hist] == list(range(n))
    assert hist[-1].value == (n - 1) * 0.5
    assert hist[-1].timestamp == 10_000 + n - 1
    assert client.get_run(run_id).data.metrics["big"] == (n - 1) * 0.5


def test_invalid_metric_values(api, client, run_id):
    resp = api.post("runs/log-metric",
                    {"run_id": run_id, "key": "m", "value": "abc", "timestamp": 1, "step": 0})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    resp = api.post("runs/log-metric",
                    {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": -5, "step": 0})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    expect_mlflow_error("INVALID_PARAMETER_VALUE", client.log_metric, run_id, "m", 1.0,
                        timestamp=-5)
    assert client.get_metric_history(run_id, "m") == []
