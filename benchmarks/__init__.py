"""Benchmark scripts: ``python -m benchmarks.NAME`` (figures in benchmarks/README.md)."""
import sys as _sys

if _sys.argv[:1] == ["-m"]:
    # As quiet as the job's commands: the console set up before the script imports
    # TensorFlow, which logs as it loads.
    from pipeline.console import configure_console

    configure_console(_sys.argv[1:])
