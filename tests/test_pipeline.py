"""The Beam job end to end: FnApiRunner (what the DirectRunner runs batch jobs on, picked
explicitly so nothing waits on the Prism download) and the portable runner with workers
in separate processes."""
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.outputs import read_run_record
from pipeline.run import run
from transforms.beam.progress import TALLY
from transforms.io.records import ERRORS_SCHEMA, LABELS_SCHEMA

from conftest import DATA, GOOD, LOCAL, by_uri, labels_by_name, table
from test_real_photos import DOG_BOX, iou

# Fused grid = the finest scale's map: 640 px shorter side, /32 per cell.
FUSED_GRID = {"dog.jpg": (20, 27), "chelsea.png": (20, 30), "eagle.jpg": (20, 30)}


def test_end_to_end_labels_errors_and_run_record(photos, tmp_path, weights_cache, capsys,
                                                 arrow_thread_file_use):
    output = tmp_path / "out"
    assert run(["--input", str(photos / "*"), "--output", str(output),
                "--synsets", "dog,n02121620,bicycle", *LOCAL]) == 0

    labels = table(output, "labels")
    assert labels.schema.equals(LABELS_SCHEMA, check_metadata=True)  # heatmaps as PNGs, said so
    record = read_run_record(str(output))
    minimum = record["config"]["min_confidence"]
    assert (record["config"]["heatmaps"], record["heatmap_encoding"]) == ("all", "png8")
    rows = labels_by_name(output)
    assert sorted(rows) == sorted(GOOD)
    dog = rows["dog.jpg"]
    assert (dog["width"], dog["height"], dog["model"], dog["heat"]) == (768, 576, "efficientnet_lite0",
                                                                        "blend")
    stat = (photos / "dog.jpg").stat()
    assert (dog["source_size"], dog["source_modified"]) == (stat.st_size, stat.st_mtime)
    assert dog["content_sha256"] is None  # only with --content-hash
    for name, row in rows.items():
        assert [h["synset"] for h in row["heatmaps"]] == ["n02084071", "n02121620", "n02834778"]
        for heatmap in row["heatmaps"]:
            assert (heatmap["height"], heatmap["width"]) == FUSED_GRID[name]
            assert heatmap["heat"].shape == heatmap["probability"].shape == FUSED_GRID[name]
            # Blend heat is normalised to its image's range; probabilities are probabilities.
            assert (heatmap["heat"].min(), heatmap["heat"].max()) == (0.0, 1.0)
            assert 0 <= heatmap["probability"].min() <= heatmap["probability"].max() <= 1
        for box in row["boxes"]:  # scored by the synset's probability, at least --min-score
            heatmap = next(h for h in row["heatmaps"] if h["synset"] == box["synset"])
            # (the probability map stored to half of its 8 bits' step)
            assert 0.05 <= box["score"] <= heatmap["probability"].max() + 0.5 / 255
        # Each box's probability of being right, by the shipped calibration, at least its
        # minimum; the boxes most likely right first.
        confidences = [b["confidence"] for b in row["boxes"]]
        assert all(minimum <= c < 1 for c in confidences)
        assert confidences == sorted(confidences, reverse=True)
        assert len(row["top_classes"]) == 5
    top_dog = next(b for b in dog["boxes"] if b["label"] == "dog")
    assert iou((top_dog["x0"], top_dog["y0"], top_dog["x1"], top_dog["y1"]), DOG_BOX) >= 0.5
    assert {b["label"] for b in dog["boxes"]} >= {"dog", "bicycle"}
    assert rows["chelsea.png"]["boxes"][0]["label"] == "cat"
    assert rows["chelsea.png"]["top_classes"][0]["label"] == "Egyptian cat"

    errors = table(output, "errors")
    assert errors.schema.equals(ERRORS_SCHEMA)
    failed = by_uri(errors)
    assert sorted(failed) == ["notes.jpg", "truncated.jpg"]
    assert failed["notes.jpg"]["stage"] == "decode"
    assert "unknown image format or corrupt header" in failed["notes.jpg"]["message"]
    assert "Truncated" in failed["truncated.jpg"]["message"]

    record = json.loads((output / "run.json").read_text())
    counts = {"matched": 5, "labelled": 3, "failed": 2, "skipped": 0, "duplicates": 0,
              "boxes": sum(len(r["boxes"]) for r in rows.values())}
    assert record["counts"] == counts and record["status"] == "succeeded"
    assert json.loads((output / "_SUCCESS").read_text())["counts"] == counts
    assert record["weights_checksum"].startswith("sha256:57934424")
    assert record["config"]["scales"] == ["288+flip", "640"]
    assert record["versions"]["apache-beam"].startswith("2.")
    assert "5 images: 3 labelled, 2 failed" in capsys.readouterr().out
    # The workers ran in this process: every image tallied for the progress line.
    assert (TALLY.listed, TALLY.finished) == (5, 5)
    assert record["steady_images_per_s"] > 0
    # No Beam parallelism flag given: the job chose two bundles in threads, and said so.
    assert record["local_parallelism"] == {"direct_num_workers": 2, "chosen_by": "job",
                                           "direct_running_mode": "multi_threading"}

    # The contract: readable as they are by pandas and DuckDB too.
    import duckdb
    import pandas

    assert len(pandas.read_parquet(output / f"{next(output.glob('labels-*')).name}")) == 3
    (count,), = duckdb.sql(f"select count(*) from '{output}/labels-*.parquet'").fetchall()
    assert count == 3
    (n_boxes,), = duckdb.sql(f"select sum(len(boxes)) from '{output}/labels-*.parquet'").fetchall()
    assert n_boxes == record["counts"]["boxes"]
    assert pq.ParquetFile(next(output.glob("labels-*"))).metadata.row_group(0).column(0).compression == "ZSTD"
    # Reading its tables back (the job counts rows and failures; the tests read labels)
    # left Arrow's threads nothing of Python's to release after this process ends.
    assert arrow_thread_file_use == []


