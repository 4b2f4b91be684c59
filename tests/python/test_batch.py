"""runs/log-batch: contents, client-side splitting, server-side limits, atomic validation."""

from mlflow.entities import Metric, Param, RunTag

from conftest import assert_api_error, assert_empty_ok, expect_mlflow_error, now_ms


def test_log_batch_basic(client, run_id):
    ts = now_ms()
    client.log_batch(
        run_id,
        metrics=[Metric("m1", 1.0, ts, 0), Metric("m1", 2.0, ts + 1, 1), Metric("m2", -3.5, ts, 7)],
        params=[Param("p1", "a"), Param("p2", "b")],
        tags=[RunTag("t1", "x"), RunTag("t2", "y")],
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {"m1": 2.0, "m2": -3.5}
    assert run.data.params == {"p1": "a", "p2": "b"}
    assert run.data.tags["t1"] == "x" and run.data.tags["t2"] == "y"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "m1")] == [
        (0, 1.0),
        (1, 2.0),
    ]
    (m2,) = client.get_metric_history(run_id, "m2")
    assert (m2.timestamp, m2.step, m2.value) == (ts, 7, -3.5)


def test_log_batch_large_is_split_by_client(client, run_id):
    ts = now_ms()
    metrics = [Metric(f"m{i % 7}", float(i), ts + i, i) for i in range(2500)]
    params = [Param(f"p{i}", str(i)) for i in range(250)]
    tags = [RunTag(f"t{i}", str(i)) for i in range(150)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    run = client.get_run(run_id)
    assert len(run.data.params) == 250
    assert run.data.params["p249"] == "249"
    assert all(run.data.tags[f"t{i}"] == str(i) for i in range(150))
    total = sum(len(client.get_metric_history(run_id, f"m{k}")) for k in range(7))
    assert total == 2500
    assert run.data.metrics["m0"] == 2499.0  # highest step with i % 7 == 0 (2499 = 7 * 357)


def test_log_batch_at_limits_raw(api, client, run_id):
    ts = now_ms()
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": float(i), "timestamp": ts, "step": i} for i in range(800)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(100)],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(100)],
    }
    assert_empty_ok(api.post("runs/log-batch", body))
    assert len(client.get_metric_history(run_id, "m")) == 800
    assert len(client.get_run(run_id).data.params) == 100

    body = {"run_id": run_id,
            "metrics": [{"key": "n", "value": 1.0, "timestamp": ts, "step": i} for i in range(1000)]}
    assert_empty_ok(api.post("runs/log-batch", body))
    assert len(client.get_metric_history(run_id, "n")) == 1000


def _assert_rejected_and_nothing_written(api, client, run_id, body):
    resp = api.post("runs/log-batch", body)
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    data = client.get_run(run_id).data
    assert data.metrics == {}
    assert data.params == {}
    assert not any(k.startswith("bt") for k in data.tags)


def test_log_batch_too_many_metrics(api, client, run_id):
    ts = now_ms()
    body = {"run_id": run_id,
            "metrics": [{"key": "m", "value": 1.0, "timestamp": ts, "step": i} for i in range(1001)]}
    _assert_rejected_and_nothing_written(api, client, run_id, body)


def test_log_batch_too_many_params(api, client, run_id):
    body = {"run_id": run_id, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}
    _assert_rejected_and_nothing_written(api, client, run_id, body)


def test_log_batch_too_many_tags(api, client, run_id):
    body = {"run_id": run_id, "tags": [{"key": f"bt{i}", "value": "v"} for i in range(101)]}
    _assert_rejected_and_nothing_written(api, client, run_id, body)


def test_log_batch_too_many_entities_total(api, client, run_id):
    ts = now_ms()
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": 1.0, "timestamp": ts, "step": i} for i in range(900)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(100)],
        "tags": [{"key": "bt0", "value": "v"}],
    }
    _assert_rejected_and_nothing_written(api, client, run_id, body)


def test_log_batch_duplicate_param_keys(api, client, run_id):
    body = {"run_id": run_id, "params": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}]}
    _assert_rejected_and_nothing_written(api, client, run_id, body)


def test_log_batch_validation_before_any_write(api, client, run_id):
    ts = now_ms()
    body = {
        "run_id": run_id,
        "metrics": [{"key": "good", "value": 1.0, "timestamp": ts, "step": 0},
                    {"key": "bad!key", "value": 1.0, "timestamp": ts, "step": 0}],
        "params": [{"key": "p", "value": "v"}],
        "tags": [{"key": "bt", "value": "v"}],
    }
    _assert_rejected_and_nothing_written(api, client, run_id, body)
    body = {
        "run_id": run_id,
        "metrics": [{"key": "good", "value": 1.0, "timestamp": ts, "step": 0}],
        "params": [{"key": "p", "value": "v"}],
        "tags": [{"key": "bt", "value": "v"}, {"key": "k" * 251, "value": "v"}],
    }
    _assert_rejected_and_nothing_written(api, client, run_id, body)
    expect_mlflow_error(
        "INVALID_PARAMETER_VALUE",
        client.log_batch,
        run_id,
        metrics=[Metric("good", 1.0, ts, 0)],
        params=[Param("bad!key", "v")],
    )
    assert client.get_run(run_id).data.metrics == {}


def test_log_batch_param_conflict_with_existing(client, run_id):
    client.log_param(run_id, "p", "1")
    client.log_batch(run_id, params=[Param("p", "1"), Param("q", "2")])  # same value: ok
    assert client.get_run(run_id).data.params == {"p": "1", "q": "2"}
    expect_mlflow_error(
        "INVALID_PARAMETER_VALUE", client.log_batch, run_id, params=[Param("p", "changed")]
    )
    assert client.get_run(run_id).data.params == {"p": "1", "q": "2"}


def test_log_batch_empty(api, client, run_id):
    assert_empty_ok(api.post("runs/log-batch", {"run_id": run_id}))
    client.log_batch(run_id)  # client does not even call the server
    assert client.get_run(run_id).data.metrics == {}


def test_log_batch_unknown_run(client, api):
    missing = "00000000000000000000000000000abc"
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.log_batch, missing,
                        params=[Param("p", "v")])
    resp = api.post("runs/log-batch", {"run_id": missing, "params": [{"key": "p", "value": "v"}]})
    assert_api_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")


def test_log_batch_nan_infinity(api, client, run_id):
    body = {
        "run_id": run_id,
        "metrics": [
            {"key": "n", "value": "NaN", "timestamp": 1, "step": 0},
            {"key": "pi", "value": "Infinity", "timestamp": 1, "step": 0},
            {"key": "ni", "value": "-Infinity", "timestamp": 1, "step": 0},
        ],
    }
    assert_empty_ok(api.post("runs/log-batch", body))
    m = client.get_run(run_id).data.metrics
    assert m["n"] != m["n"]
    assert m["pi"] >= 1e308 and m["ni"] <= -1e308
