#!/usr/bin/env bash
# Submit the weak-labelling job to a Flink cluster through Beam's portable runner.
#
#   JOB_ENDPOINT=jobserver:8099 WORKER_POOL=localhost:50000 deploy/flink/submit.sh \
#       --input 'hdfs-or-s3-pattern' --output 's3://bucket/labels/{date}' [options…]
#
# JOB_ENDPOINT: a Beam Flink job server (apache/beam_flink1.18_job_server, started with
#   --flink-master=FLINK_HOST:8081); "embed" runs one in this process (local testing).
# WORKER_POOL: host:port of `python -m apache_beam.runners.worker.worker_pool_main
#   --service_port=PORT` running beside every task manager, in an environment where this
#   package is installed (pip install .). Set WORKER_IMAGE instead to run SDK workers
#   in Docker from the GPU worker image (deploy/gpu-worker.Dockerfile).
set -euo pipefail
: "${JOB_ENDPOINT:?set JOB_ENDPOINT to the Flink job server, e.g. jobserver:8099}"
if [ -n "${WORKER_IMAGE:-}" ]; then
  environment=(--environment_type DOCKER --environment_config "$WORKER_IMAGE")
else
  : "${WORKER_POOL:?set WORKER_POOL (host:port of a Beam worker pool) or WORKER_IMAGE}"
  environment=(--environment_type EXTERNAL --environment_config "$WORKER_POOL")
fi
PYTHON="${PYTHON:-python3}"
exec "$PYTHON" -m pipeline --runner PortableRunner --job_endpoint "$JOB_ENDPOINT" \
  "${environment[@]}" "$@"
