"""The boxes' confidence on a folder in PASCAL VOC layout: fitted, checked on held-out
photos, and (with --write) the calibration the package ships.

    python -m benchmarks.confidence [--voc DIR] [--out DIR] [--write]
        [--minimum synsets=C,top_k=C] [-- JOB OPTIONS ...]

For each mode of the job (``--synsets voc``, and top-k without --synsets) it runs the job
on DIR/JPEGImages/*.jpg with ``--confidence none`` and makes every box hypothesis again
from the stored maps (transforms/quality/confidence_fit.py). 2-fold cross-validation
with the product's own commands: the photos are split in two halves (alternate file
names, as benchmarks.localization splits them); a confidence is fitted on one half's
photos, the job labels the other half with it (``--confidence FILE``, whose minimum is
the mode's default, which also sets which components are refined), ``pipeline.evaluate``
scores it there; then the halves swap. Both halves' boxes together give the held-out
figures: at that minimum and higher ones, VOC07 mAP (19 classes; a
top-k box counts for the class its concept stands for), top-box CorLoc, precision,
recall, boxes per image, pairs with a correct box, absent classes given a box, and the
expected calibration error and reliability table of the boxes kept.

``--write`` fits on all the photos and writes transforms/maps/data/confidence.json with
each mode's default minimum confidence (``--minimum``).

Default DIR: ../shared/voc07-dev beside the repository (500 VOC2007 test photos; read
them there, never copy them into the repository).
"""
from __future__ import annotations

import json
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from benchmarks.common import machine, table
from benchmarks.localization import halves, is_voc_folder, label, voc_benchmark_parser
from pipeline.evaluate import (LABEL_COLUMNS, LabelsIndex, detection_quality, image_hypotheses,
                               interval_text, labelled_images, truth_lookup)
from pipeline.outputs import read_labels
from transforms.maps.confidence import DEFAULT_CALIBRATION, merged, shipped_calibration
from transforms.quality.confidence_fit import fit_calibration
from transforms.quality.detection import objects_by_pair
from transforms.quality.ground_truth import GroundTruthSet, read_ground_truth
from transforms.quality.localization import CORLOC_IOU, best_iou
from transforms.quality.uncertainty import share_interval
from transforms.vocab.vocabularies import load_vocabulary

# (mode, the job's --synsets in it)
MODES = (("synsets", "voc"), ("top_k", None))
# Minimum confidences whose held-out figures are printed.
SWEEP = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def hypotheses(labels: Path, config: dict, truth: GroundTruthSet, lookup: dict) -> list:
    """Every image's hypotheses, made again from a run's maps and photos (two processes)."""
    index = LabelsIndex(read_labels(str(labels), LABEL_COLUMNS))
    with Pool(2) as pool:
        return pool.starmap(image_hypotheses, [(image, row, config, lookup) for image, row
                                               in labelled_images(index, truth)], chunksize=4)


def held_out_rows(work: Path, mode: str, job_args: list[str], folds, images: list, truth,
                  config: dict, minimum: float) -> list[dict]:
    """Both halves labelled by the job with the confidence fitted on the other half, at
    ``minimum``."""
    rows = []
    for i in (0, 1):
        fitted_on = {Path(p).name for p in folds[i][0]}
        path = work / f"confidence-half{i}.json"
        path.write_text(fit_calibration([h for h in images if h.image in fitted_on],
                                        objects_by_pair(truth), config, mode, minimum,
                                        {"half": i}).to_json())
        other = 1 - i
        output = work / f"half{other}-with-confidence-of-half{i}"
        label(folds[other][0], output, [*job_args, "--confidence", str(path)],
              synsets=dict(MODES)[mode])
        rows += read_labels(str(output), LABEL_COLUMNS)
    return rows


def figures(rows: list[dict], truth: GroundTruthSet, lookup: dict, minimum: float) -> dict:
    """Held-out detection figures and top-box CorLoc of the boxes at ``minimum``."""
    kept = [{**row, "boxes": [b for b in row["boxes"] if b["confidence"] >= minimum]} for row in rows]
    index = LabelsIndex(kept)
    detection = detection_quality(index, truth, lookup, confident=True)
    hits, images = [], []
    for pair in truth.pairs:
        row = index.find(pair.image)
        boxes = [b for b in (row or {"boxes": []})["boxes"] if lookup.get(b["synset"]) == pair.synset.wnid]
        top = max(boxes, key=lambda b: b["confidence"], default=None)
        hits.append(top is not None and best_iou(
            np.array([top["x0"], top["y0"], top["x1"], top["y1"]]), pair.boxes) >= CORLOC_IOU)
        images.append(pair.image)
    return {**detection, "corloc": 100 * float(np.mean(hits)),
            "corloc_interval": share_interval(hits, images)}


