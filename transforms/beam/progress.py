"""Progress of a job whose workers run in this process (the local runners in memory or
in threads): images listed and finished, a progress line every few seconds, and the
steady rate (from the first image finished to the last: without start-up).

Images are tallied as listed before the job drops duplicate URIs, a shuffle that ends
before any image is decoded, so the total is known from the first line on (a URI
listed twice counts twice there, and the time left comes out a little long).

Beam aggregates its metrics only when the job ends, and the FnApiRunner runs the job
inside ``Pipeline.run``, so a progress line cannot come from them: the steps tally in
this module's process-wide ``TALLY`` as well. Where workers are other processes
(``multi_processing``, Dataflow, Flink) the tally stays at zero and nothing is shown.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO, TypeVar

T = TypeVar("T")


class ProgressTally:
    """Thread-safe counts of images listed and finished (labelled, failed or skipped),
    with the times of the first and the last finished."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.listed = self.finished = 0
            self.first_finished_at: float | None = None
            self.last_finished_at: float | None = None

    def add_listed(self, element: T) -> T:
        """Count one listed image; returns ``element`` (for ``beam.Map``)."""
        with self._lock:
            self.listed += 1
        return element

    def add_finished(self, element: T) -> T:
        """Count one finished image; returns ``element`` (for ``beam.Map``)."""
        now = self._clock()
        with self._lock:
            self.finished += 1
            if self.first_finished_at is None:
                self.first_finished_at = now
            self.last_finished_at = now
        return element

    def steady_rate(self) -> float | None:
        """Images per second from the first image finished to the last; None before two."""
        with self._lock:
            if self.finished < 2 or self.last_finished_at <= self.first_finished_at:
                return None
            return (self.finished - 1) / (self.last_finished_at - self.first_finished_at)

    def line(self) -> str:
        """``finished of listed images (rate, time left)``, as the progress line shows it."""
        rate = self.steady_rate()
        with self._lock:
            finished, listed = self.finished, self.listed
        text = f"{finished} of {listed} images done"
        if rate:
            left = max(0, listed - finished) / rate
            text += f" ({rate:.2f} images/s, about {int(left // 60)}:{int(left % 60):02d} left)"
        return text


TALLY = ProgressTally()


# Module functions, not TALLY's bound methods, for beam.Map: Beam pickles them by name,
# and each process tallies in its own TALLY.
def count_listed(element: T) -> T:
    return TALLY.add_listed(element)


def count_finished(element: T) -> T:
    return TALLY.add_finished(element)


class ProgressReporter:
    """Writes ``tally``'s line to ``stream`` every ``interval_s`` seconds while the job
    runs, from a daemon thread (``with ProgressReporter(...):``); silent until an image
    is listed."""

    def __init__(self, tally: ProgressTally = TALLY, interval_s: float = 5.0,
                 stream: TextIO | None = None):
        self._tally, self._interval_s = tally, interval_s
        self._stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, name="progress", daemon=True)

    def __enter__(self) -> "ProgressReporter":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _report(self) -> None:
        while not self._stop.wait(self._interval_s):
            if self._tally.listed:
                print(f"progress: {self._tally.line()}", file=self._stream, flush=True)
