"""python -m pipeline.export: each format read back by a library its users read it with
(pycocotools; supervision for COCO, YOLO and Pascal VOC; Label Studio's documented task
format), boxes equal to the Parquet boxes within a pixel."""
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from pipeline.export import main as export
from pipeline.run import run
from transforms.export.labelled import UniqueNames, categories, labelled_images
from transforms.quality.ground_truth import read_ground_truth
from transforms.vocab.synsets import parse_synset_spec

from conftest import GOOD, LOCAL, as_float32_run, by_uri, table

SYNSETS = "dog,n02121620,bicycle"
NAMES = ["dog", "cat", "bicycle"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, weights_cache) -> Path:
    """A finished run of the sample photos (and two broken files, in its errors table)."""
    from conftest import DATA

    photos = tmp_path_factory.mktemp("export-photos")
    for name in GOOD:
        shutil.copy(DATA / name, photos / name)
    (photos / "notes.jpg").write_text("not a photo")
    output = tmp_path_factory.mktemp("export-run") / "out"
    assert run(["--input", str(photos / "*"), "--output", str(output), "--synsets", SYNSETS,
                "--min-score", "0.01", *LOCAL]) == 0
    return output


def parquet_boxes(output: Path) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    """file name → [(label, (x0, y0, x1, y1))], best first."""
    return {name: [(b["label"], (b["x0"], b["y0"], b["x1"], b["y1"])) for b in row["boxes"]]
            for name, row in by_uri(table(output, "labels")).items()}


def assert_same_boxes(expected, got):
    """Lists of (label, xyxy) equal as multisets, corners within a pixel."""
    assert sorted(label for label, _ in got) == sorted(label for label, _ in expected)
    for label, box in expected:
        candidates = [b for l, b in got if l == label]
        assert min(np.abs(np.subtract(box, b)).max() for b in candidates) <= 1.0, (label, box, candidates)


def category_names(run: Path) -> list[str]:
    return [s["label"] for s in json.loads((run / "run.json").read_text())["config"]["synsets"]]


def check_supervision(dataset, expected):
    assert len(dataset) == len(expected)
    for path, _image, detections in dataset:
        got = [(dataset.classes[c], tuple(xyxy)) for c, xyxy in zip(detections.class_id, detections.xyxy)]
        assert_same_boxes(expected[Path(path).name], got)


def check_coco(run: Path, out: Path) -> None:
    """Export as COCO (photos copied) and read it back with pycocotools and supervision."""
    from pycocotools.coco import COCO
    import supervision as sv

    assert export(["--labels", str(run), "--format", "coco", "--out", str(out), "--images", "copy"]) == 0
    expected = parquet_boxes(run)
    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == category_names(run)
    images = {i["file_name"]: i for i in coco.loadImgs(coco.getImgIds())}
    assert sorted(images) == sorted(expected)
    for name, image in images.items():
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        got = [(coco.loadCats(a["category_id"])[0]["name"],
                (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]))
               for a in annotations]
        assert_same_boxes(expected[name], got)
        assert all(0 < a["score"] <= 1 and a["area"] > 0 for a in annotations)
    check_supervision(sv.DetectionDataset.from_coco(str(out / "images"), str(out / "annotations.json")),
                      expected)


def check_yolo(run: Path, out: Path) -> None:
    """Export as YOLO (photos copied, the default) and read it back with supervision."""
    import supervision as sv

    assert export(["--labels", str(run), "--format", "yolo", "--out", str(out)]) == 0
    expected = parquet_boxes(run)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(expected)
    dataset = sv.DetectionDataset.from_yolo(str(out / "images"), str(out / "labels"),
                                            str(out / "data.yaml"))
    assert dataset.classes == category_names(run)
    check_supervision(dataset, expected)


def check_pascal_voc(run: Path, out: Path, classes: dict) -> None:
    """Export as Pascal VOC (photos linked) and read it back with supervision and with
    pipeline.evaluate's reader (``classes``: category name → synset)."""
    import supervision as sv

    assert export(["--labels", str(run), "--format", "voc", "--out", str(out), "--images", "link"]) == 0
    expected = parquet_boxes(run)
    assert all((out / "JPEGImages" / name).is_symlink() for name in expected)
    check_supervision(sv.DetectionDataset.from_pascal_voc(str(out / "JPEGImages"),
                                                          str(out / "Annotations")), expected)
    got = {}
    for pair in read_ground_truth(out / "Annotations", classes).pairs:
        got.setdefault(pair.image, []).extend((pair.synset.label, tuple(b)) for b in pair.boxes)
    names = {s.label: name for name, s in classes.items()}
    for name, boxes in expected.items():
        assert_same_boxes(boxes, [(names[label], box) for label, box in got.get(name, [])])