def test_manifests_and_top_k_mode(tmp_path, weights_cache):
    manifest = tmp_path / "images.csv"
    missing = tmp_path / "gone.jpg"
    manifest.write_text("id,image_uri\n1,{}\n2,{}\n3,{}\n".format(
        DATA / "dog.jpg", DATA / "chelsea.png", missing))
    output = tmp_path / "out"
    assert run(["--manifest", str(manifest), "--output", str(output), "--top-k", "3", *LOCAL]) == 0
    rows = by_uri(table(output, "labels"))
    assert sorted(rows) == ["chelsea.png", "dog.jpg"]
    cat, dog = rows["chelsea.png"], rows["dog.jpg"]
    # Without --synsets: heatmaps of each image's top concepts, best first.
    assert [h["label"] for h in cat["heatmaps"]][0] == "cat"
    assert [h["label"] for h in dog["heatmaps"]][:2] == ["dog", "bicycle"]
    for row in rows.values():
        scores = [h["score"] for h in row["heatmaps"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert {c["index"] for c in cat["top_classes"]} == {281, 282, 285}  # classes as before
    config = read_run_record(str(output))["config"]
    assert config["vocabulary"] == "concepts"
    assert config["engine"] == "onnxruntime"  # auto, on this CPU
    (failure,) = table(output, "errors").to_pylist()
    assert failure["image_uri"] == str(missing) and failure["stage"] == "read"
    assert "gone.jpg" in failure["message"]


IN, OUT = "<photos>", "<out>"


@pytest.mark.parametrize("argv, message", [
    ([OUT], "no input: give --input PATTERN and/or --manifest PATH"),
    ([IN], "no output: give --output DIR"),
    ([IN, OUT, "--synsets", "dgo"], "--synsets: 'dgo' names no synset .* close matches: .*dog"),
    ([IN, OUT, "--synsets", " "], "--synsets is empty: name the synsets"),
    ([IN, OUT, "--synsets", "cat"], "'cat' is ambiguous.*n02121620.*n02127808"),
    ([IN, OUT, "--scales", "288,big"], "--scales: cannot parse scale 'big'"),
    ([IN, OUT, "--synsets", "dog,/nonexistent/classes.json"],
     "--synsets: vocabulary /nonexistent/classes.json: No such file"),
    ([IN, OUT, "--model", "resnet51"],
     "--model 'resnet51': choose one of efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, resnet50"),
    ([IN, OUT, "--weights", "/nonexistent/w.h5"], "--weights: weights file /nonexistent/w.h5 does not exist"),
    ([IN, OUT, "--fusion", "median"], "--fusion 'median': choose one of mean, geomean, max"),
    ([IN, OUT, "--heat", "cam"], "--heat 'cam': choose one of blend, logit, probability"),
    ([IN, OUT, "--refine-boxes", "crf"], "--refine-boxes 'crf': choose one of grabcut, none"),
    ([IN, OUT, "--fusion", "geomean"], "--fusion geomean multiplies probabilities: give --heat probability"),
    ([IN, OUT, "--min-score", "1"], r"--min-score is a probability in \[0, 1\), got 1.0"),
    ([IN, OUT, "--thresholds", "/nonexistent/t.json"], "--thresholds /nonexistent/t.json: cannot read it"),
    ([IN, OUT, "--synset", "dog"], "unknown option --synset; did you mean --synsets"),
    ([IN, OUT, "--top-k", "0"], "--top-k must be at least 1"),
    ([IN, OUT, "--synsets", "dog", "--vocabulary", "imagenet"],
     "--vocabulary chooses .*: drop one of them"),
    ([IN, OUT, "--vocabulary", "/nonexistent/words.txt"],
     "--vocabulary: /nonexistent/words.txt: No such file.*built in: concepts, imagenet"),
    ([IN, OUT, "--engine", "onnxruntime", "--xla"], "--mixed-precision and --xla are TensorFlow's"),
    ([IN, OUT, "--engine", "openvino"], "--engine 'openvino': choose one of tensorflow, onnxruntime, auto"),
    ([IN, OUT, "--score-cells", "0"], r"--score-cells is a fraction of the cells in \(0, 1\]"),
    ([IN, OUT, "--batch-size", "-1"], "--batch-size must be at least 0"),
    (["--input", "/nonexistent/*.jpg", OUT], "--input /nonexistent/\\*.jpg matches no file"),
    # Options that act only with another: alone they would change nothing the user sees
    # (--window-stride in cell mode would cost the boxes their confidence).
    ([IN, OUT, "--window-stride", "7"], "--window-stride acts only with --map-mode window"),
    ([IN, OUT, "--head-maps", "head"], "--head-maps acts only with --head MODEL_DIR"),
    ([IN, OUT, "--manifest-column", "path"], "--manifest-column acts only with --manifest PATH"),
])
def test_configuration_mistakes_fail_before_any_work(tmp_path, capsys, argv, message):
    import re

    output = tmp_path / "out"
    expand = {IN: ["--input", str(DATA / "*.jpg")], OUT: ["--output", str(output)]}
    full = [x for arg in argv for x in expand.get(arg, [arg])]
    assert run([*full, *LOCAL]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not output.exists()


@pytest.mark.parametrize("runner, message", [
    ("DataflowRunner", r"options \(--runner DataflowRunner\): .*Missing required option: "
                       "project.*Missing required option: region"),
    ("Dataflo", r"options \(--runner Dataflo\): Unexpected pipeline runner: Dataflo"),
])
def test_runner_mistakes_fail_before_the_output_is_touched(tmp_path, capsys, runner, message):
    import re

    # An unfinished run's files: what a run would clear before it starts.
    output = tmp_path / "out"
    output.mkdir()
    (output / "labels-00000-of-00001.parquet").write_bytes(b"an unfinished run's")
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(output),
                "--runner", runner]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert [p.name for p in output.iterdir()] == ["labels-00000-of-00001.parquet"]


def test_inputs_and_outputs_named_wrongly_fail_before_any_work(tmp_path, capsys):
    import re

    import pyarrow as pa

    dog = str(DATA / "dog.jpg")
    (tmp_path / "photos.csv").write_text(f"path\n{dog}\n")
    pq.write_table(pa.table({"path": [dog]}), tmp_path / "photos.parquet")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder")
    output = tmp_path / "out"
    out = ["--output", str(output)]
    for argv, message in [
        # A folder named alone is no photo: say how to name its files.
        (["--input", str(DATA), *out],
         f"--input {DATA} is a folder: give a pattern of its files, e.g. '{DATA}/\\*\\*'"),
        (["--input", str(tmp_path / "photos"), *out],
         "photos matches no file \\(if it is a folder, give a pattern of its files"),
        # An unquoted pattern the shell expanded: only the first file would be labelled.
        (["--input", dog, str(DATA / "eagle.jpg"), *out],
         "unexpected argument '.*eagle.jpg' \\(1 in all\\).*quote a pattern"),
        (["--input", dog, "--synsets", "dog", "bicycle", *out], "unexpected argument 'bicycle'"),
        (["--manifest", str(tmp_path / "gone.txt"), *out], "--manifest .*gone.txt matches no file\n"),
        (["--manifest", str(tmp_path / "photos.csv"), *out],
         "photos.csv has no column 'image_uri' \\(columns: \\['path'\\]\\); set --manifest-column"),
        (["--manifest", str(tmp_path / "photos.parquet"), *out],
         "photos.parquet has no column 'image_uri' \\(columns: \\['path'\\]\\)"),
        (["--input", dog, "--output", str(notes)], "notes.txt is a file, not a folder"),
        (["--input", dog, "--output", str(notes / "run1")], "notes.txt is a file, not a folder"),
    ]:
        assert run([*argv, *LOCAL]) == 2, argv
        err = capsys.readouterr().err
        assert re.search(message, err), err
        assert not output.exists() and notes.read_text() == "not a folder"


def test_manifests_as_patterns_and_in_parquet_with_their_column(tmp_path, weights_cache):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "monday.csv").write_text(f"path,note\n{DATA / 'dog.jpg'},x\n")
    (lists / "tuesday.csv").write_text(f"path,note\n{DATA / 'chelsea.png'},y\n")
    import pyarrow as pa
    pq.write_table(pa.table({"path": [str(DATA / "eagle.jpg")]}), tmp_path / "more.parquet")
    output = tmp_path / "out"
    assert run(["--manifest", str(lists / "*.csv"), "--manifest", str(tmp_path / "more.parquet"),
                "--manifest-column", "path", "--output", str(output), "--synsets", "dog",
                *LOCAL]) == 0
    assert sorted(by_uri(table(output, "labels"))) == ["chelsea.png", "dog.jpg", "eagle.jpg"]


def test_manifests_saved_by_a_spreadsheet_or_a_windows_editor(tmp_path, weights_cache):
    # "CSV UTF-8" and Notepad's UTF-8 start with a byte order mark, and lines end in CRLF.
    # Before: the CSV's column was not found ('\ufeffimage_uri'), and the text
    # manifest's first photo failed to read under a name starting with the mark.
    table_csv, listed = tmp_path / "photos.csv", tmp_path / "photos.txt"
    table_csv.write_bytes(f"\ufeffimage_uri,note\r\n{DATA / 'dog.jpg'},x\r\n".encode())
    listed.write_bytes(f"\ufeff{DATA / 'chelsea.png'}\r\n{DATA / 'eagle.jpg'}\r\n".encode())
    output = tmp_path / "out"
    assert run(["--manifest", str(table_csv), "--manifest", str(listed), "--output", str(output),
                "--synsets", "dog", *LOCAL]) == 0
    assert sorted(by_uri(table(output, "labels"))) == ["chelsea.png", "dog.jpg", "eagle.jpg"]
    assert table(output, "errors").num_rows == 0


def test_a_tilde_the_shell_left_is_the_home_folder(tmp_path, monkeypatch, weights_cache):
    # The shell expands ~ only at the start of a word: --output=~/labels, and quoted
    # paths, reached the job as written. Before: a folder named "~" was made in the
    # current one, and the job said "output in ~/labels".
    from pipeline.export import main as export

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "dog.jpg").write_bytes((DATA / "dog.jpg").read_bytes())
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    assert run(["--input=~/photos/*.jpg", "--output=~/labels", "--synsets", "dog", *LOCAL]) == 0
    assert export(["--labels=~/labels", "--format", "coco", "--out=~/coco"]) == 0
    assert (tmp_path / "labels" / "_SUCCESS").exists()
    assert (tmp_path / "coco" / "annotations.json").exists()
    assert list(here.iterdir()) == []


