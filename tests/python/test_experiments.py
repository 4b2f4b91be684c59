"""Experiments: create/get/get-by-name/rename/delete/restore/tags (reference §3 Experiments)."""

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.entities import ViewType

from conftest import REFERENCE_MLFLOW, assert_api_error, expect_mlflow_error, now_ms, uniq


def test_create_and_get_experiment(client):
    name = uniq("exp")
    before = now_ms()
    exp_id = client.create_experiment(name, tags={"team": "ml", "k.with/odd-chars": "v"})
    after = now_ms()
    assert isinstance(exp_id, str) and exp_id.isdigit()

    exp = client.get_experiment(exp_id)
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.tags["team"] == "ml"
    assert exp.tags["k.with/odd-chars"] == "v"
    assert isinstance(exp.creation_time, int)
    assert before - 5000 <= exp.creation_time <= after + 5000
    assert isinstance(exp.last_update_time, int)
    assert exp.last_update_time >= exp.creation_time
    # default artifact location = <default artifact root>/<experiment_id>
    assert exp.artifact_location.rstrip("/").endswith("/" + exp_id)
    assert exp.artifact_location == f"mlflow-artifacts:/{exp_id}"


def test_experiment_ids_are_distinct_integers(client):
    ids = [client.create_experiment(uniq("exp")) for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(i.isdigit() for i in ids)


def test_create_experiment_with_artifact_location(client):
    name = uniq("exp")
    loc = f"mlflow-artifacts:/custom-{uniq('loc')}"
    exp_id = client.create_experiment(name, artifact_location=loc)
    assert client.get_experiment(exp_id).artifact_location == loc
    run = client.create_run(exp_id)
    assert run.info.artifact_uri == f"{loc}/{run.info.run_id}/artifacts"


def test_get_experiment_by_name(client):
    name = uniq("exp")
    exp_id = client.create_experiment(name)
    exp = client.get_experiment_by_name(name)
    assert exp is not None
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert client.get_experiment_by_name(uniq("missing")) is None


def test_get_experiment_by_name_unknown_is_404(api):
    resp = api.get("experiments/get-by-name", params={"experiment_name": uniq("missing")})
    assert_api_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")


def test_duplicate_experiment_name(client, api):
    name = uniq("exp")
    client.create_experiment(name)
    expect_mlflow_error("RESOURCE_ALREADY_EXISTS", client.create_experiment, name)
    resp = api.post("experiments/create", {"name": name})
    assert_api_error(resp, 400, "RESOURCE_ALREADY_EXISTS")


def test_duplicate_name_of_deleted_experiment(client):
    name = uniq("exp")
    exp_id = client.create_experiment(name)
    client.delete_experiment(exp_id)
    expect_mlflow_error("RESOURCE_ALREADY_EXISTS", client.create_experiment, name)


def test_unknown_experiment(client, api):
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.get_experiment, "987654321")
    resp = api.get("experiments/get", params={"experiment_id": "987654321"})
    assert_api_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.delete_experiment, "987654321")


def test_invalid_experiment_names(client, api):
    expect_mlflow_error("INVALID_PARAMETER_VALUE", client.create_experiment, "")
    assert_api_error(api.post("experiments/create", {"name": ""}), 400, "INVALID_PARAMETER_VALUE")
    assert_api_error(api.post("experiments/create", {}), 400, "INVALID_PARAMETER_VALUE")
    too_long = "x" * 501
    expect_mlflow_error("INVALID_PARAMETER_VALUE", client.create_experiment, too_long)
    assert_api_error(
        api.post("experiments/create", {"name": too_long}), 400, "INVALID_PARAMETER_VALUE"
    )
    ok = uniq("e") + "x" * (500 - len(uniq("e")))
    assert len(ok) == 500
    assert client.get_experiment(client.create_experiment(ok)).name == ok


def test_rename_experiment(client):
    old = uniq("exp")
    new = uniq("renamed")
    exp_id = client.create_experiment(old)
    client.rename_experiment(exp_id, new)
    assert client.get_experiment(exp_id).name == new
    assert client.get_experiment_by_name(new).experiment_id == exp_id
    assert client.get_experiment_by_name(old) is None
    # The old name is free again.
    other = client.create_experiment(old)
    assert other != exp_id


