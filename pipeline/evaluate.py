"""python -m pipeline.evaluate: how well a run's heatmaps and boxes localize objects,
against ground-truth boxes (PASCAL VOC XML, COCO JSON or a simple JSON list).

    python -m pipeline.evaluate --labels OUTPUT_DIR --ground-truth VOC/Annotations \\
        --classes voc [--json metrics.json] [--calibrate thresholds.json]

Reports CorLoc, MaxBoxAccV2 and the centre baseline per synset and overall (see
transforms/quality/localization.py), as a table and optionally as JSON. Run the job with
``--synsets`` naming every ground-truth synset (e.g. ``--synsets voc`` for ``--classes
voc``), so that each image has a heatmap of each of its synsets: in top-k mode, a
synset outside an image's top classes has no heatmap there, and that pair is left out
(and reported). ``--calibrate`` also chooses a box threshold per synset on these pairs
(transforms/quality/calibration.py), for the job's ``--thresholds``; when the run refined
its boxes by the photos (``--refine-boxes grabcut``), it reads the photos again to refine
alike.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.outputs import (OutputError, names_image, read_image_bytes, read_run_record,
                             read_table)
from transforms.quality.calibration import SHRINKAGE, Calibration, calibrate, top_box_hits
from transforms.quality.ground_truth import (FORMATS, GroundTruth, GroundTruthError, GroundTruthSet,
                                             read_ground_truth)
from transforms.maps.heatmaps import MapGrid
from transforms.quality.localization import PairScore, score_pair, summarize_by_synset
from transforms.io.decode import decode_image
from transforms.io.records import file_name, heatmap_values
from transforms.vocab.synsets import CLASSES_PREFIX, SynsetError
from transforms.vocab.vocabularies import load_vocabulary

LABEL_COLUMNS = ["image_uri", "width", "height", "boxes", "heatmaps"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, metavar="DIR",
                        help="output folder of a pipeline run (its labels-*.parquet)")
    parser.add_argument("--ground-truth", required=True, metavar="PATH",
                        help="folder of VOC .xml files, a VOC .xml file, COCO JSON, or a JSON "
                             "list of {image, synset, boxes: [[x0, y0, x1, y1], ...]}")
    parser.add_argument("--format", default="auto", choices=FORMATS,
                        help="ground-truth format (default: %(default)s, from the path)")
    parser.add_argument("--classes", metavar="voc|JSON",
                        help="the dataset's classes as synsets: 'voc' (built in: the PASCAL "
                             "VOC classes but person) or a JSON file {class name: synset spec "
                             "or [specs]}; classes it does not name are left out. Default: "
                             "class names are synsets")
    parser.add_argument("--json", metavar="PATH", help="also write the metrics here as JSON")
    parser.add_argument("--calibrate", metavar="PATH",
                        help="also choose each synset's box threshold on these pairs and write "
                             "them here, for the job's --thresholds (needs the run's run.json)")
    parser.add_argument("--shrinkage", type=float, default=SHRINKAGE, metavar="K",
                        help="with --calibrate: pairs' worth of the overall curve mixed into each "
                             "synset's; large values give every synset the overall best "
                             "threshold (default: %(default)s)")
    return parser.parse_args(argv)


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
        heat = heatmap_values(heatmap)
        boxes = [b for b in row["boxes"] if b["synset"] == pair.synset.wnid]
        top = max(boxes, key=lambda b: b["score"], default=None)
        matches.append(Match(pair, row["image_uri"], image_size,
                             MapGrid.uniform(*heat.shape, image_size), heat,
                             heatmap_values(heatmap, "probabilities"),
                             None if top is None else (top["x0"], top["y0"], top["x1"], top["y1"])))
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
            photos = {m.image_uri: decode_image(read_image_bytes(m.image_uri),
                                                max_pixels=run_config["max_pixels"]).pixels}
        hits.append(top_box_hits(m.heat, m.probability, m.grid, m.image_size, m.pair.boxes,
                                 run_config["relative_threshold"], run_config["min_box_area"],
                                 run_config["min_score"],
                                 photo=photos[m.image_uri] if refined else None))
    return calibrate(hits, [m.pair.synset.wnid for m in matches],
                     {m.pair.synset.wnid: m.pair.synset.label for m in matches}, run_config,
                     shrinkage, source=source)


def format_table(metrics: dict) -> str:
    header = ["synset", "label", "pairs", "CorLoc", "MaxBoxAccV2", "centre CorLoc",
              "centre MaxBoxAccV2"]
    rows = [[_short(wnid), m["label"], *_figures(m)] for wnid, m in metrics["synsets"].items()]
    rows.append(["overall", "", *_figures(metrics["overall"])])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [header, *rows])


def _short(wnid: str) -> str:
    """A class list's id (classes:I+J+…) by its number of classes, to keep tables narrow."""
    return f"{wnid.count('+') + 1} classes" if wnid.startswith(CLASSES_PREFIX) else wnid


def _figures(m: dict) -> list:
    return [m["pairs"], f"{m['corloc']:.1f}", f"{m['max_box_acc_v2']:.1f}",
            f"{m['centre_corloc']:.1f}", f"{m['centre_max_box_acc_v2']:.1f}"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        classes = None if args.classes is None else load_vocabulary(args.classes)
        truth = read_ground_truth(args.ground_truth, classes, args.format)
        if not truth.pairs:
            raise GroundTruthError(f"{args.ground_truth}: no boxes of a mapped class")
        index = LabelsIndex(read_table(args.labels, "labels", LABEL_COLUMNS).to_pylist())
        run_config = read_run_record(args.labels)["config"] if args.calibrate else None
        matches, left_out = match_pairs(index, truth)
    except (OSError, KeyError, SynsetError, GroundTruthError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
    # The dataset's own class names where a mapping gave them (a synset of several
    # ImageNet classes is otherwise labelled by all their names).
    labels = ({s.wnid: name for name, s in classes.items()} if classes is not None
              else {p.synset.wnid: p.synset.label for p in truth.pairs})
    for wnid, m in metrics["synsets"].items():
        m["label"] = labels[wnid]
    print(format_table(metrics))
    if args.json:
        record = {"labels": args.labels, "ground_truth": args.ground_truth, **metrics,
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
