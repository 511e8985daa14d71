"""The Apache Beam pipeline: options, wiring and CLI (``python -m pipeline``) around the
work in ``transforms``; the other commands ``python -m pipeline.render``, ``.evaluate``,
``.export``."""
import sys as _sys

if _sys.argv[:1] == ["-m"]:
    # ``python -m pipeline[.command]``: Python imports this package while it locates the
    # command (argv[0] is "-m" until then), before the command imports Beam and
    # TensorFlow, which log as they load: the console is set up first.
    from pipeline.console import configure_console

    _args = _sys.orig_argv
    _command = _args[_args.index("-m") + 1] if "-m" in _args[:-1] else ""
    configure_console(_sys.argv[1:], load_tensorflow=_command in ("pipeline", "pipeline.run",
                                                                    "pipeline.train"))
