"""python -m pipeline.evaluate: how well a run's heatmaps and boxes localize objects,
against ground-truth boxes (PASCAL VOC XML, COCO JSON or a simple JSON list).

    python -m pipeline.evaluate --labels OUTPUT_DIR --ground-truth VOC/Annotations \\
        --classes voc [--json metrics.json] [--calibrate thresholds.json]

Reports CorLoc, MaxBoxAccV2 and the centre baseline per synset and overall (see
transforms/quality/localization.py), and the detection quality of every box the run
emitted (VOC07 AP per class and their mean, precision and recall, boxes per image, the
pairs with a correct box, the absent classes given a box, and how well the boxes'
confidence is calibrated: transforms/quality/detection.py), as tables and optionally as
JSON. In a top-k run a box counts for the ground-truth class its synset stands for (the
concept "dog" for dog). Run the job with
``--synsets`` naming every ground-truth synset (e.g. ``--synsets voc`` for ``--classes
voc``), so that each image has a heatmap of each of its synsets: in top-k mode, a
synset outside an image's top classes has no heatmap there, and that pair is left out
(and reported). ``--calibrate`` also chooses a box threshold per synset on these pairs
(transforms/quality/calibration.py), for the job's ``--thresholds``; when the run refined
its boxes by the photos (``--refine-boxes grabcut``), it reads the photos again to refine
alike. ``--fit-confidence`` fits the boxes' confidence on the ground truth's images
(transforms/quality/confidence_fit.py), for the job's ``--confidence``; it also reads the
photos again when the run refined its boxes.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from pipeline.console import exit_with
from pipeline.filesystems import FILESYSTEM_EPILOG, StoreError, check_stores, parse_with_filesystems
from pipeline.options import option_given_alone, user_path
from pipeline.outputs import (OutputError, has_run_record, names_image, read_image_bytes,
                              read_labels, read_run_record)
from transforms.quality.calibration import SHRINKAGE, Calibration, calibrate, top_box_hits
from transforms.quality.ground_truth import (FORMATS, GroundTruth, GroundTruthError, GroundTruthSet,
                                             read_ground_truth)
from transforms.model.grid import MapGrid
from transforms.maps.multiscale import largest_input, scale_image
from transforms.maps.scales import parse_scales
from transforms.model.backbones import get_backbone
from transforms.quality.localization import PairScore, score_pair, summarize_by_synset
from transforms.io.decode import decode_image
from transforms.io.records import file_name, row_boxes
from transforms.maps.confidence import ConfidenceCalibration, mode_of, shipped_calibration
from transforms.quality.confidence_fit import (LabelledHypotheses, fit_calibration, reliability,
                                               row_hypotheses)
from transforms.quality.detection import (Detection, detection_summary, match_detections,
                                          objects_by_pair, truth_synset_lookup)
from transforms.vocab.synsets import CLASSES_PREFIX, SynsetError
from transforms.vocab.vocabularies import load_vocabulary, recorded_top_k_vocabulary

LABEL_COLUMNS = ["image_uri", "width", "height", "boxes", "heatmaps"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluate",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=FILESYSTEM_EPILOG)
    parser.add_argument("--labels", type=user_path, required=True, metavar="DIR",
                        help="output folder of a pipeline run (its labels-*.parquet)")
    parser.add_argument("--ground-truth", type=user_path, required=True, metavar="PATH",
                        help="folder of VOC .xml files (or a VOC dataset's, with them in "
                             "Annotations/), a VOC .xml file, COCO JSON, or a JSON list of "
                             "{image, synset, boxes: [[x0, y0, x1, y1], ...]}")
    parser.add_argument("--format", default="auto", choices=FORMATS,
                        help="ground-truth format (default: %(default)s, from the path)")
    parser.add_argument("--classes", type=user_path, metavar="voc|JSON",
                        help="the dataset's classes as synsets: 'voc' (built in: the PASCAL "
                             "VOC classes but person) or a JSON file {class name: synset spec "
                             "or [specs]}; classes it does not name are left out. Default: "
                             "class names are synsets")
    parser.add_argument("--json", type=user_path, metavar="PATH",
                        help="also write the metrics here as JSON")
    parser.add_argument("--calibrate", type=user_path, metavar="PATH",
                        help="also choose each synset's box threshold on these pairs and write "
                             "them here, for the job's --thresholds (needs the run's run.json)")
    parser.add_argument("--fit-confidence", type=user_path, metavar="PATH",
                        help="also fit the boxes' confidence (the probability a box is right) "
                             "on these images and write it here, for the job's --confidence "
                             "(needs the run's run.json; fitted for the run's mode: with "
                             "--synsets, or top-k)")
    parser.add_argument("--default-min-confidence", type=float, default=None, metavar="C",
                        help="with --fit-confidence: the minimum confidence of the boxes runs "
                             "with it keep unless given --min-confidence (default: the shipped "
                             "calibration's for the run's mode)")
    parser.add_argument("--shrinkage", type=float, default=None, metavar="K",
                        help="with --calibrate: pairs' worth of the overall curve mixed into each "
                             "synset's; large values give every synset the overall best "
                             f"threshold (default: {SHRINKAGE})")
    args, args.filesystems = parse_with_filesystems(parser, argv)
    # Each of these tunes what another option writes: alone, it would do nothing.
    if problem := option_given_alone((
            ("--default-min-confidence",
             args.default_min_confidence is not None and not args.fit_confidence,
             "--fit-confidence"),
            ("--shrinkage", args.shrinkage is not None and not args.calibrate, "--calibrate"))):
        parser.error(problem)
    if args.default_min_confidence is not None and not 0 <= args.default_min_confidence < 1:
        parser.error(f"--default-min-confidence is a probability in [0, 1), got "
                     f"{args.default_min_confidence}")
    if args.shrinkage is not None and args.shrinkage < 0:
        parser.error(f"--shrinkage is a number of pairs, at least 0, got {args.shrinkage}")
    args.shrinkage = SHRINKAGE if args.shrinkage is None else args.shrinkage
    return args


class LabelsIndex:
    """A run's labels rows, found by the file name (or a path suffix) ground truth uses."""

    def __init__(self, rows: list[dict]):
        self._by_name: dict[str, list[dict]] = {}
        for row in rows:
            self._by_name.setdefault(file_name(row["image_uri"]), []).append(row)

    def find(self, image: str) -> dict | None:
        rows = [row for row in self._by_name.get(file_name(image), [])
                if names_image(image, row["image_uri"])]
        if len(rows) > 1:
            raise GroundTruthError(f"ground-truth image {image!r} matches several labelled "
                                   f"images ({', '.join(r['image_uri'] for r in rows)}): name "
                                   "it by a longer path")
        return rows[0] if rows else None


