"""Runs: create/get/update/terminate/delete/restore, run names, fluent start_run/end_run."""

import re
import time

import mlflow
import pytest
from mlflow.entities import RunStatus, ViewType

from conftest import assert_api_error, expect_mlflow_error, now_ms

GENERATED_NAME = re.compile(r"^[a-z]+-[a-z]+-\d+$")


def test_create_run_fields(client, experiment_id):
    before = now_ms()
    run = client.create_run(experiment_id, tags={"mlflow.user": "alice", "team": "x"})
    after = now_ms()
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.experiment_id == experiment_id
    assert info.status == "RUNNING"
    assert info.lifecycle_stage == "active"
    assert before - 5000 <= info.start_time <= after + 5000
    assert info.end_time is None
    assert info.user_id == "alice"
    assert info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{info.run_id}/artifacts"
    assert run.data.tags["team"] == "x"
    assert run.data.tags["mlflow.user"] == "alice"
    assert run.data.metrics == {}
    assert run.data.params == {}

    fetched = client.get_run(info.run_id)
    assert fetched.info.run_id == info.run_id
    assert fetched.info.start_time == info.start_time
    assert fetched.info.run_name == info.run_name
    assert fetched.info.artifact_uri == info.artifact_uri
    assert fetched.data.tags["team"] == "x"


def test_run_artifact_uri_follows_experiment_location(client, experiment_id):
    exp = client.get_experiment(experiment_id)
    run = client.create_run(experiment_id)
    assert run.info.artifact_uri == f"{exp.artifact_location}/{run.info.run_id}/artifacts"


def test_create_run_explicit_start_time(client, experiment_id):
    run = client.create_run(experiment_id, start_time=1_234_567_890_123)
    assert run.info.start_time == 1_234_567_890_123
    assert client.get_run(run.info.run_id).info.start_time == 1_234_567_890_123


def test_run_ids_unique(client, experiment_id):
    ids = {client.create_run(experiment_id).info.run_id for _ in range(10)}
    assert len(ids) == 10


def test_generated_run_name(client, experiment_id):
    run = client.create_run(experiment_id)
    assert GENERATED_NAME.match(run.info.run_name), run.info.run_name
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    again = client.get_run(run.info.run_id)
    assert again.info.run_name == run.info.run_name
    assert again.data.tags["mlflow.runName"] == run.info.run_name


def test_explicit_run_name(client, experiment_id):
    run = client.create_run(experiment_id, run_name="my run / 1")
    assert run.info.run_name == "my run / 1"
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "my run / 1"
    assert got.data.tags["mlflow.runName"] == "my run / 1"


def test_update_run_name_updates_tag(client, run_id):
    client.update_run(run_id, name="renamed-run")
    run = client.get_run(run_id)
    assert run.info.run_name == "renamed-run"
    assert run.data.tags["mlflow.runName"] == "renamed-run"
    assert run.info.status == "RUNNING"


def test_update_run_status(client, run_id):
    client.update_run(run_id, status="SCHEDULED")
    assert client.get_run(run_id).info.status == "SCHEDULED"
    client.update_run(run_id, status="RUNNING")
    assert client.get_run(run_id).info.status == "RUNNING"


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_set_terminated(client, experiment_id, status):
    run = client.create_run(experiment_id, start_time=1_000_000)
    client.set_terminated(run.info.run_id, status, end_time=2_000_000)
    info = client.get_run(run.info.run_id).info
    assert info.status == status
    assert info.end_time == 2_000_000
    assert info.start_time == 1_000_000


def test_set_terminated_defaults(client, run_id):
    before = now_ms()
    client.set_terminated(run_id)
    after = now_ms()
    info = client.get_run(run_id).info
    assert info.status == "FINISHED"
    assert before - 5000 <= info.end_time <= after + 5000


def test_fluent_start_and_end_run(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id, run_name="fluent-run") as run:
        run_id = run.info.run_id
        assert mlflow.active_run().info.run_id == run_id
        active = client.get_run(run_id)
        assert active.info.status == "RUNNING"
        assert active.info.run_name == "fluent-run"
        tags = active.data.tags
        for key in ("mlflow.user", "mlflow.source.name", "mlflow.source.type", "mlflow.runName"):
            assert key in tags, key
        assert tags["mlflow.runName"] == "fluent-run"
        assert active.info.user_id == tags["mlflow.user"]
    assert mlflow.active_run() is None
    info = client.get_run(run_id).info
    assert info.status == "FINISHED"
    assert info.end_time is not None and info.end_time >= info.start_time


