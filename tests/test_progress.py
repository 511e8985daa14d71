"""The progress tally and line of jobs whose workers run in this process."""
import io
import threading
import time

from transforms.beam.progress import ProgressReporter, ProgressTally


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_steady_rate_runs_from_the_first_image_done_to_the_last():
    clock = FakeClock()
    tally = ProgressTally(clock)
    for uri in ("a", "b", "c", "d", "e"):
        assert tally.add_listed(uri) == uri
    assert tally.line() == "0 of 5 images done"
    clock.now = 130.0  # start-up: not part of the rate
    tally.add_finished("a")
    assert tally.steady_rate() is None
    clock.now = 131.0
    tally.add_finished("b")
    clock.now = 132.0
    tally.add_finished("c")
    assert tally.steady_rate() == 1.0
    assert tally.line() == "3 of 5 images done (1.00 images/s, about 0:02 left)"
    tally.reset()
    assert (tally.listed, tally.finished, tally.steady_rate()) == (0, 0, None)


def test_counts_from_many_threads_are_not_lost():
    tally = ProgressTally()

    def finish():
        for _ in range(10_000):
            tally.add_finished(None)

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tally.finished == 40_000


def test_the_reporter_writes_lines_while_the_job_runs_and_stops_with_it():
    tally, stream = ProgressTally(), io.StringIO()
    with ProgressReporter(tally, interval_s=0.01, stream=stream):
        time.sleep(0.05)
        assert stream.getvalue() == ""  # nothing listed yet: silent
        tally.add_listed("a")
        deadline = time.monotonic() + 5
        while "progress: 0 of 1 images done" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "progress: 0 of 1 images done\n" in stream.getvalue()
    written = stream.getvalue()
    time.sleep(0.05)
    assert stream.getvalue() == written  # stopped with the with-block
