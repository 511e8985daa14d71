"""Reruns, scheduled outputs and the run's own checks: nothing duplicated, nothing lost,
no partial output taken for a finished one."""
import datetime as dt
import itertools
import json
import logging
import re

import pytest

from pipeline.run import run
from transforms.beam import read

from conftest import DATA, LOCAL, by_uri, table


def _rows(output):
    """Every labels and errors row, keyed and sorted, for comparing two runs."""
    return {name: sorted(table(output, name).to_pylist(), key=lambda r: r["image_uri"])
            for name in ("labels", "errors")}


def test_rerun_is_refused_then_replaces_cleanly_with_the_same_rows(photos, tmp_path, capsys,
                                                                 weights_cache):
    output = tmp_path / "out"
    argv = ["--input", str(photos / "*"), "--output", str(output), "--synsets", "dog", *LOCAL]
    assert run(argv) == 0
    first = _rows(output)
    assert run(argv) == 2
    assert "holds a completed run (_SUCCESS present): pass --overwrite" in capsys.readouterr().err
    assert _rows(output) == first  # the refused run touched nothing
    # A stray shard (as if left by another run) is not mixed into the new one.
    (output / "labels-00007-of-00009.parquet").write_bytes(b"stale")
    assert run([*argv, "--overwrite"]) == 0
    assert not (output / "labels-00007-of-00009.parquet").exists()
    assert _rows(output) == first


def test_leftovers_of_an_unfinished_run_are_removed(photos, tmp_path, weights_cache):
    output = tmp_path / "out"
    output.mkdir()
    (output / "labels-00000-of-00003.parquet").write_bytes(b"partial")
    (output / "run.json").write_text("{}")
    # A run killed while Beam wrote its bundles leaves its temporary folders.
    (output / "beam-temp-labels-5e6f").mkdir()
    (output / "beam-temp-labels-5e6f" / "0c1d").write_bytes(b"part of a bundle")
    assert run(["--input", str(photos / "dog.jpg"), "--output", str(output), *LOCAL]) == 0
    assert sorted(p.name for p in output.iterdir()) == [
        "_SUCCESS", "errors-00000-of-00001.parquet", "labels-00000-of-00001.parquet", "run.json"]
    assert sorted(by_uri(table(output, "labels"))) == ["dog.jpg"]


def test_max_error_fraction_fails_the_run_but_keeps_its_outputs(photos, tmp_path, capsys,
                                                               weights_cache):
    output = tmp_path / "out"
    code = run(["--input", str(photos / "*"), "--output", str(output), "--max-error-fraction",
                "0.3", *LOCAL])
    assert code == 1
    err = capsys.readouterr().err
    assert "error: 2 of 5 images failed (40.0%), more than --max-error-fraction 0.3" in err
    assert len(table(output, "labels")) == 3 and len(table(output, "errors")) == 2
    record = json.loads((output / "run.json").read_text())
    assert record["status"] == "failed" and "max-error-fraction" in record["problems"][0]
    assert not (output / "_SUCCESS").exists()
    # Within the limit the same run succeeds.
    assert run(["--input", str(photos / "*"), "--output", str(output), "--max-error-fraction",
                "0.4", *LOCAL]) == 0
    assert (output / "_SUCCESS").exists()


def test_a_stale_manifest_fails_by_default_its_failures_counted_by_kind(tmp_path, capsys, caplog,
                                                                      monkeypatch, weights_cache):
    monkeypatch.setattr(read, "_failures_seen", itertools.count())  # this run's, not the suite's
    missing = [str(tmp_path / "gone" / f"{i:04d}.jpg") for i in range(300)]
    manifest = tmp_path / "stale.txt"
    manifest.write_text("\n".join([str(DATA / "dog.jpg"), *missing]) + "\n")
    output = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert run(["--manifest", str(manifest), "--output", str(output), *LOCAL]) == 1
    assert not (output / "_SUCCESS").exists()
    failures = json.loads((output / "run.json").read_text())["failures"]
    (kind,) = failures
    assert kind.startswith("read: ") and failures[kind]["count"] == 300
    assert failures[kind]["example"] in missing
    out, err = capsys.readouterr()
    assert f"failed: {kind} 300 (e.g. {failures[kind]['example']})" in out
    assert "error: 300 of 301 images failed" in err
    # The first few failures logged one by one, then one line saying the rest are counted.
    logged = [r.getMessage() for r in caplog.records if r.name == read.log.name]
    assert len(logged) == read.LOGGED_FAILURES + 1
    assert all(" failed at read: " in line for line in logged[:-1])
    assert logged[-1].startswith("more images failed: no longer logged one by one")
    assert len(table(output, "errors")) == 300
    # Opting out: the same run succeeds.
    assert run(["--manifest", str(manifest), "--output", str(output), "--overwrite",
                "--max-error-fraction", "1", *LOCAL]) == 0
    assert (output / "_SUCCESS").exists()


def test_output_template_and_duplicate_uris(tmp_path, weights_cache):
    manifest = tmp_path / "images.txt"
    dog = DATA / "dog.jpg"
    manifest.write_text(f"# nightly list\n{dog}\n{DATA / 'chelsea.png'}\n{dog}\n")
    before = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert run(["--manifest", str(manifest), "--input", str(dog),  # dog.jpg three times
                "--output", str(tmp_path / "runs" / "{date}" / "{run_id}"), "--run-id", "nightly",
                *LOCAL]) == 0
    after = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    (output,) = (tmp_path / "runs").glob("*/nightly")
    assert output.parent.name in (before, after)
    assert sorted(by_uri(table(output, "labels"))) == ["chelsea.png", "dog.jpg"]
    counts = json.loads((output / "_SUCCESS").read_text())["counts"]
    assert counts["matched"] == 2 and counts["duplicates"] == 2


def test_default_run_id_is_a_utc_time_stamp(tmp_path, weights_cache):
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(tmp_path / "{run_id}"),
                *LOCAL]) == 0
    (output,) = tmp_path.iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}Z", output.name)


@pytest.mark.parametrize("template, extra, message", [
    ("{day}/out", [], "unknown field {day}; use {date}, {run_id}"),
    # A run id the output does not use would name nothing: the run would go elsewhere.
    ("{date}/out", ["--run-id", "nightly"],
     "--run-id nightly fills {run_id} in --output, and --output .*/{date}/out has none"),
])
def test_bad_output_templates_fail_fast(tmp_path, capsys, template, extra, message):
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(tmp_path / template),
                *extra, *LOCAL]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())
