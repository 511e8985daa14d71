"""The job and the commands that read its runs, on object stores: an S3-compatible server
(moto's) and a Cloud Storage emulator (gcp-storage-emulator), both real HTTP servers on
127.0.0.1 started here, reached through Beam's own S3 and GCS filesystems with Beam's
own options, as a user on AWS, MinIO or GCS runs them."""
import io
import json
import logging
import os
import re
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from pipeline.evaluate import main as evaluate
from pipeline.export import main as export
from pipeline.render import run as render
from pipeline.run import run

from conftest import DATA, GOOD, LOCAL, free_port, wait_for_port

BUCKET = "photos"
# What a collection holds besides photos: each must end up in the errors table.
AWKWARD = {"truncated.jpg": (DATA / "dog.jpg").read_bytes()[:5000],
           "notes.jpg": b"<html>not a photo</html>", "empty.jpg": b""}


def _photos() -> dict[str, bytes]:
    return {**{name: (DATA / name).read_bytes() for name in GOOD}, **AWKWARD}


class Store:
    """A server on loopback holding BUCKET with the photos under in/: its scheme, the
    flags that reach it, and its objects read directly with the store's own client."""

    scheme = ""
    flags: list[str] = []

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{BUCKET}/{key}"

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:
        """The objects under ``prefix``, named from it."""
        raise NotImplementedError

    def table(self, prefix: str, name: str) -> list[dict]:
        rows = []
        for key in self.keys(prefix):
            if key.startswith(f"{name}-") and key.endswith(".parquet"):
                rows += pq.read_table(io.BytesIO(self.read(prefix + key))).to_pylist()
        return rows


class S3(Store):
    """A moto S3 server on loopback, its bucket of photos, and the flags that reach it."""

    scheme = "s3"

    def __init__(self):
        import boto3
        from moto.server import ThreadedMotoServer

        # The server's request log (werkzeug's), not the commands' output under test.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        self.endpoint = "http://127.0.0.1:%d" % self.server.get_host_and_port()[1]
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **keys)
        self.flags = ["--s3_endpoint_url", self.endpoint, "--s3_region_name", "us-east-1",
                      "--s3_access_key_id", keys["aws_access_key_id"],
                      "--s3_secret_access_key", keys["aws_secret_access_key"]]
        self.client.create_bucket(Bucket=BUCKET)
        for name, data in _photos().items():
            self.put(f"in/{name}", data)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"][len(prefix):] for page in pages for o in page.get("Contents", []))

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(scope="module")
def s3(weights_cache):
    store = S3()
    yield store
    store.close()


class GCS(Store):
    """gcp-storage-emulator on loopback, its bucket of photos; STORAGE_EMULATOR_HOST
    points Cloud Storage clients (Beam's among them) at it."""

    scheme = "gs"
    flags = ["--project", "test"]

    def __init__(self):
        from gcp_storage_emulator.server import create_server
        from google.cloud import storage

        port = free_port("127.0.0.1")
        self.server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
        self.server.start()
        self.host = f"http://127.0.0.1:{port}"
        self.saved = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.host
        self.bucket = storage.Client.create_anonymous_client().bucket(BUCKET)
        for name, data in _photos().items():
            self.put(f"in/{name}", data)

    def put(self, key: str, data: bytes) -> None:
        self.bucket.blob(key).upload_from_string(data)

    def read(self, key: str) -> bytes:
        return self.bucket.blob(key).download_as_bytes()

    def keys(self, prefix: str) -> list[str]:
        return sorted(b.name[len(prefix):] for b in self.bucket.list_blobs(prefix=prefix))

    def close(self):
        self.server.stop()
        if self.saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = self.saved


@pytest.fixture(scope="module")
def gcs(weights_cache):
    store = GCS()
    yield store
    store.close()


@pytest.fixture(params=["s3", "gcs"])
def store(request) -> Store:
    """Each store in turn, for what must hold on both."""
    return request.getfixturevalue(request.param)


def _names(rows: list[dict]) -> list[str]:
    return sorted(row["image_uri"].rsplit("/", 1)[1] for row in rows)


def _finished_files(keys: list[str]) -> list[str]:
    """A finished run's objects, shard numbers left out."""
    return sorted({k.split("-")[0] if k.endswith(".parquet") else k for k in keys})


