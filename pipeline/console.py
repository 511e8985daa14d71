"""What the commands print: by default what the job does, its progress and the warnings a
user can act on; with ``--verbose``, every library's log too. Set up before TensorFlow
and Beam are imported, as both log while they load."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Callable, Iterator, NoReturn, Sequence

VERBOSE_FLAG = "--verbose"
# Warnings that ask nothing of the user, left out unless --verbose:
UNACTIONABLE = (
    # Beam without its gcp extra, when it loads its BigQuery clients (this job uses none).
    "apitools not found, and bigquery client libraries are not available",
    # Beam's RunInference without PyTorch installed: its memory probe is off (Beam imports
    # `resource` together with its torch-based model manager).
    "Resource module is not available for current platform",
    # Beam on arguments it does not know (twice): the commands refuse each one themselves,
    # as an unknown option or an argument that is no option's value, and say what to do.
    "Discarding unparseable args",
)
# ... and those containing these: Beam looks for Google's default credentials five
# times, logging each failure with its traceback, before it says once (that line kept)
# that it connects to Cloud Storage anonymously (a GCS emulator, public buckets).
UNACTIONABLE_PARTS = ("before retrying _get_credentials_with_retrys",)
# Our own loggers: what the job is doing, at INFO.
OWN_LOGGERS = ("pipeline", "transforms")
# A shell's exit status for a process stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED = 130


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block: for lines C++ libraries write before
    their own logging is set up (TensorFlow's absl and oneDNN notes while it loads, which
    ``TF_CPP_MIN_LOG_LEVEL`` does not reach). Python's own errors are printed after it."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class DropUnactionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(UNACTIONABLE)
                    or any(part in message for part in UNACTIONABLE_PARTS))


def configure_console(argv: Sequence[str]) -> bool:
    """Logging for a command line ``argv``; returns whether it asks for ``--verbose``.
    Quiet: TensorFlow's C++ start-up lines off (``TF_CPP_MIN_LOG_LEVEL`` 2 unless set,
    and TensorFlow loaded here with the native stderr silenced), other libraries at
    WARNING without the unactionable ones, ours at INFO."""
    verbose = VERBOSE_FLAG in argv
    root = logging.getLogger()
    if root.handlers:  # configured already (a second command in this process, a test)
        return verbose
    handler = logging.StreamHandler()
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.INFO)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.addFilter(DropUnactionable())
        root.setLevel(logging.WARNING)
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
    root.addHandler(handler)
    if not verbose:
        with native_stderr_silenced():
            import tensorflow  # noqa: F401  (loaded here, quietly, once for the process)
    return verbose


def exit_with(command: Callable[[], int | None], interrupted: str) -> NoReturn:
    """Exit with ``command()``'s code. Ctrl-C prints one line, ``interrupted``: what the
    command left unfinished and what to do, and exits 130 at once."""
    try:
        code = command()
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Now, not through the interpreter's shutdown: threads of Beam's engine, TensorFlow
        # or a filesystem client may still be inside native code, and tearing them down
        # aborts the process.
        os._exit(INTERRUPTED)
    sys.exit(code)
