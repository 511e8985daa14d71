"""What a job without --synsets finds on a folder in PASCAL VOC layout, by top-k vocabulary.

    python -m benchmarks.top_k_vocabulary [--voc DIR] [--out DIR] [--top-k K]
        [-- JOB OPTIONS ...]

Runs the real job in top-k mode (no --synsets; FnApiRunner, two bundles in threads) on
DIR/JPEGImages/*.jpg once per setting: the ImageNet classes and the concepts, each
ranked by the default image-level score (the best tenth of the cells) and by the whole
image's mean. For every (image, VOC class) pair but person (see
transforms/vocab/data/README.md), the class is *found* when one of the image's top-k synsets
matches it: at least half of the synset's ImageNet classes are classes the VOC class
is mapped to (``--classes voc``; a class matches when it is mapped, the concept "dog"
matches dog, "truck" does not match car although two of its seven classes are vans).
The best-ranked matching synset's top box is then scored: CorLoc among the pairs
found, and over all pairs (a pair not found counts as missed).

Default DIR: ../shared/voc07-dev beside the repository (500 VOC2007 test photos; read
them there, never copy them into the repository).
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common import machine, table
from benchmarks.localization import is_voc_folder, label, voc_benchmark_parser
from pipeline.evaluate import LABEL_COLUMNS, LabelsIndex
from pipeline.outputs import read_labels
from transforms.quality.ground_truth import GroundTruthSet, read_ground_truth
from transforms.io.records import row_boxes
from transforms.quality.detection import stands_for
from transforms.quality.localization import CORLOC_IOU, best_iou
from transforms.vocab.vocabularies import load_vocabulary, top_k_vocabulary

# (name, job options): each a run of the job.
SETTINGS = [
    ("ImageNet classes", ["--vocabulary", "imagenet"]),
    ("concepts", ["--vocabulary", "concepts"]),
    ("ImageNet classes, whole-image score", ["--vocabulary", "imagenet", "--score-cells", "1"]),
    ("concepts, whole-image score", ["--vocabulary", "concepts", "--score-cells", "1"]),
]


def found_pairs(labels: Path, truth: GroundTruthSet, vocabulary: str) -> list[dict]:
    """Per ground-truth pair with a labels row: whether one of the image's synsets matches
    its class, and whether the best-ranked matching synset's top box is correct."""
    classes = {s.wnid: s.class_indices for s in top_k_vocabulary(vocabulary)}
    index = LabelsIndex(read_labels(str(labels), LABEL_COLUMNS))
    results = []
    for pair in truth.pairs:
        row = index.find(pair.image)
        if row is None:
            continue
        voc_classes = set(pair.synset.class_indices)
        match = next((h["synset"] for h in row["heatmaps"]  # best score first
                      if stands_for(classes[h["synset"]], voc_classes)), None)
        boxes = [b for b in row_boxes(row) if b.synset == match]
        top = max(boxes, key=lambda b: b.rank, default=None)
        correct = top is not None and best_iou(
            np.array([top.x0, top.y0, top.x1, top.y1]), pair.boxes) >= CORLOC_IOU
        results.append({"image": pair.image, "class": pair.synset.label, "found": match is not None,
                        "correct": correct})
    return results


def shares(pairs: list[dict]) -> dict:
    found = [p for p in pairs if p["found"]]
    return {"pairs": len(pairs), "found": len(found) / len(pairs),
            "corloc_found": float(np.mean([p["correct"] for p in found])) if found else 0.0,
            "corloc_all": float(np.mean([p["correct"] for p in pairs]))}


def main(argv: list[str] | None = None) -> int:
    parser = voc_benchmark_parser(__doc__.split("\n\n")[0], "output/top_k_vocabulary")
    parser.add_argument("--top-k", type=int, default=5, help="synsets per image (default: %(default)s)")
    args = parser.parse_args(argv)
    if not is_voc_folder(args.voc):
        return 2
    truth = read_ground_truth(args.voc / "Annotations", load_vocabulary("voc"))
    summary = {"machine": machine(), "top_k": args.top_k, "job_args": args.job_args, "settings": {}}
    rows, by_class = [], {}
    for name, options in SETTINGS:
        labels = args.out / name.replace(",", "").replace(" ", "-") / "labels"
        record = label(str(args.voc / "JPEGImages" / "*.jpg"), labels,
                       [*options, "--top-k", str(args.top_k), *args.job_args], synsets=None)
        pairs = found_pairs(labels, truth, record["config"]["vocabulary"])
        result = {**shares(pairs), "images_per_s": record["images_per_s"]}
        summary["settings"][name] = result
        rows.append([name, result["pairs"], f"{result['found']:.1%}", f"{result['corloc_found']:.1%}",
                     f"{result['corloc_all']:.1%}", f"{result['images_per_s']:.2f}"])
        per_class = defaultdict(list)
        for p in pairs:
            per_class[p["class"]].append(p)
        by_class[name] = {c: shares(ps) for c, ps in sorted(per_class.items())}
    summary["by_class"] = by_class
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nmachine: {machine()}")
    print(f"top-{args.top_k}, job options: {' '.join(args.job_args) or '(defaults)'}")
    print(table(["top-k vocabulary", "pairs", "found", "CorLoc of those found",
                 "CorLoc of all pairs", "images/s"], rows))
    names = [name for name, _ in SETTINGS[:2]]
    print(f"\nby class ({names[0]} → {names[1]}):")
    print(table(["class", "pairs", "found", "CorLoc of all pairs"], [
        [c, s["pairs"], f"{s['found']:.0%} → {by_class[names[1]][c]['found']:.0%}",
         f"{s['corloc_all']:.0%} → {by_class[names[1]][c]['corloc_all']:.0%}"]
        for c, s in by_class[names[0]].items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
