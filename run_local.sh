#!/usr/bin/env bash
# The main job in one command on a fresh machine: sets up (or reuses) the virtualenv
# .venv, installs the project, and runs the Beam pipeline locally over the sample photos
# or over the file pattern given first; further arguments go to `python -m pipeline`.
#
#   ./run_local.sh                                   # sample photos, top-5 classes
#   ./run_local.sh '/photos/**/*.jpg' --synsets dog,n02121620
#
# Output goes to ./output/<date-time>/ (labels-*.parquet, errors-*.parquet, run.json),
# pictures of the labels to ./output/<date-time>/viz/ (index.html, one PNG per image).
# Paths given (the pattern, --manifest, --synsets files, ...) and ./output are those of
# the folder it is run from; the virtualenv and the sample photos are the project's.
# The runner is FnApiRunner, the engine the DirectRunner uses for batch jobs, named
# explicitly so that an offline machine does not wait for the Prism download.
set -euo pipefail
project="$(cd "$(dirname "$0")" && pwd)"
python="$project/.venv/bin/python"
[ -x "$python" ] || python3 -m venv "$project/.venv"
# Installed once per version of setup.py, pip's and setuptools' output to a log shown
# only if the install fails.
stamp="$project/.venv/.installed-viz-$(sha256sum "$project/setup.py" | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "installing the project into .venv (once; log: $project/.venv/install.log) ..." >&2
  if ! (cd "$project" && "$python" -m pip install -e '.[viz]' > .venv/install.log 2>&1); then
    cat "$project/.venv/install.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
# The sample photos keep their per-scale maps, and dog.jpg's are drawn side by side.
inputs=(--input "$project/tests/data/*.jpg" --input "$project/tests/data/*.png" --keep-scale-maps)
render_extra=(--scales-of dog.jpg)
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then
  inputs=(--input "$1")
  render_extra=()
  shift
fi
output="output/$(date +%Y%m%d-%H%M%S)"
# The job itself runs two bundles at a time in threads here (decoding and boxes overlap
# the model; each model call on half the cores), the fastest local setting measured
# (benchmarks/README.md), unless --direct_num_workers or --direct_running_mode is given.
"$python" -m pipeline "${inputs[@]}" --output "$output" --runner FnApiRunner "$@"
# Pictures: each photo beside its heatmaps and boxes, and a sortable contact sheet (of
# the first 500 images: about 0.5 s and 2 MB each; python -m pipeline.render does more).
"$python" -m pipeline.render --labels "$output" --out "$output/viz" --limit 500 \
  "${render_extra[@]}"
