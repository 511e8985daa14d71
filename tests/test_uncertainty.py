"""Intervals over the photos: a figure measured on a few hundred photos, and how far the
same figure could be on other photos like them (bootstrap, photos drawn whole)."""
import numpy as np
import pytest

from transforms.quality.detection import Detection, Objects, detection_summary
from transforms.quality.localization import HEAT_THRESHOLDS, PairScore, summarize_by_synset
from transforms.quality.uncertainty import photo_interval

RIGHT, WRONG = 0.9, 0.1  # a top box's IoU with its object


def test_an_interval_holds_the_figure_and_narrows_with_more_photos():
    rng = np.random.default_rng(3)
    widths = []
    for photos in (50, 800):
        right = rng.random(photos) < 0.6
        low, high = photo_interval(lambda drawn: 100 * right[drawn].mean(), photos)
        assert low < 100 * right.mean() < high
        widths.append(high - low)
    # A proportion's 95 % interval: about ±1.96 √(p(1-p)/n).
    assert widths[0] == pytest.approx(2 * 1.96 * 100 * np.sqrt(0.24 / 50), rel=0.25)
    assert widths[1] == pytest.approx(2 * 1.96 * 100 * np.sqrt(0.24 / 800), rel=0.25)
    # The same figure every time it is made; none from one photo; a figure no draw moves.
    right = rng.random(100) < 0.5
    assert photo_interval(lambda d: right[d].mean(), 100) == photo_interval(lambda d: right[d].mean(), 100)
    assert photo_interval(lambda d: 1.0, 1) is None
    assert photo_interval(lambda d: 7.0, 30) == (7.0, 7.0)
    # A draw with nothing to measure (here, any draw holding photo 0): no interval.
    assert photo_interval(lambda d: np.nan if 0 in d else float(len(set(d))), 30) is None


def _scores(photos: int, pairs_per_photo: int) -> list[PairScore]:
    """Every photo's pairs all right or all wrong, alternately."""
    sweep = np.zeros(len(HEAT_THRESHOLDS))
    return [PairScore(f"{i}.jpg", f"n{j:08d}", sweep, sweep,
                      RIGHT if i % 2 else WRONG)
            for i in range(photos) for j in range(pairs_per_photo)]


def test_corloc_pairs_are_drawn_with_their_photo():
    # Ten pairs in each of 20 photos, a photo's pairs right or wrong together: 20 photos'
    # worth of evidence, not 200 pairs' (±22 points, not ±7).
    overall = summarize_by_synset(_scores(20, 10))["overall"]
    low, high = overall["corloc_interval"]
    assert overall["corloc"] == 50.0 and low < 50 < high and high - low > 30
    one_pair_each = summarize_by_synset(_scores(200, 1))["overall"]["corloc_interval"]
    assert one_pair_each[1] - one_pair_each[0] < 20


def test_the_mean_aps_interval_draws_photos_with_their_boxes_and_objects():
    photos = [f"{i}.jpg" for i in range(40)]
    box = (0, 0, 100, 100)
    objects = {(p, "dog"): Objects(np.array([box], np.float64), np.array([False]))
               for p in photos}
    # Every photo's dog found, ranked by a confidence that does not depend on the photo:
    # any draw of photos finds every dog it holds, AP 100.
    found = [Detection(p, "dog", 0.9, box) for p in photos]
    summary = detection_summary(found, objects, photos, ["dog"], boxes_emitted=40)
    assert summary["map"] == 100.0 and summary["map_interval"] == (100.0, 100.0)
    # Half the photos' dogs missed, and a false box in each of them ranked first:
    # the figure moves with the photos drawn, and its interval holds it.
    mixed = [Detection(p, "dog", 0.9, box) for p in photos[::2]] + \
            [Detection(p, "dog", 0.95, (300, 300, 400, 400)) for p in photos[1::2]]
    summary = detection_summary(mixed, objects, photos, ["dog"], boxes_emitted=40)
    low, high = summary["map_interval"]
    assert low <= summary["map"] <= high and high - low > 5