@dataclass(frozen=True)
class Match:
    """A ground-truth pair and what the run made of its image: the synset's fused heat
    and probability maps on ``grid`` and the top box (None: no box)."""

    pair: GroundTruth
    image_uri: str
    image_size: tuple[int, int]
    grid: MapGrid
    heat: np.ndarray
    probability: np.ndarray
    top_box: tuple[float, float, float, float] | None


def match_pairs(index: LabelsIndex, truth: GroundTruthSet) -> tuple[list[Match], dict]:
    """Every ground-truth pair that has a labels row and a heatmap of its synset; the
    others are returned as left out, by reason."""
    matches, not_labelled, no_heatmap = [], set(), []
    for pair in truth.pairs:
        row = index.find(pair.image)
        if row is None:
            not_labelled.add(pair.image)
            continue
        heatmap = next((h for h in row["heatmaps"] if h["synset"] == pair.synset.wnid), None)
        if heatmap is None:
            no_heatmap.append(f"{pair.image} {pair.synset.wnid}")
            continue
        image_size = (row["height"], row["width"])
        heat = heatmap["heat"]
        boxes = [b for b in row_boxes(row) if b.synset == pair.synset.wnid]
        top = max(boxes, key=lambda b: b.rank, default=None)
        matches.append(Match(pair, row["image_uri"], image_size,
                             MapGrid.uniform(*heat.shape, image_size), heat,
                             heatmap["probability"],
                             None if top is None else (top.x0, top.y0, top.x1, top.y1)))
    return matches, {"not_labelled": sorted(not_labelled), "no_heatmap": no_heatmap}


def score(match: Match) -> PairScore:
    return score_pair(match.pair.image, match.pair.synset.wnid, match.heat, match.grid,
                      match.image_size, match.top_box, match.pair.boxes)


