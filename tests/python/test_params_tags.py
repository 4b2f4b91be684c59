"""Params and run tags: logging, immutability, truncation, delete_tag."""

import mlflow
import pytest

from conftest import assert_api_error, assert_empty_ok, expect_mlflow_error


def test_log_param_and_stringify(client, run_id):
    client.log_param(run_id, "lr", 0.01)
    client.log_param(run_id, "layers", 3)
    client.log_param(run_id, "name", "resnet")
    client.log_param(run_id, "flag", True)
    assert client.get_run(run_id).data.params == {
        "lr": "0.01",
        "layers": "3",
        "name": "resnet",
        "flag": "True",
    }


def test_fluent_params_and_tags(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("a", 1)
        mlflow.log_params({"b": "two", "c": 3.5})
        mlflow.set_tag("t1", "v1")
        mlflow.set_tags({"t2": 2, "t3": "v3"})
    data = client.get_run(run.info.run_id).data
    assert data.params == {"a": "1", "b": "two", "c": "3.5"}
    assert data.tags["t1"] == "v1"
    assert data.tags["t2"] == "2"
    assert data.tags["t3"] == "v3"


def test_param_relog_same_value_ok(client, api, run_id):
    client.log_param(run_id, "p", "same")
    client.log_param(run_id, "p", "same")
    assert_empty_ok(api.post("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "same"}))
    assert client.get_run(run_id).data.params == {"p": "same"}


def test_param_relog_different_value_fails(client, api, run_id):
    client.log_param(run_id, "p", "first")
    expect_mlflow_error("INVALID_PARAMETER_VALUE", client.log_param, run_id, "p", "second")
    resp = api.post("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "second"})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    expect_mlflow_error(
        "INVALID_PARAMETER_VALUE",
        client.log_batch,
        run_id,
        params=[mlflow.entities.Param("p", "third")],
    )
    assert client.get_run(run_id).data.params == {"p": "first"}


def test_long_param_value_truncated(client, api, run_id):
    exact = "a" * 6000
    client.log_param(run_id, "exact", exact)
    resp = api.post("runs/log-parameter", {"run_id": run_id, "key": "long", "value": "b" * 7000})
    assert resp.status_code == 200, resp.text
    client.log_param(run_id, "long2", "c" * 6500)
    params = client.get_run(run_id).data.params
    assert params["exact"] == exact
    assert params["long"] == "b" * 6000
    assert params["long2"] == "c" * 6000


def test_long_tag_value_truncated(client, api, run_id):
    exact = "a" * 8000
    client.set_tag(run_id, "exact", exact)
    resp = api.post("runs/set-tag", {"run_id": run_id, "key": "long", "value": "b" * 9000})
    assert resp.status_code == 200, resp.text
    client.set_tag(run_id, "long2", "c" * 8500)
    tags = client.get_run(run_id).data.tags
    assert tags["exact"] == exact
    assert tags["long"] == "b" * 8000
    assert tags["long2"] == "c" * 8000


def test_long_values_truncated_in_batch(client, run_id):
    client.log_batch(
        run_id,
        params=[mlflow.entities.Param("bp", "x" * 6100)],
        tags=[mlflow.entities.RunTag("bt", "y" * 8100)],
    )
    data = client.get_run(run_id).data
    assert data.params["bp"] == "x" * 6000
    assert data.tags["bt"] == "y" * 8000


def test_set_tag_overwrites(client, run_id):
    client.set_tag(run_id, "t", "1")
    client.set_tag(run_id, "t", "2")
    assert client.get_run(run_id).data.tags["t"] == "2"


def test_delete_tag(client, api, run_id):
    client.set_tag(run_id, "gone", "x")
    client.set_tag(run_id, "kept", "y")
    client.delete_tag(run_id, "gone")
    tags = client.get_run(run_id).data.tags
    assert "gone" not in tags
    assert tags["kept"] == "y"
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.delete_tag, run_id, "gone")
    resp = api.post("runs/delete-tag", {"run_id": run_id, "key": "never-set"})
    assert_api_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")


def test_empty_run_data_values(client, run_id):
    client.set_tag(run_id, "empty", "")
    assert client.get_run(run_id).data.tags["empty"] == ""


@pytest.mark.parametrize(
    "key", ["ok", "with space", "a/b/c", "dots.and-dashes", "colon:key", "under_score", "k" * 250]
)
def test_valid_keys(client, run_id, key):
    client.log_param(run_id, key, "v")
    client.set_tag(run_id, key, "t")
    client.log_metric(run_id, key, 1.0)
    data = client.get_run(run_id).data
    assert data.params[key] == "v"
    assert data.tags[key] == "t"
    assert data.metrics[key] == 1.0


@pytest.mark.parametrize(
    "key", ["bad!key", "semi;colon", "quote'", "star*", "..", "/leading", ".", "a/../b", "k" * 251]
)
def test_invalid_keys_rejected(client, api, run_id, key):
    code = "INVALID_PARAMETER_VALUE"
    expect_mlflow_error(code, client.log_param, run_id, key, "v")
    expect_mlflow_error(code, client.set_tag, run_id, key, "v")
    expect_mlflow_error(code, client.log_metric, run_id, key, 1.0)
    assert_api_error(api.post("runs/log-parameter", {"run_id": run_id, "key": key, "value": "v"}),
                     400, code)
    assert_api_error(api.post("runs/set-tag", {"run_id": run_id, "key": key, "value": "v"}),
                     400, code)
    assert_api_error(
        api.post("runs/log-metric",
                 {"run_id": run_id, "key": key, "value": 1.0, "timestamp": 1, "step": 0}),
        400, code)
    data = client.get_run(run_id).data
    assert data.params == {} and data.metrics == {}
    assert key not in data.tags
