"""Levers on localization that the job does not offer, measured on a VOC-layout folder
with the product's own model and box code, to decide whether they are worth offering.

    python -m benchmarks.localization_levers [--voc DIR] [--scales 288,576] [--limit N]

Every image's class logits are computed at each scale with the job's network
(EfficientNet-Lite0, ImageNet weights) on the plain input, its mirror image (for the
flip) and the input shifted by half a cell down, right and both (for shift-and-stitch),
reduced to the VOC synsets' maps, and every lever is scored as the job would score it
(``--synsets voc``, mean fusion, top box = best score, ``pipeline.evaluate``'s
CorLoc and MaxBoxAccV2). One lever differs from the job's defaults per row:

- component: which connected component becomes the top box (the job: the highest
  peak probability; or the highest peak heat, the largest, the most heat);
- flip: the map of the mirrored image, mirrored back, averaged in (2 forward passes);
- shift-and-stitch: the network also run on the input shifted by 16 px (half a cell)
  down, right and both, the four maps interleaved into one twice as fine (4 passes);
- context suppression: the synset's heat against its strongest competitor per cell,
  as a probability ratio p / (p + best other class) or a logit margin;
- calibration: per-synset thresholds by 2-fold cross-validation (alternate images) for
  several shrinkages (transforms/quality/calibration.py).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy import special

from benchmarks.common import machine, table
from benchmarks.localization import add_voc_option, is_voc_folder
from transforms.maps.boxes import (DEFAULT_MIN_SCORE, DEFAULT_THRESHOLD, PIXELS_PER_CELL,
                                   raster_boxes, upsample)
from transforms.quality.calibration import SHRINKAGE, THRESHOLDS, calibrate, top_box_hits
from transforms.io.decode import decode_image
from transforms.model.fcn import ResponseMapper
from transforms.quality.ground_truth import read_ground_truth
from transforms.maps.heatmaps import (DEFAULT_HEAT, HEATS, finished_heat, fuse, min_max_normalized,
                                      resample, synset_logits)
from transforms.model.grid import MapGrid
from transforms.quality.localization import (CORLOC_IOU, best_iou, box_coords, max_box_accuracy,
                                             threshold_sweep)
from transforms.maps.multiscale import scale_image
from transforms.maps.scales import parse_scales
from transforms.vocab.synsets import class_matrix
from transforms.vocab.vocabularies import load_vocabulary

HALF_CELL = 16
# (rows, columns) cropped off the top and left of the input: the shifted inputs.
SHIFTS = ((0, 0), (HALF_CELL, 0), (0, HALF_CELL), (HALF_CELL, HALF_CELL))
# Orders of components other than the job's (best score first, as raster_boxes sorts).
REORDER = {"area": lambda b: b.area, "heat mass": lambda b: b.mean * b.area}


def synset_maps(logits: np.ndarray, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """(h, w, classes) logits → each kind of (h, w, S) synset map the levers use."""
    probabilities = special.softmax(logits, axis=-1)
    synset_p = probabilities @ matrix
    members = matrix.T.astype(bool)  # (S, classes)
    best_other_p = np.stack([probabilities[..., ~m].max(-1) for m in members], -1)
    best_other_logit = np.stack([logits[..., ~m].max(-1) for m in members], -1)
    logit = synset_logits(logits, matrix)
    return {"logit": logit, "probability": synset_p,
            "probability ratio": synset_p / (synset_p + best_other_p),
            "logit margin": logit - best_other_logit}


def image_maps(mapper: ResponseMapper, pixels: np.ndarray, size: tuple[int, int], scales,
               matrix: np.ndarray) -> dict:
    """{(scale index, variant): (maps by kind, grid)} for the plain, flipped and shifted
    inputs; variant "stitched" interleaves the shifted ones."""
    stride = mapper.backbone.stride
    scaled = scale_image(pixels, size, scales, stride)
    out = {}
    for s, x in enumerate(scaled.inputs):
        sy, sx = size[0] / x.shape[0], size[1] / x.shape[1]
        plain = synset_maps(mapper.class_logits(x[None])[0], matrix)
        grid = mapper.grid(plain["logit"].shape[:2]).scaled(sy, sx)
        flipped = synset_maps(mapper.class_logits(np.ascontiguousarray(x[None, :, ::-1]))[0], matrix)
        out[s, "plain"] = plain, grid
        out[s, "flip"] = {k: (v + flipped[k][:, ::-1]) / 2 for k, v in plain.items()}, grid
        shifted = [plain] + [synset_maps(mapper.class_logits(np.ascontiguousarray(x[None, dy:, dx:]))[0],
                                         matrix) for dy, dx in SHIFTS[1:]]
        h, w = plain["logit"].shape[:2]
        stitched = {}
        for kind in plain:
            fine = np.empty((2 * h, 2 * w, matrix.shape[1]), np.float32)
            for (dy, dx), maps in zip(SHIFTS, shifted):
                fine[dy // HALF_CELL::2, dx // HALF_CELL::2] = maps[kind][:h, :w]
            stitched[kind] = fine
        half = stride / 2
        out[s, "stitched"] = stitched, MapGrid(2 * h, 2 * w, half, half, half, half).scaled(sy, sx)
    return out


def fused(maps: dict, scales, variant: str, heat: str, image_size) -> tuple:
    """The job's fusion (mean over scales on the finest grid) of one variant's maps:
    (heat (h, w, S), probability (h, w, S), grid). The job's heats are finished as the
    job finishes them; the others normalised to 0-1, so one threshold means the same."""
    per_scale = [maps[s, variant] for s in range(len(scales))]
    finest = max((g for _, g in per_scale), key=lambda g: g.height * g.width)
    grid = MapGrid.uniform(finest.height, finest.width, image_size)

    def fuse_kind(kind):
        return fuse([resample(m[kind], g, grid) for m, g in per_scale], "mean")
    probability = fuse_kind("probability")
    if heat in HEATS:
        raw = probability if heat == "probability" else fuse_kind("logit")
        return finished_heat(heat, raw, probability), probability, grid
    return min_max_normalized(fuse_kind(heat)), probability, grid


def top_box(heat, probability, grid, size, component: str) -> np.ndarray:
    """The top box at the default threshold: the job's (best score, the peak
    probability), or by the component's own peak heat, area or heat mass."""
    raster = upsample(heat, grid, size, PIXELS_PER_CELL)
    scores = None if component == "peak heat" else upsample(probability, grid, size, PIXELS_PER_CELL)
    boxes = raster_boxes(raster, DEFAULT_THRESHOLD, size, score_raster=scores,
                         min_score=0.0 if scores is None else DEFAULT_MIN_SCORE)
    if component in REORDER:
        boxes.sort(key=REORDER[component], reverse=True)
    return box_coords(boxes[:1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_voc_option(parser)
    parser.add_argument("--scales", default="288,576")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = parser.parse_args(argv)
    if not is_voc_folder(args.voc):
        return 2
    vocabulary = load_vocabulary("voc")
    truth = read_ground_truth(args.voc / "Annotations", vocabulary)
    images = sorted({p.image for p in truth.pairs
                     if (args.voc / "JPEGImages" / p.image).is_file()})[:args.limit]
    synsets = list(vocabulary.values())
    column = {s.wnid: i for i, s in enumerate(synsets)}
    scales = parse_scales(args.scales)
    mapper = ResponseMapper.load()
    matrix = class_matrix(synsets, mapper.num_classes)

    settings = {  # name → (variant, heat kind, component, forward passes)
        f"the job's defaults ({DEFAULT_HEAT} heat, top box by score)": ("plain", DEFAULT_HEAT, "score", 1),
        "component: highest peak heat": ("plain", DEFAULT_HEAT, "peak heat", 1),
        "component: largest": ("plain", DEFAULT_HEAT, "area", 1),
        "component: most heat (mean × area)": ("plain", DEFAULT_HEAT, "heat mass", 1),
        "flip averaged in": ("flip", DEFAULT_HEAT, "score", 2),
        "shift-and-stitch (maps 2× finer)": ("stitched", DEFAULT_HEAT, "score", 4),
        "context: probability ratio p / (p + best other)": ("plain", "probability ratio", "score", 1),
        "context: logit margin over best other class": ("plain", "logit margin", "score", 1),
    }
    hits = {name: [] for name in settings}
    sweeps = {(variant, heat): [] for variant, heat, _, _ in settings.values()}
    calibration_hits, pair_synsets, pair_images = [], [], []
    by_image = {}
    for pair in truth.pairs:
        by_image.setdefault(pair.image, []).append(pair)
    for n, image in enumerate(images):
        decoded = decode_image((args.voc / "JPEGImages" / image).read_bytes())
        maps = image_maps(mapper, decoded.pixels, decoded.size, scales, matrix)
        cache = {key: fused(maps, scales, *key, decoded.size) for key in sweeps}
        for (variant, heat), heat_sweeps in sweeps.items():
            heat_map, _, grid = cache[variant, heat]
            heat_sweeps += [threshold_sweep(heat_map[..., column[pair.synset.wnid]], grid,
                                            decoded.size, pair.boxes) for pair in by_image[image]]
        for name, (variant, heat, component, _) in settings.items():
            heat_map, probability, grid = cache[variant, heat]
            for pair in by_image[image]:
                i = column[pair.synset.wnid]
                box = top_box(heat_map[..., i], probability[..., i], grid, decoded.size, component)
                hits[name].append(best_iou(box, pair.boxes) >= CORLOC_IOU)
        heat_map, probability, grid = cache["plain", DEFAULT_HEAT]
        for pair in by_image[image]:
            i = column[pair.synset.wnid]
            calibration_hits.append(top_box_hits(heat_map[..., i], probability[..., i], grid,
                                                 decoded.size, pair.boxes, min_score=DEFAULT_MIN_SCORE))
            pair_synsets.append(pair.synset.wnid)
            pair_images.append(n)
        print(f"\r{n + 1}/{len(images)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    rows = [[name, f"{100 * np.mean(hits[name]):.1f}",
             f"{max_box_accuracy(sweeps[variant, heat])['max_box_acc_v2']:.1f}", f"×{passes}"]
            for name, (variant, heat, _, passes) in settings.items()]
    calibration_hits = np.array(calibration_hits)
    folds = np.array(pair_images) % 2
    labels = {s.wnid: s.label for s in synsets}
    for shrinkage in (0, 5, SHRINKAGE, 20, np.inf):
        correct = 0
        for fold in (0, 1):
            train, test = folds != fold, folds == fold
            weight = 1e12 if np.isinf(shrinkage) else shrinkage
            chosen = calibrate(calibration_hits[train], np.array(pair_synsets)[train], labels, {},
                               weight)
            for row, wnid in zip(calibration_hits[test], np.array(pair_synsets)[test]):
                t = chosen.synsets[wnid].threshold if wnid in chosen.synsets else chosen.default
                correct += row[int(np.argmin(np.abs(THRESHOLDS - t)))]
        name = ("one threshold for all, calibrated (2-fold)" if np.isinf(shrinkage) else
                f"per-synset thresholds, shrinkage {shrinkage:g} (2-fold)")
        rows.append([name, f"{100 * correct / len(calibration_hits):.1f}", "", "×1"])
    print(f"machine: {machine()}")
    print(f"{len(calibration_hits)} pairs in {len(images)} images, scales {args.scales}\n")
    print(table(["lever", "CorLoc", "MaxBoxAccV2", "forward passes"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