def calibration(matches: Sequence[Match], run_config: dict, source: dict,
                shrinkage: float = SHRINKAGE) -> Calibration:
    """Per-synset thresholds for boxes made as the run made them (its heat, relative
    or absolute threshold, minimum area and score, refinement by the photo, which is
    then read again)."""
    refined = run_config.get("refine_boxes") == "grabcut"
    photos: dict[str, np.ndarray] = {}
    hits = []
    for m in matches:  # an image's pairs follow one another: one photo in memory at a time
        if refined and m.image_uri not in photos:
            photos = {m.image_uri: refinement_photo(m.image_uri, run_config)}
        hits.append(top_box_hits(m.heat, m.probability, m.grid, m.image_size, m.pair.boxes,
                                 run_config["relative_threshold"], run_config["min_box_area"],
                                 run_config["min_score"],
                                 photo=photos[m.image_uri] if refined else None))
    return calibrate(hits, [m.pair.synset.wnid for m in matches],
                     {m.pair.synset.wnid: m.pair.synset.label for m in matches}, run_config,
                     shrinkage, source=source)


def truth_lookup(run_config: dict | None, truth: GroundTruthSet) -> dict[str, str]:
    """A run's synsets (wnid) → the ground-truth class (wnid) each stands for: the same
    synset, or in a top-k run the class sharing at least half of its ImageNet classes.
    Without the run's record (``run_config`` None), synsets match by wnid only."""
    classes = {p.synset for p in truth.pairs + truth.difficult}
    if run_config is None:
        return {s.wnid: s.wnid for s in classes}
    if run_config.get("synsets") is not None:
        run_synsets = [s for s in classes if s.wnid in {r["wnid"] for r in run_config["synsets"]}]
    else:
        run_synsets = recorded_top_k_vocabulary(run_config)
    return truth_synset_lookup(run_synsets, classes)


def labelled_images(index: LabelsIndex, truth: GroundTruthSet) -> list[tuple[str, dict]]:
    """The ground truth's images (as it names them) that have a labels row, and the row."""
    found = ((image, index.find(image)) for image in truth.images)
    return [(image, row) for image, row in found if row is not None]


def detections(index: LabelsIndex, truth: GroundTruthSet,
               lookup: Mapping[str, str]) -> tuple[list[Detection], list[str], int]:
    """The boxes of the ground truth's images as detections of the classes their synsets
    stand for (ranked by confidence where they have one, else score), those images (as
    the ground truth names them) and every box they have, counted or not."""
    found, images, emitted = [], [], 0
    for image, row in labelled_images(index, truth):
        images.append(image)
        emitted += len(row["boxes"])
        for box in row_boxes(row):
            if box.synset in lookup:
                found.append(Detection(image, lookup[box.synset], box.rank,
                                       (box.x0, box.y0, box.x1, box.y1)))
    return found, images, emitted


def detection_quality(index: LabelsIndex, truth: GroundTruthSet, lookup: Mapping[str, str],
                      confident: bool) -> dict:
    """``detection_summary`` of a run's boxes, and with ``confident`` (its boxes have a
    confidence) the reliability of their confidence (the boxes on difficult objects left
    out)."""
    found, images, emitted = detections(index, truth, lookup)
    objects = objects_by_pair(truth)
    summary = detection_summary(found, objects, images, {p.synset.wnid for p in truth.pairs},
                                emitted)
    if confident and found:
        outcome = match_detections(found, objects)
        scored = outcome >= 0
        error, table = reliability(np.array([d.confidence for d in found])[scored],
                                   outcome[scored] == 1)
        summary["calibration_error"] = error
        summary["reliability"] = table
    return summary


def image_hypotheses(image: str, row: dict, run_config: dict,
                     lookup: Mapping[str, str]) -> LabelledHypotheses:
    """Every box hypothesis of a labels row, made again as the run made them (its photo
    read again to refine them, when the run refined its boxes)."""
    photo = (refinement_photo(row["image_uri"], run_config)
             if run_config.get("refine_boxes") == "grabcut" else None)
    return row_hypotheses(row, run_config, photo, image, lookup.get)


