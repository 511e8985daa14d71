"""Localization quality of the job on a folder in PASCAL VOC layout, and its speed.

    python -m benchmarks.localization [--voc DIR] [--out DIR] [--name NAME] [--calibrate]
        [-- JOB OPTIONS ...]

Runs the real job (FnApiRunner, two bundles in threads as run_local.sh does) with
``--synsets voc`` on DIR/JPEGImages/*.jpg, scores it with ``pipeline.evaluate
--classes voc`` against DIR/Annotations, and prints the per-class table and one summary
row: CorLoc, MaxBoxAccV2, the centre baseline (person left out: see
transforms/vocab/data/README.md), the detection quality of every box (VOC07 mAP, precision,
recall, boxes per image, absent classes given a box, the confidence's calibration error)
and images/s. JOB OPTIONS after ``--`` go to the job (e.g. ``-- --heat probability
--threshold 0.4``).

``--calibrate`` also measures per-synset thresholds honestly, by 2-fold
cross-validation with the product's own commands: the images are split in two halves
(alternate file names); thresholds are calibrated on one half's pairs
(``pipeline.evaluate --calibrate``), the job labels the other half with them
(``--thresholds``) and is scored there; then the halves swap.

Default DIR: ../shared/voc07-dev beside the repository (500 VOC2007 test photos; read
them there, never copy them into the repository).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

from benchmarks.common import machine, table
from pipeline.evaluate import LABEL_COLUMNS, LabelsIndex, Match, interval_text, match_pairs
from pipeline.evaluate import main as evaluate
from pipeline.outputs import read_labels
from pipeline.run import run
from transforms.quality.calibration import THRESHOLDS, top_box_hits
from transforms.quality.ground_truth import read_ground_truth
from transforms.quality.localization import CORLOC_IOU, iou_matrix
from transforms.vocab.vocabularies import load_vocabulary

DEFAULT_VOC = Path(__file__).resolve().parents[2] / "shared" / "voc07-dev"
LOCAL = ["--runner", "FnApiRunner", "--direct_num_workers=2",
         "--direct_running_mode=multi_threading"]


def label(images: list[str] | str, output: Path, job_args: list[str],
          synsets: str | None = "voc") -> dict:
    """Run the job on a pattern or a list of image paths (with ``--synsets``, unless
    None: top-k mode); its run.json."""
    if isinstance(images, str):
        inputs = ["--input", images]
    else:
        output.mkdir(parents=True, exist_ok=True)
        manifest = output.parent / f"{output.name}-manifest.txt"
        manifest.write_text("\n".join(images) + "\n")
        inputs = ["--manifest", str(manifest)]
    code = run([*inputs, *(["--synsets", synsets] if synsets else []), "--output", str(output),
                "--overwrite", *LOCAL, *job_args])
    if code:
        raise SystemExit(f"the job failed (exit {code}): {output}")
    return json.loads((output / "run.json").read_text())


def score(labels: Path, annotations: Path, metrics: Path, calibrate: Path | None = None) -> dict:
    """pipeline.evaluate's metrics of a run (and, with ``calibrate``, its thresholds)."""
    argv = ["--labels", str(labels), "--ground-truth", str(annotations), "--classes", "voc",
            "--json", str(metrics)]
    if evaluate(argv + (["--calibrate", str(calibrate)] if calibrate else [])):
        raise SystemExit(f"evaluation failed: {labels}")
    return json.loads(metrics.read_text())


def failure(match: Match) -> str:
    """What went wrong with a pair's top box, against the ground-truth box it overlaps most."""
    if match.top_box is None:
        return "no box"
    box = np.array(match.top_box)
    ious = iou_matrix(box, match.pair.boxes)[0]
    if ious.max() >= CORLOC_IOU:
        return "correct"
    truth = match.pair.boxes[int(ious.argmax())]
    inter = np.prod(np.clip(np.minimum(box[2:], truth[2:]) - np.maximum(box[:2], truth[:2]), 0, None))
    several = " (several objects of the class)" if len(match.pair.boxes) > 1 else ""
    if inter == 0:
        return "elsewhere" + several
    if inter >= 0.8 * np.prod(truth[2:] - truth[:2]):
        return "too large: holds the object" + several
    if inter >= 0.8 * np.prod(box[2:] - box[:2]):
        return "too small: inside the object" + several
    return "overlaps the object partly" + several


