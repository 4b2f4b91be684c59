"""runs/search: filter grammar, order_by (missing last, NaN), tie-breakers, paging, view types,
and the fluent pandas front-end."""

import math
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from conftest import assert_api_error, expect_mlflow_error, uniq


@pytest.fixture(scope="module")
def corpus(server):
    """Five runs with controlled start times, metrics, params, tags and statuses.

    run  start end   name     status    m     nm    model     env      user
    r1   1000  5000  alpha    FINISHED  1.0   3.0   cnn       prod     alice   (+ tag "odd key"=x)
    r2   2000  -     beta     RUNNING   2.0   NaN   CNN-big   dev      bob
    r3   3000  6000  gamma    FAILED    -     1.0   rnn       prod     carol
    r4   4000  7000  alpha-2  KILLED    -     -     -         -        alice
    r5   5000  8000  delta    FINISHED  2.0   2.0   xgb       staging  dave
    """
    client = MlflowClient(server.url)
    name = uniq("search")
    exp_id = client.create_experiment(name)

    def mk(start, run_name, user, metrics, params, tags, status, end):
        rid = client.create_run(exp_id, start_time=start, run_name=run_name,
                                tags={"mlflow.user": user, **tags}).info.run_id
        for k, v in metrics.items():
            client.log_metric(rid, k, v, timestamp=start, step=0)
        for k, v in params.items():
            client.log_param(rid, k, v)
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=end)
        return rid

    r1 = mk(1000, "alpha", "alice", {"m": 1.0, "nm": 3.0}, {"model": "cnn", "lr": "0.1"},
            {"env": "prod", "odd key": "x"}, "FINISHED", 5000)
    r2 = mk(2000, "beta", "bob", {"m": 2.0, "nm": float("nan")}, {"model": "CNN-big"},
            {"env": "dev"}, "RUNNING", None)
    r3 = mk(3000, "gamma", "carol", {"nm": 1.0}, {"model": "rnn"}, {"env": "prod"},
            "FAILED", 6000)
    r4 = mk(4000, "alpha-2", "alice", {}, {}, {}, "KILLED", 7000)
    r5 = mk(5000, "delta", "dave", {"m": 2.0, "nm": 2.0}, {"model": "xgb"},
            {"env": "staging"}, "FINISHED", 8000)
    ids = {"r1": r1, "r2": r2, "r3": r3, "r4": r4, "r5": r5}
    return SimpleNamespace(client=client, exp_id=exp_id, name=name, ids=ids,
                           names={v: k for k, v in ids.items()})


def _search(c, filter_string="", order_by=None, **kw):
    runs = c.client.search_runs([c.exp_id], filter_string, order_by=order_by, **kw)
    return [c.names[r.info.run_id] for r in runs]


def _set(c, filter_string):
    return set(_search(c, filter_string))