def refinement_photo(image_uri: str, run_config: dict) -> np.ndarray:
    """The photo as the run refined its boxes on it: decoded as the job decodes it and
    resized to its largest input (transforms/beam/inference.py), so that GrabCut sees
    the same pixels."""
    scales = parse_scales(",".join(run_config["scales"]))
    stride = get_backbone(run_config["model"]).stride
    decoded = decode_image(read_image_bytes(image_uri), largest_input(scales, stride),
                           run_config["max_pixels"])
    return scale_image(decoded.pixels, decoded.size, scales, stride).largest()


def fitted_confidence(args: argparse.Namespace, index: LabelsIndex, truth: GroundTruthSet,
                      lookup: Mapping[str, str], run_config: dict) -> ConfidenceCalibration:
    """The confidence fitted on the ground truth's images of the run (see
    transforms/quality/confidence_fit.py)."""
    mode = mode_of(run_config.get("synsets"))
    images = [image_hypotheses(image, row, run_config, lookup)
              for image, row in labelled_images(index, truth)]
    minimum = (args.default_min_confidence if args.default_min_confidence is not None
               else shipped_calibration().minimum(mode))
    return fit_calibration(images, objects_by_pair(truth), run_config, mode, minimum,
                           {"labels": args.labels, "ground_truth": args.ground_truth,
                            "images": len(images)})


def format_table(metrics: dict) -> str:
    header = ["synset", "label", "pairs", "CorLoc", "MaxBoxAccV2", "centre CorLoc",
              "centre MaxBoxAccV2"]
    rows = [[_short(wnid), m["label"], *_figures(m)] for wnid, m in metrics["synsets"].items()]
    rows.append(["overall", "", *_figures(metrics["overall"])])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    overall = metrics["overall"]
    if overall.get("corloc_interval"):
        lines.append(f"CorLoc {overall['corloc']:.1f} ({interval_text(overall['corloc_interval'])})")
    return "\n".join(lines)


def interval_text(interval: Sequence[float] | None) -> str:
    """How a figure's interval over the photos (transforms/quality/uncertainty.py) reads."""
    if interval is None:
        return "no interval: too few photos"
    return f"95 % interval over the photos: {interval[0]:.1f}-{interval[1]:.1f}"


