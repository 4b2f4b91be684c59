#!/usr/bin/env bash
# The project's single test command:
#   1. create/reuse the Python virtualenv with the official MLflow client,
#   2. build and unit-test the Rust server (release, --locked),
#   3. run the MLflow-client compatibility suite (tests/python) against the built binary.
#
# Environment:
#   RUNLEDGER_VENV     virtualenv location (default: $HOME/.cache/runledger/venv)
#   CARGO_TARGET_DIR   respected by cargo and used to locate the binary (default: target)
# Extra arguments are passed to pytest (e.g. `tests/run.sh -k search -x`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

section() {
    printf '\n==== %s ====\n' "$*"
}

# ------------------------------------------------------------------------------------------
section "Python environment"
VENV="${RUNLEDGER_VENV:-$HOME/.cache/runledger/venv}"
REQ="$REPO_ROOT/tests/python/requirements.txt"
STAMP="$VENV/.runledger-requirements.txt"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtualenv at $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
fi
if [ -f "$STAMP" ] && cmp -s "$REQ" "$STAMP"; then
    echo "requirements unchanged; reusing $VENV"
else
    echo "installing $REQ into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    cp "$REQ" "$STAMP"
fi
"$VENV/bin/python" -c 'import mlflow, sys; print(f"python {sys.version.split()[0]}, mlflow {mlflow.__version__}")'

# ------------------------------------------------------------------------------------------
section "cargo build --release --locked"
cargo build --release --locked

section "cargo test --release --locked"
cargo test --release --locked

# ------------------------------------------------------------------------------------------
section "MLflow client compatibility suite (pytest)"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in
    /*) ;;
    *) TARGET_DIR="$REPO_ROOT/$TARGET_DIR" ;;
esac
export RUNLEDGER_BIN="$TARGET_DIR/release/runledger"
if [ ! -x "$RUNLEDGER_BIN" ]; then
    echo "error: server binary not found at $RUNLEDGER_BIN" >&2
    exit 1
fi
echo "RUNLEDGER_BIN=$RUNLEDGER_BIN"

# Always test the freshly built binary, never a server named by the caller's environment.
unset RUNLEDGER_TEST_URI RUNLEDGER_TEST_DATA_DIR RUNLEDGER_TEST_REFERENCE_MLFLOW
unset MLFLOW_TRACKING_URI MLFLOW_EXPERIMENT_ID MLFLOW_EXPERIMENT_NAME MLFLOW_RUN_ID
export PYTHONDONTWRITEBYTECODE=1

set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/python "$@"
status=$?
set -e

if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
if [ "$status" -eq 0 ]; then
    section "all tests passed"
else
    section "pytest failed (exit status $status)"
fi
exit "$status"
