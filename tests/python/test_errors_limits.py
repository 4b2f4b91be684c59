"""Transport conventions, error bodies/status codes, auxiliary endpoints and request limits."""

import json

import pytest
from mlflow.exceptions import MlflowException

from conftest import REFERENCE_MLFLOW, assert_api_error, assert_empty_ok, expect_mlflow_error, uniq


def test_health(api):
    resp = api.get("/health")
    assert resp.status_code == 200
    if REFERENCE_MLFLOW:
        assert resp.text.strip() == "OK"
        return
    # RunLedger's health is JSON: status plus where the log and the projection stand.
    body = resp.json()
    assert body["status"] == "OK"
    assert body["log_position"] >= body["projection_position"] >= 0
    assert body["uptime_seconds"] >= 0


def test_version(api):
    resp = api.get("/version")
    assert resp.status_code == 200
    assert resp.text.strip() == "3.17.2"


def test_server_info(api):
    resp = api.get("/api/3.0/mlflow/server-info")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body, dict)
    assert body.get("multipart_uploads_enabled", False) is False
    assert body.get("multipart_downloads_enabled", False) is False
    assert body.get("workspaces_enabled", False) is False


def test_logged_models_search_empty(api, experiment_id):
    resp = api.post("logged-models/search", {"experiment_ids": [experiment_id]})
    assert resp.status_code == 200, resp.text
    assert resp.json().get("models", []) == []


def test_unknown_endpoint_404(api):
    for path in ["/api/2.0/mlflow/does-not-exist", "/api/2.0/mlflow/runs/nope",
                 "/totally/unknown"]:
        resp = api.get(path)
        assert resp.status_code == 404, (path, resp.status_code)
        if not REFERENCE_MLFLOW:  # MLflow itself answers with an HTML page
            assert resp.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    resp = api.post("/api/2.0/mlflow/does-not-exist", {})
    assert resp.status_code == 404
    if not REFERENCE_MLFLOW:
        assert resp.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_post_requires_json_content_type(api):
    url = api.url("experiments/create")
    body = json.dumps({"name": uniq("ct")})
    for headers in [{}, {"Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"}]:
        resp = api.session.post(url, data=body, headers=headers, timeout=60)
        assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    resp = api.session.post(url, data=body,
                            headers={"Content-Type": "application/json; charset=utf-8"}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.json()["experiment_id"].isdigit()


def test_error_body_shape_and_json_content_type(api):
    resp = api.get("runs/get", params={"run_id": "ffffffffffffffffffffffffffffffff"})
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert isinstance(body["message"], str) and body["message"]


def test_success_responses_are_json(api, experiment_id):
    resp = api.get("experiments/get", params={"experiment_id": experiment_id})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    exp = resp.json()["experiment"]
    assert exp["experiment_id"] == experiment_id
    assert exp["lifecycle_stage"] == "active"


def test_empty_responses(api, experiment_id):
    assert_empty_ok(api.post("experiments/set-experiment-tag",
                             {"experiment_id": experiment_id, "key": "k", "value": "v"}))
    run = api.post("runs/create", {"experiment_id": experiment_id, "start_time": 1}).json()["run"]
    rid = run["info"]["run_id"]
    assert run["info"]["run_uuid"] == rid
    assert_empty_ok(api.post("runs/log-metric", {"run_id": rid, "run_uuid": rid, "key": "m",
                                                 "value": 1.5, "timestamp": 2, "step": 0}))
    assert_empty_ok(api.post("runs/log-parameter",
                             {"run_id": rid, "run_uuid": rid, "key": "p", "value": "v"}))
    assert_empty_ok(api.post("runs/set-tag",
                             {"run_id": rid, "run_uuid": rid, "key": "t", "value": "v"}))
    assert_empty_ok(api.post("runs/delete-tag", {"run_id": rid, "key": "t"}))
    resp = api.post("runs/update", {"run_id": rid, "run_uuid": rid, "status": "FINISHED",
                                    "end_time": 10})
    assert resp.status_code == 200
    info = resp.json()["run_info"]
    assert info["status"] == "FINISHED" and int(info["end_time"]) == 10
    assert_empty_ok(api.post("runs/delete", {"run_id": rid}))
    assert_empty_ok(api.post("runs/restore", {"run_id": rid}))


def test_raw_run_json_shape(api, experiment_id):
    rid = api.post("runs/create", {"experiment_id": experiment_id, "start_time": 5,
                                   "run_name": "shape"}).json()["run"]["info"]["run_id"]
    api.post("runs/log-metric", {"run_id": rid, "key": "m", "value": 2, "timestamp": 7, "step": 3})
    api.post("runs/log-parameter", {"run_id": rid, "key": "p", "value": "v"})
    run = api.get("runs/get", params={"run_id": rid}).json()["run"]
    info = run["info"]
    assert info["run_id"] == rid and info["run_uuid"] == rid
    assert info["experiment_id"] == experiment_id
    assert info["run_name"] == "shape"
    assert info["status"] == "RUNNING"
    assert info["lifecycle_stage"] == "active"
    assert int(info["start_time"]) == 5
    (metric,) = run["data"]["metrics"]
    assert (metric["key"], metric["value"], int(metric["timestamp"]), int(metric["step"])) == (
        "m", 2.0, 7, 3)
    assert run["data"]["params"] == [{"key": "p", "value": "v"}]
    assert {"key": "mlflow.runName", "value": "shape"} in run["data"]["tags"]


def test_numeric_enums_and_numeric_strings(api, experiment_id, client):
    a = client.create_run(experiment_id).info.run_id
    b = client.create_run(experiment_id).info.run_id
    client.delete_run(b)
    for view, expected in [("ACTIVE_ONLY", {a}), (1, {a}), ("DELETED_ONLY", {b}), (2, {b}),
                           ("ALL", {a, b}), (3, {a, b})]:
        resp = api.post("runs/search", {"experiment_ids": [experiment_id],
                                        "run_view_type": view})
        assert resp.status_code == 200, (view, resp.text)
        assert {r["info"]["run_id"] for r in resp.json().get("runs", [])} == expected, view
    resp = api.post("runs/search", {"experiment_ids": [experiment_id], "max_results": "1",
                                    "run_view_type": "ALL"})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["runs"]) == 1 and resp.json()["next_page_token"]
    resp = api.post("runs/update", {"run_id": a, "status": 3, "end_time": "123"})  # 3 = FINISHED
    assert resp.status_code == 200, resp.text
    info = client.get_run(a).info
    assert info.status == "FINISHED" and info.end_time == 123