def test_store_to_store_every_uri_accounted_reruns_refused_or_replaced(store, capsys):
    argv = ["--input", store.uri("in/*"), "--output", store.uri("runs/{run_id}"),
            "--run-id", "first", "--synsets", "dog", *LOCAL, *store.flags]
    assert run(argv) == 0
    prefix = "runs/first/"
    assert _finished_files(store.keys(prefix)) == ["_SUCCESS", "errors", "labels", "run.json"]
    assert _names(store.table(prefix, "labels")) == sorted(GOOD)
    assert _names(store.table(prefix, "errors")) == sorted(AWKWARD)
    record = json.loads(store.read(prefix + "run.json"))
    assert record["counts"]["matched"] == len(GOOD) + len(AWKWARD)
    assert record["output"] == store.uri("runs/first")

    assert run(argv) == 2
    assert "holds a completed run (_SUCCESS present): pass --overwrite" in capsys.readouterr().err
    assert _names(store.table(prefix, "labels")) == sorted(GOOD)

    # What a run killed while it wrote leaves beside it: Beam's temporary folders and a
    # stray shard. --overwrite replaces the run and removes them.
    store.put(prefix + "beam-temp-labels-0d1e/2f3a", b"part of a bundle")
    store.put(prefix + "labels-00007-of-00009.parquet", b"stale")
    assert run([*argv, "--overwrite"]) == 0
    assert _finished_files(store.keys(prefix)) == ["_SUCCESS", "errors", "labels", "run.json"]
    assert "labels-00007-of-00009.parquet" not in store.keys(prefix)
    assert _names(store.table(prefix, "labels")) == sorted(GOOD)


def test_killed_run_leftovers_are_removed_and_nothing_is_duplicated(store):
    """Object stores rename by copy and delete: a run killed part-way leaves finished
    shards of some tables, temporary files and no _SUCCESS; the rerun into the same
    prefix starts clean."""
    prefix = "runs/killed/"
    store.put(prefix + "labels-00000-of-00002.parquet", b"a shard renamed before the kill")
    store.put(prefix + "run.json", b"{}")
    store.put(prefix + "beam-temp-labels-7c1f/0a9b", b"temporary")
    store.put(prefix + "beam-temp-errors-7c1f/1b2c", b"temporary")
    assert run(["--input", store.uri("in/*"), "--output", store.uri(prefix), *LOCAL,
                *store.flags]) == 0
    assert _finished_files(store.keys(prefix)) == ["_SUCCESS", "errors", "labels", "run.json"]
    assert _names(store.table(prefix, "labels")) == sorted(GOOD)  # each once
    assert _names(store.table(prefix, "errors")) == sorted(AWKWARD)


def test_manifest_dated_outputs_and_incremental_reruns(store):
    first = [store.uri(f"in/{name}") for name in ("dog.jpg", "eagle.jpg")]
    store.put("lists/monday.txt", ("\n".join(first) + "\n").encode())
    store.put("lists/tuesday.txt", ("\n".join([*first, store.uri("in/chelsea.png")]) + "\n").encode())
    assert run(["--manifest", store.uri("lists/monday.txt"), "--output",
                store.uri("inc/{date}/monday"), *LOCAL, *store.flags]) == 0
    assert run(["--manifest", store.uri("lists/tuesday.txt"), "--output",
                store.uri("inc/{date}/tuesday"), "--skip-existing",
                store.uri("inc/*/monday/labels-*.parquet"), *LOCAL, *store.flags]) == 0
    (date,) = {key.split("/")[0] for key in store.keys("inc/") if "/tuesday/" in key}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    assert _names(store.table(f"inc/{date}/tuesday/", "labels")) == ["chelsea.png"]
    assert _names(store.table(f"inc/{date}/tuesday/", "skipped")) == ["dog.jpg", "eagle.jpg"]