# ------------------------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    "flt, expected",
    [
        ("", {"r1", "r2", "r3", "r4", "r5"}),
        ("metrics.m = 2", {"r2", "r5"}),
        ("metrics.m = 2.0", {"r2", "r5"}),
        ("metrics.m != 1", {"r2", "r5"}),  # runs without the metric never match
        ("metrics.m < 2", {"r1"}),
        ("metrics.m <= 2", {"r1", "r2", "r5"}),
        ("metrics.m > 1", {"r2", "r5"}),
        ("metrics.m >= 1", {"r1", "r2", "r5"}),
        ("metrics.m > -1e10", {"r1", "r2", "r5"}),
        ("metric.m = 1", {"r1"}),
        ("metrics.`m` = 1", {"r1"}),
        ("params.model = 'cnn'", {"r1"}),
        ('params.model = "cnn"', {"r1"}),
        ("params.model != 'cnn'", {"r2", "r3", "r5"}),
        ("params.model LIKE 'cnn%'", {"r1"}),
        ("params.model LIKE '%nn'", {"r1", "r3"}),
        ("params.model LIKE '_nn'", {"r1", "r3"}),
        ("params.model ILIKE 'cnn%'", {"r1", "r2"}),
        ("params.model IS NULL", {"r4"}),
        ("params.model IS NOT NULL", {"r1", "r2", "r3", "r5"}),
        ("params.lr = '0.1'", {"r1"}),
        ("param.model = 'rnn'", {"r3"}),
        ("parameter.model = 'rnn'", {"r3"}),
        ("parameters.model = 'rnn'", {"r3"}),
        ("tags.env = 'prod'", {"r1", "r3"}),
        ("tags.env != 'prod'", {"r2", "r5"}),
        ("tags.env LIKE 'pro%'", {"r1", "r3"}),
        ("tags.env LIKE 'PRO%'", set()),
        ("tags.env ILIKE 'PRO%'", {"r1", "r3"}),
        ("tags.env IS NULL", {"r4"}),
        ("tags.env IS NOT NULL", {"r1", "r2", "r3", "r5"}),
        ("tag.env = 'dev'", {"r2"}),
        ("tags.`odd key` = 'x'", {"r1"}),
        ('tags."odd key" = \'x\'', {"r1"}),
        ("tags.mlflow.runName = 'beta'", {"r2"}),
        ("tags.`mlflow.runName` = 'gamma'", {"r3"}),
        ("attributes.run_name = 'alpha'", {"r1"}),
        ("attributes.run_name LIKE 'alpha%'", {"r1", "r4"}),
        ("attributes.run_name ILIKE 'ALPHA%'", {"r1", "r4"}),
        ("attributes.run_name != 'alpha'", {"r2", "r3", "r4", "r5"}),
        ("run_name = 'delta'", {"r5"}),
        ("attributes.status = 'FINISHED'", {"r1", "r5"}),
        ("attributes.status != 'RUNNING'", {"r1", "r3", "r4", "r5"}),
        ("status = 'KILLED'", {"r4"}),
        ("attribute.status = 'FAILED'", {"r3"}),
        ("attr.status = 'FAILED'", {"r3"}),
        ("run.status = 'FAILED'", {"r3"}),
        ("attributes.user_id = 'alice'", {"r1", "r4"}),
        ("attributes.start_time > 2500", {"r3", "r4", "r5"}),
        ("attributes.start_time >= 2000 AND attributes.start_time < 4000", {"r2", "r3"}),
        ("attributes.start_time = 1000", {"r1"}),
        ("attributes.start_time != 1000", {"r2", "r3", "r4", "r5"}),
        ("attributes.start_time <= 1000", {"r1"}),
        ("attributes.created >= 3000", {"r3", "r4", "r5"}),
        ("attributes.end_time > 5500", {"r3", "r4", "r5"}),
        ("attributes.end_time <= 5000", {"r1"}),
        ("metrics.m >= 1 AND params.model = 'cnn'", {"r1"}),
        ("metrics.m >= 1 and tags.env != 'prod'", {"r2", "r5"}),
        ("params.model LIKE '%n%' AND tags.env = 'prod' AND metrics.nm > 2", {"r1"}),
    ],
)
def test_filters(corpus, flt, expected):
    assert _set(corpus, flt) == expected


def test_filter_run_id_in(corpus):
    i = corpus.ids
    assert _set(corpus, f"attributes.run_id IN ('{i['r1']}', '{i['r3']}')") == {"r1", "r3"}
    assert _set(corpus, f"attributes.run_id NOT IN ('{i['r1']}', '{i['r3']}')") == {
        "r2", "r4", "r5"}
    assert _set(corpus, f"attributes.run_id = '{i['r2']}'") == {"r2"}
    assert _set(corpus, f"run_id != '{i['r2']}'") == {"r1", "r3", "r4", "r5"}


def test_filter_artifact_uri(corpus):
    rid = corpus.ids["r2"]
    assert _set(corpus, f"attributes.artifact_uri LIKE '%{rid}%'") == {"r2"}
    run = corpus.client.get_run(rid)
    assert _set(corpus, f"attributes.artifact_uri = '{run.info.artifact_uri}'") == {"r2"}


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.m = 1 OR metrics.m = 2",
        "params.model = cnn",
        "metrics.m > '1'",
        "foo.bar = 'x'",
        "attributes.nope = 'x'",
        "attributes.run_name IN ('alpha')",
        "metrics.m =",
        "params.model",
        "metrics.m ~ 1",
    ],
)
def test_bad_filters(corpus, api, bad):
    expect_mlflow_error(
        "INVALID_PARAMETER_VALUE", corpus.client.search_runs, [corpus.exp_id], bad
    )
    resp = api.post("runs/search", {"experiment_ids": [corpus.exp_id], "filter": bad})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_bad_order_by(corpus):
    for bad in ["metrics.m SIDEWAYS", "nope.x", "attributes.nope"]:
        expect_mlflow_error(
            "INVALID_PARAMETER_VALUE",
            corpus.client.search_runs, [corpus.exp_id], order_by=[bad],
        )


# ----------------------------------------------------------------------------------- ordering


