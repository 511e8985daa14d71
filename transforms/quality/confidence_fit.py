"""Fitting the box confidence (``transforms.maps.confidence``) on labelled photos.

From a run's stored maps (and its photos, to refine as the job does) every hypothesis of
every synset is made again (``hypotheses.synset_hypotheses``, all refined) and labelled
against the ground truth: right when its IoU with a non-difficult object of its class
is at least 0.5; hypotheses whose best object is difficult, and those of synsets that
stand for no ground-truth class, are left out. A logistic regression (L2, standardised
features) is fitted to these labels. The job keeps, per synset, the most confident
hypotheses that do not overlap each other (non-maximum suppression): those are the most
confident of their neighbourhood, so a probability fitted on every hypothesis is too
high for them. So the model is fitted again on the boxes the job would keep, labelled by
VOC's rule (a second box on an object already claimed is wrong), the components refined
as the job refines them at the run's minimum confidence (``hypotheses.refine_gate``); as
the kept boxes move with the model, this is done ``REFIT_ROUNDS`` times. Last, the
log-odds of the kept boxes a run would emit (at least its minimum, and ``PLATT_FLOOR``)
are rescaled to their outcomes (Platt
scaling: a slope and an offset, which keep the ranking); all of it is linear in the
features, so the result is one logistic model.

Reliability: boxes binned by confidence, each bin's mean confidence against its share
of right boxes; the expected calibration error (ECE) is their gap averaged with the
bins' shares of the boxes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import optimize, special

from transforms.maps.boxes import PIXELS_PER_CELL, iou_matrix, raster_shape, upsample
from transforms.maps.confidence import (ConfidenceCalibration, LogisticConfidence,
                                        calibration_settings)
from transforms.model.grid import MapGrid
from transforms.maps.hypotheses import (DEFAULT_THRESHOLDS, FEATURES, NMS_IOU, Hypothesis,
                                        RefineGate, kept_boxes, refine_gate, synset_evidence,
                                        synset_hypotheses, with_confidence)
from transforms.maps.refine import resize_photo
from transforms.quality.detection import Detection, Objects, match_detections
from transforms.quality.localization import CORLOC_IOU
from transforms.vocab.vocabularies import recorded_synsets

# Features per mode. With --synsets the set of synsets is the user's: a synset's rank
# among them, or its score over the best of them, means something else for two synsets
# than for twenty (and without them AP on voc07-dev was the same, 2-fold); how many
# classes a synset sums tells dog's chance-level score from a one-class synset's (+1.2
# CorLoc, +0.9 mAP, 2-fold). In top-k mode, whose concepts are ranked against each other,
# it gained only by refining more boxes: at the same GrabCut calls, the same precision
# and pairs (benchmarks/README.md (g)).
MODE_FEATURES = {
    "synsets": tuple(f for f in FEATURES if f not in ("log_image_score_ratio", "log_synset_rank")),
    "top_k": tuple(f for f in FEATURES if f != "log_classes"),
}
# The weight of the L2 penalty against the summed log-loss (scikit-learn's C = 1).
L2 = 1.0
# Fits on the boxes kept with the model before (their set moves with the model): on
# voc07-dev two gave 0.8 more AP than one fit on every hypothesis and calibrated kept boxes.
REFIT_ROUNDS = 2
# The kept boxes at least this confident (or the run's minimum) scale the log-odds last
# (Platt scaling): what runs emit. Fitted on all kept boxes, the thousands near 0 decide
# the slope, and boxes at 0.5-0.8 were right 10 points more often than said.
PLATT_FLOOR = 0.02
RELIABILITY_BINS = 10


@dataclass(frozen=True)
class LabelledHypotheses:
    """One image's hypotheses, per synset of its labels row, with the ground-truth class
    each synset stands for (None: none) and its file name as the ground truth has it."""

    image: str
    truth_synsets: tuple[str | None, ...]
    hypotheses: tuple[tuple[Hypothesis, ...], ...]


def row_hypotheses(row: Mapping, settings: Mapping, photo: np.ndarray | None,
                   image: str, truth_synset: Callable[[str], str | None]) -> LabelledHypotheses:
    """Every hypothesis of every synset of a labels row (read back with its heatmaps as
    arrays: ``records.decoded_row``), made from its heat and probability maps as the job
    made them (``settings``: the run's LabelConfig record), refined by ``photo`` (the
    image, any size) when given."""
    image_size = (row["height"], row["width"])
    classes = {s["wnid"]: s["classes"] for s in recorded_synsets(settings)}
    evidence = synset_evidence(np.array([h["score"] for h in row["heatmaps"]], np.float64),
                               [classes[h["synset"]] for h in row["heatmaps"]])
    thresholds = dict(settings.get("synset_thresholds") or {})
    resized = None
    per_synset = []
    for heatmap, synset_evidence_ in zip(row["heatmaps"], evidence):
        heat, probability = heatmap["heat"], heatmap["probability"]
        grid = MapGrid.uniform(*heat.shape, image_size)
        if photo is not None and resized is None:
            resized = resize_photo(photo, raster_shape(grid, image_size, PIXELS_PER_CELL))
        levels = ((thresholds[heatmap["synset"]],) if heatmap["synset"] in thresholds
                  else tuple(settings.get("threshold") or DEFAULT_THRESHOLDS))
        per_synset.append(tuple(synset_hypotheses(
            upsample(heat, grid, image_size, PIXELS_PER_CELL),
            upsample(probability, grid, image_size, PIXELS_PER_CELL), image_size,
            synset_evidence_, levels, settings.get("relative_threshold", False),
            settings.get("min_box_area", 0.0), settings.get("min_score", 0.0), resized,
            refine_all=True)))
    return LabelledHypotheses(image, tuple(truth_synset(h["synset"]) for h in row["heatmaps"]),
                              tuple(per_synset))


def hypothesis_labels(images: Sequence[LabelledHypotheses],
                      objects: Mapping[tuple[str, str], Objects]) -> np.ndarray:
    """Per hypothesis (in image, synset, hypothesis order): 1 right, 0 wrong, -1 left
    out (its best object is difficult, or its synset stands for no class)."""
    labels = []
    for item in images:
        for truth, hypotheses in zip(item.truth_synsets, item.hypotheses):
            found = None if truth is None else objects.get((item.image, truth))
            for h in hypotheses:
                if truth is None:
                    labels.append(-1)
                elif found is None or not len(found.boxes):
                    labels.append(0)
                else:
                    ious = iou_matrix((h.box.x0, h.box.y0, h.box.x1, h.box.y1), found.boxes)[0]
                    best = int(np.argmax(ious))
                    labels.append(-1 if ious[best] >= CORLOC_IOU and found.difficult[best]
                                  else int(ious[best] >= CORLOC_IOU))
    return np.array(labels, np.int8)


def _features(images: Sequence[LabelledHypotheses]) -> np.ndarray:
    rows = [h.features for item in images for hypotheses in item.hypotheses for h in hypotheses]
    return np.array(rows, np.float64).reshape(-1, len(FEATURES))


def logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weights and intercept minimising the summed log-loss plus l2/2 · |weights|² (the
    intercept not penalised)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        # log(1 + e^z) - y z, stably
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w
        residual = special.expit(z) - y
        return value, np.append(x.T @ residual + l2 * w, residual.sum())

    theta = optimize.minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                              options={"maxiter": 1000}).x
    return theta[:-1], float(theta[-1])


def fit_confidence(images: Sequence[LabelledHypotheses], objects: Mapping[tuple[str, str], Objects],
                   features: Sequence[str], min_confidence: float,
                   rounds: int = REFIT_ROUNDS) -> LogisticConfidence:
    """The confidence model of ``features`` fitted on the images' hypotheses for runs
    keeping boxes of at least ``min_confidence`` (see the module's docstring)."""
    columns = [FEATURES.index(f) for f in features]
    x_all = _features(images)[:, columns]
    labels = hypothesis_labels(images, objects)
    known = labels >= 0
    if known.sum() == 0 or labels[known].min() == labels[known].max():
        raise ValueError("fitting a confidence needs hypotheses both right and wrong: too few "
                         "labelled photos, or none of the ground truth's classes among the synsets")
    mean = x_all[known].mean(axis=0)
    scale = x_all[known].std(axis=0)
    scale[scale == 0] = 1.0

    def fitted(x: np.ndarray, y: np.ndarray) -> LogisticConfidence:
        weights, intercept = logistic_fit((x - mean) / scale, y)
        return LogisticConfidence(tuple(features), tuple(mean), tuple(scale), tuple(weights), intercept)

    model = fitted(x_all[known], labels[known])
    for _ in range(rounds):
        kept, detections = kept_hypotheses(images, model, 0.0, refine_gate(min_confidence))
        outcome = match_detections(detections, objects)
        scored = outcome >= 0
        model = fitted(np.array([h.features for h in kept])[scored][:, columns], outcome[scored] == 1)
    # Platt scaling of the boxes a run would emit: slope and offset of the log-odds.
    _, detections = kept_hypotheses(images, model, max(PLATT_FLOOR, min_confidence),
                                    refine_gate(min_confidence))
    outcome = match_detections(detections, objects)
    scored = outcome >= 0
    log_odds = special.logit(np.clip([d.confidence for d in detections], 1e-12, 1 - 1e-12))
    (slope,), offset = logistic_fit(log_odds[scored][:, None], outcome[scored] == 1)
    return LogisticConfidence(model.features, model.mean, model.scale,
                              tuple(slope * np.asarray(model.coefficients)),
                              float(slope * model.intercept + offset))


def fit_calibration(images: Sequence[LabelledHypotheses],
                    objects: Mapping[tuple[str, str], Objects], settings: Mapping, mode: str,
                    min_confidence: float, source: Mapping) -> ConfidenceCalibration:
    """A calibration file's content: the model of ``mode`` (``synsets`` or ``top_k``)
    fitted on the images' hypotheses for runs keeping boxes of at least
    ``min_confidence``, that minimum, the run's ``settings`` (its LabelConfig record) it
    holds for, and ``source``, what it was fitted on."""
    model = fit_confidence(images, objects, MODE_FEATURES[mode], min_confidence)
    return ConfidenceCalibration(calibration_settings(settings, mode), {mode: model},
                                 {mode: min_confidence}, {mode: dict(source)})


def kept_hypotheses(images: Sequence[LabelledHypotheses], model: LogisticConfidence,
                    min_confidence: float, refine: RefineGate
                    ) -> tuple[list[Hypothesis], list[Detection]]:
    """The hypotheses the job keeps with ``model`` (components ``refine`` does not choose
    not refined, non-maximum suppression, the minimum confidence), of synsets standing for
    a class, and each as a detection of that class."""
    kept, detections = [], []
    for item in images:
        for truth, hypotheses in zip(item.truth_synsets, item.hypotheses):
            if truth is None or not hypotheses:
                continue
            scored = with_confidence(hypotheses, model)
            plain = [h for h in scored if not h.refined]
            chosen = {h.component for h, c in zip(plain, refine.chosen(
                [h.box.confidence for h in plain])) if c}
            usable = [h for h in scored if not h.refined or h.component in chosen]
            boxes = {id(box) for box in kept_boxes(usable, NMS_IOU, min_confidence)}
            for h in usable:
                if id(h.box) in boxes:
                    kept.append(h)
                    detections.append(Detection(item.image, truth, h.box.confidence,
                                                (h.box.x0, h.box.y0, h.box.x1, h.box.y1)))
    return kept, detections


def reliability(confidence: np.ndarray, right: np.ndarray,
                bins: int = RELIABILITY_BINS) -> tuple[float, list[dict]]:
    """The expected calibration error of boxes' confidences against whether each is
    right, and the table behind it: per bin of confidence (equal widths over 0-1), its
    boxes, mean confidence and share right."""
    confidence = np.asarray(confidence, np.float64)
    right = np.asarray(right, np.float64)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    table, error = [], 0.0
    for b in range(bins):
        members = index == b
        if not members.any():
            continue
        mean, share = float(confidence[members].mean()), float(right[members].mean())
        error += members.sum() / len(confidence) * abs(mean - share)
        table.append({"from": b / bins, "to": (b + 1) / bins, "boxes": int(members.sum()),
                      "confidence": mean, "right": share})
    return float(error), table