def check_label_studio(run: Path, out: Path) -> None:
    """Export for Label Studio and check the tasks against its documented format: the
    labelling config's names, rectanglelabels in percent, scores, model version."""
    assert export(["--labels", str(run), "--format", "labelstudio", "--out", str(out)]) == 0
    config = ET.parse(out / "label_config.xml").getroot()
    image, rectangles = config.find("Image"), config.find("RectangleLabels")
    assert image.get("value") == "$image"
    assert rectangles.get("toName") == image.get("name")
    assert [label.get("value") for label in rectangles.findall("Label")] == category_names(run)

    tasks = json.loads((out / "tasks.json").read_text())
    expected = parquet_boxes(run)
    run_record = json.loads((run / "run.json").read_text())
    assert sorted(Path(t["data"]["image"]).name for t in tasks) == sorted(expected)
    for task in tasks:
        prediction, = task["predictions"]
        assert prediction["model_version"].startswith(run_record["model"])
        got = []
        for result in prediction["result"]:
            assert result["type"] == "rectanglelabels"
            assert (result["from_name"], result["to_name"]) == (rectangles.get("name"), image.get("name"))
            value, w, h = result["value"], result["original_width"], result["original_height"]
            assert all(0 <= value[k] <= 100 for k in ("x", "y", "width", "height"))
            x0, y0 = value["x"] * w / 100, value["y"] * h / 100
            got.append((value["rectanglelabels"][0],
                        (x0, y0, x0 + value["width"] * w / 100, y0 + value["height"] * h / 100)))
        assert_same_boxes(expected[Path(task["data"]["image"]).name], got)
        assert prediction["score"] == max((r["score"] for r in prediction["result"]), default=0.0)


def test_coco_reads_back_with_pycocotools_and_supervision(finished_run, tmp_path, capsys):
    check_coco(finished_run, tmp_path / "coco")
    boxes = sum(len(b) for b in parquet_boxes(finished_run).values())
    # The broken file is in the errors table, not in the export.
    assert f"3 images, {boxes} boxes, 3 categories" in capsys.readouterr().out
    categories = json.loads((tmp_path / "coco" / "annotations.json").read_text())["categories"]
    assert [(c["id"], c["name"], c["wnid"]) for c in categories] == [
        (1, "dog", "n02084071"), (2, "cat", "n02121620"), (3, "bicycle", "n02834778")]


def test_yolo_reads_back_with_supervision(finished_run, tmp_path):
    check_yolo(finished_run, tmp_path / "yolo")
    assert category_names(finished_run) == NAMES


def test_pascal_voc_reads_back_with_supervision_and_the_evaluator(finished_run, tmp_path):
    check_pascal_voc(finished_run, tmp_path / "voc",
                     {name: parse_synset_spec(spec) for name, spec in zip(NAMES, SYNSETS.split(","))})


def test_label_studio_tasks_follow_its_documented_format(finished_run, tmp_path):
    check_label_studio(finished_run, tmp_path / "ls")