def test_default_order_is_start_time_desc(corpus):
    assert _search(corpus) == ["r5", "r4", "r3", "r2", "r1"]


@pytest.mark.parametrize(
    "order_by, expected",
    [
        (["attributes.start_time ASC"], ["r1", "r2", "r3", "r4", "r5"]),
        (["attributes.start_time"], ["r1", "r2", "r3", "r4", "r5"]),
        (["attributes.start_time DESC"], ["r5", "r4", "r3", "r2", "r1"]),
        (["start_time DESC"], ["r5", "r4", "r3", "r2", "r1"]),
        # ties on m (r2, r5) -> start_time DESC; missing (r3, r4) last in both directions
        (["metrics.m ASC"], ["r1", "r5", "r2", "r4", "r3"]),
        (["metrics.m"], ["r1", "r5", "r2", "r4", "r3"]),
        (["metrics.m DESC"], ["r5", "r2", "r1", "r4", "r3"]),
        # NaN after numbers, before missing, in both directions
        (["metrics.nm ASC"], ["r3", "r5", "r1", "r2", "r4"]),
        (["metrics.nm DESC"], ["r1", "r5", "r3", "r2", "r4"]),
        (["tags.env ASC"], ["r2", "r3", "r1", "r5", "r4"]),
        (["tags.env DESC"], ["r5", "r3", "r1", "r2", "r4"]),
        (["params.lr ASC"], ["r1", "r5", "r4", "r3", "r2"]),
        (["attributes.run_name ASC"], ["r1", "r4", "r2", "r5", "r3"]),
        (["attributes.run_name DESC"], ["r3", "r5", "r2", "r4", "r1"]),
        (["tags.env ASC", "metrics.m DESC"], ["r2", "r1", "r3", "r5", "r4"]),
        (["tags.env DESC", "attributes.start_time ASC"], ["r5", "r1", "r3", "r2", "r4"]),
        (["attributes.end_time ASC"], ["r1", "r3", "r4", "r5", "r2"]),
        (["attributes.end_time DESC"], ["r5", "r4", "r3", "r1", "r2"]),
    ],
)
def test_order_by(corpus, order_by, expected):
    assert _search(corpus, order_by=order_by) == expected


def test_order_by_with_filter(corpus):
    assert _search(corpus, "metrics.m >= 1", order_by=["metrics.m DESC"]) == ["r5", "r2", "r1"]


def test_tie_breaker_run_id(client, experiment_id):
    ids = [client.create_run(experiment_id, start_time=777).info.run_id for _ in range(6)]
    got = [r.info.run_id for r in client.search_runs([experiment_id])]
    assert got == sorted(ids)
    got = [r.info.run_id for r in client.search_runs([experiment_id],
                                                     order_by=["metrics.missing DESC"])]
    assert got == sorted(ids)
    got = [r.info.run_id for r in client.search_runs([experiment_id],
                                                     order_by=["attributes.start_time DESC"])]
    assert got == sorted(ids)


def test_ordering_with_infinities(client, experiment_id):
    vals = {"pos": float("inf"), "neg": float("-inf"), "zero": 0.0, "big": 1e300}
    rid = {}
    for i, (name, v) in enumerate(vals.items()):
        rid[name] = client.create_run(experiment_id, start_time=100 + i).info.run_id
        client.log_metric(rid[name], "x", v, timestamp=1, step=0)
    names = {v: k for k, v in rid.items()}
    asc = [names[r.info.run_id] for r in client.search_runs([experiment_id],
                                                            order_by=["metrics.x ASC"])]
    assert asc == ["neg", "zero", "big", "pos"]
    found = {names[r.info.run_id] for r in client.search_runs([experiment_id], "metrics.x > 1e301")}
    assert found == {"pos"}
    found = {names[r.info.run_id] for r in client.search_runs([experiment_id], "metrics.x < -1e301")}
    assert found == {"neg"}


# --------------------------------------------------------------------------------- pagination


def _pages(c, max_results, filter_string="", order_by=None):
    pages, token = [], None
    while True:
        res = c.client.search_runs([c.exp_id], filter_string, max_results=max_results,
                                   order_by=order_by, page_token=token)
        pages.append(([c.names[r.info.run_id] for r in res], res.token))
        token = res.token
        if not token:
            return pages
        assert len(pages) < 20


def test_pagination(corpus):
    pages = _pages(corpus, 2)
    assert [p for p, _ in pages] == [["r5", "r4"], ["r3", "r2"], ["r1"]]
    assert pages[0][1] and pages[1][1] and not pages[2][1]


