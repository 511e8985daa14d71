"""The boxes' confidence: the model's arithmetic, the calibration file and its checks,
the fit (logistic regression, reliability), and what the job does with it."""
import json

import numpy as np
import pytest

from pipeline.run import run
from transforms.config import LabelConfig
from transforms.maps.boxes import Box
from transforms.maps.confidence import (DEFAULT_CALIBRATION, ConfidenceCalibration, ConfidenceError,
                                        LogisticConfidence, calibration_settings,
                                        shipped_calibration)
from transforms.maps.hypotheses import FEATURES, Hypothesis
from transforms.quality.confidence_fit import (LabelledHypotheses, fit_confidence,
                                               logistic_fit, reliability)
from transforms.quality.detection import Objects
from transforms.vocab.vocabularies import parse_synset_list

from conftest import DATA, LOCAL, table

MODEL = LogisticConfidence(("log_peak", "threshold"), (-1.0, 0.3), (2.0, 0.1), (1.5, -0.5), 0.25)


def test_the_model_is_a_logistic_regression_on_standardised_features():
    features = np.zeros((2, len(FEATURES)))
    features[:, FEATURES.index("log_peak")] = [-1.0, 1.0]
    features[:, FEATURES.index("threshold")] = [0.3, 0.5]
    z = np.array([0.25, 0.25 + 1.5 * (2.0 / 2.0) - 0.5 * (0.2 / 0.1)])
    np.testing.assert_allclose(MODEL.predict(features), 1 / (1 + np.exp(-z)))


def _calibration(**changes) -> ConfidenceCalibration:
    settings = calibration_settings(LabelConfig().record(), "top_k")
    return ConfidenceCalibration(settings, {"top_k": MODEL}, {"top_k": 0.3}, {"top_k": {"images": 3}})


def test_a_calibration_file_reads_back_and_names_its_differences():
    calibration = _calibration()
    again = ConfidenceCalibration.from_json(calibration.to_json())
    assert again == calibration and again.minimum("top_k") == 0.3
    other = dict(LabelConfig().record(), scales=["224"], vocabulary="imagenet")
    assert again.differences(other, "top_k") == [
        "scales ['288+flip', '640'] (this run: ['224'])",
        "vocabulary 'concepts' (this run: 'imagenet')"]
    # The vocabulary matters to top-k runs only.
    assert again.differences(dict(LabelConfig().record(), vocabulary="imagenet"), "synsets") == []
    with pytest.raises(ConfidenceError, match="no model for runs with --synsets"):
        again.model("synsets")


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "format 'other'"),
    (lambda d: d["models"]["top_k"].update(features=["log_peak", "colour"]), "unknown feature 'colour'"),
    (lambda d: d["models"]["top_k"].update(scale=[2.0, 0.0]), "scales positive"),
    (lambda d: d["models"]["top_k"].update(mean=[0.0]), "differ in length"),
    (lambda d: d.update(minimums={}), "KeyError"),
    (lambda d: d.update(minimums={"top_k": 1.5}), r"in \[0, 1\)"),
    (lambda d: d["models"].update(boxes=d["models"]["top_k"]), "unknown mode 'boxes'"),
])
def test_broken_calibration_files_are_refused_with_the_reason(change, message):
    data = json.loads(_calibration().to_json())
    change(data)
    with pytest.raises(ConfidenceError, match=message):
        ConfidenceCalibration.from_json(json.dumps(data))
    with pytest.raises(ConfidenceError, match="not a confidence calibration"):
        ConfidenceCalibration.from_json("{")


def test_the_shipped_calibration_fits_the_default_settings_in_both_modes():
    calibration = ConfidenceCalibration.from_json(DEFAULT_CALIBRATION.read_text())
    defaults = LabelConfig().record()
    with_synsets = LabelConfig(synsets=parse_synset_list("voc")).record()
    assert calibration.differences(defaults, "top_k") == []
    assert calibration.differences(with_synsets, "synsets") == []
    assert set(calibration.source) == {"synsets", "top_k"}
    assert shipped_calibration() == calibration


def test_the_shipped_synsets_model_trusts_a_synset_of_many_classes_less():
    """With --synsets the model reads how many ImageNet classes a synset sums: dog's 118
    breeds sum to a high score by chance where one class's probability would not (top-k
    mode ranks its concepts against each other instead, and leaves it out)."""
    shipped = shipped_calibration()
    assert "log_classes" in shipped.model("synsets").features
    assert "log_classes" not in shipped.model("top_k").features
    features = np.zeros((2, len(FEATURES)))
    features[:, FEATURES.index("log_classes")] = np.log([1, 118])
    one_class, dog = shipped.model("synsets").predict(features)
    assert dog < one_class


def test_logistic_fit_recovers_the_coefficients_it_was_made_with():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 2))
    y = rng.random(20000) < 1 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])))
    weights, intercept = logistic_fit(x, y, l2=0.0)
    np.testing.assert_allclose([intercept, *weights], [0.5, 2.0, -1.0], atol=0.1)