def test_help_describes_every_option(capsys):
    assert run(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--input", "--manifest", "--manifest-column", "--output", "--synsets", "--top-k",
                 "--vocabulary", "--score-cells", "--engine",
                 "--scales", "--fusion", "--heat", "--threshold", "--thresholds",
                 "--relative-threshold", "--min-box-area", "--min-score", "--refine-boxes",
                 "--confidence", "--min-confidence",
                 "--map-mode", "--window-stride", "--model", "--weights", "--batch-size",
                 "--max-image-pixels", "--large-model", "--mixed-precision", "--xla", "--threads",
                 "--tf-threads",
                 "--progress-every",
                 "--run-id", "--overwrite", "--max-error-fraction", "--skip-existing",
                 "--content-hash", "--runner"):
        assert flag in text, flag


def test_portable_runner_with_external_workers(photos, tmp_path, worker_pool):
    output = tmp_path / "out"
    assert run(["--input", str(photos / "*"), "--output", str(output), "--synsets", "dog",
                "--runner", "PortableRunner", "--job_endpoint", "embed",
                "--environment_type", "EXTERNAL", "--environment_config", worker_pool]) == 0
    rows = by_uri(table(output, "labels"))
    assert sorted(rows) == sorted(GOOD)
    assert rows["dog.jpg"]["boxes"][0]["label"] == "dog"
    assert sorted(by_uri(table(output, "errors"))) == ["notes.jpg", "truncated.jpg"]
    # The accounting holds across processes too, and is checked before _SUCCESS.
    counts = json.loads((output / "_SUCCESS").read_text())["counts"]
    assert (counts["matched"], counts["labelled"], counts["failed"]) == (5, 3, 2)
    # Progress is tallied where workers run, not here: no steady rate is claimed.
    assert read_run_record(str(output))["steady_images_per_s"] is None