def test_pagination_with_order_and_filter(corpus):
    pages = _pages(corpus, 2, "attributes.status != 'RUNNING'", ["metrics.m ASC"])
    # exactly full last page: no token
    assert [p for p, _ in pages] == [["r1", "r5"], ["r4", "r3"]]
    assert pages[0][1] and not pages[1][1]


def test_single_exactly_full_page_has_no_token(corpus):
    res = corpus.client.search_runs([corpus.exp_id], max_results=5)
    assert len(res) == 5
    assert not res.token
    res = corpus.client.search_runs([corpus.exp_id], max_results=4)
    assert len(res) == 4
    assert res.token


def test_raw_pagination_tokens(corpus, api):
    body = {"experiment_ids": [corpus.exp_id], "max_results": 3}
    first = api.post("runs/search", body).json()
    assert len(first["runs"]) == 3 and first["next_page_token"]
    second = api.post("runs/search", {**body, "page_token": first["next_page_token"]}).json()
    assert len(second["runs"]) == 2
    assert not second.get("next_page_token")
    seen = [r["info"]["run_id"] for r in first["runs"] + second["runs"]]
    assert len(set(seen)) == 5
    resp = api.post("runs/search", {**body, "page_token": "not-a-token!!"})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_max_results_limits(corpus, api):
    assert len(corpus.client.search_runs([corpus.exp_id], max_results=50000)) == 5
    expect_mlflow_error("INVALID_PARAMETER_VALUE", corpus.client.search_runs, [corpus.exp_id],
                        max_results=50001)
    resp = api.post("runs/search", {"experiment_ids": [corpus.exp_id], "max_results": 50001})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")


# --------------------------------------------------------------------------------- view types


def test_run_view_types(client, experiment_id):
    a = client.create_run(experiment_id).info.run_id
    b = client.create_run(experiment_id).info.run_id
    client.delete_run(b)

    def ids(view):
        return {r.info.run_id for r in client.search_runs([experiment_id], run_view_type=view)}

    assert ids(ViewType.ACTIVE_ONLY) == {a}
    assert ids(ViewType.DELETED_ONLY) == {b}
    assert ids(ViewType.ALL) == {a, b}
    assert {r.info.run_id for r in client.search_runs([experiment_id])} == {a}


def test_search_multiple_experiments(client):
    e1 = client.create_experiment(uniq("m1"))
    e2 = client.create_experiment(uniq("m2"))
    a = client.create_run(e1).info.run_id
    b = client.create_run(e2).info.run_id
    client.log_metric(b, "x", 1.0)
    assert {r.info.run_id for r in client.search_runs([e1, e2])} == {a, b}
    assert [r.info.run_id for r in client.search_runs([e1, e2], "metrics.x = 1")] == [b]
    found = client.search_runs([e1, e2])
    assert {r.info.experiment_id for r in found} == {e1, e2}


def test_search_returns_full_run_data(corpus):
    (run,) = corpus.client.search_runs([corpus.exp_id], "attributes.run_name = 'alpha'")
    assert run.data.metrics == {"m": 1.0, "nm": 3.0}
    assert run.data.params == {"model": "cnn", "lr": "0.1"}
    assert run.data.tags["env"] == "prod"
    assert run.data.tags["odd key"] == "x"
    assert run.data.tags["mlflow.runName"] == "alpha"
    assert run.info.status == "FINISHED"
    assert run.info.start_time == 1000 and run.info.end_time == 5000
    assert run.info.user_id == "alice"
    (r2,) = corpus.client.search_runs([corpus.exp_id], "attributes.run_name = 'beta'")
    assert math.isnan(r2.data.metrics["nm"])