def parse_minimums(text: str) -> dict[str, float]:
    pairs = dict(part.split("=", 1) for part in text.split(","))
    return {mode: float(pairs[mode]) for mode, _ in MODES}


def main(argv: list[str] | None = None) -> int:
    parser = voc_benchmark_parser(__doc__.split("\n\n")[0], "output/confidence")
    parser.add_argument("--write", action="store_true",
                        help=f"fit on every photo and write {DEFAULT_CALIBRATION}")
    parser.add_argument("--minimum", default=None, metavar="synsets=C,top_k=C",
                        help="each mode's default minimum confidence in the written file "
                             "(default: the shipped file's)")
    args = parser.parse_args(argv)
    if not is_voc_folder(args.voc):
        return 2
    minimums = (parse_minimums(args.minimum) if args.minimum
                else {mode: shipped_calibration().minimum(mode) for mode, _ in MODES})
    truth = read_ground_truth(args.voc / "Annotations", load_vocabulary("voc"))
    folds = halves(args.voc, args.out)
    summary = {"machine": machine(), "job_args": args.job_args, "modes": {}}
    fitted = []
    for mode, synsets in MODES:
        work = args.out / mode
        labels = work / "labels"
        record = label(str(args.voc / "JPEGImages" / "*.jpg"), labels,
                       [*args.job_args, "--confidence", "none"], synsets=synsets)
        config = record["config"]
        lookup = truth_lookup(config, truth)
        images = hypotheses(labels, config, truth, lookup)
        rows = held_out_rows(work, mode, args.job_args, folds, images, truth, config,
                             minimums[mode])
        sweep = {minimum: figures(rows, truth, lookup, minimum) for minimum in SWEEP
                 if minimum >= minimums[mode]}
        default = figures(rows, truth, lookup, minimums[mode])
        summary["modes"][mode] = {"held_out": {str(k): _brief(v) for k, v in sweep.items()},
                                  "default_minimum": minimums[mode], "default": default}
        print(f"\n{mode}: held-out (2-fold) boxes by minimum confidence (the job's at "
              f"{minimums[mode]:g}, higher ones by filtering)")
        print(table(["min confidence", "mAP", "CorLoc", "precision (VOC)", "precision (on object)",
                     "recall", "boxes/image", "pairs with a correct box",
                     "absent classes with a box", "ECE"],
                    [[f"{m:g}", *_row(f)] for m, f in sweep.items()]))
        print(f"\nat the default minimum {minimums[mode]:g}: CorLoc {default['corloc']:.1f} "
              f"({interval_text(default['corloc_interval'])}), mAP {default['map']:.1f} "
              f"({interval_text(default['map_interval'])})")
        print(f"\nreliability at the default minimum {minimums[mode]:g} "
              f"(ECE {default['calibration_error']:.3f}):")
        print(table(["confidence", "boxes", "mean confidence", "right"],
                    [[f"{b['from']:.1f}-{b['to']:.1f}", b["boxes"], f"{b['confidence']:.3f}",
                      f"{b['right']:.3f}"] for b in default["reliability"]]))
        if args.write:
            boxes = "--synsets voc" if mode == "synsets" else "top-k concepts standing for them"
            fitted.append(fit_calibration(images, objects_by_pair(truth), config, mode,
                                          minimums[mode], {
                "fitted_on": f"{args.voc.name}: {len(images)} photos with PASCAL VOC boxes, "
                             f"the 19 classes but person ({boxes})",
                "held_out_2fold": _brief(default)}))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    print(f"\nmachine: {machine()}")
    if args.write:
        DEFAULT_CALIBRATION.write_text(merged(fitted).to_json())
        print(f"written: {DEFAULT_CALIBRATION}")
    return 0


def _brief(f: dict) -> dict:
    keys = ("map", "corloc", "precision", "precision_any", "recall", "boxes_per_image",
            "pairs_with_correct_box", "absent_with_box", "calibration_error")
    brief = {k: round(float(f[k]), 4) for k in keys if k in f}
    return {**brief, **{k: [round(v, 2) for v in f[k]] for k in ("corloc_interval", "map_interval")
                        if f.get(k)}}


def _row(f: dict) -> list[str]:
    return [f"{f['map']:.1f}", f"{f['corloc']:.1f}", f"{f['precision']:.1f}",
            f"{f['precision_any']:.1f}", f"{f['recall']:.1f}", f"{f['boxes_per_image']:.2f}",
            f"{f['pairs_with_correct_box']:.1f}", f"{f['absent_with_box']:.1f}",
            f"{f.get('calibration_error', float('nan')):.3f}"]


if __name__ == "__main__":
    sys.exit(main())