def test_unknown_fields_ignored(api):
    resp = api.post("experiments/create", {"name": uniq("unk"), "bogus": 1, "also": {"x": [1]}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["experiment_id"].isdigit()


def test_missing_required_fields(api, run_id):
    assert_api_error(api.post("experiments/create", {}), 400, "INVALID_PARAMETER_VALUE")
    assert_api_error(api.post("runs/log-metric", {"run_id": run_id, "value": 1.0,
                                                  "timestamp": 1}), 400, "INVALID_PARAMETER_VALUE")
    assert_api_error(api.post("runs/log-parameter", {"run_id": run_id, "value": "v"}),
                     400, "INVALID_PARAMETER_VALUE")
    assert_api_error(api.get("metrics/get-history", params={"run_id": run_id}),
                     400, "INVALID_PARAMETER_VALUE")


def test_wrong_field_types(api, run_id):
    if not REFERENCE_MLFLOW:  # MLflow 3.17.2 itself answers an object-valued metric with HTML 500
        resp = api.post("runs/log-metric", {"run_id": run_id, "key": "m", "value": {"x": 1},
                                            "timestamp": 1, "step": 0})
        assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    resp = api.post("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.0,
                                        "timestamp": 1, "step": "x"})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    resp = api.post("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.0,
                                        "timestamp": "yesterday", "step": 0})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_client_errors_are_not_5xx(client, api, run_id):
    """Client errors must be 4xx: 5xx would be retried by the client for minutes."""
    resp = api.post("runs/log-parameter", {"run_id": run_id, "key": "bad!", "value": "v"})
    assert 400 <= resp.status_code < 500
    resp = api.post("runs/search", {"experiment_ids": ["0"], "filter": "x y z"})
    assert 400 <= resp.status_code < 500
    resp = api.post("experiments/search", {"filter": "((("})
    assert 400 <= resp.status_code < 500


def test_mlflow_exception_carries_code(client):
    with pytest.raises(MlflowException) as excinfo:
        client.get_run("00000000000000000000000000000000")
    assert excinfo.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert excinfo.value.get_http_status_code() == 404


def test_experiment_tag_limits_via_client(client, experiment_id):
    expect_mlflow_error("INVALID_PARAMETER_VALUE", client.set_experiment_tag, experiment_id,
                        "k" * 251, "v")
    client.set_experiment_tag(experiment_id, "k" * 250, "v")
    assert client.get_experiment(experiment_id).tags["k" * 250] == "v"


def test_search_max_results_bounds(api, experiment_id):
    resp = api.post("runs/search", {"experiment_ids": [experiment_id], "max_results": 50001})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    resp = api.post("runs/search", {"experiment_ids": [experiment_id], "max_results": 50000})
    assert resp.status_code == 200, resp.text
