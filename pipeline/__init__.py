"""The Apache Beam pipeline: options, wiring and CLI (``python -m pipeline``) around the
work in ``transforms``; the other commands ``python -m pipeline.render``, ``.evaluate``,
``.export``."""
import sys as _sys

if _sys.argv[:1] == ["-m"]:
    # ``python -m pipeline[.command]`` (or ``python -m benchmarks.NAME``, which imports this
    # package first): Python imports this package while it locates the command (argv[0]
    # is "-m" until then), before the command imports Beam and TensorFlow, which log as
    # they load: the console is set up first. Every command loads TensorFlow, the table
    # readers too (through ``transforms``).
    from pipeline.console import configure_console

    configure_console(_sys.argv[1:])
