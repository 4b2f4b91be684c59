"""Proxied artifacts (/api/2.0/mlflow-artifacts/artifacts/...): upload, list, download, delete,
path-traversal protection."""

import json
import os
import urllib.parse
import uuid
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.exceptions import MlflowException

from conftest import assert_api_error, uniq

ART = "/api/2.0/mlflow-artifacts/artifacts"


def _listing(client, run_id, path=None):
    return [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path)]


def _rel_root(run):
    """artifact_uri 'mlflow-artifacts:/<exp>/<run>/artifacts' -> '<exp>/<run>/artifacts'."""
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/")
    return uri[len("mlflow-artifacts:/"):].lstrip("/")


def test_artifact_uri_is_proxied(client, run_id):
    run = client.get_run(run_id)
    assert run.info.artifact_uri == (
        f"mlflow-artifacts:/{run.info.experiment_id}/{run_id}/artifacts"
    )


def test_log_artifact_list_and_download(client, experiment_id, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("hello world\n")
    binary = tmp_path / "blob.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17) + b"\x00" * 100
    binary.write_bytes(payload)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(src))
        mlflow.log_artifact(str(binary), artifact_path="bin/nested")
    rid = run.info.run_id

    assert _listing(client, rid) == [("bin", True, None), ("hello.txt", False, 12)]
    assert _listing(client, rid, "bin") == [("bin/nested", True, None)]
    assert _listing(client, rid, "bin/nested") == [("bin/nested/blob.bin", False, len(payload))]

    dst = tmp_path / "dl"
    dst.mkdir()
    local = client.download_artifacts(rid, "hello.txt", str(dst))
    assert Path(local).read_text() == "hello world\n"
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="bin/nested/blob.bin",
                                                dst_path=str(dst))
    assert Path(local).read_bytes() == payload


def test_log_artifacts_directory_and_download_dir(client, experiment_id, tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.json").write_text('{"b": 1}')
    (src / "sub" / "deeper" / "c.csv").write_text("x,y\n1,2\n")
    (src / "file with space.txt").write_text("spaced")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifacts(str(src), artifact_path="data")
    rid = run.info.run_id

    assert _listing(client, rid) == [("data", True, None)]
    assert _listing(client, rid, "data") == [
        ("data/a.txt", False, 1),
        ("data/file with space.txt", False, 6),
        ("data/sub", True, None),
    ]
    assert _listing(client, rid, "data/sub") == [
        ("data/sub/b.json", False, 8),
        ("data/sub/deeper", True, None),
    ]

    dst = tmp_path / "dl"
    dst.mkdir()
    local = Path(client.download_artifacts(rid, "data", str(dst)))
    assert (local / "a.txt").read_text() == "A"
    assert (local / "sub" / "b.json").read_text() == '{"b": 1}'
    assert (local / "sub" / "deeper" / "c.csv").read_text() == "x,y\n1,2\n"
    assert (local / "file with space.txt").read_text() == "spaced"

    dst2 = tmp_path / "dl-all"
    dst2.mkdir()
    root = Path(mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(dst2)))
    assert (root / "data" / "sub" / "deeper" / "c.csv").read_text() == "x,y\n1,2\n"


def test_log_text_and_dict(client, experiment_id, tmp_path):
    d = {"a": 1, "b": [1, 2, 3], "c": {"nested": "yes"}}
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("some text ✓", "notes/readme.txt")
        mlflow.log_dict(d, "config.json")
        mlflow.log_dict(d, "config.yaml")
    rid = run.info.run_id
    names = {p for p, _, _ in _listing(client, rid)}
    assert names == {"notes", "config.json", "config.yaml"}
    base = f"runs:/{rid}"
    assert mlflow.artifacts.load_text(f"{base}/notes/readme.txt") == "some text ✓"
    assert mlflow.artifacts.load_dict(f"{base}/config.json") == d
    assert yaml.safe_load(mlflow.artifacts.load_text(f"{base}/config.yaml")) == d
    local = client.download_artifacts(rid, "config.json", str(tmp_path))
    assert json.loads(Path(local).read_text()) == d


def test_client_log_artifact_and_text(client, run_id, tmp_path):
    f = tmp_path / "model.pkl"
    f.write_bytes(b"\x80\x04binary")
    client.log_artifact(run_id, str(f), artifact_path="model")
    client.log_text(run_id, "t", "model/info.txt")
    assert _listing(client, run_id, "model") == [
        ("model/info.txt", False, 1),
        ("model/model.pkl", False, 8),
    ]


def test_list_empty_and_missing(client, run_id):
    assert client.list_artifacts(run_id) == []
    assert client.list_artifacts(run_id, "does/not/exist") == []


def test_list_file_path_returns_empty(client, run_id, tmp_path):
    f = tmp_path / "single.txt"
    f.write_text("x")
    client.log_artifact(run_id, str(f))
    assert client.list_artifacts(run_id, "single.txt") == []


def test_download_missing_artifact_fails(client, run_id, tmp_path):
    with pytest.raises(MlflowException):
        client.download_artifacts(run_id, "nope.txt", str(tmp_path))


