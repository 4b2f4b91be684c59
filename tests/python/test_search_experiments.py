"""experiments/search: filters, order_by, view types, paging."""

import time
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from conftest import assert_api_error, expect_mlflow_error, uniq


@pytest.fixture(scope="module")
def exps(server):
    """Four experiments sharing a unique prefix, created in order a, b, c, d (c deleted)."""
    client = MlflowClient(server.url)
    prefix = uniq("sx").replace("-", "_")
    ids, names = {}, {}
    specs = [
        ("a", "apple", {"team": "red", "size": "1"}),
        ("b", "Banana", {"team": "blue"}),
        ("c", "cherry", {"team": "red"}),
        ("d", "date", {}),
    ]
    for label, suffix, tags in specs:
        name = f"{prefix}_{suffix}"
        ids[label] = client.create_experiment(name, tags=tags)
        names[label] = name
        time.sleep(0.02)  # distinct creation_time values
    client.delete_experiment(ids["c"])
    return SimpleNamespace(client=client, prefix=prefix, ids=ids, names=names,
                           labels={v: k for k, v in ids.items()})


def _labels(x, filter_string=None, view_type=ViewType.ACTIVE_ONLY, order_by=None, **kw):
    flt = f"name LIKE '{x.prefix}%'"
    if filter_string:
        flt += f" AND {filter_string}"
    res = x.client.search_experiments(view_type=view_type, filter_string=flt,
                                      order_by=order_by, **kw)
    return [x.labels[e.experiment_id] for e in res]


def test_default_order_creation_time_desc(exps):
    assert _labels(exps) == ["d", "b", "a"]


def test_view_types(exps):
    assert _labels(exps, view_type=ViewType.ACTIVE_ONLY) == ["d", "b", "a"]
    assert _labels(exps, view_type=ViewType.DELETED_ONLY) == ["c"]
    assert _labels(exps, view_type=ViewType.ALL) == ["d", "c", "b", "a"]


@pytest.mark.parametrize(
    "flt, expected",
    [
        ("tags.team = 'red'", {"a"}),
        ("tags.team != 'red'", {"b"}),
        ("tags.team LIKE 'r%'", {"a"}),
        ("tags.team ILIKE 'BL%'", {"b"}),
        ("tags.size IS NULL", {"b", "d"}),
        ("tags.size IS NOT NULL", {"a"}),
        ("tags.team = 'red' AND tags.size = '1'", {"a"}),
        ("name ILIKE '%BANANA'", {"b"}),
        ("name LIKE '%banana'", set()),
        ("attribute.name LIKE '%_date'", {"d"}),
    ],
)
def test_filters(exps, flt, expected):
    assert set(_labels(exps, flt, view_type=ViewType.ALL)) - {"c"} == expected


def test_filter_name_equality(exps):
    res = exps.client.search_experiments(filter_string=f"name = '{exps.names['b']}'")
    assert [e.experiment_id for e in res] == [exps.ids["b"]]
    res = exps.client.search_experiments(
        filter_string=f"name != '{exps.names['b']}' AND name LIKE '{exps.prefix}%'"
    )
    assert {exps.labels[e.experiment_id] for e in res} == {"a", "d"}


def test_filter_experiment_id(exps):
    res = exps.client.search_experiments(filter_string=f"experiment_id = '{exps.ids['b']}'")
    assert [e.experiment_id for e in res] == [exps.ids["b"]]


def test_filter_deleted_with_tags(exps):
    assert _labels(exps, "tags.team = 'red'", view_type=ViewType.ALL) == ["c", "a"]


def test_filter_creation_time(exps):
    a = exps.client.get_experiment(exps.ids["a"])
    d = exps.client.get_experiment(exps.ids["d"])
    assert set(_labels(exps, f"creation_time > {a.creation_time}")) == {"b", "d"}
    assert set(_labels(exps, f"creation_time >= {a.creation_time}")) == {"a", "b", "d"}
    assert set(_labels(exps, f"creation_time <= {d.creation_time}")) == {"a", "b", "d"}
    assert set(_labels(exps, f"creation_time < {a.creation_time}")) == set()
    assert set(_labels(exps, f"last_update_time >= {a.creation_time}")) == {"a", "b", "d"}


@pytest.mark.parametrize(
    "order_by, expected",
    [
        (["creation_time ASC"], ["a", "b", "d"]),
        (["creation_time DESC"], ["d", "b", "a"]),
        (["name DESC"], ["d", "a", "b"]),
    ],
)
def test_order_by(exps, order_by, expected):
    assert _labels(exps, order_by=order_by) == expected


def test_order_by_experiment_id(exps):
    # experiment ids are integers in strings: compare them numerically
    by_id = sorted(["a", "b", "d"], key=lambda label: int(exps.ids[label]))
    assert _labels(exps, order_by=["experiment_id ASC"]) == by_id
    assert _labels(exps, order_by=["experiment_id DESC"]) == by_id[::-1]


def test_order_by_name_asc(exps):
    got = _labels(exps, "tags.team IS NOT NULL", view_type=ViewType.ALL, order_by=["name ASC"])
    # Banana vs apple: compare case-insensitively is not specified; only check lowercase ones.
    assert [g for g in got if g != "b"] == ["a", "c"]


def test_pagination(exps):
    seen, token, pages = [], None, []
    while True:
        res = exps.client.search_experiments(
            view_type=ViewType.ALL, max_results=2, page_token=token,
            filter_string=f"name LIKE '{exps.prefix}%'", order_by=["creation_time ASC"],
        )
        pages.append([exps.labels[e.experiment_id] for e in res])
        token = res.token
        if not token:
            break
        assert len(pages) < 10
    # 4 results, page size 2: the last page is exactly full and carries no token
    assert pages == [["a", "b"], ["c", "d"]]
    res = exps.client.search_experiments(
        view_type=ViewType.ALL, max_results=3, filter_string=f"name LIKE '{exps.prefix}%'")
    assert len(res) == 3 and res.token


def test_returned_fields(exps):
    (e,) = exps.client.search_experiments(filter_string=f"name = '{exps.names['a']}'")
    assert e.experiment_id == exps.ids["a"]
    assert e.name == exps.names["a"]
    assert e.lifecycle_stage == "active"
    assert e.tags == {"team": "red", "size": "1"}
    assert e.artifact_location == f"mlflow-artifacts:/{exps.ids['a']}"
    assert isinstance(e.creation_time, int) and isinstance(e.last_update_time, int)


def test_bad_filters(exps, api):
    for bad in ["name = apple", "name LIKE 'a%' OR name LIKE 'b%'", "nope = 'x'",
                "creation_time > 'abc'"]:
        expect_mlflow_error("INVALID_PARAMETER_VALUE", exps.client.search_experiments,
                            filter_string=bad)
        resp = api.post("experiments/search", {"filter": bad, "max_results": 10})
        assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
    expect_mlflow_error("INVALID_PARAMETER_VALUE", exps.client.search_experiments,
                        order_by=["bogus ASC"])
    resp = api.post("experiments/search", {"max_results": 10, "page_token": "%%%bad"})
    assert_api_error(resp, 400, "INVALID_PARAMETER_VALUE")
