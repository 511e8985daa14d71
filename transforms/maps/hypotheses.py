"""A synset's boxes from its heatmap: hypotheses at several thresholds, each with the
probability that it is right, the best kept.

One threshold cannot suit every object: a low one keeps a whole object whose heat is
weak at its edges but melts objects side by side into one box, a high one splits them
and shrinks a small object's box to its hot core. So the heat is thresholded at several
levels (``DEFAULT_THRESHOLDS``); every connected component at every level is a
*hypothesis*: its box and, refined by GrabCut on the photo (``refine.py``), the box of
the object its colours separate. A confidence model (``confidence.py``) gives each
hypothesis the probability that it is right, from what the job knows of it
(``FEATURES``: its peak probability, the synset's image-level score and how many
ImageNet classes that score sums, how much heat it holds, whether it stays the same box
from one threshold to the next, …). Per synset the
most confident hypothesis is kept first and every hypothesis overlapping a kept one by
more than ``NMS_IOU`` is dropped (non-maximum suppression), so one object gets one box
and objects side by side keep theirs; what falls under the minimum confidence is dropped.

Without a confidence model nothing tells a component from the smaller ones inside it at
higher levels: the boxes are the components of the lowest threshold, ranked by their
peak probability (the ``score``), each refined, with no confidence.

Measured on PASCAL VOC photos: benchmarks/README.md, "Boxes a user can train on".
Plain numpy/scipy/OpenCV: nothing here knows about Beam.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, Sequence

import numpy as np

from transforms.maps.boxes import Box, Component, components, iou_matrix, raster_box
from transforms.maps.refine import grabcut_extent

# The levels of (normalised 0-1) heat the hypotheses come from: dense where most objects'
# edges lie. On voc07-dev (2-fold) each level added to 0.2-0.7 raised the mean AP;
# 0.15 and 0.25 most (benchmarks/README.md).
DEFAULT_THRESHOLDS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8)
# A hypothesis overlapping a more confident box of its synset by more than this IoU is
# the same object: dropped (0.3-0.6 measured; 0.5 gave the best AP).
NMS_IOU = 0.5
# GrabCut is the job's most expensive step after the network: a component whose own box
# is this unlikely to be right, or less than half as likely as the boxes a run keeps, is
# not refined (``refine_gate``), unless it is its synset's most confident component and
# its box could still be kept (at least half the run's minimum): the synset's first box
# mostly comes from it, and a present object the synset is unsure of counts for the
# top-box CorLoc as much as one it is sure of. With --synsets voc on voc07-dev (2-fold, 5
# splits): at 0.05 without the best component, 8.7 components per photo past the gate,
# CorLoc 53.9, mAP 37.9; at 0.07 with it 9.5, CorLoc 54.9, mAP 37.8 (at 0.05 with it:
# 10.6, 55.0, 38.1). In top-k mode (minimum 0.15) both bounds are 0.075, as before
# (benchmarks/README.md (g), "The synset's best component refined").
REFINE_CONFIDENCE = 0.07
# Components of one synset at neighbouring levels often have (nearly) the same box: their
# GrabCut crops and seeds differ little (mostly in which uncertain pixels start as probable
# foreground), and of their refined boxes non-maximum suppression keeps one. Of the
# components whose boxes overlap by more than this IoU only the most confident is
# refined. On voc07-dev (2-fold, both modes): 0.95 refines 7 % fewer components with
# every figure within 0.2 of refining them all; 0.9 and 0.8 lost up to 1 point of CorLoc
# or AP on a half (benchmarks/README.md, "Cost per image").
REFINE_SAME_IOU = 0.95

# What the confidence model can read of a hypothesis, in this order (``features``).
FEATURES = (
    "log_peak",               # log of the synset's peak probability in the component (the score)
    "log_image_score",        # log of the synset's image-level score
    "log_image_score_ratio",  # ... over the best image-level score among the image's synsets
    "log_synset_rank",        # log(1 + rank of the synset by image-level score in the image)
    "threshold",              # the heat level the component comes from
    "mean_heat",              # the component's mean heat
    "log_component_share",    # log of the component's share of the image
    "log_box_share",          # log of the box's share of the image
    "log_refined_share",      # log of the box's area over its component's box (0: not refined)
    "log_component_rank",     # log(1 + rank among its level's components, by peak)
    "log_components",         # log of the number of components at its level
    "log_peak_ratio",         # log of its peak over the synset's peak anywhere in the image
    "heat_share",             # its heat over all components' at its level
    "border",                 # 1 if the box touches the image's border
    "log_aspect",             # log of the box's width over its height
    "refined",                # 1 for a box refined by GrabCut, 0 for a component's box
    "log_same_box",           # log(1 + other levels' components whose box has IoU > 0.7 with it)
    "log_overlapping",        # log(1 + other levels' components whose box has IoU > 0.5 with it)
    "log_hypotheses",         # log of the synset's components over all levels
    "log_classes",            # log of the number of ImageNet classes the synset sums
)
_EPS = 1e-6


class ConfidenceModel(Protocol):
    """What scores hypotheses: (n, len(FEATURES)) features → (n,) probabilities."""

    def predict(self, features: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class SynsetEvidence:
    """What the image says of a synset as a whole: its image-level score, the best
    image-level score among the image's synsets, its rank among them (0: best), and how
    many ImageNet classes it sums (a sum over dog's 118 breeds is high by chance where
    one class's probability would not be)."""

    score: float
    best_score: float
    rank: int
    classes: int


def synset_evidence(scores: np.ndarray, classes: Sequence[int]) -> list[SynsetEvidence]:
    """Each synset's evidence from the image-level scores of the image's synsets and
    the number of ImageNet classes each sums."""
    scores = np.asarray(scores, np.float64)
    best = float(scores.max()) if scores.size else 0.0
    return [SynsetEvidence(float(s), best, int((scores > s).sum()), int(n))
            for s, n in zip(scores, classes, strict=True)]


@dataclass(frozen=True)
class Hypothesis:
    """A box of one synset: a component's (``refined`` False) or that component's
    refined by GrabCut; ``features`` as ``FEATURES`` name them."""

    box: Box
    threshold: float
    refined: bool
    features: np.ndarray
    component: int  # index among the synset's components (all levels), which it comes from


@dataclass(frozen=True)
class _Level:
    """The components of one threshold."""

    threshold: float
    cutoff: float
    found: list[Component]


def _features(component: Component, level: _Level, rank: int, box: tuple, component_box: tuple,
              refined: bool, evidence: SynsetEvidence, peak: float, raster_size: int,
              image_size: tuple[int, int], box_ious: np.ndarray,
              component_levels: np.ndarray) -> np.ndarray:
    """``box_ious``: the box's IoU with every component's box (all levels), whose levels
    ``component_levels`` gives."""
    height, width = image_size
    area = (box[2] - box[0]) * (box[3] - box[1])
    component_area = (component_box[2] - component_box[0]) * (component_box[3] - component_box[1])
    ious = box_ious[component_levels != level.threshold]
    touches = box[0] <= 0.5 or box[1] <= 0.5 or box[2] >= width - 0.5 or box[3] >= height - 0.5
    values = {
        "log_peak": np.log(component.score + _EPS),
        "log_image_score": np.log(evidence.score + _EPS),
        "log_image_score_ratio": np.log((evidence.score + _EPS) / (evidence.best_score + _EPS)),
        "log_synset_rank": np.log1p(evidence.rank),
        "threshold": level.threshold,
        "mean_heat": component.mean,
        "log_component_share": np.log(component.pixels / raster_size),
        "log_box_share": np.log(area / (height * width) + _EPS),
        "log_refined_share": np.log((area + _EPS) / (component_area + _EPS)),
        "log_component_rank": np.log1p(rank),
        "log_components": np.log(len(level.found)),
        "log_peak_ratio": np.log((component.score + _EPS) / (peak + _EPS)),
        "heat_share": component.heat / max(_EPS, sum(c.heat for c in level.found)),
        "border": float(touches),
        "log_aspect": np.log((box[2] - box[0] + _EPS) / (box[3] - box[1] + _EPS)),
        "refined": float(refined),
        "log_same_box": np.log1p(int((ious > 0.7).sum())),
        "log_overlapping": np.log1p(int((ious > 0.5).sum())),
        "log_hypotheses": np.log(len(component_levels)),
        "log_classes": np.log(evidence.classes),
    }
    return np.array([values[name] for name in FEATURES], np.float64)


@dataclass(frozen=True)
class RefineGate:
    """Which components GrabCut refines: each whose own box is at least ``confidence``
    likely right, and the synset's most confident one from ``best``."""

    confidence: float
    best: float

    def chosen(self, confidences: Sequence[float]) -> np.ndarray:
        """Of components with these confidences (of their own boxes), which to refine."""
        confidences = np.asarray(confidences, np.float64)
        chosen = confidences >= self.confidence
        if confidences.size and confidences.max() >= self.best:
            chosen[np.argmax(confidences)] = True
        return chosen


def refine_gate(min_confidence: float) -> RefineGate:
    """Which components are refined in a run keeping boxes of at least
    ``min_confidence``."""
    return RefineGate(max(REFINE_CONFIDENCE, min_confidence / 2), min_confidence / 2)


def synset_hypotheses(raster: np.ndarray, score_raster: np.ndarray, image_size: tuple[int, int],
                      evidence: SynsetEvidence,
                      thresholds: Sequence[float] = DEFAULT_THRESHOLDS, relative: bool = False,
                      min_area: float = 0.0, min_score: float = 0.0,
                      photo: np.ndarray | None = None, model: ConfidenceModel | None = None,
                      refine: RefineGate = refine_gate(0.0),
                      refine_all: bool = False) -> list[Hypothesis]:
    """Every hypothesis of one synset: each component of ``raster`` (its heat laid over
    an image of ``image_size``) at each of ``thresholds`` (fractions of the raster's
    maximum with ``relative``) with at least ``min_area`` of the image and a peak of
    ``score_raster`` (its probability) of at least ``min_score``; with ``photo`` (the
    image at the raster's shape), also each component's box refined by GrabCut: with a
    ``model``, the components ``refine`` chooses by the confidence of their own boxes, of
    those with nearly the same box (``REFINE_SAME_IOU``) the most confident (or every
    one, ``refine_all``), each hypothesis with its confidence; without one, the
    components' boxes of the lowest threshold only, each in its component's place (or,
    with ``refine_all``, every level's and each component's box as another hypothesis:
    what a confidence is fitted on)."""
    peak = float(raster.max())
    if model is None and not refine_all:
        # Nothing tells a component from the components inside it at higher levels: the
        # lowest level's are the boxes (the plain components of one threshold).
        thresholds = [min(thresholds)]
    levels = []
    for threshold in thresholds:
        cutoff = threshold * peak if relative else threshold
        levels.append(_Level(threshold, cutoff,
                             components(raster, cutoff, score_raster, min_area * raster.size,
                                        min_score)))
    found = [(level, rank, c) for level in levels for rank, c in enumerate(level.found)]
    if not found:
        return []
    shape = raster.shape
    component_boxes = np.array([raster_box(c.rows, c.cols, shape, image_size) for _, _, c in found])
    component_levels = np.array([level.threshold for level, _, _ in found])
    # Each component's box against every other's, once: what its features compare.
    component_ious = iou_matrix(component_boxes, component_boxes)
    synset_peak = float(score_raster.max())
    sy, sx = image_size[0] / shape[0], image_size[1] / shape[1]

    def hypothesis(index: int, rows: slice, cols: slice, refined: bool) -> Hypothesis:
        level, rank, c = found[index]
        box = raster_box(rows, cols, shape, image_size)
        ious = iou_matrix(box, component_boxes)[0] if refined else component_ious[index]
        features = _features(c, level, rank, box, tuple(component_boxes[index]), refined,
                             evidence, synset_peak, raster.size, image_size, ious,
                             component_levels)
        return Hypothesis(Box(*box, score=c.score, mean=c.mean, area=float(c.pixels * sy * sx)),
                          level.threshold, refined, features, index)

    plain = [hypothesis(i, c.rows, c.cols, False) for i, (_, _, c) in enumerate(found)]
    if photo is None:
        return with_confidence(plain, model) if model is not None else plain
    if model is None and not refine_all:  # each box refined in place of its component's
        return [_refined(h, found, photo, raster, hypothesis, keep_plain=True) for h in plain]
    if model is not None:
        plain = with_confidence(plain, model)
    if refine_all:
        candidates = plain
    else:
        chosen = refine.chosen([h.box.confidence for h in plain])
        candidates = _distinct([h for h, c in zip(plain, chosen) if c], component_ious,
                               REFINE_SAME_IOU)
    refined = [_refined(h, found, photo, raster, hypothesis) for h in candidates]
    refined = [h for h in refined if h is not None]
    return plain + (with_confidence(refined, model) if model is not None else refined)


def _refined(h: Hypothesis, found: list, photo: np.ndarray, raster: np.ndarray, hypothesis,
             keep_plain: bool = False) -> Hypothesis | None:
    """The hypothesis of ``h``'s component refined by GrabCut; where GrabCut leaves the
    box as it is, None (or ``h`` itself with ``keep_plain``)."""
    level, _, c = found[h.component]
    rows, cols = grabcut_extent(photo, raster, c.rows, c.cols, c.inside, level.cutoff)
    if (rows, cols) == (c.rows, c.cols):
        return h if keep_plain else None
    return hypothesis(h.component, rows, cols, True)


def _distinct(candidates: Sequence[Hypothesis], component_ious: np.ndarray,
              same_iou: float) -> list[Hypothesis]:
    """``candidates`` (components' own hypotheses, with confidences) less those whose box
    overlaps a more confident candidate's by more than ``same_iou``; ``component_ious``
    holds the IoU of every two components' boxes."""
    distinct: list[Hypothesis] = []
    for h in sorted(candidates, key=lambda h: h.box.confidence, reverse=True):
        if all(component_ious[h.component, d.component] <= same_iou for d in distinct):
            distinct.append(h)
    chosen = {h.component for h in distinct}
    return [h for h in candidates if h.component in chosen]


def with_confidence(hypotheses: Sequence[Hypothesis], model: ConfidenceModel) -> list[Hypothesis]:
    """The hypotheses with the model's confidence in their boxes."""
    if not hypotheses:
        return []
    confidence = model.predict(np.stack([h.features for h in hypotheses]))
    return [replace(h, box=replace(h.box, confidence=float(p))) for h, p in zip(hypotheses, confidence)]


def kept_boxes(hypotheses: Sequence[Hypothesis], nms_iou: float = NMS_IOU,
               min_confidence: float = 0.0) -> list[Box]:
    """The boxes kept of one synset's hypotheses, best first: greedily the best, each
    dropping the rest that overlap it by more than ``nms_iou``; then those under
    ``min_confidence`` dropped (where hypotheses have a confidence)."""
    order = sorted(hypotheses, key=lambda h: (h.box.rank, h.box.mean), reverse=True)
    kept: list[Box] = []
    for h in order:
        box = h.box
        if box.confidence is not None and box.confidence < min_confidence:
            break
        coords = (box.x0, box.y0, box.x1, box.y1)
        if kept and iou_matrix(coords, [(k.x0, k.y0, k.x1, k.y1) for k in kept]).max() > nms_iou:
            continue
        kept.append(box)
    return kept