def test_unfinished_runs_and_used_folders_are_refused(finished_run, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(finished_run, unfinished)
    (unfinished / "_SUCCESS").unlink()
    assert export(["--labels", str(unfinished), "--format", "coco", "--out", str(tmp_path / "a")]) == 2
    assert "has no _SUCCESS" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()

    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert export(["--labels", str(finished_run), "--format", "yolo", "--out", str(used)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in used.iterdir()) == ["keep.txt"]

    for out in (used / "keep.txt", used / "keep.txt" / "coco"):  # a file where a folder goes
        assert export(["--labels", str(finished_run), "--format", "coco", "--out", str(out)]) == 2
        assert f"{used / 'keep.txt'} is a file, not a folder" in capsys.readouterr().err
    assert (used / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("argv, message", [
    (["--min-confidence", "3"], r"--min-confidence is a probability in \[0, 1\), got 3.0"),
    (["--min-score", "-0.1"], r"--min-score is a probability in \[0, 1\), got -0.1"),
    # An unquoted value the shell split: Beam's option parsing would drop the rest.
    (["--max-boxes-per-synset", "3", "dog"], "unexpected argument 'dog'"),
    (["--format", "yolo", "--images", "none"],
     "--images none: YOLO pairs each photo with its labels by file name under images/"),
])
def test_bad_arguments_are_usage_errors(finished_run, tmp_path, capsys, argv, message):
    import re

    with pytest.raises(SystemExit) as exit_:
        export(["--labels", str(finished_run), "--format", "coco", "--out", str(tmp_path / "c"),
                *argv])
    assert exit_.value.code == 2 and re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "c").exists()


def test_photos_left_where_they_are_get_label_files_in_the_export_only(finished_run, tmp_path):
    # With --images none a VOC annotation is still named by its photo's file name, in
    # --out: it used to be named by the URI, which put it beside the photo itself.
    rows = table(finished_run, "labels").to_pylist()
    photos = Path(rows[0]["image_uri"]).parent
    before = sorted(p.name for p in photos.iterdir())
    out = tmp_path / "voc"
    assert export(["--labels", str(finished_run), "--format", "voc", "--out", str(out),
                   "--images", "none"]) == 0
    assert sorted(p.name for p in photos.iterdir()) == before
    assert sorted(p.name for p in out.iterdir()) == ["Annotations"]
    for row in rows:
        uri = row["image_uri"]
        root = ET.parse(out / "Annotations" / f"{Path(uri).stem}.xml").getroot()
        assert root.findtext("filename") == Path(uri).name
        assert root.findtext("source/database") == uri
    # COCO's file_name is then the photo's URI, where the photo is.
    coco = tmp_path / "coco"
    assert export(["--labels", str(finished_run), "--format", "coco", "--out", str(coco),
                   "--images", "none"]) == 0
    images = json.loads((coco / "annotations.json").read_text())["images"]
    assert sorted(image["file_name"] for image in images) == sorted(row["image_uri"] for row in rows)
    assert sorted(p.name for p in photos.iterdir()) == before


def test_photos_left_in_place_are_named_only_where_a_label_file_needs_it(tmp_path):
    from pipeline.export import ImagePlacer

    uris = ["gs://b/monday/dog.jpg", "gs://b/tuesday/dog.jpg"]
    # VOC: an annotation per photo, so two photos of one name get two files.
    voc = ImagePlacer(tmp_path / "JPEGImages", "none", file_per_photo=True)
    first, second = (voc(uri) for uri in uris)
    assert first == "dog.jpg" and second.startswith("dog-") and second.endswith(".jpg")
    # COCO and Label Studio name photos by their URIs: no names kept (memory flat).
    coco = ImagePlacer(tmp_path / "images", "none", file_per_photo=False)
    assert [coco(uri) for uri in uris] == uris
    assert not any(tmp_path.iterdir())


def test_min_score_and_boxes_per_synset_keep_the_best_boxes():
    def box(synset, score):
        return {"synset": synset, "label": synset, "score": score, "x0": 0, "y0": 0, "x1": 1, "y1": 1}

    row = {"image_uri": "a.jpg", "width": 4, "height": 3,
           "boxes": [box("dog", 0.2), box("dog", 0.9), box("cat", 0.05), box("dog", 0.5)]}
    image, = labelled_images([row], min_score=0.1, max_boxes_per_synset=2)
    assert [(b.synset, b.score) for b in image.boxes] == [("dog", 0.9), ("dog", 0.5)]
    image, = labelled_images([row])
    assert len(image.boxes) == 4


def test_boxes_with_a_confidence_are_ranked_and_filtered_by_it():
    def box(synset, score, confidence):
        return {"synset": synset, "label": synset, "score": score, "x0": 0, "y0": 0, "x1": 1,
                "y1": 1, "confidence": confidence}

    row = {"image_uri": "a.jpg", "width": 4, "height": 3,
           "boxes": [box("dog", 0.9, 0.2), box("dog", 0.3, 0.7), box("cat", 0.8, 0.4)]}
    image, = labelled_images([row], max_boxes_per_synset=1)
    assert [(b.synset, b.confidence) for b in image.boxes] == [("dog", 0.7), ("cat", 0.4)]
    image, = labelled_images([row], min_confidence=0.3)
    assert [b.confidence for b in image.boxes] == [0.7, 0.4]
    # Boxes of runs without confidences (older runs' rows lack the field) pass a minimum of 0.
    old = {**row, "boxes": [{k: v for k, v in b.items() if k != "confidence"} for b in row["boxes"]]}
    image, = labelled_images([old])
    assert [b.score for b in image.boxes] == [0.9, 0.8, 0.3] and image.boxes[0].confidence is None
    assert list(labelled_images([old], min_confidence=0.1))[0].boxes == ()


def test_a_minimum_confidence_needs_a_run_with_confidences(finished_run, tmp_path, capsys):
    # The run's --min-score is not the shipped calibration's: its boxes have no confidence.
    assert export(["--labels", str(finished_run), "--format", "coco", "--out", str(tmp_path / "c"),
                   "--min-confidence", "0.5"]) == 2
    assert "--min-confidence: the boxes of" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_categories_have_stable_ids_and_unambiguous_names():
    found = categories([("n03126707", "crane"), ("n02012849", "crane"), ("n02084071", "dog")])
    assert [(c.id, c.name) for c in found] == [(1, "crane n03126707"), (2, "crane n02012849"), (3, "dog")]


def test_images_with_one_file_name_get_distinct_names():
    names = UniqueNames()
    first, second = names("gs://a/x/dog.jpg"), names("gs://a/y/dog.jpg")
    assert first == "dog.jpg" and second.startswith("dog-") and second.endswith(".jpg")


def test_an_older_run_with_float32_heatmaps_exports_the_same_boxes(finished_run, tmp_path):
    old = as_float32_run(finished_run, tmp_path / "float32")
    for run_dir in (finished_run, old):
        assert export(["--labels", str(run_dir), "--format", "coco",
                       "--out", str(tmp_path / f"coco-{run_dir.name}")]) == 0
    exported = [json.loads(next((tmp_path / f"coco-{r.name}").rglob("*.json")).read_text())
                for r in (finished_run, old)]
    assert exported[0]["annotations"] and exported[0]["annotations"] == exported[1]["annotations"]