def test_raw_artifact_endpoints(api, client, run_id):
    run = client.get_run(run_id)
    root = _rel_root(run)
    resp = api.session.put(api.url(f"{ART}/{root}/raw/x.txt"), data=b"raw-bytes",
                           headers={"Content-Type": "text/plain"}, timeout=60)
    assert resp.status_code == 200, resp.text
    resp = api.session.put(api.url(f"{ART}/{root}/raw/bin.dat"), data=b"\x00\x01\x02",
                           headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert resp.status_code == 200, resp.text

    resp = api.get(f"{ART}/{root}/raw/x.txt")
    assert resp.status_code == 200
    assert resp.content == b"raw-bytes"
    resp = api.get(f"{ART}/{root}/raw/bin.dat")
    assert resp.status_code == 200 and resp.content == b"\x00\x01\x02"

    resp = api.get(ART, params={"path": f"{root}/raw"})
    assert resp.status_code == 200
    files = sorted(resp.json()["files"], key=lambda f: f["path"])
    assert files == [
        {"path": "bin.dat", "is_dir": False, "file_size": 3},
        {"path": "x.txt", "is_dir": False, "file_size": 9},
    ]
    resp = api.get(ART, params={"path": root})
    assert resp.json()["files"] == [{"path": "raw", "is_dir": True}]
    # unknown directory and file paths list as {}
    resp = api.get(ART, params={"path": f"{root}/nope"})
    assert resp.status_code == 200 and resp.json().get("files", []) == []
    resp = api.get(ART, params={"path": f"{root}/raw/x.txt"})
    assert resp.status_code == 200 and resp.json().get("files", []) == []

    assert_api_error(api.get(f"{ART}/{root}/raw/missing.txt"), 404, "RESOURCE_DOES_NOT_EXIST")

    resp = api.session.delete(api.url(f"{ART}/{root}/raw/x.txt"), timeout=60)
    assert resp.status_code == 200
    assert_api_error(api.get(f"{ART}/{root}/raw/x.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert [p for p, _, _ in _listing(client, run_id, "raw")] == ["raw/bin.dat"]


def test_logged_models_search(api, experiment_id):
    resp = api.post("logged-models/search",
                    {"experiment_ids": [experiment_id], "filter": "name = 'model'"})
    assert resp.status_code == 200, resp.text
    assert resp.json().get("models", []) == []


# ------------------------------------------------------------------------------ path traversal


def _all_files_named(root: Path, marker: str):
    hits = []
    for dirpath, _, filenames in os.walk(root):
        hits.extend(os.path.join(dirpath, f) for f in filenames if marker in f)
    return hits


def test_path_traversal_rejected(api, client, run_id, server):
    root = _rel_root(client.get_run(run_id))
    marker = f"escape-{uuid.uuid4().hex}"
    abs_target = f"/tmp/{marker}-abs.txt"
    # `..` segments (raw or percent-encoded) and absolute paths: 400 INVALID_PARAMETER_VALUE.
    strict = [
        f"{ART}/{root}/../../../../{marker}-1.txt",
        f"{ART}/../{marker}-2.txt",
        f"{ART}/{root}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{marker}-3.txt",
        f"{ART}/%2e%2e/{marker}-4.txt",
        f"{ART}/%2E%2E/%2E%2E/{marker}-5.txt",
        f"{ART}/{root}/x/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{marker}-6.txt",
        f"{ART}/{abs_target}",  # .../artifacts//tmp/... (absolute path)
    ]
    for path in strict:
        status, headers, body = api.raw("PUT", path, body=b"pwned",
                                        headers={"Content-Type": "text/plain"})
        assert status == 400, (path, status, body[:300])
        assert json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE", (path, body[:300])
    for path in [f"{ART}/{root}/../../../../etc/passwd", f"{ART}/%2e%2e/%2e%2e/etc/passwd"]:
        status, _, body = api.raw("GET", path)
        assert status == 400, (path, status, body[:300])
    for p in ["..", "/etc", f"{root}/../../.."]:
        assert_api_error(api.get(ART, params={"path": p}), 400, "INVALID_PARAMETER_VALUE")

    # The run's artifact tree is unchanged.
    assert client.list_artifacts(run_id) == []

    # Encoded slashes: MLflow decodes them (-> 400 like above); a server that keeps `%2F` as
    # part of a file name is not traversing either. Either way: no 5xx and nothing escapes.
    lenient = [
        f"{ART}/{root}/..%2f..%2f..%2f..%2f{marker}-7.txt",
        f"{ART}/%2E%2E%2F%2E%2E%2F{marker}-8.txt",
        f"{ART}/{urllib.parse.quote(abs_target + '-enc', safe='')}",
    ]
    for path in lenient:
        status, headers, body = api.raw("PUT", path, body=b"pwned",
                                        headers={"Content-Type": "text/plain"})
        assert status == 400 or 200 <= status < 300, (path, status, body[:300])
        if status == 400:
            assert json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE", (path, body[:300])

    assert not os.path.exists(abs_target)
    assert not os.path.exists(abs_target + "-enc")
    # A path made of ".." segments can only land in an ancestor of the directory it started
    # from: scan every ancestor of the data dir (non-recursively) and the session dir
    # outside the data dir.
    places = [Path("/"), Path("/tmp"), Path.cwd()]
    if server.data_dir is not None:
        places += list(server.data_dir.resolve().parents)
    hits = [str(p / name) for p in places if p.is_dir() for name in os.listdir(p) if marker in name]
    if server.workdir is not None:
        inside = str(server.data_dir) + os.sep
        hits += [h for h in _all_files_named(server.workdir, marker) if not h.startswith(inside)]
    assert hits == []


def test_artifact_file_names_with_special_chars(client, run_id, tmp_path):
    name = f"weird name+{uniq('x')}(1)&=.txt"
    f = tmp_path / name
    f.write_text("ok")
    client.log_artifact(run_id, str(f), artifact_path="dir with space")
    assert _listing(client, run_id, "dir with space") == [(f"dir with space/{name}", False, 2)]
    dst = tmp_path / "dl"
    dst.mkdir()
    local = client.download_artifacts(run_id, f"dir with space/{name}", str(dst))
    assert Path(local).read_text() == "ok"