def format_detection(summary: dict, labels: Mapping[str, str]) -> str:
    """Per class AP and boxes, then the run's figures over all classes."""
    header = ["class", "objects", "boxes", "right", "AP"]
    rows = [[labels.get(wnid, _short(wnid)), m["objects"], m["boxes"], m["true_positives"],
             f"{m['ap']:.1f}"] for wnid, m in summary["synsets"].items()]
    rows.append(["mean", "", "", "", f"{summary['map']:.1f}"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    if summary.get("map_interval"):
        lines.append(f"mean AP {summary['map']:.1f} ({interval_text(summary['map_interval'])})")
    lines += [
        f"boxes per image {summary['boxes_per_image']:.2f}; precision {summary['precision']:.1f} "
        f"(VOC's rule), {summary['precision_any']:.1f} (on an object); recall "
        f"{summary['recall']:.1f}",
        f"pairs with a correct box {summary['pairs_with_correct_box']:.1f} % of "
        f"{summary['pairs']}; absent classes with a box {summary['absent_with_box']:.1f} % of "
        f"{summary['absent_pairs']}"]
    if "calibration_error" in summary:
        lines.append(f"confidence: expected calibration error {summary['calibration_error']:.3f}")
        lines += [f"  {b['from']:.1f}-{b['to']:.1f}: {b['boxes']:5d} boxes, mean confidence "
                  f"{b['confidence']:.2f}, right {b['right']:.2f}" for b in summary["reliability"]]
    return "\n".join(lines)


def _short(wnid: str) -> str:
    """A class list's id (classes:I+J+…) by its number of classes, to keep tables narrow."""
    return f"{wnid.count('+') + 1} classes" if wnid.startswith(CLASSES_PREFIX) else wnid


def _figures(m: dict) -> list:
    return [m["pairs"], f"{m['corloc']:.1f}", f"{m['max_box_acc_v2']:.1f}",
            f"{m['centre_corloc']:.1f}", f"{m['centre_max_box_acc_v2']:.1f}"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_stores([args.labels], args.filesystems)
        classes = None if args.classes is None else load_vocabulary(args.classes)
        truth = read_ground_truth(args.ground_truth, classes, args.format)
        if not truth.pairs:
            raise GroundTruthError(f"{args.ground_truth}: no boxes of a mapped class")
        needed = args.calibrate or args.fit_confidence
        run_config = (read_run_record(args.labels)["config"] if needed or has_run_record(args.labels)
                      else None)
        kept = run_config.get("heatmaps", "all") if run_config else "all"
        if kept != "all" and needed:
            raise OutputError(f"{args.labels} kept {kept} heatmaps (--heatmaps {kept}); "
                              "--calibrate and --fit-confidence read every synset's: run the "
                              "job with --heatmaps all")
        index = LabelsIndex(read_labels(args.labels, LABEL_COLUMNS))
        lookup = truth_lookup(run_config, truth)
        matches, left_out = match_pairs(index, truth)
    except (OSError, KeyError, SynsetError, GroundTruthError, OutputError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    confident = bool(run_config and run_config.get("confidence"))
    detection = detection_quality(index, truth, lookup, confident)
    # The dataset's own class names where a mapping gave them (a synset of several
    # ImageNet classes is otherwise labelled by all their names).
    labels = ({s.wnid: name for name, s in classes.items()} if classes is not None
              else {p.synset.wnid: p.synset.label for p in truth.pairs})
    if kept != "all":  # pairs without a box have no heatmap: CorLoc would count only boxed ones
        print(f"the run kept {kept} heatmaps (--heatmaps {kept}): CorLoc and MaxBoxAccV2 need "
              "every synset's; only the boxes are scored", file=sys.stderr)
        print(format_detection(detection, labels))
        if args.json:
            Path(args.json).write_text(json.dumps(
                {"labels": args.labels, "ground_truth": args.ground_truth, "detection": detection,
                 "unmapped_classes": dict(truth.unmapped)}, indent=2))
        return 0
    if left_out["not_labelled"]:
        print(f"left out: {len(left_out['not_labelled'])} ground-truth images have no labels "
              "row (not in the run's input, or failed: see its errors table)", file=sys.stderr)
    if left_out["no_heatmap"]:
        synsets = args.classes or ",".join(sorted({p.synset.wnid for p in truth.pairs}))
        print(f"left out: {len(left_out['no_heatmap'])} pairs whose synset has no heatmap in "
              f"that image; run the job with --synsets {synsets}", file=sys.stderr)
    if not matches:
        print("error: no ground-truth pair could be scored", file=sys.stderr)
        return 2
    scores = [score(m) for m in matches]
    metrics = summarize_by_synset(scores)
    for wnid, m in metrics["synsets"].items():
        m["label"] = labels[wnid]
    print(format_table(metrics))
    print()
    print(format_detection(detection, labels))
    if args.json:
        record = {"labels": args.labels, "ground_truth": args.ground_truth, **metrics,
                  "detection": detection,
                  "left_out": left_out, "unmapped_classes": dict(truth.unmapped),
                  "pair_scores": [{"image": s.image, "synset": s.synset,
                                   "top_box_iou": s.top_box_iou,
                                   "best_iou_any_threshold": float(s.sweep.max())}
                                  for s in scores]}
        Path(args.json).write_text(json.dumps(record, indent=2))
    if args.calibrate:
        calibrated = calibration(matches, run_config, {
            "labels": args.labels, "ground_truth": args.ground_truth, "pairs": len(matches),
            "shrinkage": args.shrinkage}, args.shrinkage)
        Path(args.calibrate).write_text(calibrated.to_json())
        print(f"thresholds: {calibrated.default:g} by default, per synset "
              + ", ".join(f"{s.label} {s.threshold:g}" for s in calibrated.synsets.values())
              + f"; written to {args.calibrate}")
    if args.fit_confidence:
        try:
            fitted = fitted_confidence(args, index, truth, lookup, run_config)
        except ValueError as e:
            print(f"error: --fit-confidence: {e}", file=sys.stderr)
            return 2
        Path(args.fit_confidence).write_text(fitted.to_json())
        mode = next(iter(fitted.models))
        print(f"confidence for {mode} runs fitted on {fitted.source[mode]['images']} images; "
              f"written to {args.fit_confidence}")
    return 0


if __name__ == "__main__":
    exit_with(main, "the evaluation did not finish: the files it had not written yet "
                     "(--json, then --calibrate, then --fit-confidence) are missing; run it again")
