"""runs/log-inputs: dataset inputs via the fluent API and MlflowClient.log_inputs, de-duplication,
dataset.* search filters, limits."""

import json

import mlflow
import numpy as np
import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag

from conftest import assert_api_error, expect_mlflow_error, uniq


def _inputs(client, run_id):
    return client.get_run(run_id).inputs.dataset_inputs


def _ctx(dataset_input):
    return {t.key: t.value for t in dataset_input.tags}.get("mlflow.data.context")


def _ds(name, digest, source="s3://bucket/data.csv", schema='{"cols": ["a"]}', profile='{"n": 3}'):
    return Dataset(name=name, digest=digest, source_type="s3", source=source, schema=schema,
                   profile=profile)


def test_fluent_log_input_numpy(client, experiment_id):
    array = np.asarray([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    ds = mlflow.data.from_numpy(array, source="data.csv", name="np-data")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(ds, context="training", tags={"extra": "yes"})
    (di,) = _inputs(client, run.info.run_id)
    assert di.dataset.name == "np-data"
    assert di.dataset.digest == ds.digest
    expected = ds.to_dict()
    assert di.dataset.source_type == expected["source_type"] == "local"
    assert di.dataset.source == expected["source"]
    assert json.loads(di.dataset.source) == ds.source.to_dict()
    assert di.dataset.schema == expected["schema"]
    assert di.dataset.profile == expected["profile"]
    assert json.loads(di.dataset.profile) == json.loads(expected["profile"])
    tags = {t.key: t.value for t in di.tags}
    assert tags == {"mlflow.data.context": "training", "extra": "yes"}


def test_client_log_inputs_fields(client, run_id):
    d1 = _ds("train-set", "abc123", schema='{"mlflow_colspec": []}', profile='{"rows": 10}')
    d2 = Dataset(name="eval-set", digest="def456", source_type="local", source="/tmp/eval.csv")
    client.log_inputs(
        run_id,
        [
            DatasetInput(d1, tags=[InputTag("mlflow.data.context", "training")]),
            DatasetInput(d2, tags=[InputTag("mlflow.data.context", "eval"), InputTag("k", "v")]),
        ],
    )
    inputs = {di.dataset.name: di for di in _inputs(client, run_id)}
    assert set(inputs) == {"train-set", "eval-set"}
    t = inputs["train-set"].dataset
    assert (t.name, t.digest, t.source_type, t.source, t.schema, t.profile) == (
        "train-set", "abc123", "s3", "s3://bucket/data.csv", '{"mlflow_colspec": []}',
        '{"rows": 10}')
    e = inputs["eval-set"]
    assert (e.dataset.digest, e.dataset.source_type, e.dataset.source) == (
        "def456", "local", "/tmp/eval.csv")
    assert not e.dataset.schema and not e.dataset.profile
    assert {t.key: t.value for t in e.tags} == {"mlflow.data.context": "eval", "k": "v"}


def test_same_dataset_same_context_stored_once(client, run_id):
    di = DatasetInput(_ds("dup", "d1"), tags=[InputTag("mlflow.data.context", "training")])
    client.log_inputs(run_id, [di])
    client.log_inputs(run_id, [di])
    inputs = _inputs(client, run_id)
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "dup" and _ctx(inputs[0]) == "training"


def test_fluent_same_dataset_twice(client, experiment_id):
    ds = mlflow.data.from_numpy(np.arange(10), source="x.csv", name="same")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_input(ds, context="training")
        mlflow.log_input(ds, context="training")
    assert len(_inputs(client, run.info.run_id)) == 1


def test_inputs_in_search_results(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.log_inputs(rid, [DatasetInput(_ds("srch", "dd"), tags=[])])
    (run,) = client.search_runs([experiment_id])
    assert [di.dataset.name for di in run.inputs.dataset_inputs] == ["srch"]


@pytest.fixture(scope="module")
def ds_corpus(server):
    client = mlflow.MlflowClient(server.url)
    exp_id = client.create_experiment(uniq("ds"))
    runs = {}
    for label, name, digest, ctx in [
        ("a", "mnist", "aaa111", "training"),
        ("b", "mnist", "bbb222", "eval"),
        ("c", "Cifar", "ccc333", "training"),
    ]:
        rid = client.create_run(exp_id).info.run_id
        client.log_inputs(rid, [DatasetInput(_ds(name, digest),
                                             tags=[InputTag("mlflow.data.context", ctx)])])
        runs[label] = rid
    runs["none"] = client.create_run(exp_id).info.run_id
    return client, exp_id, {v: k for k, v in runs.items()}


@pytest.mark.parametrize(
    "flt, expected",
    [
        ("dataset.name = 'mnist'", {"a", "b"}),
        ("datasets.name = 'mnist'", {"a", "b"}),
        ("dataset.name != 'mnist'", {"c"}),
        ("dataset.name LIKE 'mn%'", {"a", "b"}),
        ("dataset.name LIKE 'cifar'", set()),
        ("dataset.name ILIKE 'cifar'", {"c"}),
        ("dataset.name IN ('mnist', 'Cifar')", {"a", "b", "c"}),
        ("dataset.name NOT IN ('mnist')", {"c"}),
        ("dataset.digest = 'bbb222'", {"b"}),
        ("dataset.digest IN ('aaa111', 'ccc333')", {"a", "c"}),
        ("dataset.context = 'training'", {"a", "c"}),
        ("dataset.context = 'eval'", {"b"}),
        ("dataset.name = 'mnist' AND dataset.context = 'training'", {"a"}),
    ],
)
def test_dataset_filters(ds_corpus, flt, expected):
    client, exp_id, labels = ds_corpus
    assert {labels[r.info.run_id] for r in client.search_runs([exp_id], flt)} == expected


def test_dataset_limits(client, api, run_id):
    code = "INVALID_PARAMETER_VALUE"
    ok_name = "n" * 500
    client.log_inputs(run_id, [DatasetInput(_ds(ok_name, "d" * 36), tags=[])])
    for ds, tags in [
        (_ds("n" * 501, "d"), []),
        (_ds("name", "d" * 37), []),
        (_ds("name", "d"), [InputTag("k" * 256, "v")]),
        (_ds("name", "d"), [InputTag("k", "v" * 501)]),
    ]:
        expect_mlflow_error(code, client.log_inputs, run_id, [DatasetInput(ds, tags=tags)])
    resp = api.post("runs/log-inputs", {
        "run_id": run_id,
        "datasets": [{"dataset": {"name": "x", "digest": "d" * 37, "source_type": "s3",
                                  "source": "s"}, "tags": []}],
    })
    assert_api_error(resp, 400, code)
    assert [di.dataset.name for di in _inputs(client, run_id)] == [ok_name]


def test_log_inputs_unknown_run(client):
    expect_mlflow_error(
        "RESOURCE_DOES_NOT_EXIST", client.log_inputs, "1234567890abcdef1234567890abcdef",
        [DatasetInput(_ds("x", "y"), tags=[])],
    )