def test_repeated_search_sees_every_change(client, experiment_id):
    """The same search, asked twice (the second answer may come from the page cache), after
    each kind of change: every change must show in the next answer."""
    from mlflow.entities import Dataset, DatasetInput

    def page():
        runs = [client.search_runs([experiment_id], "metrics.acc > 0.5",
                                   order_by=["metrics.acc DESC"]) for _ in range(2)]
        assert [r.to_dictionary() for r in runs[0]] == [r.to_dictionary() for r in runs[1]]
        return runs[1]

    def order():
        return [r.info.run_id for r in page()]

    a = client.create_run(experiment_id, run_name="a").info.run_id
    b = client.create_run(experiment_id, run_name="b").info.run_id
    client.log_metric(a, "acc", 0.6)
    client.log_metric(b, "acc", 0.7)
    assert order() == [b, a]
    client.log_metric(a, "acc", 0.9)
    assert order() == [a, b]
    client.set_tag(b, "note", "x")
    assert page()[1].data.tags["note"] == "x"
    client.log_param(b, "lr", "0.1")
    assert page()[1].data.params == {"lr": "0.1"}
    c = client.create_run(experiment_id).info.run_id
    client.log_metric(c, "acc", 0.8)
    assert order() == [a, c, b]
    client.delete_run(c)
    assert order() == [a, b]
    client.restore_run(c)
    assert order() == [a, c, b]
    client.update_run(a, name="renamed")
    assert page()[0].info.run_name == "renamed"
    client.set_terminated(b, "FAILED")
    assert page()[2].info.status == "FAILED"
    client.delete_tag(b, "note")
    assert "note" not in page()[2].data.tags
    client.log_inputs(c, [DatasetInput(Dataset(name="d", digest="1", source_type="local",
                                               source="/tmp/d"))])
    assert [i.dataset.name for i in page()[1].inputs.dataset_inputs] == ["d"]
    client.log_metric(c, "acc", 0.1)
    assert order() == [a, b]


def test_repeated_search_over_two_experiments_sees_a_change_in_either(client):
    e1 = client.create_experiment(uniq("c1"))
    e2 = client.create_experiment(uniq("c2"))
    a = client.create_run(e1).info.run_id

    def ids():
        found = [client.search_runs([e1, e2], "params.p = '1'") for _ in range(2)]
        assert [r.info.run_id for r in found[0]] == [r.info.run_id for r in found[1]]
        return {r.info.run_id for r in found[1]}

    client.log_param(a, "p", "1")
    assert ids() == {a}
    b = client.create_run(e2).info.run_id
    assert ids() == {a}
    client.log_param(b, "p", "1")
    assert ids() == {a, b}
    client.delete_experiment(e1)
    assert ids() == {b}, "deleting an experiment deletes its runs"
    client.restore_experiment(e1)
    assert ids() == {a, b}


# ----------------------------------------------------------------------------- fluent / pandas


def test_fluent_search_runs_dataframe(corpus):
    df = mlflow.search_runs([corpus.exp_id], order_by=["attributes.start_time ASC"])
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 5
    assert [corpus.names[r] for r in df["run_id"]] == ["r1", "r2", "r3", "r4", "r5"]
    for col in ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time",
                "metrics.m", "metrics.nm", "params.model", "params.lr", "tags.env",
                "tags.mlflow.runName"]:
        assert col in df.columns, col
    assert list(df["status"]) == ["FINISHED", "RUNNING", "FAILED", "KILLED", "FINISHED"]
    assert list(df["experiment_id"]) == [corpus.exp_id] * 5
    assert df["metrics.m"][0] == 1.0
    assert math.isnan(df["metrics.m"][3])
    assert math.isnan(df["metrics.nm"][1])
    assert df["params.model"][2] == "rnn"
    assert df["tags.mlflow.runName"][4] == "delta"
    assert df["start_time"][0] == pd.to_datetime(1000, unit="ms", utc=True)
    assert df["end_time"][4] == pd.to_datetime(8000, unit="ms", utc=True)


def test_fluent_search_runs_by_experiment_name_and_filter(corpus):
    df = mlflow.search_runs(experiment_names=[corpus.name], filter_string="tags.env = 'prod'",
                            order_by=["metrics.nm DESC"])
    assert [corpus.names[r] for r in df["run_id"]] == ["r1", "r3"]
    runs = mlflow.search_runs(experiment_names=[corpus.name], output_format="list",
                              filter_string="metrics.m = 2")
    assert {corpus.names[r.info.run_id] for r in runs} == {"r2", "r5"}
    df = mlflow.search_runs([corpus.exp_id], max_results=3)
    assert [corpus.names[r] for r in df["run_id"]] == ["r5", "r4", "r3"]


def test_fluent_search_runs_pages_internally(client, experiment_id):
    n = 120
    ids = {client.create_run(experiment_id).info.run_id for _ in range(n)}
    df = mlflow.search_runs([experiment_id])
    assert set(df["run_id"]) == ids
    # client-side paging with a page size smaller than the total
    seen, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=50, page_token=token)
        seen.extend(r.info.run_id for r in page)
        token = page.token
        if not token:
            break
    assert len(seen) == n and set(seen) == ids


def test_fluent_search_runs_empty(experiment_id):
    df = mlflow.search_runs([experiment_id])
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 0
