"""The OpenAPI document served at /openapi.json and the Swagger UI at /docs, and real responses
checked against the schemas the document gives for them (every key produced is documented,
every required key is produced)."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests

from conftest import uniq, authed

MLFLOW = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def spec(server):
    r = requests.get(f"{server.url}/openapi.json", timeout=30)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_spec_is_openapi_3_with_mlflow_and_native_paths(spec):
    assert re.fullmatch(r"3\.\d+\.\d+", spec["openapi"]), spec["openapi"]
    assert spec["info"]["title"] == "RunLedger"
    paths = spec["paths"]
    for p in (
        f"{MLFLOW}/experiments/create",
        f"{MLFLOW}/runs/log-batch",
        f"{MLFLOW}/metrics/get-history",
        "/api/2.0/mlflow-artifacts/artifacts/{path}",
        "/api/v1/devices",
        "/api/v1/telemetry/batch",
        "/api/v1/analytics/{name}",
        "/api/v1/jobs/{id}/recommendation",
        "/api/v1/registered-models/{name}/versions",
        "/ws/jobs/{id}",
        "/health",
    ):
        assert p in paths, p
    assert set(spec["components"]["securitySchemes"]) >= {"bearer", "basic", "device_key"}
    assert paths["/api/v1/telemetry"]["post"]["security"] == [{"device_key": []}]
    assert paths["/health"]["get"]["security"] == []


def test_docs_are_swagger_ui_without_a_cdn(server):
    r = requests.get(f"{server.url}/docs", timeout=30)
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"].startswith("text/html")
    html = r.text
    assert "swagger-ui" in html
    assert not re.search(r"https?://", html), "the page references a remote URL"
    # Its scripts and styles are served by the server itself.
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not src.startswith("//")
        asset = requests.get(requests.compat.urljoin(r.url, src), timeout=30)
        assert asset.status_code == 200, src
    init = requests.get(f"{server.url}/docs/swagger-initializer.js", timeout=30).text
    assert '"/openapi.json"' in init
    assert not re.search(r"https?://", init)


# ---------------------------------------------------------------------------------------------
# Responses against their schemas
# ---------------------------------------------------------------------------------------------


class Checker:
    def __init__(self, spec):
        self.spec = spec

    def resolve(self, node):
        while "$ref" in node:
            _, _, kind, name = node["$ref"].split("/")
            node = self.spec["components"][kind][name]
        return node

    def schema_for(self, method, path, status):
        op = self.spec["paths"][path][method]
        response = self.resolve(op["responses"][str(status)])
        return response["content"]["application/json"]["schema"]

    def validate(self, value, schema, where="$"):
        schema = self.resolve(schema)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                errors = []
                for option in schema[key]:
                    try:
                        self.validate(value, option, where)
                        break
                    except AssertionError as e:
                        errors.append(str(e))
                else:
                    raise AssertionError(f"{where}: matches no {key} option: {errors}")
        for part in schema.get("allOf", []):
            self.validate(value, part, where)
        if "enum" in schema:
            assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
        types = schema.get("type")
        if types is None:
            return
        types = types if isinstance(types, list) else [types]
        assert any(self.is_type(value, t) for t in types), f"{where}: {value!r} is not {types}"
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for key in schema.get("required", []):
                assert key in value, f"{where}: required key {key!r} missing"
            extra = schema.get("additionalProperties")
            for key, v in value.items():
                if key in props:
                    self.validate(v, props[key], f"{where}.{key}")
                elif isinstance(extra, dict):
                    self.validate(v, extra, f"{where}.{key}")
                elif props:
                    # Strict: every key the server produces must be documented (a free-form
                    # object, with no properties listed, allows any).
                    assert extra is True, f"{where}: undocumented key {key!r}"
        elif isinstance(value, list) and "items" in schema:
            for i, v in enumerate(value):
                self.validate(v, schema["items"], f"{where}[{i}]")

    @staticmethod
    def is_type(value, t):
        return {
            "object": isinstance(value, dict),
            "array": isinstance(value, list),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "null": value is None,
        }[t]

    def check(self, r, method, path, status):
        assert r.status_code == status, (method, path, r.status_code, r.text[:500])
        body = r.json() if r.content.strip() else {}
        self.validate(body, self.schema_for(method, path, status), f"{method} {path} {status}")
        return body


@pytest.fixture(scope="module")
def check(spec):
    return Checker(spec)


def test_mlflow_responses_match_their_schemas(server, check):
    base = server.url + MLFLOW
    s = authed()
    name = uniq("oa")
    r = s.post(f"{base}/experiments/create", json={"name": name, "tags": [{"key": "k", "value": "v"}]})
    exp = check.check(r, "post", f"{MLFLOW}/experiments/create", 200)["experiment_id"]
    r = s.get(f"{base}/experiments/get", params={"experiment_id": exp})
    check.check(r, "get", f"{MLFLOW}/experiments/get", 200)
    r = s.get(f"{base}/experiments/get-by-name", params={"experiment_name": uniq("missing")})
    check.check(r, "get", f"{MLFLOW}/experiments/get-by-name", 404)
    r = s.post(f"{base}/experiments/search", json={"max_results": 1})
    check.check(r, "post", f"{MLFLOW}/experiments/search", 200)
    r = s.get(f"{base}/experiments/search", params={"filter": f"name = '{name}'"})
    check.check(r, "get", f"{MLFLOW}/experiments/search", 200)

    r = s.post(f"{base}/runs/create", json={"experiment_id": exp, "start_time": 1000,
                                            "tags": [{"key": "t", "value": "1"}]})
    run = check.check(r, "post", f"{MLFLOW}/runs/create", 200)["run"]["info"]["run_id"]
    now = int(time.time() * 1000)
    r = s.post(f"{base}/runs/log-batch", json={
        "run_id": run,
        "metrics": [{"key": "loss", "value": 0.5, "timestamp": now, "step": 1},
                    {"key": "nan", "value": "NaN", "timestamp": now}],
        "params": [{"key": "lr", "value": "0.01"}],
    })
    check.check(r, "post", f"{MLFLOW}/runs/log-batch", 200)
    r = s.post(f"{base}/runs/log-inputs", json={"run_id": run, "datasets": [
        {"dataset": {"name": "d", "digest": "abc", "source_type": "local", "source": "{}"},
         "tags": [{"key": "mlflow.data.context", "value": "training"}]}]})
    check.check(r, "post", f"{MLFLOW}/runs/log-inputs", 200)
    r = s.put(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/a/b.txt",
              data=b"hello")
    assert r.status_code == 200, r.text
    r = s.post(f"{base}/runs/update", json={"run_id": run, "status": "FINISHED", "end_time": now})
    check.check(r, "post", f"{MLFLOW}/runs/update", 200)
    r = s.get(f"{base}/runs/get", params={"run_id": run})
    body = check.check(r, "get", f"{MLFLOW}/runs/get", 200)
    assert {m["key"] for m in body["run"]["data"]["metrics"]} == {"loss", "nan"}
    r = s.post(f"{base}/runs/search", json={"experiment_ids": [exp]})
    check.check(r, "post", f"{MLFLOW}/runs/search", 200)
    r = s.get(f"{base}/metrics/get-history", params={"run_id": run, "metric_key": "nan"})
    check.check(r, "get", f"{MLFLOW}/metrics/get-history", 200)
    r = s.get(f"{base}/artifacts/list", params={"run_id": run, "path": "a"})
    check.check(r, "get", f"{MLFLOW}/artifacts/list", 200)
    r = s.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts",
              params={"path": f"{exp}/{run}/artifacts"})
    assert check.check(r, "get", "/api/2.0/mlflow-artifacts/artifacts", 200)["files"]
    r = s.post(f"{base}/runs/set-tag", json={"run_id": run})
    check.check(r, "post", f"{MLFLOW}/runs/set-tag", 400)
    r = s.post(f"{base}/logged-models/search", json={"experiment_ids": [exp]})
    check.check(r, "post", f"{MLFLOW}/logged-models/search", 200)
    r = s.get(f"{server.url}/api/3.0/mlflow/server-info")
    check.check(r, "get", "/api/3.0/mlflow/server-info", 200)
    r = s.get(f"{server.url}/health")
    check.check(r, "get", "/health", 200)


def test_native_responses_match_their_schemas(server, check):
    s = authed()
    r = s.post(f"{server.url}/api/v1/devices", json={"name": uniq("dev"), "tags": {"site": "a"}})
    body = check.check(r, "post", "/api/v1/devices", 201)
    device, key = body["device"]["device_id"], body["api_key"]
    r = s.get(f"{server.url}/api/v1/devices", params={"limit": 1})
    check.check(r, "get", "/api/v1/devices", 200)
    r = s.get(f"{server.url}/api/v1/devices/{device}")
    check.check(r, "get", "/api/v1/devices/{id}", 200)
    r = s.get(f"{server.url}/api/v1/devices/{uuid.uuid4().hex}")
    check.check(r, "get", "/api/v1/devices/{id}", 404)

    auth = {"Authorization": f"Bearer {key}"}
    good = {"event_id": str(uuid.uuid4()), "ts": int(time.time() * 1000), "kind": "inference",
            "latency_ms": 3.5}
    r = s.post(f"{server.url}/api/v1/telemetry", json=good, headers=auth)
    check.check(r, "post", "/api/v1/telemetry", 200)
    bad = {"event_id": "nope", "kind": "inference"}
    r = s.post(f"{server.url}/api/v1/telemetry/batch", params={"mode": "partial"},
               json=[dict(good, event_id=str(uuid.uuid4())), bad], headers=auth)
    assert check.check(r, "post", "/api/v1/telemetry/batch", 200)["rejected"]
    r = s.post(f"{server.url}/api/v1/telemetry/batch", json=[bad], headers=auth)
    body = check.check(r, "post", "/api/v1/telemetry/batch", 400)
    assert body["error"]["code"] == "INVALID_EVENTS"
    r = s.post(f"{server.url}/api/v1/telemetry", json=good)
    check.check(r, "post", "/api/v1/telemetry", 401)

    r = s.get(f"{server.url}/api/v1/analytics/dashboard")
    check.check(r, "get", "/api/v1/analytics/{name}", 200)
    r = s.get(f"{server.url}/api/v1/analytics/nope")
    check.check(r, "get", "/api/v1/analytics/{name}", 404)
    r = s.get(f"{server.url}/api/v1/jobs", params={"limit": 5})
    check.check(r, "get", "/api/v1/jobs", 200)
    r = s.get(f"{server.url}/api/v1/registered-models/{uniq('m')}/versions")
    check.check(r, "get", "/api/v1/registered-models/{name}/versions", 200)