def test_reliability_by_hand():
    confidence = np.array([0.05, 0.15, 0.15, 0.95])
    right = np.array([0, 0, 1, 1])
    error, bins = reliability(confidence, right)
    assert [(b["from"], b["boxes"]) for b in bins] == [(0.0, 1), (0.1, 2), (0.9, 1)]
    # |0.05 - 0| · 1/4 + |0.15 - 0.5| · 2/4 + |0.95 - 1| · 1/4
    assert error == pytest.approx((0.05 + 0.7 + 0.05) / 4)


def _hypothesis(x0: float, peak: float) -> Hypothesis:
    features = np.zeros(len(FEATURES))
    features[FEATURES.index("log_peak")] = np.log(peak)
    return Hypothesis(Box(x0, 0, x0 + 100, 100, score=peak, mean=0.5, area=1e4), 0.2, False,
                      features, 0)


def test_the_fit_learns_what_tells_right_boxes_and_says_how_often_they_are_right():
    """Synthetic photos with one object each (at x 0-100) and one dog hypothesis, on the
    object with a probability that rises with its peak probability (log-odds 1 + 2 log
    peak), else beside it; and a hypothesis of a synset standing for no class."""
    rng = np.random.default_rng(1)
    images, objects, right = [], {}, []
    for i in range(3000):
        peak = float(np.exp(rng.uniform(-3, 0)))
        right.append(rng.random() < 1 / (1 + np.exp(-(1 + 2 * np.log(peak)))))
        images.append(LabelledHypotheses(f"{i}.jpg", ("dog", None),
                                         ((_hypothesis(0 if right[-1] else 300, peak),),
                                          (_hypothesis(0, 0.9),))))
        objects[f"{i}.jpg", "dog"] = Objects(np.array([[0, 0, 100, 100.0]]), np.array([False]))
    model = fit_confidence(images, objects, ("log_peak",), 0.0)
    features = np.stack([item.hypotheses[0][0].features for item in images])
    log_peak = features[:, FEATURES.index("log_peak")]
    # The log-odds it learnt are the ones the photos were made with, give or take.
    log_odds = np.log(model.predict(features) / (1 - model.predict(features)))
    slope, offset = np.polyfit(log_peak, log_odds, 1)
    assert slope == pytest.approx(2, abs=0.3) and offset == pytest.approx(1, abs=0.3)
    # And it says how often its boxes are right.
    assert reliability(model.predict(features), np.array(right))[0] < 0.03
    # A synset standing for no class (the second) is left out: fitting on it alone fails.
    no_class = [LabelledHypotheses(i.image, (None,), i.hypotheses[1:]) for i in images]
    with pytest.raises(ValueError, match="both right and wrong"):
        fit_confidence(no_class, objects, ("log_peak",), 0.0)


# The job and its calibration.


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, weights_cache):
    output = tmp_path_factory.mktemp("confidence") / "run"
    assert run(["--input", str(DATA / "dog.jpg"), "--input", str(DATA / "eagle.jpg"),
                "--output", str(output), *LOCAL]) == 0
    return output


def test_a_default_run_gives_every_box_a_confidence_and_keeps_the_confident_ones(default_run):
    config = json.loads((default_run / "run.json").read_text())["config"]
    assert config["confidence"]["file"] == "shipped" and config["confidence"]["mode"] == "top_k"
    assert config["confidence"]["sha256"].startswith("sha256:")
    assert config["min_confidence"] == shipped_calibration().minimum("top_k")
    boxes = [b for row in table(default_run, "labels").to_pylist() for b in row["boxes"]]
    assert boxes
    for row in table(default_run, "labels").to_pylist():
        confidences = [b["confidence"] for b in row["boxes"]]
        assert confidences == sorted(confidences, reverse=True)
        assert all(c >= config["min_confidence"] for c in confidences)


@pytest.fixture(scope="module")
def run_of_every_hypothesis(tmp_path_factory, weights_cache):
    output = tmp_path_factory.mktemp("confidence") / "every"
    assert run([*(arg for name in ("dog.jpg", "eagle.jpg", "chelsea.png")
                  for arg in ("--input", str(DATA / name))),
                "--output", str(output), "--min-confidence", "0", *LOCAL]) == 0
    return output


