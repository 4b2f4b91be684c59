#!/usr/bin/env bash
# RunLedger vs MLflow on the same machine in the same run, with the shared MLflow load
# generator (only the URI differs), then with the Rust one (benches/mlflow_load/), which is
# not CPU-bound where the Python client is. Writes benches/results/<date>/ and prints a summary.
#
#   benches/run.sh [--duration S]        (default 20 s per phase)
#
# Needs: the release build, and Python with mlflow + aiohttp (tests/run.sh's virtualenv).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=20
[ "${1:-}" = "--duration" ] && DURATION="$2"
VENV="${RUNLEDGER_VENV:-$HOME/.cache/runledger/venv}"
TARGET="${CARGO_TARGET_DIR:-target}"
BENCH="${RUNLEDGER_MLFLOW_BENCH:-../shared/bench/mlflow_bench.py}"
OUT="benches/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
[ -x "$VENV/bin/python" ] || { echo "missing $VENV: run tests/run.sh first" >&2; exit 1; }
"$VENV/bin/python" -c 'import mlflow, aiohttp' 
cargo build --release --locked
cargo bench --locked --bench mlflow_load --no-run
# The Rust load generator against URI, writing $OUT/rust-NAME.json.
rust_load() { cargo bench --locked --bench mlflow_load -- "$1" --duration "$DURATION" --json "$OUT/rust-$2.json" | tee "$OUT/rust-$2.txt" || true; }
WORK=$(mktemp -d)
cleanup() { kill "${RL_PID:-}" "${MF_PID:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== fsync cost (before)"
"$VENV/bin/python" benches/fsync_probe.py "$WORK" | tee "$OUT/fsync-before.json"

echo "== RunLedger"
RL_PORT=$(port)
# Authentication off, like the MLflow server it is compared with (benches/auth.py measures its cost).
"$TARGET/release/runledger" serve --data-dir "$WORK/rl" --bind "127.0.0.1:$RL_PORT" --auth disabled > "$WORK/rl.out" 2> "$OUT/runledger.stderr" &
RL_PID=$!
until grep -q "listening on" "$WORK/rl.out" 2>/dev/null; do sleep 0.2; done
# Peak resident memory of the server while the load runs.
( peak=0; while kill -0 $RL_PID 2>/dev/null; do
    r=$(ps -o rss= -p $RL_PID 2>/dev/null | tr -d ' '); [ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" > "$OUT/runledger-peak-rss-kb"
    sleep 0.5; done ) &
"$VENV/bin/python" "$BENCH" "http://127.0.0.1:$RL_PORT" --duration "$DURATION" --json "$OUT/runledger.json" | tee "$OUT/runledger.txt" || true
rust_load "http://127.0.0.1:$RL_PORT" runledger
curl -s "http://127.0.0.1:$RL_PORT/metrics" > "$OUT/runledger-metrics.txt" || true
kill $RL_PID; wait $RL_PID || true

echo "== MLflow (SQLite backend)"
MF_PORT=$(port)
"$VENV/bin/mlflow" server --backend-store-uri "sqlite:///$WORK/mlflow.db" --artifacts-destination "$WORK/mlflow-art" \
  --host 127.0.0.1 --port "$MF_PORT" > "$OUT/mlflow.stdout" 2> "$OUT/mlflow.stderr" &
MF_PID=$!
until curl -sf "http://127.0.0.1:$MF_PORT/health" >/dev/null; do sleep 0.5; done
"$VENV/bin/python" "$BENCH" "http://127.0.0.1:$MF_PORT" --duration "$DURATION" --json "$OUT/mlflow.json" | tee "$OUT/mlflow.txt" || true
rust_load "http://127.0.0.1:$MF_PORT" mlflow
kill $MF_PID; wait $MF_PID || true
MF_PID=

echo "== fsync cost (after)"
"$VENV/bin/python" benches/fsync_probe.py "$WORK" | tee "$OUT/fsync-after.json"

{ echo "### Python load generator"; "$VENV/bin/python" benches/summarize.py "$OUT"
  echo; echo "### Rust load generator"; "$VENV/bin/python" benches/summarize.py "$OUT" rust-; } | tee "$OUT/summary.md"
