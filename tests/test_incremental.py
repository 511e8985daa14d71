"""Scheduled incremental runs: tomorrow's run labels only tomorrow's new or changed images."""
import hashlib
import json
import os
import shutil

from pipeline.run import run

from conftest import DATA, LOCAL, by_uri, table


def _run(photos, runs, run_id, *extra):
    assert run(["--input", str(photos / "*"), "--output", str(runs / "{run_id}"), "--run-id", run_id,
                "--skip-existing", str(runs / "*" / "labels-*.parquet"), "--synsets", "dog",
                *extra, *LOCAL]) == 0
    output = runs / run_id
    return output, json.loads((output / "run.json").read_text())


def test_only_new_and_changed_images_are_processed(photos, tmp_path, weights_cache):
    runs = tmp_path / "runs"
    first, record = _run(photos, runs, "day1")  # nothing earlier: everything is new
    assert record["counts"]["labelled"] == 3 and record["counts"]["skipped"] == 0

    shutil.copy(DATA / "eagle.jpg", photos / "eagle-2.jpg")             # new
    (photos / "chelsea.png").write_bytes((DATA / "chelsea.png").read_bytes() + b"\0")  # changed
    second, record = _run(photos, runs, "day2")
    assert sorted(by_uri(table(second, "labels"))) == ["chelsea.png", "eagle-2.jpg"]
    # Failures are tried again: they may have been passing trouble.
    assert sorted(by_uri(table(second, "errors"))) == ["notes.jpg", "truncated.jpg"]
    assert sorted(by_uri(table(second, "skipped"))) == ["dog.jpg", "eagle.jpg"]
    counts = record["counts"]
    assert (counts["matched"], counts["labelled"], counts["failed"], counts["skipped"]) == (6, 2, 2, 2)
    assert record["skip_existing"] == str(runs / "*" / "labels-*.parquet")

    third, record = _run(photos, runs, "day3")  # nothing changed since
    assert record["counts"]["labelled"] == 0 and record["counts"]["skipped"] == 4
    assert (third / "_SUCCESS").exists()


def test_content_hash_ignores_a_new_time_stamp_but_not_new_content(photos, tmp_path, weights_cache):
    runs = tmp_path / "runs"
    first, record = _run(photos, runs, "a", "--content-hash")
    dog = by_uri(table(first, "labels"))["dog.jpg"]
    assert dog["content_sha256"] == hashlib.sha256((photos / "dog.jpg").read_bytes()).hexdigest()

    stat = (photos / "dog.jpg").stat()
    os.utime(photos / "dog.jpg", (stat.st_atime, stat.st_mtime + 3600))  # touched, same bytes
    (photos / "eagle.jpg").write_bytes((DATA / "eagle.jpg").read_bytes() + b"\0")  # new content
    second, record = _run(photos, runs, "b", "--content-hash")
    assert sorted(by_uri(table(second, "skipped"))) == ["chelsea.png", "dog.jpg"]
    assert sorted(by_uri(table(second, "labels"))) == ["eagle.jpg"]

    # By size and time (the default) the touched dog.jpg counts as changed.
    third, record = _run(photos, runs, "c")
    assert "dog.jpg" in by_uri(table(third, "labels"))
