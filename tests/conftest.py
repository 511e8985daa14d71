import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

# Before TensorFlow is imported anywhere: keep its C++ start-up chatter out of test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory) -> Path:
    """A fresh weights cache for the session: the Lite0 conversion runs once per run."""
    path = tmp_path_factory.mktemp("weights-cache")
    os.environ["FCN_WEAK_LABELS_CACHE"] = str(path)
    return path


class _Chunk(bytearray):
    """Bytes read from a file, which (unlike bytes) can say when they are released."""


class _WatchedFile:
    """A file Beam opened, noting each call on it and each release of what it read that
    happens on a thread Python did not start (one of Arrow's own)."""

    def __init__(self, f, path: str, seen: list[str]):
        self._f, self._path, self._seen = f, path, seen

    def _note(self, what: str) -> None:
        # Python registers a thread it did not start as a "dummy thread" when it runs there.
        if isinstance(threading.current_thread(), threading._DummyThread):
            self._seen.append(f"{self._path}: {what}")

    def read(self, *args):
        self._note("read")
        chunk = _Chunk(self._f.read(*args))
        weakref.finalize(chunk, self._note, "released what it read")
        return chunk

    def __getattr__(self, name: str):
        attr = getattr(self._f, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._note(name)
            return attr(*args, **kwargs)
        return call

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.fixture
def arrow_thread_file_use(monkeypatch) -> list[str]:
    """What Arrow's own threads do with Parquet files opened by Beam's FileSystems while
    the test runs: they must do nothing. A thread of Arrow's holding a Python file may
    release it while the interpreter exits, and the process then aborts
    (pipeline/outputs.py)."""
    from apache_beam.io.filesystems import FileSystems

    seen: list[str] = []
    beam_open = FileSystems.open

    def watched_open(path, *args, **kwargs):
        f = beam_open(path, *args, **kwargs)
        return _WatchedFile(f, path, seen) if path.endswith(".parquet") else f
    monkeypatch.setattr(FileSystems, "open", watched_open)
    return seen


@pytest.fixture(scope="session")
def lite0_mapper(weights_cache):
    from transforms.model.fcn import ResponseMapper

    return ResponseMapper.load("efficientnet_lite0")


def load_photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / name).convert("RGB"))


GOOD = ("dog.jpg", "chelsea.png", "eagle.jpg")
# FnApiRunner: what the DirectRunner runs batch jobs on, named so nothing waits on Prism.
LOCAL = ["--runner", "FnApiRunner"]


@pytest.fixture
def photos(tmp_path) -> Path:
    """The three good photos and two broken files, in a folder of their own."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in GOOD:
        shutil.copy(DATA / name, folder / name)
    (folder / "truncated.jpg").write_bytes((DATA / "dog.jpg").read_bytes()[:5000])
    (folder / "notes.jpg").write_text("<html>not a photo</html>")
    return folder


def table(output: Path, name: str):
    import pyarrow.parquet as pq

    files = sorted(output.glob(f"{name}-*.parquet"))
    assert files, f"no {name} files in {output}"
    return pq.read_table(files)


def by_uri(rows) -> dict:
    return {Path(row["image_uri"]).name: row for row in rows.to_pylist()}


def labels_by_name(output: Path) -> dict:
    """A run's labels rows by file name, read back as the project's commands read them:
    heatmaps as arrays."""
    from pipeline.outputs import read_labels

    return {Path(row["image_uri"]).name: row for row in read_labels(str(output))}


def as_float32_run(run: Path, copy: Path) -> Path:
    """A copy of a finished run as runs before PNG heatmaps wrote it: each heatmap's heat
    and probability as float32 lists (``values``, ``probabilities``), no encoding in the
    table's metadata. The maps are the run's own, read back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.outputs import read_labels
    from transforms.io.records import LABELS_SCHEMA

    heatmap = pa.struct([
        ("synset", pa.string()), ("label", pa.string()), ("score", pa.float32()),
        ("height", pa.int32()), ("width", pa.int32()), ("values", pa.list_(pa.float32())),
        ("probabilities", pa.list_(pa.float32()))])
    schema = LABELS_SCHEMA.remove_metadata().set(
        LABELS_SCHEMA.get_field_index("heatmaps"), pa.field("heatmaps", pa.list_(heatmap)))
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("labels-*"))
    rows = [{**row, "heatmaps": [
        {**{k: h[k] for k in ("synset", "label", "score", "height", "width")},
         "values": h["heat"].ravel().tolist(), "probabilities": h["probability"].ravel().tolist()}
        for h in row["heatmaps"]],
        "scale_heatmaps": [{**{k: v for k, v in m.items() if k != "heat"},
                            "values": m["heat"].ravel().tolist()} for m in row["scale_heatmaps"]]}
        for row in read_labels(str(run))]
    pq.write_table(pa.Table.from_pylist(rows, schema), copy / "labels-00000-of-00001.parquet")
    return copy


def free_port(host: str = "localhost") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, seconds: float = 60) -> None:
    """Until a server started in another process listens on ``port`` (or ``seconds`` pass)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)


@pytest.fixture
def worker_pool(weights_cache):
    """A Beam worker pool: SDK workers in separate processes, as on a Flink cluster."""
    port = free_port()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("localhost", port)
    yield f"localhost:{port}"
    pool.terminate()
    pool.wait(10)


class CountingMapper:
    """A ResponseMapper that records how many images each network call gets, and their
    (height, width)."""

    def __init__(self, mapper):
        self._mapper, self.calls, self.shapes = mapper, [], []

    def __getattr__(self, name):
        return getattr(self._mapper, name)

    def logits(self, images, *args):
        self.calls.append(len(images))
        self.shapes.append(images.shape[1:3])
        return self._mapper.logits(images, *args)