def matches(labels: Path, annotations: Path) -> list[Match]:
    truth = read_ground_truth(annotations, load_vocabulary("voc"))
    index = LabelsIndex(read_labels(str(labels), LABEL_COLUMNS))
    return match_pairs(index, truth)[0]


def boxed_classes(labels: Path, annotations: Path) -> dict:
    """The share of (photo, class) pairs with at least one box, among the classes present
    in the photo and among those absent from it (boxes a user would have to filter)."""
    truth = read_ground_truth(annotations, load_vocabulary("voc"))
    present = {(p.image, p.synset.wnid) for p in truth.pairs}
    with_box = {True: [], False: []}
    for row in read_labels(str(labels), ["image_uri", "boxes", "heatmaps"]):
        name = row["image_uri"].rsplit("/", 1)[-1]
        boxed = {b["synset"] for b in row["boxes"]}
        for heatmap in row["heatmaps"]:
            with_box[(name, heatmap["synset"]) in present].append(heatmap["synset"] in boxed)
    return {"present_with_box": float(np.mean(with_box[True])),
            "absent_with_box": float(np.mean(with_box[False])),
            "absent_pairs": len(with_box[False])}


def threshold_diagnosis(pairs: list[Match], run_config: dict) -> dict:
    """Whether one threshold per image could do better than one for all: the share of
    pairs whose top box is correct at some threshold of THRESHOLDS, and how the best
    threshold (the middle of those that work) follows the object's size and the map's
    own spread (the share of the image above half its heat), by Spearman correlation."""
    best, object_size, spread = [], [], []
    for m in pairs:
        hits = top_box_hits(m.heat, m.probability, m.grid, m.image_size, m.pair.boxes,
                            run_config["relative_threshold"], run_config["min_box_area"],
                            run_config["min_score"])
        if hits.any():
            best.append(float(np.median(THRESHOLDS[hits])))
            boxes = m.pair.boxes
            object_size.append(float(np.max((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
                               / (m.image_size[0] * m.image_size[1]))
            spread.append(float((m.heat >= 0.5 * m.heat.max()).mean()))
    return {"some_threshold_correct": len(best) / len(pairs),
            "spearman_best_threshold_object_size": float(stats.spearmanr(best, object_size)[0]),
            "spearman_best_threshold_map_spread": float(stats.spearmanr(best, spread)[0])}


def halves(voc: Path, work: Path) -> list[tuple[list[str], Path]]:
    """The labelled photos in two halves (alternate file names): each half's image paths
    and a folder of links to its annotations (in ``work``)."""
    xml = sorted(p for p in (voc / "Annotations").glob("*.xml")
                 if (voc / "JPEGImages" / f"{p.stem}.jpg").is_file())
    result = []
    for i, half in enumerate([xml[0::2], xml[1::2]]):
        folder = work / f"half{i}-annotations"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for path in half:
            (folder / path.name).symlink_to(path)
        result.append(([str(voc / "JPEGImages" / f"{p.stem}.jpg") for p in half], folder))
    return result


def cross_validated(voc: Path, work: Path, labels: Path, job_args: list[str]) -> dict:
    """2-fold: thresholds calibrated on each half, the job run with them on the other."""
    folds = halves(voc, work)
    hits = pairs = 0
    per_half = []
    for i in (0, 1):
        thresholds = work / f"thresholds-half{i}.json"
        score(labels, folds[i][1], work / f"calibration-half{i}.json", thresholds)
        other = 1 - i
        images, annotations = folds[other]
        output = work / f"half{other}-with-thresholds-of-half{i}"
        label(images, output, [*job_args, "--thresholds", str(thresholds)])
        metrics = score(output, annotations, work / f"metrics-half{other}.json")["overall"]
        hits += metrics["corloc"] * metrics["pairs"] / 100
        pairs += metrics["pairs"]
        per_half.append(metrics)
    return {"corloc": 100 * hits / pairs, "pairs": pairs, "halves": per_half}


def add_voc_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voc", type=Path, default=DEFAULT_VOC,
                        help="folder with JPEGImages/ and Annotations/ (default: %(default)s)")


def voc_benchmark_parser(description: str, out: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that run the job on a VOC folder: --voc, --out (by
    default ``out``) and, after --, the job's own options."""
    parser = argparse.ArgumentParser(description=description)
    add_voc_option(parser)
    parser.add_argument("--out", type=Path, default=Path(out),
                        help="where runs and results go (default: %(default)s)")
    parser.add_argument("job_args", nargs="*", help="options for the job, after --")
    return parser


def is_voc_folder(voc: Path) -> bool:
    """Whether ``voc`` has the VOC layout; if not, says so on stderr."""
    if (voc / "JPEGImages").is_dir() and (voc / "Annotations").is_dir():
        return True
    print(f"no VOC folder at {voc} (JPEGImages/, Annotations/): give --voc DIR", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = voc_benchmark_parser(__doc__.split("\n\n")[0], "output/localization")
    parser.add_argument("--name", default="default", help="this setting's name (a subfolder)")
    parser.add_argument("--calibrate", action="store_true",
                        help="also measure per-synset thresholds by 2-fold cross-validation")
    args = parser.parse_args(argv)
    if not is_voc_folder(args.voc):
        return 2
    work = args.out / args.name
    labels = work / "labels"
    record = label(str(args.voc / "JPEGImages" / "*.jpg"), labels, args.job_args)
    metrics = score(labels, args.voc / "Annotations", work / "metrics.json")
    overall, detection = metrics["overall"], metrics["detection"]
    summary = {"name": args.name, "job_args": args.job_args, "machine": machine(),
               "images": record["counts"]["labelled"], "images_per_s": record["images_per_s"],
               **{k: overall[k] for k in ("pairs", "corloc", "corloc_interval", "max_box_acc_v2",
                                          "centre_corloc", "centre_max_box_acc_v2")},
               "detection": {k: v for k, v in detection.items() if k != "synsets"}}
    header = ["setting", "pairs", "CorLoc", "MaxBoxAccV2", "centre CorLoc", "mAP",
              "precision (VOC / on object)", "recall", "boxes/image", "absent classes with a box",
              "ECE", "images/s"]
    row = [args.name, overall["pairs"], f"{overall['corloc']:.1f}",
           f"{overall['max_box_acc_v2']:.1f}", f"{overall['centre_corloc']:.1f}",
           f"{detection['map']:.1f}",
           f"{detection['precision']:.1f} / {detection['precision_any']:.1f}",
           f"{detection['recall']:.1f}", f"{detection['boxes_per_image']:.2f}",
           f"{detection['absent_with_box']:.1f}",
           f"{detection['calibration_error']:.3f}" if "calibration_error" in detection else "-",
           f"{record['images_per_s']:.2f}"]
    if args.calibrate:
        summary["calibrated_2fold"] = cross_validated(args.voc, work, labels, args.job_args)
        header.append("CorLoc, calibrated (2-fold)")
        row.append(f"{summary['calibrated_2fold']['corloc']:.1f}")
    pairs = matches(labels, args.voc / "Annotations")
    kinds = Counter(failure(m) for m in pairs)
    summary["top_boxes"] = dict(kinds)
    summary["thresholds"] = threshold_diagnosis(pairs, record["config"])
    summary["boxed_classes"] = boxed_classes(labels, args.voc / "Annotations")
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nmachine: {machine()}")
    print(f"job options: {' '.join(args.job_args) or '(defaults)'}")
    print(table(header, [row]))
    print(f"CorLoc {interval_text(overall['corloc_interval'])}; mAP "
          f"{interval_text(detection['map_interval'])}")
    print("\ntop boxes:")
    print(table(["top box", "pairs"], [[kind, n] for kind, n in kinds.most_common()]))
    diagnosis = summary["thresholds"]
    print(f"\nsome threshold of {THRESHOLDS[0]:g}-{THRESHOLDS[-1]:g} gives a correct top box for "
          f"{diagnosis['some_threshold_correct']:.1%} of the pairs; the best threshold's Spearman "
          f"correlation with the object's size: "
          f"{diagnosis['spearman_best_threshold_object_size']:+.2f}, with the map's spread: "
          f"{diagnosis['spearman_best_threshold_map_spread']:+.2f}")
    boxed = summary["boxed_classes"]
    print(f"classes with a box: {boxed['present_with_box']:.1%} of those in the photo, "
          f"{boxed['absent_with_box']:.1%} of the {boxed['absent_pairs']} absent from it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