def test_a_failing_inference_batch_becomes_error_rows(photos, tmp_path, weights_cache, monkeypatch):
    """RunInference's dead letters: every image of a batch whose inference raised is an
    error row; the rest of the job goes on. (FnApiRunner runs in this process, so the
    patched function is the one the workers call.)"""
    from transforms.beam import inference as beam_inference

    real = beam_inference.synset_heatmaps_batch

    def fail_on_wide_images(mapper, images, *args, **kwargs):
        if any(image.image_size[1] == 773 for image in images):  # eagle.jpg is 773 px wide
            raise MemoryError("simulated out of memory")
        return real(mapper, images, *args, **kwargs)

    monkeypatch.setattr(beam_inference, "synset_heatmaps_batch", fail_on_wide_images)
    output = tmp_path / "out"
    assert run(["--input", str(photos / "*"), "--output", str(output), "--synsets", "dog",
                "--batch-size", "1", "--max-error-fraction", "1", *LOCAL]) == 0
    assert sorted(by_uri(table(output, "labels"))) == ["chelsea.png", "dog.jpg"]
    failed = by_uri(table(output, "errors"))
    assert failed["eagle.jpg"]["stage"] == "inference"
    assert failed["eagle.jpg"]["error_type"] == "MemoryError"
    assert failed["eagle.jpg"]["message"] == "MemoryError('simulated out of memory')"
    assert sorted(failed) == ["eagle.jpg", "notes.jpg", "truncated.jpg"]


