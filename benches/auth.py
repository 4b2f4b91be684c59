"""What authentication costs on the MLflow hot paths: the shared MLflow load generator against
the same server binary with authentication disabled, with a personal access token (bearer) and
with basic auth (argon2, verified once then cached), rounds interleaved; medians reported.

    python benches/auth.py --bin $CARGO_TARGET_DIR/release/runledger \
        --bench ../shared/bench/mlflow_bench.py [--rounds 3] [--duration 8] [--only a2,b]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

# Runs the load generator with an Authorization header on every request it sends.
WRAPPER = """
import runpy, sys, aiohttp
header = sys.argv.pop(1)
init = aiohttp.ClientSession.__init__
def with_auth(self, *a, **kw):
    if header:
        kw["headers"] = {**(kw.get("headers") or {}), "Authorization": header}
    init(self, *a, **kw)
aiohttp.ClientSession.__init__ = with_auth
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def start(binary: str, work: Path, disabled: bool):
    out = work / "stdout"
    args = [binary, "serve", "--data-dir", str(work / "d"), "--bind", "127.0.0.1:0"]
    if disabled:
        args += ["--auth", "disabled"]
    p = subprocess.Popen(args, stdout=open(out, "w"), stderr=subprocess.DEVNULL, cwd=work)
    for _ in range(600):
        m = re.search(r"listening on (http://\S+)", out.read_text())
        if m:
            t = re.search(r"admin token: (\S+)", out.read_text())
            return p, m.group(1), (t.group(1) if t else None)
        time.sleep(0.05)
    raise SystemExit("server did not start")


def header_for(mode: str, url: str, token: str | None) -> str:
    if mode == "disabled":
        return ""
    if mode == "bearer":
        return f"Bearer {token}"
    password = "benchmark password"
    r = requests.put(f"{url}/api/v1/users/admin/password", json={"password": password},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    r.raise_for_status()
    return "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--only", default="a2,b")
    a = ap.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(a.rounds):
        for mode in ("disabled", "bearer", "basic"):
            with tempfile.TemporaryDirectory() as d:
                work = Path(d)
                p, url, token = start(a.bin, work, mode == "disabled")
                try:
                    header = header_for(mode, url, token)
                    out = work / "bench.json"
                    subprocess.run(
                        [sys.executable, "-c", WRAPPER, header, a.bench, url,
                         "--duration", str(a.duration), "--only", a.only, "--json", str(out)],
                        check=True, stdout=subprocess.DEVNULL,
                    )
                    for row in json.loads(out.read_text())["rows"]:
                        rate = row["req_per_s"]
                        results.setdefault(row["phase"], {}).setdefault(mode, []).append(rate)
                finally:
                    p.terminate()
                    p.wait()
    print("| phase (requests/s) | auth disabled | bearer token | ratio | basic auth | ratio |")
    print("|---|---|---|---|---|---|")
    for phase, by_mode in results.items():
        base = statistics.median(by_mode["disabled"])
        cells = [f"{base:,.0f}"]
        for mode in ("bearer", "basic"):
            m = statistics.median(by_mode[mode])
            cells += [f"{m:,.0f}", f"{m / base:.2f}"]
        print(f"| {phase} | " + " | ".join(cells) + " |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
