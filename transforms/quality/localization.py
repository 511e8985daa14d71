"""Localization quality of heatmaps and boxes against ground-truth boxes.

The unit is an (image, synset) pair with one or more ground-truth boxes of that synset.

- CorLoc: the share of pairs whose top box (the job's best box of that synset, at the
  job's threshold) has IoU ≥ 0.5 with one of the pair's ground-truth boxes.
- MaxBoxAccV2 (Choe et al., "Evaluating Weakly Supervised Object Localization Methods
  Right", CVPR 2020): each heatmap min-max normalised and thresholded at 0, 0.01, …,
  0.99; at each threshold every connected component gives a box, and a pair is correct
  at IoU δ when its best box–ground-truth IoU reaches δ. The accuracy at the best
  threshold (one threshold for all pairs), averaged over δ = 0.3, 0.5 and 0.7.
  Threshold-free: it measures the heatmaps, not the choice of threshold.
- The centre baseline: the same with a Gaussian centred in the image in place of each
  heatmap (its CorLoc: its accuracy at IoU 0.5 at its best threshold, i.e. the best
  single centred box shape for the whole set).

All figures are percentages.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from transforms.maps.boxes import PIXELS_PER_CELL, Box, iou_matrix, raster_boxes, upsample
from transforms.maps.heatmaps import min_max_normalized
from transforms.model.grid import MapGrid
from transforms.quality.uncertainty import share_interval

IOU_THRESHOLDS = (0.3, 0.5, 0.7)
CORLOC_IOU = 0.5
# Choe et al.'s cam_curve_interval of 0.01.
HEAT_THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)
# Cells per side of the centre baseline's Gaussian map, and its width as a fraction of
# the image's sides (thresholds sweep the box size, so the width only sets the spacing).
_CENTRE_CELLS = 32
_CENTRE_SIGMA = 0.25


def best_iou(boxes: np.ndarray, truth: np.ndarray) -> float:
    """The largest IoU between any of ``boxes`` and any of ``truth``; 0 without boxes."""
    ious = iou_matrix(boxes, truth)
    return float(ious.max()) if ious.size else 0.0


def box_coords(boxes: Sequence[Box]) -> np.ndarray:
    return np.array([(b.x0, b.y0, b.x1, b.y1) for b in boxes], np.float64).reshape(-1, 4)


def threshold_sweep(heatmap: np.ndarray, grid: MapGrid, image_size: tuple[int, int],
                    truth: np.ndarray, thresholds: np.ndarray = HEAT_THRESHOLDS) -> np.ndarray:
    """The best box–ground-truth IoU at each threshold of the min-max normalised heatmap,
    boxes from all connected components."""
    raster = upsample(min_max_normalized(heatmap), grid, image_size, PIXELS_PER_CELL)
    return np.array([best_iou(box_coords(raster_boxes(raster, t, image_size)), truth)
                     for t in thresholds])


def centre_heatmap(image_size: tuple[int, int]) -> tuple[np.ndarray, MapGrid]:
    """The centre baseline: a Gaussian in the middle of the image, as wide as tall in
    proportion to the image."""
    grid = MapGrid.uniform(_CENTRE_CELLS, _CENTRE_CELLS, image_size)
    u = (np.arange(_CENTRE_CELLS) + 0.5) / _CENTRE_CELLS - 0.5
    heat = np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / (2 * _CENTRE_SIGMA ** 2))
    return heat.astype(np.float32), grid


@dataclass(frozen=True)
class PairScore:
    """How one (image, synset) pair fared: best IoU per heat threshold of its heatmap and
    of the centre baseline, and the IoU of the job's top box (0 when it had none)."""

    image: str
    synset: str
    sweep: np.ndarray
    centre_sweep: np.ndarray
    top_box_iou: float


def score_pair(image: str, synset: str, heatmap: np.ndarray, grid: MapGrid,
               image_size: tuple[int, int], top_box: tuple[float, float, float, float] | None,
               truth: np.ndarray) -> PairScore:
    """Score one heatmap (on ``grid`` over an image of ``image_size``) and its top box
    against the pair's ground-truth boxes (n, 4)."""
    centre, centre_grid = centre_heatmap(image_size)
    top_iou = 0.0 if top_box is None else best_iou(np.array(top_box), truth)
    return PairScore(image, synset, threshold_sweep(heatmap, grid, image_size, truth),
                     threshold_sweep(centre, centre_grid, image_size, truth), top_iou)


def max_box_accuracy(sweeps: np.ndarray,
                     iou_thresholds: Sequence[float] = IOU_THRESHOLDS) -> dict:
    """(pairs, thresholds) best IoUs → MaxBoxAccV2 and, per IoU δ, the best accuracy and
    the heat threshold that gave it."""
    sweeps = np.asarray(sweeps, np.float64).reshape(-1, len(HEAT_THRESHOLDS))
    per_iou = {}
    for delta in iou_thresholds:
        accuracy = 100 * (sweeps >= delta).mean(axis=0)
        best = int(np.argmax(accuracy))
        per_iou[f"{delta:g}"] = {"accuracy": float(accuracy[best]),
                                 "threshold": float(HEAT_THRESHOLDS[best])}
    return {"max_box_acc_v2": float(np.mean([v["accuracy"] for v in per_iou.values()])),
            "per_iou": per_iou}


def summarize(scores: Sequence[PairScore]) -> dict:
    """CorLoc, MaxBoxAccV2 and the centre baseline's over ``scores``."""
    heat = max_box_accuracy([s.sweep for s in scores])
    centre = max_box_accuracy([s.centre_sweep for s in scores])
    return {
        "pairs": len(scores),
        "corloc": 100 * float(np.mean([s.top_box_iou >= CORLOC_IOU for s in scores])),
        "max_box_acc_v2": heat["max_box_acc_v2"],
        "per_iou": heat["per_iou"],
        "centre_corloc": centre["per_iou"][f"{CORLOC_IOU:g}"]["accuracy"],
        "centre_max_box_acc_v2": centre["max_box_acc_v2"],
    }


def corloc_interval(scores: Sequence[PairScore]) -> tuple[float, float] | None:
    """The 95 % interval of the CorLoc of ``scores`` over their photos."""
    return share_interval([s.top_box_iou >= CORLOC_IOU for s in scores], [s.image for s in scores])


def summarize_by_synset(scores: Sequence[PairScore]) -> dict:
    """{"overall": summary, "synsets": {wnid: summary}}; the overall summary also holds
    its CorLoc's interval over the photos (``corloc_interval``, None for one photo)."""
    by_synset: dict[str, list[PairScore]] = {}
    for score in scores:
        by_synset.setdefault(score.synset, []).append(score)
    return {"overall": {**summarize(scores), "corloc_interval": corloc_interval(scores)},
            "synsets": {wnid: summarize(group) for wnid, group in sorted(by_synset.items())}}
