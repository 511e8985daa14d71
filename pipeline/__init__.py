"""The Apache Beam pipeline: options, wiring and CLI (``python -m pipeline``) around the
work in ``transforms``."""
