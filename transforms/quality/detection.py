"""Detection quality of every box a run emits, as the PASCAL VOC 2007 devkit measures it.

The unit is a box. For each class, every box of that class over all images is ranked by
its confidence (best first); a box is a true positive when its IoU with the ground-truth
object of the class that it overlaps most, in its image, is at least 0.5 and no
higher-ranked box has matched that object; a second box on a matched object is a false
positive (a duplicate). Objects marked ``difficult`` count neither way: a box whose best
object is difficult is ignored, and difficult objects are not among those to find.
Average precision (AP) is VOC 2007's 11-point interpolated precision: the mean, over
recall levels 0, 0.1, …, 1, of the best precision at that recall or above.

Beside AP, at the boxes as emitted: precision (true positives among the boxes not
ignored), ``precision_any`` (boxes on some object of their class, IoU ≥ 0.5, a second box
on one object counted right too), recall (objects found), boxes per image, the share of
(image, class) pairs with a correct box among those with an object of the class, and
the share of classes absent from a photo that still get a box there; and the mean AP's
95 % interval over the photos (``uncertainty.photo_interval``: photos drawn with their
boxes and objects).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from transforms.maps.boxes import iou_matrix
from transforms.quality.ground_truth import GroundTruthSet
from transforms.quality.localization import CORLOC_IOU
from transforms.quality.uncertainty import photo_interval
from transforms.vocab.synsets import Synset

# VOC 2007's recall levels for interpolated precision.
RECALL_LEVELS = np.linspace(0.0, 1.0, 11)


@dataclass(frozen=True)
class Detection:
    """One emitted box, counted as a box of the ground-truth class ``synset`` (its wnid)
    in ``image`` (the ground truth's file name), ranked by ``confidence``."""

    image: str
    synset: str
    confidence: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Objects:
    """The ground-truth objects of one class in one image: (n, 4) boxes and which of them
    are marked difficult."""

    boxes: np.ndarray
    difficult: np.ndarray


def voc07_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """11-point interpolated AP of a ranked list's recall and precision after each box."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    return float(np.mean([precision[recall >= level].max(initial=0.0) for level in RECALL_LEVELS]))


def match_detections(detections: Sequence[Detection],
                     objects: Mapping[tuple[str, str], Objects]) -> np.ndarray:
    """Each detection's outcome under VOC matching: 1 true positive, 0 false positive,
    -1 ignored (its best object is difficult). ``objects`` maps (image, synset) to that
    class's objects in the image; detections are matched in order of confidence (ties
    in the given order), per class and image."""
    outcome = np.zeros(len(detections), np.int8)
    order = sorted(range(len(detections)), key=lambda i: -detections[i].confidence)
    taken: dict[tuple[str, str], np.ndarray] = {}
    for i in order:
        detection = detections[i]
        key = (detection.image, detection.synset)
        found = objects.get(key)
        if found is None or not len(found.boxes):
            continue
        ious = iou_matrix(np.array(detection.box), found.boxes)[0]
        best = int(np.argmax(ious))
        if ious[best] < CORLOC_IOU:
            continue
        if found.difficult[best]:
            outcome[i] = -1
            continue
        matched = taken.setdefault(key, np.zeros(len(found.boxes), bool))
        if not matched[best]:
            matched[best] = True
            outcome[i] = 1
    return outcome


def average_precision(confidences: np.ndarray, outcome: np.ndarray, objects: int) -> float:
    """VOC07 AP of one class's boxes (``outcome`` as ``match_detections`` gives it) over
    ``objects`` non-difficult objects to find."""
    if objects == 0:
        return float("nan")
    keep = outcome >= 0
    order = np.argsort(-np.asarray(confidences)[keep], kind="stable")
    hits = outcome[keep][order] == 1
    true_positives = np.cumsum(hits)
    ranks = np.arange(1, len(hits) + 1)
    return voc07_average_precision(true_positives / objects, true_positives / ranks)


def objects_by_pair(truth: GroundTruthSet) -> dict[tuple[str, str], Objects]:
    """(image, synset wnid) → that class's objects in the image, difficult ones marked."""
    found: dict[tuple[str, str], list[tuple[np.ndarray, bool]]] = defaultdict(list)
    for pairs, difficult in ((truth.pairs, False), (truth.difficult, True)):
        for pair in pairs:
            found[pair.image, pair.synset.wnid] += [(box, difficult) for box in pair.boxes]
    return {key: Objects(np.array([box for box, _ in boxes], np.float64).reshape(-1, 4),
                         np.array([difficult for _, difficult in boxes], bool))
            for key, boxes in found.items()}