def test_the_stored_maps_and_photo_give_the_runs_boxes_again_as_the_fit_makes_them(
        run_of_every_hypothesis):
    # The confidence is fitted on hypotheses made again from a run's stored heatmaps and
    # its photos (pipeline.evaluate): they must be the job's own, to the pixel, or the
    # model learns on boxes the job never scores. At no minimum the job keeps a box of
    # every hypothesis that survives non-maximum suppression.
    from pipeline.evaluate import LABEL_COLUMNS, image_hypotheses
    from pipeline.outputs import read_labels
    from transforms.maps.hypotheses import refine_gate
    from transforms.quality.confidence_fit import kept_hypotheses

    config = json.loads((run_of_every_hypothesis / "run.json").read_text())["config"]
    rows = read_labels(str(run_of_every_hypothesis), LABEL_COLUMNS)
    made = [image_hypotheses(row["image_uri"], row, config,
                             {h["synset"]: h["synset"] for h in row["heatmaps"]}) for row in rows]
    _, again = kept_hypotheses(made, shipped_calibration().model("top_k"), 0.0, refine_gate(0.0))
    emitted = sorted(((row["image_uri"], b["synset"]), [b["x0"], b["y0"], b["x1"], b["y1"]],
                      b["confidence"]) for row in rows for b in row["boxes"])
    again = sorted(((d.image, d.synset), list(d.box), d.confidence) for d in again)
    assert len(emitted) > 20
    assert [e[0] for e in again] == [e[0] for e in emitted]
    # To a thousandth of a pixel: the table stores coordinates as float32.
    np.testing.assert_allclose([e[1] for e in again], [e[1] for e in emitted], atol=1e-3)
    np.testing.assert_allclose([e[2] for e in again], [e[2] for e in emitted], atol=1e-6)


def test_an_export_keeps_the_boxes_confident_enough(default_run, tmp_path):
    from pipeline.export import main as export

    boxes = [b for row in table(default_run, "labels").to_pylist() for b in row["boxes"]]
    cut = float(np.median([b["confidence"] for b in boxes]))
    assert export(["--labels", str(default_run), "--format", "coco", "--out", str(tmp_path / "c"),
                   "--min-confidence", str(cut)]) == 0
    annotations = json.loads((tmp_path / "c" / "annotations.json").read_text())["annotations"]
    assert len(annotations) == sum(b["confidence"] >= cut for b in boxes)
    # COCO's score is what ranks the boxes: their confidence.
    assert sorted(a["score"] for a in annotations) == pytest.approx(
        sorted(round(b["confidence"], 4) for b in boxes if b["confidence"] >= cut))


def test_other_settings_run_without_the_shipped_confidence_and_say_so(tmp_path, weights_cache,
                                                                        caplog):
    output = tmp_path / "run"
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(output), "--scales", "224",
                *LOCAL]) == 0
    assert "boxes have no confidence: the shipped calibration was fitted with other settings " \
           "(scales ['288+flip', '640'] (this run: ['224']))" in caplog.text
    assert json.loads((output / "run.json").read_text())["config"]["confidence"] is None
    boxes = [b for row in table(output, "labels").to_pylist() for b in row["boxes"]]
    assert boxes and all(b["confidence"] is None for b in boxes)


@pytest.mark.parametrize("options, message", [
    (["--scales", "224", "--confidence", "CALIBRATION"],
     "--confidence CALIBRATION: fitted with other settings: scales ['288+flip', '640'] "
     "(this run: ['224'])"),
    (["--synsets", "dog", "--confidence", "CALIBRATION"],
     "--confidence CALIBRATION: it has no model for runs with --synsets"),
    (["--confidence", "BROKEN"], "--confidence BROKEN: not a confidence calibration"),
    (["--confidence", "/nonexistent/c.json"], "--confidence /nonexistent/c.json: cannot read it"),
    (["--confidence", "none", "--min-confidence", "0.5"], "--min-confidence needs a confidence"),
    (["--min-confidence", "1.5"], r"--min-confidence is a probability in [0, 1), got 1.5"),
    (["--threshold", "0.2,x"], "--threshold 0.2,x: give numbers separated by commas"),
    (["--threshold", "0,0.5"], "--threshold 0,0.5: heat levels must be in (0, 1]"),
])
def test_confidence_mistakes_fail_before_any_work(tmp_path, weights_cache, capsys, options, message):
    calibration, broken = tmp_path / "calibration.json", tmp_path / "broken.json"
    calibration.write_text(_calibration().to_json())
    broken.write_text('{"format": "something else"}')
    names = {"CALIBRATION": str(calibration), "BROKEN": str(broken)}
    options = [names.get(o, o) for o in options]
    output = tmp_path / "run"
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(output), *options, *LOCAL]) == 2
    assert message.replace("CALIBRATION", str(calibration)).replace("BROKEN", str(broken)) \
        in capsys.readouterr().err
    assert not output.exists()


def test_a_calibration_file_of_the_runs_settings_is_used_and_recorded(tmp_path, weights_cache):
    path = tmp_path / "calibration.json"
    path.write_text(_calibration().to_json())
    output = tmp_path / "run"
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(output), "--confidence",
                str(path), "--min-confidence", "0", *LOCAL]) == 0
    config = json.loads((output / "run.json").read_text())["config"]
    assert config["confidence"]["file"] == str(path) and config["min_confidence"] == 0
    row = table(output, "labels").to_pylist()[0]
    # Every box's confidence is that model's, with a box for every object it saw.
    assert row["boxes"] and all(0 < b["confidence"] < 1 for b in row["boxes"])
