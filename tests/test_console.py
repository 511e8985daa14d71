"""What `python -m pipeline` prints: what it does, its progress and warnings to act on;
with --verbose the libraries' logs too."""
import errno
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.console import DropUnactionable

from conftest import DATA

REPO = Path(__file__).resolve().parent.parent


def run_job(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    # oneDNN on, as TensorFlow has it by default on Intel CPUs (not on AMD's, where it
    # prints nothing): its note as TensorFlow loads is a C++ line the quiet mode must hide.
    env = {**os.environ, "FCN_WEAK_LABELS_CACHE": str(tmp_path / "cache"),
           "TF_ENABLE_ONEDNN_OPTS": "1"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--input", str(DATA / "dog.jpg"), "--output",
         str(tmp_path / "out"), "--overwrite", "--runner", "FnApiRunner", *flags],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_a_default_run_prints_nothing_that_asks_nothing_of_the_user(tmp_path):
    # A fresh weights cache: the first run on a machine converts the weights too, which
    # once started TensorFlow before the workers could set its threads.
    job = run_job(tmp_path)
    assert job.returncode == 0, job.stderr
    assert "1 images: 1 labelled, 0 failed" in job.stdout
    lines = job.stderr.splitlines()
    assert any(line.startswith("INFO transforms.beam.inference: loading efficientnet_lite0")
               for line in lines), job.stderr
    assert all(line.startswith(("INFO ", "progress: ")) for line in lines), job.stderr

    verbose = run_job(tmp_path, "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    # (Beam's "apitools not found" too, where it lacks its gcp extra; the tests install it.)
    for chatter in ("oneDNN", "INFO apache_beam"):
        assert chatter in verbose.stderr


def test_a_mistaken_argument_prints_one_line_that_says_what_to_do(tmp_path):
    # Beam's own note on the arguments it does not know (twice) used to come first.
    for flags, error in ((["--synset", "dog"], "error: unknown option --synset; did you mean"),
                         ([str(DATA / "eagle.jpg")], "error: unexpected argument '")):
        job = run_job(tmp_path, *flags)
        assert job.returncode == 2 and job.stderr.startswith(error), job.stderr
        assert len(job.stderr.splitlines()) == 1, job.stderr
    shown = subprocess.run([sys.executable, "-m", "pipeline.export", "--labels", "x", "--format",
                            "coco", "--out", "y", "--bogus"], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 2 and shown.stderr.startswith("usage:"), shown.stderr
    assert "unrecognized argument --bogus" in shown.stderr and "Discarding" not in shown.stderr


def test_ctrl_c_stops_the_job_with_one_line_and_a_rerun_finishes_it(tmp_path, weights_cache):
    import signal

    from pipeline.run import run

    output = tmp_path / "out"
    argv = ["--input", str(DATA / "labelled" / "JPEGImages" / "*"), "--input",
            str(DATA / "*.jpg"), "--output", str(output), "--runner", "FnApiRunner"]
    # Ctrl-C's signal as a terminal delivers it: a test run in the background of a shell
    # without job control (as CI may be) would pass its children SIGINT ignored.
    job = subprocess.Popen([sys.executable, "-m", "pipeline", *argv], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in job.stderr:  # the pipeline runs: its workers load the model
        if "loading efficientnet_lite0" in line:
            break
    job.send_signal(signal.SIGINT)
    rest = job.stderr.read()
    # Before: Python's traceback of the main thread, then the process aborted (134) as the
    # engine's threads were torn down.
    assert job.wait(timeout=300) == 130, rest
    assert rest.strip().splitlines()[-1].startswith("interrupted: the run did not finish"), rest
    assert "Traceback" not in rest and not (output / "_SUCCESS").exists()
    assert run([*argv]) == 0 and (output / "_SUCCESS").exists()


def test_only_the_known_unactionable_warnings_are_dropped():
    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("root", logging.WARNING, __file__, 1, message, None, None)

    drop = DropUnactionable()
    assert not drop.filter(record("apitools not found, and bigquery client libraries are not "
                                  "available despite the import not raising an ImportError."))
    assert not drop.filter(record("Resource module is not available for current platform, "
                                  "memory usage cannot be fetched."))
    assert not drop.filter(record("Discarding unparseable args: ['--synset', 'dog']"))
    assert not drop.filter(record(
        "Retry with exponential backoff: waiting for 3.5 seconds before retrying "
        "_get_credentials_with_retrys because we caught exception: DefaultCredentialsError"))
    assert drop.filter(record("Unable to find default credentials to use: not found\n"
                              "Connecting anonymously."))
    assert drop.filter(record("out of memory on a batch of 8 images: splitting it"))


def test_the_other_commands_and_the_benchmarks_print_only_their_help():
    env = {**os.environ}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    for command in ("pipeline.evaluate", "pipeline.export", "benchmarks.localization"):
        shown = subprocess.run([sys.executable, "-m", command, "--help"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=300)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("usage:") and shown.stderr == "", (command, shown.stderr)


def _wait_until_reading(fifo: Path, command: subprocess.Popen, timeout: float = 300) -> int:
    """A writer's end of ``fifo`` once ``command`` has opened it to read: the command is
    then waiting in the middle of its work, as on a slow disk or network."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert command.poll() is None, command.stderr.read()
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:  # ENXIO: no reader yet
            if e.errno != errno.ENXIO:
                raise
        time.sleep(0.2)
    raise TimeoutError(f"{command.args} never opened {fifo}")


@pytest.mark.parametrize("command, message", [
    ("pipeline.export", "interrupted: the export did not finish"),
    ("pipeline.evaluate", "interrupted: the evaluation did not finish"),
    ("pipeline.render", "interrupted: the contact sheet (index.html, written last) was not written"),
    ("pipeline.train", "interrupted: no head was saved"),
])
def test_ctrl_c_stops_every_command_with_one_line(tmp_path, command, message):
    import signal

    # A finished run's folder whose run.json is a named pipe: each command blocks reading
    # it (evaluate its --classes file first), where a Ctrl-C comes.
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "_SUCCESS").write_text("{}")
    (labels / "labels-00000-of-00001.parquet").write_bytes(b"")
    fifo = tmp_path / "classes.json" if command == "pipeline.evaluate" else labels / "run.json"
    os.mkfifo(fifo)
    argv = {"pipeline.export": ["--format", "coco", "--out", str(tmp_path / "export")],
            "pipeline.evaluate": ["--ground-truth", str(DATA / "labelled"), "--classes", str(fifo)],
            "pipeline.render": ["--out", str(tmp_path / "pictures")],
            "pipeline.train": ["--out", str(tmp_path / "head")]}[command]
    job = subprocess.Popen([sys.executable, "-m", command, "--labels", str(labels), *argv],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    writer = _wait_until_reading(fifo, job)
    job.send_signal(signal.SIGINT)
    _, stderr = job.communicate(timeout=120)
    os.close(writer)
    # Before: Python's traceback from wherever the command was.
    assert job.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), stderr