def test_export_evaluate_render_read_a_run_on_the_store(store, tmp_path, capsys,
                                                        arrow_thread_file_use):
    labels = store.uri("readers/run")
    # Three of its five photos are broken on purpose: the run succeeds all the same.
    assert run(["--input", store.uri("in/*.jpg"), "--output", labels, "--synsets", "dog",
                "--max-error-fraction", "1", *LOCAL, *store.flags]) == 0

    assert export(["--labels", labels, "--format", "coco", "--out", str(tmp_path / "coco"),
                   *store.flags]) == 0
    coco = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert sorted(image["file_name"].rsplit("/", 1)[1] for image in coco["images"]) == \
        ["dog.jpg", "eagle.jpg"]

    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps([{"image": "dog.jpg", "synset": "dog",
                                  "boxes": [[20, 20, 600, 460]]}]))
    assert evaluate(["--labels", labels, "--ground-truth", str(truth), *store.flags]) == 0
    assert "CorLoc" in capsys.readouterr().out

    assert render(["--labels", labels, "--out", store.uri("readers/viz"), *store.flags]) == 0
    assert {"dog.png", "eagle.png", "index.html"} <= set(store.keys("readers/viz/"))
    # The tables were read from local copies: Arrow's threads held none of Beam's files.
    assert arrow_thread_file_use == []


def test_s3_mistakes_are_one_line_before_any_work(s3, tmp_path, capsys):
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    flags = [*s3.flags[:1], closed, *s3.flags[2:]]
    cases = [
        (["--input", f"s3://{BUCKET}/in/*", "--output", f"s3://{BUCKET}/x", *LOCAL, *flags],
         f"error: s3://{BUCKET}/in/*: cannot reach S3 at {closed}"),
        (["--input", "s3://no-such-bucket/in/*", "--output", f"s3://{BUCKET}/x", *LOCAL, *s3.flags],
         "error: s3://no-such-bucket/in/*: bucket 'no-such-bucket' does not exist"),
        (["--input", f"s3://{BUCKET}/in/*", "--output", "s3://no-such-bucket/out", *LOCAL, *s3.flags],
         "error: s3://no-such-bucket/out: bucket 'no-such-bucket' does not exist"),
    ]
    for argv, message in cases:
        assert run(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert export(["--labels", "s3://no-such-bucket/run", "--format", "coco", "--out",
                   str(tmp_path / "c"), *s3.flags]) == 2
    assert "bucket 'no-such-bucket' does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export(["--labels", "s3://x/run", "--format", "coco", "--out", str(tmp_path / "d"),
                "--s3_endpoint", "http://127.0.0.1:1"])
    assert "unrecognized argument --s3_endpoint; did you mean --s3_endpoint_url" in \
        capsys.readouterr().err


def test_s3_refused_keys_are_one_line(tmp_path, capsys):
    """A server that checks keys (moto's, with its IAM checks on from the first request)
    refuses unknown ones: one line, before any work."""
    port = free_port("127.0.0.1")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port)
        flags = ["--s3_endpoint_url", f"http://127.0.0.1:{port}", "--s3_region_name", "us-east-1",
                 "--s3_access_key_id", "nobody", "--s3_secret_access_key", "wrong"]
        assert run(["--input", f"s3://{BUCKET}/in/*", "--output", f"s3://{BUCKET}/out", *LOCAL,
                    *flags]) == 2
        err = capsys.readouterr().err
        assert (f"error: s3://{BUCKET}/in/*: access to bucket '{BUCKET}' refused (403): check "
                "--s3_access_key_id and --s3_secret_access_key") in err
        assert "Traceback" not in err
    finally:
        server.terminate()
        server.wait(10)


def test_gcs_command_line_without_credentials_says_so_once(gcs, tmp_path):
    """As a user runs it against an emulator: the command line, its console set up by
    the package; Beam finds no Google credentials and says so, without tracebacks."""
    prefix = "runs/cli/"
    assert run(["--input", gcs.uri("in/*.jpg"), "--output", gcs.uri(prefix), *LOCAL,
                "--max-error-fraction", "1", *gcs.flags]) == 0
    done = subprocess.run([sys.executable, "-m", "pipeline.export", "--labels", gcs.uri(prefix),
                           "--format", "coco", "--out", str(tmp_path / "coco"), *gcs.flags],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert len(json.loads((tmp_path / "coco" / "annotations.json").read_text())["images"]) == 2


def test_gcs_missing_bucket_is_one_line(gcs, capsys):
    assert run(["--input", f"gs://{BUCKET}/in/*", "--output", "gs://no-such-bucket/out",
                "--project", "test", *LOCAL]) == 2
    err = capsys.readouterr().err
    assert "error: gs://no-such-bucket/out: bucket 'no-such-bucket' does not exist" in err
