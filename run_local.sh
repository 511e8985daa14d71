#!/usr/bin/env bash
# The main job in one command on a fresh machine: sets up (or reuses) the virtualenv
# .venv, installs the project and labels photos (default: the sample photos).
#
# For now this runs the core library through tools/label_photos.py. The next issue
# replaces it with the Beam pipeline (python -m pipeline on the DirectRunner, writing
# Parquet under ./output/ and printing a summary); arguments will stay photo paths
# or patterns followed by options.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e .
if [ $# -eq 0 ]; then
  set -- tests/data/dog.jpg tests/data/chelsea.png tests/data/eagle.jpg
fi
exec .venv/bin/python tools/label_photos.py "$@"
