#!/usr/bin/env bash
# Sets up everything on a fresh machine and runs the tests: creates (or reuses) the
# virtualenv .venv, installs the project with its test extra, installs Debian's Chromium
# for the contact-sheet test when running as root (otherwise that test skips and says
# how to install it), runs pytest.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k synsets`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# Debian's Chromium, driven by Playwright: `playwright install` would download a browser,
# which an offline machine cannot.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