def detection_summary(detections: Sequence[Detection], objects: Mapping[tuple[str, str], Objects],
                      images: Iterable[str], synsets: Iterable[str], boxes_emitted: int) -> dict:
    """AP per class and their mean, and precision, recall and the pair shares at the
    boxes as emitted (see the module's docstring), as percentages.

    ``images``: the ground truth's images that have a labels row; ``synsets``: the
    ground-truth classes (wnids) scored; ``detections``: the boxes of those images
    counted as one of those classes; ``boxes_emitted``: every box of those images,
    counted or not.
    """
    images, synsets = set(images), sorted(set(synsets))
    objects = {key: o for key, o in objects.items() if key[0] in images and key[1] in synsets}
    detections = [d for d in detections if d.image in images and d.synset in synsets]
    outcome = match_detections(detections, objects)
    confidences = np.array([d.confidence for d in detections], np.float64)
    classes = np.array([d.synset for d in detections], object)
    wanted: dict[str, int] = defaultdict(int)
    for (_, synset), o in objects.items():
        wanted[synset] += int((~o.difficult).sum())
    per_synset = {}
    for synset in synsets:
        mine = classes == synset
        per_synset[synset] = {
            "objects": wanted[synset], "boxes": int(mine.sum()),
            "true_positives": int((outcome[mine] == 1).sum()),
            "ap": 100 * average_precision(confidences[mine], outcome[mine], wanted[synset]),
        }
    true_positives = int((outcome == 1).sum())
    present = {key for key, o in objects.items() if (~o.difficult).any()}
    on_object = np.array([_hits_any(d, objects.get((d.image, d.synset))) for d in detections], bool)
    correct = {(d.image, d.synset) for d, hit in zip(detections, on_object) if hit}
    boxed = {(d.image, d.synset) for d in detections}
    absent = [(image, synset) for image in sorted(images) for synset in synsets
              if (image, synset) not in objects]
    aps = [s["ap"] for s in per_synset.values() if s["objects"]]
    return {
        "images": len(images),
        "map": float(np.mean(aps)) if aps else float("nan"),
        "map_interval": map_interval(detections, outcome, objects, sorted(images), synsets),
        "precision": 100 * true_positives / max(1, int((outcome >= 0).sum())),
        "precision_any": 100 * int(on_object[outcome >= 0].sum()) / max(1, int((outcome >= 0).sum())),
        "recall": 100 * true_positives / max(1, sum(s["objects"] for s in per_synset.values())),
        "boxes_per_image": boxes_emitted / max(1, len(images)),
        "boxes_counted": len(detections),
        "true_positives": true_positives,
        "pairs": len(present),
        "pairs_with_correct_box": 100 * len(present & correct) / max(1, len(present)),
        "absent_pairs": len(absent),
        "absent_with_box": 100 * sum(key in boxed for key in absent) / max(1, len(absent)),
        "synsets": per_synset,
    }


def map_interval(detections: Sequence[Detection], outcome: np.ndarray,
                 objects: Mapping[tuple[str, str], Objects], images: Sequence[str],
                 synsets: Sequence[str]) -> tuple[float, float] | None:
    """The 95 % interval of the mean AP over ``images``: each drawn photo brings its
    boxes (with their ``outcome``, which matching within the photo decided) and its
    objects, as many times as it is drawn."""
    index = {image: i for i, image in enumerate(images)}
    per_class = []
    for synset in synsets:
        mine = [i for i, d in enumerate(detections) if d.synset == synset]
        wanted = np.zeros(len(images))
        for (image, class_), found in objects.items():
            if class_ == synset and image in index:
                wanted[index[image]] += int((~found.difficult).sum())
        per_class.append((np.array([detections[i].confidence for i in mine], np.float64),
                          outcome[mine], np.array([index[detections[i].image] for i in mine], int),
                          wanted))

    def mean_ap(drawn: np.ndarray) -> float:
        times = np.bincount(drawn, minlength=len(images))
        aps = [average_precision(np.repeat(confidence, times[photo]),
                                 np.repeat(result, times[photo]), int(wanted @ times))
               for confidence, result, photo, wanted in per_class if wanted @ times > 0]
        return 100 * float(np.mean(aps)) if aps else float("nan")

    return photo_interval(mean_ap, len(images))


def _hits_any(detection: Detection, found: Objects | None) -> bool:
    """Whether a box has IoU ≥ 0.5 with some non-difficult object of its class (a pair's
    correct box, duplicates included)."""
    if found is None or not (~found.difficult).any():
        return False
    return float(iou_matrix(np.array(detection.box), found.boxes[~found.difficult]).max()) >= CORLOC_IOU


def stands_for(classes: Sequence[int], truth_classes: Sequence[int]) -> int:
    """How many of a synset's ImageNet ``classes`` a ground-truth class (mapped to
    ``truth_classes``) shares, when they are at least half of them (the synset stands
    for that class: the concept "dog" for VOC's dog; "truck", two of whose seven classes
    are vans, not for car); else 0."""
    shared = len(set(classes).intersection(truth_classes))
    return shared if 2 * shared >= len(classes) else 0


def truth_synset_lookup(run_synsets: Iterable[Synset],
                        truth_synsets: Iterable[Synset]) -> dict[str, str]:
    """wnid of a run's synset → wnid of the ground-truth class it stands for: the same
    synset, or the class sharing most of its ImageNet classes (``stands_for``). A run's
    synsets that stand for no class are not in it."""
    truth_synsets = list(truth_synsets)
    lookup = {}
    for synset in run_synsets:
        shared = [(stands_for(synset.class_indices, t.class_indices), t.wnid) for t in truth_synsets]
        best = max(shared, default=(0, None))
        if any(t.wnid == synset.wnid for t in truth_synsets):
            lookup[synset.wnid] = synset.wnid
        elif best[0]:
            lookup[synset.wnid] = best[1]
    return lookup