def test_rename_deleted_experiment_is_invalid_state(client, api):
    exp_id = client.create_experiment(uniq("exp"))
    client.delete_experiment(exp_id)
    # MLflow answers 500, which its client retries for minutes; RunLedger keeps the code but
    # answers 400, so the client fails at once with INVALID_STATE.
    with pytest.raises(MlflowException) as e:
        client.rename_experiment(exp_id, uniq("new"))
    if not REFERENCE_MLFLOW:
        assert e.value.error_code == "INVALID_STATE"
    resp = api.post("experiments/update", {"experiment_id": exp_id, "new_name": uniq("new")})
    assert_api_error(resp, 500 if REFERENCE_MLFLOW else 400, "INVALID_STATE")


def test_experiment_tags(client):
    exp_id = client.create_experiment(uniq("exp"), tags={"a": "1"})
    client.set_experiment_tag(exp_id, "b", "2")
    client.set_experiment_tag(exp_id, "a", "updated")
    tags = client.get_experiment(exp_id).tags
    assert tags["a"] == "updated"
    assert tags["b"] == "2"
    client.delete_experiment_tag(exp_id, "a")
    tags = client.get_experiment(exp_id).tags
    assert "a" not in tags
    assert tags["b"] == "2"
    expect_mlflow_error("RESOURCE_DOES_NOT_EXIST", client.delete_experiment_tag, exp_id, "a")


def test_experiment_tag_value_stringified_and_limits(client, api):
    exp_id = client.create_experiment(uniq("exp"))
    client.set_experiment_tag(exp_id, "num", 42)
    assert client.get_experiment(exp_id).tags["num"] == "42"
    big = "v" * 20000
    client.set_experiment_tag(exp_id, "big", big)
    assert client.get_experiment(exp_id).tags["big"] == big
    expect_mlflow_error(
        "INVALID_PARAMETER_VALUE", client.set_experiment_tag, exp_id, "too-big", "v" * 20001
    )
    resp = api.post(
        "experiments/set-experiment-tag",
        {"experiment_id": exp_id, "key": "too-big", "value": "v" * 20001},
    )
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    resp = api.post(
        "experiments/set-experiment-tag",
        {"experiment_id": exp_id, "key": "k" * 251, "value": "v"},
    )
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert "too-big" not in client.get_experiment(exp_id).tags


def test_delete_and_restore_experiment(client):
    exp_id = client.create_experiment(uniq("exp"))
    client.delete_experiment(exp_id)
    exp = client.get_experiment(exp_id)  # still readable
    assert exp.lifecycle_stage == "deleted"
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_delete_experiment_cascades_to_runs(client):
    exp_id = client.create_experiment(uniq("exp"))
    r1 = client.create_run(exp_id).info.run_id
    r2 = client.create_run(exp_id).info.run_id
    client.delete_experiment(exp_id)
    for rid in (r1, r2):
        assert client.get_run(rid).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp_id]) == []
    deleted = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert {r.info.run_id for r in deleted} == {r1, r2}

    client.restore_experiment(exp_id)
    for rid in (r1, r2):
        assert client.get_run(rid).info.lifecycle_stage == "active"
    assert {r.info.run_id for r in client.search_runs([exp_id])} == {r1, r2}


def test_create_run_in_deleted_experiment_fails(client, api):
    exp_id = client.create_experiment(uniq("exp"))
    client.delete_experiment(exp_id)
    expect_mlflow_error("INVALID_PARAMETER_VALUE", client.create_run, exp_id)
    resp = api.post("runs/create", {"experiment_id": exp_id, "start_time": now_ms()})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_fluent_set_experiment(client):
    name = uniq("fluent")
    exp = mlflow.set_experiment(name)
    assert exp.name == name
    assert client.get_experiment_by_name(name).experiment_id == exp.experiment_id
    again = mlflow.set_experiment(name)
    assert again.experiment_id == exp.experiment_id
    by_id = mlflow.set_experiment(experiment_id=exp.experiment_id)
    assert by_id.name == name
    with mlflow.start_run() as run:
        assert run.info.experiment_id == exp.experiment_id
