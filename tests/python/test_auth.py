"""The official mlflow client authenticates with a bearer token (MLFLOW_TRACKING_TOKEN, used by
the whole suite) or basic auth (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD); refusals
reach it as MLflow error codes, never as retried 5xx."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import uniq


def _user(api, role: str, password: str | None = None) -> str:
    name = uniq(role)
    body = {"username": name, "role": role}
    if password:
        body["password"] = password
    r = api.post("/api/v1/users", body)
    assert r.status_code == 201, r.text
    return name


def test_basic_auth_with_the_mlflow_client(api, server, monkeypatch):
    password = "a long enough password"
    user = _user(api, "member", password)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    client = MlflowClient(tracking_uri=server.url)
    exp = client.create_experiment(uniq("basic"))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "loss", 0.25, step=3)
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [0.25]
    # The run records who made it when the client names nobody else.
    assert client.get_run(run.info.run_id).info.user_id

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not the password")
    with pytest.raises(MlflowException) as e:
        client.get_experiment(exp)
    assert e.value.error_code == "UNAUTHENTICATED"
    assert "not the password" not in str(e.value)


def test_a_personal_token_of_a_viewer_reads_but_cannot_write(api, server, monkeypatch, experiment_id):
    viewer = _user(api, "viewer")
    r = api.post("/api/v1/auth/tokens", {"name": "ci", "username": viewer})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    client = MlflowClient(tracking_uri=server.url)
    assert client.get_experiment(experiment_id).experiment_id == experiment_id
    with pytest.raises(MlflowException) as e:
        client.create_experiment(uniq("nope"))
    assert e.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as e:
        client.create_run(experiment_id)
    assert e.value.error_code == "PERMISSION_DENIED"


def test_no_credentials_and_a_bad_token_are_refused(server, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    client = MlflowClient(tracking_uri=server.url)
    with pytest.raises(MlflowException) as e:
        client.search_experiments()
    assert e.value.error_code == "UNAUTHENTICATED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "rlp_forged")
    with pytest.raises(MlflowException) as e:
        client.search_experiments()
    assert e.value.error_code == "UNAUTHENTICATED"
    assert "rlp_forged" not in str(e.value)


def test_login_returns_a_jwt_the_client_can_use(api, server, monkeypatch):
    password = "another long password"
    user = _user(api, "member", password)
    r = api.post("/api/v1/auth/token", {"username": user, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["access_token"].count(".") == 2  # a JWT
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", body["access_token"])
    client = MlflowClient(tracking_uri=server.url)
    assert client.create_experiment(uniq("jwt"))
