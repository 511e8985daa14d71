#!/usr/bin/env bash
# Sets up everything on a fresh machine and runs the tests: creates (or reuses) the
# virtualenv .venv, installs the project with its test extra, runs pytest.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k synsets`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
exec .venv/bin/python -m pytest "$@"
