"""A client generated from the committed spec (openapi/openapi.json) by openapi-python-client
drives the whole product: log in, create an experiment, log metrics, register a device, post
telemetry with its key, start a small optimization job and read its recommendation. Every
response is parsed into the generated models, so a response that breaks its schema fails."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import shared_data, uniq

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "openapi" / "openapi.json"


@pytest.fixture(scope="module")
def rl(tmp_path_factory):
    """The generated package, imported as `rlclient`."""
    out = tmp_path_factory.mktemp("generated")
    generator = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [str(generator), "generate", "--path", str(SPEC), "--meta", "none", "--output-path", str(out / "rlclient")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("rlclient")
    finally:
        sys.path.remove(str(out))


def _ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response.parsed is not None
    return response.parsed


def test_generated_client_end_to_end(rl, server):
    from rlclient import AuthenticatedClient, Client
    from rlclient.api.accounts import create_user, login, who_am_i
    from rlclient.api.devices import register_device
    from rlclient.api.jobs import create_job, get_job, get_recommendation
    from rlclient.api.mlflow import create_experiment, create_run, get_metric_history, log_batch
    from rlclient.api.models import register_dataset, upload_dataset_file, upload_model
    from rlclient.api.telemetry import ingest_telemetry_event
    from rlclient.models import (
        CreateExperiment,
        CreateJob,
        CreateRun,
        LogBatch,
        Login,
        MetricInput,
        NewUser,
        RegisterDataset,
        RegisterDatasetPreprocessType0,
        RegisterDevice,
        TechniqueSpec,
        TelemetryEvent,
    )
    from rlclient.types import File

    admin = AuthenticatedClient(base_url=server.url, token=server.token, timeout=60)
    username, password = uniq("gen"), "generated client password"
    _ok(create_user.sync_detailed(client=admin, body=NewUser(username=username, password=password)), 201)

    # Log in: username and password for a JWT.
    anonymous = Client(base_url=server.url, timeout=60)
    token = _ok(login.sync_detailed(client=anonymous, body=Login(username=username, password=password)))
    assert token.token_type == "Bearer" and token.access_token.count(".") == 2
    me = AuthenticatedClient(base_url=server.url, token=token.access_token, timeout=60)
    assert _ok(who_am_i.sync_detailed(client=me)).username == username

    # Tracking through the MLflow operations.
    exp = _ok(create_experiment.sync_detailed(client=me, body=CreateExperiment(name=uniq("gen-exp")))).experiment_id
    run = _ok(create_run.sync_detailed(client=me, body=CreateRun(experiment_id=exp, start_time=1))).run.info.run_id
    metrics = [MetricInput(key="loss", value=1.0 / (s + 1), timestamp=1000 + s, step=s) for s in range(5)]
    _ok(log_batch.sync_detailed(client=me, body=LogBatch(run_id=run, metrics=metrics)))
    history = _ok(get_metric_history.sync_detailed(client=me, run_id=run, metric_key="loss"))
    assert [m.step for m in history.metrics] == [0, 1, 2, 3, 4]

    # A device and its telemetry, posted with the device's own key.
    device = _ok(register_device.sync_detailed(client=me, body=RegisterDevice(name=uniq("cam"))), 201)
    device_client = AuthenticatedClient(base_url=server.url, token=device.api_key, timeout=60)
    event = TelemetryEvent(event_id=uuid.uuid4(), kind="detection", ts=int(time.time() * 1000))
    event["confidence"] = 0.93
    accepted = _ok(ingest_telemetry_event.sync_detailed(client=device_client, body=event))
    assert accepted.accepted == 1

    # A small optimization job and its recommendation.
    model_bytes = (shared_data() / "models" / "mnist-8.onnx").read_bytes()
    model = _ok(upload_model.sync_detailed(client=me, name="mnist-8", body=File(payload=model_bytes)), 201)
    data = shared_data() / "datasets"
    images, labels = (
        _ok(upload_dataset_file.sync_detailed(client=me, body=File(payload=(data / f).read_bytes())), 201).sha256
        for f in ("mnist_calib_images_u8.npy", "mnist_calib_labels_u8.npy")
    )
    preprocess = RegisterDatasetPreprocessType0.from_dict({"scale": 1 / 255})
    calib = _ok(
        register_dataset.sync_detailed(
            client=me,
            body=RegisterDataset(name="mnist", inputs_sha256=images, labels_sha256=labels, preprocess=preprocess),
        ),
        201,
    )
    job = _ok(
        create_job.sync_detailed(
            client=me,
            body=CreateJob(
                model_id=model.model_id,
                calibration_dataset_id=calib.dataset_id,
                techniques=[TechniqueSpec(name="fp16"), TechniqueSpec(name="int8-weight")],
            ),
        ),
        201,
    )
    deadline = time.monotonic() + 180
    while True:
        view = _ok(get_job.sync_detailed(job.job_id, client=me))
        if str(view.status.value) in ("completed", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, view.to_dict()
        time.sleep(0.5)
    assert view.status.value == "completed", view.to_dict()
    rec = _ok(get_recommendation.sync_detailed(job.job_id, client=me))
    assert rec.winner in ("original", "fp16", "int8-weight"), rec.to_dict()
