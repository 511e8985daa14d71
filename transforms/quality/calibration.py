"""Per-synset box thresholds chosen on a labelled set.

One threshold for every synset suits some objects and not others: the heat of a small
object (a bottle, a monitor) spreads beyond it and wants a high threshold, a large one
wants a low threshold. Given the heatmaps of a run and ground-truth boxes, each
synset's threshold is the one whose top boxes are correct (IoU ≥ 0.5) most often,
with the overall curve mixed in as ``shrinkage`` pseudo-pairs, so that a synset seen
in few pairs stays near the overall best (``default``, also used for synsets the set
has not seen).

A calibration is only valid for heat made the same way: ``SETTINGS`` name the run's
settings it records and the job checks.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np

from transforms.maps.boxes import PIXELS_PER_CELL, raster_boxes, upsample
from transforms.model.grid import MapGrid
from transforms.maps.refine import resize_photo
from transforms.quality.localization import CORLOC_IOU, best_iou, box_coords

# The label settings a threshold's meaning depends on (LabelConfig fields).
SETTINGS = ("model", "weights", "map_mode", "window_stride", "scales", "fusion", "heat",
            "relative_threshold", "min_box_area", "refine_boxes")
THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)
# Pseudo-pairs of the overall curve added to each synset's. On 553 PASCAL VOC pairs no
# shrinkage made per-synset thresholds beat one calibrated threshold in 2-fold
# cross-validation, more shrinkage coming closer (benchmarks/README.md): 10 lets a
# synset seen in a few dozen pairs move only where its own curve clearly says so.
SHRINKAGE = 10


class CalibrationError(ValueError):
    """A thresholds file that cannot be used, with the reason."""


@dataclass(frozen=True)
class SynsetThreshold:
    label: str
    threshold: float
    pairs: int
    corloc: float  # at its threshold, on the calibration set (optimistic there)


@dataclass(frozen=True)
class Calibration:
    settings: dict
    default: float
    synsets: dict[str, SynsetThreshold]
    source: dict = field(default_factory=dict)  # what it was calibrated on

    def thresholds(self) -> tuple[tuple[str, float], ...]:
        """(wnid, threshold) pairs, as LabelConfig.synset_thresholds takes them."""
        return tuple((wnid, s.threshold) for wnid, s in sorted(self.synsets.items()))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        try:
            data = json.loads(text)
            synsets = {wnid: SynsetThreshold(**entry) for wnid, entry in data["synsets"].items()}
            calibration = cls(dict(data["settings"]), float(data["default"]), synsets,
                              dict(data.get("source", {})))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"not a thresholds file of pipeline.evaluate --calibrate "
                                   f"({type(e).__name__}: {e})") from None
        bad = [t for t in (calibration.default, *(s.threshold for s in synsets.values()))
               if not 0 < t <= 1]
        if bad:
            raise CalibrationError(f"thresholds must be in (0, 1], got {bad[0]}")
        return calibration

    def check_settings(self, settings: Mapping) -> None:
        """Raise CalibrationError naming every setting that differs from ``settings``."""
        differ = [f"{name} {self.settings.get(name)!r} (this run: {settings.get(name)!r})"
                  for name in SETTINGS if self.settings.get(name) != settings.get(name)]
        if differ:
            raise CalibrationError(
                "calibrated for other settings: " + "; ".join(differ) + ". Give the run "
                "those settings, or calibrate on a run with this run's settings")


def top_box_hits(heat: np.ndarray, probability: np.ndarray, grid: MapGrid,
                 image_size: tuple[int, int], truth: np.ndarray, relative: bool = False,
                 min_area: float = 0.0, min_score: float = 0.0,
                 thresholds: np.ndarray = THRESHOLDS,
                 photo: np.ndarray | None = None) -> np.ndarray:
    """Whether the top box (the job's: best score, the peak probability; refined by
    ``photo``, the image, when given) at each of ``thresholds`` has IoU ≥ 0.5 with one
    of the ``truth`` boxes (n, 4)."""
    raster = upsample(heat, grid, image_size, PIXELS_PER_CELL)
    scores = upsample(probability, grid, image_size, PIXELS_PER_CELL)
    photo = None if photo is None else resize_photo(photo, raster.shape)
    peak = float(raster.max())
    hits = []
    for threshold in thresholds:
        top = raster_boxes(raster, threshold * peak if relative else threshold, image_size,
                           min_area, scores, min_score, photo, limit=1)
        hits.append(best_iou(box_coords(top), truth) >= CORLOC_IOU)
    return np.array(hits)


def calibrate(hits: np.ndarray, synsets: Sequence[str], labels: Mapping[str, str],
              settings: Mapping, shrinkage: float = SHRINKAGE,
              thresholds: np.ndarray = THRESHOLDS, source: Mapping | None = None) -> Calibration:
    """Thresholds from (pairs, thresholds) top-box ``hits`` and each pair's synset wnid."""
    hits = np.asarray(hits, bool).reshape(len(synsets), len(thresholds))
    if not len(hits):
        raise CalibrationError("no pairs to calibrate on")
    overall = hits.mean(axis=0)
    synsets = np.asarray(synsets)
    chosen = {}
    for wnid in sorted(set(synsets)):
        mine = hits[synsets == wnid]
        best = int(np.argmax((mine.sum(axis=0) + shrinkage * overall) / (len(mine) + shrinkage)))
        chosen[wnid] = SynsetThreshold(labels[wnid], float(thresholds[best]), len(mine),
                                       float(mine[:, best].mean()))
    return Calibration({name: settings.get(name) for name in SETTINGS},
                       float(thresholds[int(np.argmax(overall))]), chosen, dict(source or {}))