@pytest.mark.parametrize("argv, threads", [
    (["--runner", "FnApiRunner", "--direct_num_workers=2", "--direct_running_mode=multi_threading"], 4),
    (["--direct_num_workers=3", "--direct_running_mode=multi_processing"], 2),
    (["--direct_num_workers=0", "--direct_running_mode=multi_threading"], 1),
    (["--runner", "FnApiRunner", "--direct_num_workers=2"], 0),  # in_memory: one bundle at a time
    (["--runner", "FnApiRunner"], 0),
    (["--runner", "DataflowRunner", "--direct_num_workers=2", "--direct_running_mode=multi_threading"], 0),
    (["--runner", "FnApiRunner", "--direct_num_workers=2", "--direct_running_mode=multi_threading",
      "--threads", "3"], 3),
    (["--tf-threads", "3"], 3),  # the older name
    (["--tf_threads=5"], 5),
])
def test_threads_share_the_cores_among_local_bundles(monkeypatch, argv, threads):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import label_config

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    options = PipelineOptions(["--input", str(DATA / "dog.jpg"), "--output", "unused", *argv])
    assert label_config(options)[0].intra_op_threads == threads


@pytest.mark.parametrize("argv, expected", [
    ([], {"direct_num_workers": 2, "direct_running_mode": "multi_threading", "chosen_by": "job"}),
    (["--direct_num_workers=1"], {"direct_num_workers": 1, "direct_running_mode": "in_memory",
                                  "chosen_by": "user"}),
    (["--direct_running_mode", "multi_processing"],
     {"direct_num_workers": 1, "direct_running_mode": "multi_processing", "chosen_by": "user"}),
])
def test_the_job_chooses_local_parallelism_unless_the_user_did(argv, expected):
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import choose_local_parallelism, engine_threads

    full = ["--input", "x.jpg", "--output", "unused", "--runner", "FnApiRunner", *argv]
    options = PipelineOptions(full)
    assert choose_local_parallelism(options, full) == expected
    if expected["chosen_by"] == "job":  # and each model call gets its share of the cores
        assert engine_threads(options) == max(1, (os.cpu_count() or 1) // 2)
    dataflow = ["--runner", "DataflowRunner", "--input", "x.jpg", "--output", "unused"]
    assert choose_local_parallelism(PipelineOptions(dataflow), dataflow) is None


def _dog_photo_labelled(output, flag: str, value: str, *more: str) -> dict:
    """The labels row of dog.jpg (synsets dog and bicycle) with ``flag value`` (and
    ``more`` options), which run.json records under the flag's name."""
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(output), "--synsets",
                "dog,bicycle", flag, value, *more, *LOCAL]) == 0
    assert read_run_record(str(output))["config"][flag[2:].replace("-", "_")] == value
    (row,) = labels_by_name(output).values()
    return row


