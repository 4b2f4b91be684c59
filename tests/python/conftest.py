"""Shared fixtures for the runledger MLflow-compatibility suite.

The suite drives the official ``mlflow`` Python client against a real server.

By default one ``runledger`` server is started for the whole session:

    "$RUNLEDGER_BIN" serve --data-dir <tmp>/data --bind 127.0.0.1:0

and its URL is parsed from the ``listening on http://...`` line it prints to stdout.

Environment switches:

* ``RUNLEDGER_BIN``       path of the server binary
                          (default ``${CARGO_TARGET_DIR:-target}/release/runledger``).
* ``RUNLEDGER_TEST_URI``  use an already running server at this URL instead of starting one
                          (e.g. a real ``mlflow server`` to validate the suite itself).
* ``RUNLEDGER_TEST_TOKEN``  with RUNLEDGER_TEST_URI: a bearer token for that server.
* ``RUNLEDGER_TEST_DATA_DIR``  with RUNLEDGER_TEST_URI: the server's data/artifact directory,
                          used by the path-traversal test to check nothing escaped it.
* ``RUNLEDGER_TEST_REFERENCE_MLFLOW=1``  the external server is real MLflow: skip the few
                          assertions where the reference says runledger deliberately differs
                          (e.g. JSON 404 bodies for unknown routes).
* ``RUNLEDGER_STARTUP_TIMEOUT``  seconds to wait for the "listening on" line (default 60).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

# These must be in place before the client makes any request: a wrongly-5xx client error must
# fail fast instead of being retried with exponential backoff for minutes.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "30"
# Keep the client quiet, deterministic and offline (no usage telemetry).
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
os.environ.pop("MLFLOW_RUN_ID", None)

import mlflow  # noqa: E402
import requests  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

EXTERNAL_URI = os.environ.get("RUNLEDGER_TEST_URI", "").strip() or None
REFERENCE_MLFLOW = os.environ.get("RUNLEDGER_TEST_REFERENCE_MLFLOW", "") in ("1", "true", "yes")
LISTEN_RE = re.compile(r"listening on (http://\S+)")
TOKEN_RE = re.compile(r"RunLedger admin token: (\S+)")


def shared_data() -> Path:
    """The project's shared test data (models, datasets): `RUNLEDGER_TEST_DATA`, else beside
    the repository."""
    repo = Path(__file__).resolve().parents[2]
    for d in (os.environ.get("RUNLEDGER_TEST_DATA"), repo.parent / "shared" / "data", "/work/shared/data"):
        if d and Path(d).exists():
            return Path(d)
    raise AssertionError("test data shared/data not found: set RUNLEDGER_TEST_DATA")


def _default_bin() -> str:
    target = os.environ.get("CARGO_TARGET_DIR") or "target"
    return str(Path(target) / "release" / "runledger")


def _tail(path: Path, max_chars: int = 20000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<unreadable>"
    return text if len(text) <= max_chars else "...\n" + text[-max_chars:]


class ServerHandle:
    def __init__(self, url, proc=None, data_dir=None, workdir=None, token=None):
        self.url = url.rstrip("/")
        self.token = token
        self.proc = proc
        self.data_dir = Path(data_dir) if data_dir else None
        self.workdir = Path(workdir) if workdir else None

    @property
    def stderr_path(self):
        return self.workdir / "server.stderr.log" if self.workdir else None

    @property
    def stdout_path(self):
        return self.workdir / "server.stdout.log" if self.workdir else None

    def logs(self) -> str:
        if not self.workdir:
            return "<external server: no logs captured>"
        return (
            f"----- server stderr ({self.stderr_path}) -----\n{_tail(self.stderr_path)}\n"
            f"----- server stdout ({self.stdout_path}) -----\n{_tail(self.stdout_path, 5000)}"
        )


_SERVER: ServerHandle | None = None


def _start_server(workdir: Path) -> ServerHandle:
    binary = os.environ.get("RUNLEDGER_BIN") or _default_bin()
    if not Path(binary).is_file():
        pytest.exit(f"runledger binary not found at {binary!r} (set RUNLEDGER_BIN)", returncode=3)
    binary = str(Path(binary).resolve())  # the server runs with cwd=workdir
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    stdout_path = workdir / "server.stdout.log"
    stderr_path = workdir / "server.stderr.log"
    env = dict(os.environ)
    env.setdefault("RUST_BACKTRACE", "1")
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [binary, "serve", "--data-dir", str(data_dir), "--bind", "127.0.0.1:0"],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=str(workdir),
            env=env,
        )
    handle = ServerHandle("", proc, data_dir, workdir)
    timeout = float(os.environ.get("RUNLEDGER_STARTUP_TIMEOUT", "60"))
    deadline = time.monotonic() + timeout
    while True:
        out = stdout_path.read_text(errors="replace")
        m = LISTEN_RE.search(out)
        if m:
            handle.url = m.group(1).rstrip("/")
            t = TOKEN_RE.search(out)
            if not t:
                pytest.exit("runledger printed no admin token on first start\n" + handle.logs(), returncode=3)
            handle.token = t.group(1)
            return handle
        if proc.poll() is not None:
            pytest.exit(
                f"runledger exited with status {proc.returncode} before it was ready\n"
                + handle.logs(),
                returncode=3,
            )
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.exit(
                f"runledger did not print 'listening on http://...' within {timeout}s\n"
                + handle.logs(),
                returncode=3,
            )
        time.sleep(0.05)


def _stop_server(handle: ServerHandle) -> list[str]:
    problems = []
    proc = handle.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            problems.append("server did not exit within 30s of SIGTERM (killed)")
            proc.kill()
            proc.wait()
    else:
        problems.append(f"server exited during the session (status {proc.returncode})")
    if proc.returncode not in (0, None) and not problems:
        problems.append(f"server exited with status {proc.returncode} after SIGTERM")
    stderr = handle.stderr_path.read_text(errors="replace")
    if "panicked" in stderr:
        problems.append("server wrote a panic to stderr")
    return problems


@pytest.fixture(scope="session", autouse=True)
def server(tmp_path_factory):
    """The server under test (session scoped, autouse): sets MLFLOW_TRACKING_URI to it."""
    global _SERVER
    if EXTERNAL_URI:
        data_dir = os.environ.get("RUNLEDGER_TEST_DATA_DIR") or None
        token = os.environ.get("RUNLEDGER_TEST_TOKEN") or None
        handle = ServerHandle(EXTERNAL_URI, None, data_dir, None, token)
    else:
        handle = _start_server(tmp_path_factory.mktemp("runledger"))
    _SERVER = handle
    os.environ["MLFLOW_TRACKING_URI"] = handle.url
    # The official client sends this as `Authorization: Bearer ...` on every request.
    if handle.token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = handle.token
    mlflow.set_tracking_uri(handle.url)
    try:
        yield handle
    finally:
        if handle.proc is not None:
            problems = _stop_server(handle)
            if problems:
                msg = "; ".join(problems)
                # (the server log itself is printed by pytest_terminal_summary)
                pytest.fail(f"runledger server: {msg}", pytrace=False)


@pytest.fixture(autouse=True)
def _server_alive_and_fluent_cleanup(server):
    """Fail fast (with the server's stderr) if the server died; end leftover fluent runs."""
    if server.proc is not None and server.proc.poll() is not None:
        pytest.fail(
            f"runledger server is no longer running (status {server.proc.returncode})\n"
            + server.logs(),
            pytrace=False,
        )
    yield
    while mlflow.active_run() is not None:
        try:
            mlflow.end_run()  # pops the run before talking to the server
        except Exception:  # the run may have been deleted by the test
            pass
    # Forget any experiment activated with mlflow.set_experiment().
    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _SERVER is not None and _SERVER.workdir is not None and exitstatus != 0:
        terminalreporter.section("runledger server log")
        terminalreporter.write_line(_SERVER.logs())


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def auth_headers() -> dict:
    """The administrator's credentials, for raw HTTP calls."""
    token = _SERVER.token if _SERVER else None
    return {"Authorization": f"Bearer {token}"} if token else {}


def authed() -> requests.Session:
    """A requests session that sends the administrator's token."""
    s = requests.Session()
    s.headers.update(auth_headers())
    return s


def uniq(prefix: str = "rl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def tracking_uri(server) -> str:
    return server.url


@pytest.fixture
def client(server) -> MlflowClient:
    return MlflowClient(tracking_uri=server.url)


@pytest.fixture
def experiment_id(client) -> str:
    """A fresh experiment with a unique name."""
    return client.create_experiment(uniq("exp"))


@pytest.fixture
def run_id(client, experiment_id) -> str:
    return client.create_run(experiment_id).info.run_id


def expect_mlflow_error(error_code: str, fn, *args, **kwargs) -> MlflowException:
    """Call fn and assert it raises MlflowException with the given error_code."""
    with pytest.raises(MlflowException) as excinfo:
        fn(*args, **kwargs)
    assert excinfo.value.error_code == error_code, (
        f"expected {error_code}, got {excinfo.value.error_code}: {excinfo.value.message}"
    )
    return excinfo.value


class Api:
    """Minimal raw REST helper (bypasses all client-side behaviour)."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.session = authed()

    def url(self, path: str) -> str:
        if path.startswith("/"):
            return self.base + path
        return f"{self.base}/api/2.0/mlflow/{path}"

    def get(self, path, params=None, **kw):
        return self.session.get(self.url(path), params=params, timeout=60, **kw)

    def post(self, path, body=None, **kw):
        return self.session.post(self.url(path), json=body if body is not None else {},
                                 timeout=60, **kw)

    def raw(self, method: str, raw_path: str, body: bytes | None = None, headers=None):
        """Send a request whose path is transmitted byte-for-byte (no dot-segment removal)."""
        u = urllib.parse.urlsplit(self.base)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            conn.request(method, raw_path, body=body, headers={**auth_headers(), **(headers or {})})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


@pytest.fixture
def api(server) -> Api:
    return Api(server.url)


def assert_api_error(resp, status: int, error_code: str):
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert body["error_code"] == error_code, body
    assert isinstance(body.get("message"), str)
    return body


def assert_empty_ok(resp):
    """200 with `{}` (or an empty body, which the client treats as `{}`)."""
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    if resp.content.strip():
        assert resp.json() == {}, resp.text[:500]
