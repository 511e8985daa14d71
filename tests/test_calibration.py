"""Per-synset thresholds: the choice, its shrinkage, the file, and what the job checks."""
import numpy as np
import pytest

from transforms.quality.calibration import (THRESHOLDS, Calibration, CalibrationError, SynsetThreshold,
                                            calibrate, top_box_hits)
from transforms.model.grid import MapGrid

SETTINGS = {"model": "efficientnet_lite0", "weights": "imagenet", "map_mode": "cell",
            "window_stride": 1, "scales": ["288", "576"], "fusion": "mean", "heat": "logit",
            "relative_threshold": False, "min_box_area": 0.0}


def _hits(pairs: int, good: list[float]) -> np.ndarray:
    """``pairs`` rows hit exactly at the thresholds in ``good``."""
    return np.tile(np.isin(THRESHOLDS, good), (pairs, 1))


def test_each_synset_gets_its_best_threshold_and_few_pairs_stay_near_the_overall_best():
    hits = np.concatenate([_hits(30, [0.3, 0.35]),   # "a": many pairs, best at 0.3
                           _hits(20, [0.7]),          # "b": many pairs, best at 0.7
                           _hits(1, [0.9])])          # "c": one pair, best at 0.9
    synsets = ["a"] * 30 + ["b"] * 20 + ["c"]
    result = calibrate(hits, synsets, {"a": "A", "b": "B", "c": "C"}, SETTINGS)
    assert result.default == 0.3  # the most hits overall
    assert {w: s.threshold for w, s in result.synsets.items()} == {"a": 0.3, "b": 0.7, "c": 0.3}
    assert result.synsets["b"] == SynsetThreshold("B", 0.7, 20, 1.0)
    assert result.synsets["c"].corloc == 0.0  # at the threshold chosen for it
    unshrunk = calibrate(hits, synsets, {"a": "A", "b": "B", "c": "C"}, SETTINGS, shrinkage=0)
    assert unshrunk.synsets["c"].threshold == 0.9


def test_a_calibration_round_trips_through_its_file_and_checks_settings():
    calibration = Calibration(dict(SETTINGS), 0.35,
                              {"n02084071": SynsetThreshold("dog", 0.2, 36, 0.6)}, {"pairs": 36})
    again = Calibration.from_json(calibration.to_json())
    assert again == calibration
    assert again.thresholds() == (("n02084071", 0.2),)
    again.check_settings({**SETTINGS, "synsets": None})  # other settings do not matter
    with pytest.raises(CalibrationError, match=r"scales \['288', '576'\] \(this run: \['224'\]\); "
                                               r"heat 'logit' \(this run: 'probability'\)"):
        again.check_settings({**SETTINGS, "scales": ["224"], "heat": "probability"})


@pytest.mark.parametrize("text, message", [
    ("{", "not a thresholds file"),
    ('{"settings": {}, "default": 0.3}', "not a thresholds file .*synsets"),
    ('{"settings": {}, "default": 1.5, "synsets": {}}', r"thresholds must be in \(0, 1\]"),
])
def test_bad_thresholds_files_are_refused(text, message):
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_json(text)


def _hill():
    """A 300×400 image's map: a hill of heat over the object (x 100-200, y 100-200),
    brightest in its middle."""
    size = (300, 400)
    ys, xs = np.mgrid[0:30, 0:40]
    heat = np.clip(1 - np.hypot(ys - 15, xs - 15) / 12, 0, 1).astype(np.float32)
    return size, MapGrid.uniform(30, 40, size), heat, np.array([[100, 100, 200, 200]])


def test_top_box_hits_finds_the_thresholds_whose_top_box_is_the_object():
    size, grid, heat, truth = _hill()
    hits = top_box_hits(heat, heat, grid, size, truth)
    assert hits.shape == THRESHOLDS.shape
    assert hits[THRESHOLDS == 0.6].all() and not hits[THRESHOLDS == 0.05].any()
    assert not top_box_hits(heat, heat, grid, size, truth, min_score=1.1).any()  # no box


def test_top_box_hits_refine_with_the_photo_as_the_job_does():
    size, grid, heat, truth = _hill()
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal((60, 140, 50), 12, (*size, 3)), 0, 255).astype(np.uint8)
    photo[100:200, 100:200] = (200, 30, 40)  # the object, on grass
    plain = top_box_hits(heat, heat, grid, size, truth)
    refined = top_box_hits(heat, heat, grid, size, truth, photo=photo)
    # The heat's own box at a low threshold holds the grass around the object; refined,
    # it is the object.
    assert not plain[THRESHOLDS == 0.1].any() and refined[THRESHOLDS == 0.1].all()
    assert refined.sum() > plain.sum()