def test_both_engines_label_alike_and_the_run_records_which_ran(tmp_path, weights_cache):
    rows = {engine: _dog_photo_labelled(tmp_path / engine, "--engine", engine)
            for engine in ("tensorflow", "onnxruntime")}
    for a, b in zip(rows["tensorflow"]["heatmaps"], rows["onnxruntime"]["heatmaps"]):
        assert a["synset"] == b["synset"]
        # Stored in 8 bits: the engines' maps within a step of the codes.
        np.testing.assert_allclose(a["heat"], b["heat"], atol=1 / 255 + 1e-6)
        np.testing.assert_allclose(a["probability"], b["probability"], atol=1 / 255 + 1e-6)
    box = lambda b: (b["synset"], b["x0"], b["y0"], b["x1"], b["y1"])  # noqa: E731
    assert [box(b) for b in rows["tensorflow"]["boxes"]] == [box(b) for b in rows["onnxruntime"]["boxes"]]


def test_boxes_are_refined_by_the_photo_unless_told_not_to(tmp_path, weights_cache):
    # Without a confidence (the shipped one fits refined boxes only): the components of
    # the lowest threshold, each refined in its place.
    rows = {refine: _dog_photo_labelled(tmp_path / refine, "--refine-boxes", refine,
                                        "--confidence", "none")
            for refine in ("grabcut", "none")}
    for a, b in zip(rows["grabcut"]["heatmaps"], rows["none"]["heatmaps"], strict=True):
        assert a["synset"] == b["synset"] and np.array_equal(a["heat"], b["heat"])
    refined, plain = rows["grabcut"]["boxes"], rows["none"]["boxes"]
    # The same components, scored alike; each refined box within its component's box.
    scored = lambda boxes: [(b["synset"], b["score"]) for b in boxes]  # noqa: E731
    assert scored(refined) == scored(plain)
    for a, b in zip(refined, plain):
        assert b["x0"] <= a["x0"] < a["x1"] <= b["x1"] and b["y0"] <= a["y0"] < a["y1"] <= b["y1"]
    xyxy = lambda b: (b["x0"], b["y0"], b["x1"], b["y1"])  # noqa: E731
    dog = lambda boxes: next(xyxy(b) for b in boxes if b["label"] == "dog")  # noqa: E731
    assert iou(dog(refined), DOG_BOX) > iou(dog(plain), DOG_BOX) + 0.1


def test_rows_keep_the_heatmaps_asked_for(tmp_path, weights_cache):
    row = _dog_photo_labelled(tmp_path / "boxed", "--heatmaps", "boxed", "--synsets",
                              "dog,bicycle,n02121620")
    boxed = {b["synset"] for b in row["boxes"]}
    # The cat has no box in the dog photo: its heatmap is left out, the others kept.
    assert "n02121620" not in boxed and boxed == {"n02084071", "n02834778"}
    assert [h["synset"] for h in row["heatmaps"]] == ["n02084071", "n02834778"]