def test_fluent_generated_name(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        pass
    got = client.get_run(run.info.run_id)
    assert GENERATED_NAME.match(got.info.run_name), got.info.run_name
    assert got.data.tags["mlflow.runName"] == got.info.run_name


def test_fluent_run_failed_on_exception(client, experiment_id):
    with pytest.raises(ZeroDivisionError):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            1 / 0  # noqa: B018
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def test_fluent_end_run_status(client, experiment_id):
    run = mlflow.start_run(experiment_id=experiment_id)
    mlflow.end_run(status="KILLED")
    info = client.get_run(run.info.run_id).info
    assert info.status == "KILLED"
    assert info.end_time is not None


def test_nested_runs_parent_tag(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as parent:
        with mlflow.start_run(experiment_id=experiment_id, nested=True) as child:
            pass
    got = client.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert "mlflow.parentRunId" not in client.get_run(parent.info.run_id).data.tags
    found = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert [r.info.run_id for r in found] == [child.info.run_id]


def test_resume_run(client, experiment_id):
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("p", "1")
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    with mlflow.start_run(run_id=run.info.run_id) as resumed:
        assert resumed.info.run_id == run.info.run_id
        assert client.get_run(run.info.run_id).info.status == "RUNNING"
        mlflow.log_param("q", "2")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"p": "1", "q": "2"}


def test_delete_and_restore_run(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "m", 1.5)
    client.delete_run(run_id)
    deleted = client.get_run(run_id)  # still readable
    assert deleted.info.lifecycle_stage == "deleted"
    assert deleted.data.metrics == {"m": 1.5}
    assert client.search_runs([experiment_id]) == []
    assert [r.info.run_id for r in client.search_runs(
        [experiment_id], run_view_type=ViewType.DELETED_ONLY)] == [run_id]
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run_id]


def test_logging_to_deleted_run_fails(client, api, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    code = "INVALID_PARAMETER_VALUE"
    expect_mlflow_error(code, client.log_metric, run_id, "m", 1.0)
    expect_mlflow_error(code, client.log_param, run_id, "p", "v")
    expect_mlflow_error(code, client.set_tag, run_id, "t", "v")
    expect_mlflow_error(
        code, client.log_batch, run_id, metrics=[mlflow.entities.Metric("m", 1.0, now_ms(), 0)]
    )
    resp = api.post(
        "runs/log-metric",
        {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": now_ms(), "step": 0},
    )
    assert_api_error(resp, 400, code)
    resp = api.post("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v"})
    assert_api_error(resp, 400, code)
    resp = api.post("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"})
    assert_api_error(resp, 400, code)
    got = client.get_run(run_id)
    assert got.data.metrics == {} and got.data.params == {} and "t" not in got.data.tags


def test_unknown_run(client, api):
    missing = "0123456789abcdef0123456789abcdef"
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.get_run, missing)
    assert_api_error(api.get("runs/get", params={"run_id": missing}), 404,
                     "RESOURCE_DOES_NOT_EXIST")
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.delete_run, missing)
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.log_param, missing, "p", "v")
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.log_metric, missing, "m", 1.0)
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.set_tag, missing, "t", "v")


def test_create_run_unknown_experiment(client, api):
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.create_run, "987654321")
    resp = api.post("runs/create", {"experiment_id": "987654321", "start_time": now_ms()})
    assert_api_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")


def test_run_status_enum_roundtrip(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
    assert client.get_run(run_id).info.status == "KILLED"


def test_get_run_via_run_uuid_only(api, run_id):
    resp = api.get("runs/get", params={"run_uuid": run_id})
    assert resp.status_code == 200, resp.text
    info = resp.json()["run"]["info"]
    assert info["run_id"] == run_id
    assert info["run_uuid"] == run_id


def test_start_time_is_epoch_millis(client, experiment_id):
    t0 = time.time()
    run = client.create_run(experiment_id)
    assert abs(run.info.start_time / 1000.0 - t0) < 60
