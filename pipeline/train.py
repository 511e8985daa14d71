"""python -m pipeline.train: a synset head trained on the job's own weak labels.

    python -m pipeline.train --labels DIR [--labels DIR …] --out MODEL_DIR
        [--held-out 0.2] [--epochs 20] [--learning-rate 0.001] [--factor 4]
        [--foreground 0.5] [--background 0.1] [--seed 0]

Reads finished runs made with ``--synsets`` (the head's outputs are those synsets) and
their photos; per image and scale of the runs, the frozen backbone's features and each
synset's pseudo-mask from the fused heatmaps (transforms/maps/pseudo_masks.py), since
the job runs the head at every scale; fits the head
(transforms/train/fit.py), stopping on a held-out part of the images; writes
MODEL_DIR/head.weights.h5 and MODEL_DIR/manifest.json (backbone, weights, synsets,
settings, data, losses). No ground truth is read. Features are computed once per image
and scale and kept in MODEL_DIR/features/ for later runs into the same folder.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline.console import exit_with
from pipeline.filesystems import FILESYSTEM_EPILOG, StoreError, check_stores, parse_with_filesystems
from pipeline.options import user_path
from pipeline.outputs import SUCCESS, OutputError, is_finished, iter_labels, read_run_record
from transforms.io.decode import decode_image
from transforms.io.records import file_name
from transforms.maps.multiscale import resize_image
from transforms.maps.pseudo_masks import DEFAULT_BACKGROUND, DEFAULT_FOREGROUND
from transforms.maps.scales import Scale, parse_scales
from transforms.model.backbones import write_atomically
from transforms.model.fcn import ResponseMapper
from transforms.model.head import DEFAULT_FACTOR, HEAD_WEIGHTS, MANIFEST
from transforms.train.examples import FeatureExtractor, HeadExample, row_targets
from transforms.train.fit import evaluate_loss, train_head

LABEL_COLUMNS = ["image_uri", "width", "height", "boxes", "heatmaps"]


class TrainError(Exception):
    """What to train on is unusable (exit 2, no head written)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.train",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=FILESYSTEM_EPILOG)
    parser.add_argument("--labels", type=user_path, required=True, action="append", metavar="DIR",
                        help="output folder of a finished run with --synsets (repeatable; the "
                             "runs must share model, weights, synsets and scales)")
    parser.add_argument("--out", type=user_path, required=True, metavar="MODEL_DIR")
    parser.add_argument("--held-out", type=float, default=0.2, metavar="F",
                        help="fraction of the images whose pseudo-labels stop the training "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=20,
                        help="most passes over the training images; it stops earlier once the "
                             "held-out loss has not improved for 3 (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="Adam's step size (default: %(default)s)")
    parser.add_argument("--factor", type=int, default=DEFAULT_FACTOR,
                        help="the head's upsampling of the backbone's cells, even (default: "
                             "%(default)s)")
    parser.add_argument("--foreground", type=float, default=DEFAULT_FOREGROUND,
                        help="a boxed synset's heat from which a cell is a foreground target "
                             "(default: %(default)s)")
    parser.add_argument("--background", type=float, default=DEFAULT_BACKGROUND,
                        help="its heat up to which a cell is a background target; cells between "
                             "the two are left out of the loss (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the shuffling and the initial weights; the "
                             "held-out images are chosen by file name (default: %(default)s)")
    args, args.filesystems = parse_with_filesystems(parser, argv)
    if not 0 < args.held_out < 1:
        parser.error("--held-out is a fraction between 0 and 1")
    # Checked here, not where they are used: that is after every run's rows are read.
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if not args.learning_rate > 0:
        parser.error(f"--learning-rate must be above 0, got {args.learning_rate}")
    if args.factor < 2 or args.factor % 2:
        parser.error(f"--factor must be even and at least 2, got {args.factor}")
    if not 0 <= args.background < args.foreground <= 1:
        parser.error(f"--background and --foreground are heat levels with 0 <= background < "
                     f"foreground <= 1, got {args.background} and {args.foreground}")
    return args


def run_settings(labels: Sequence[str]) -> dict:
    """What the runs were made with; refuses unfinished runs, top-k runs, and runs that
    disagree on model, weights, synsets or scales."""
    settings = None
    for output in labels:
        if not is_finished(output):
            raise TrainError(f"{output} has no {SUCCESS}: train on finished runs")
        record = read_run_record(output)
        config = record["config"]
        if not config.get("synsets"):
            raise TrainError(f"{output} ran without --synsets (top-k mode): a head needs the same "
                             "synsets in every image; run the job with --synsets")
        if config.get("heatmaps", "all") == "none":
            raise TrainError(f"{output} ran with --heatmaps none: the targets come from the "
                             "heatmaps; run the job with --heatmaps all (or boxed)")
        if config.get("head"):
            raise TrainError(f"{output} ran with --head: train on the classifier's own maps, "
                             "from a run without --head")
        these = {"model": record["model"], "weights": record["weights"],
                 "weights_checksum": record["weights_checksum"],
                 "synsets": [{"wnid": s["wnid"], "label": s["label"]} for s in config["synsets"]],
                 "scales": config["scales"]}
        if settings is None:
            settings = these
        elif any(these[k] != settings[k] for k in ("model", "weights_checksum", "synsets", "scales")):
            raise TrainError(f"{output} differs from {labels[0]} in model, weights, synsets or "
                             "scales: train on runs made alike")
    return settings


def image_examples(row: dict, settings: dict, scales: Sequence[Scale], mapper: ResponseMapper,
                   extract: FeatureExtractor, cache: Path,
                   args: argparse.Namespace) -> list[HeadExample]:
    """One example per scale of the run (the job runs the head at each): the photo's
    features at that scale (computed once, then read from ``cache``) and its targets."""
    wnids = [s["wnid"] for s in settings["synsets"]]
    image_size = (row["height"], row["width"])
    decoded = None
    result = []
    for scale in scales:
        size = scale.input_size(image_size, mapper.backbone.stride)
        key = hashlib.sha256(f"{settings['model']} {settings['weights_checksum']} {scale} "
                             f"{row['image_uri']}".encode()).hexdigest()
        path = cache / f"{key[:24]}.npy"
        if path.exists():
            features = np.load(path)
        else:
            if decoded is None:
                with FileSystems.open(row["image_uri"]) as f:
                    decoded = decode_image(f.read())
            # Kept as float16 (half the disk and memory), and used as kept: a first run
            # and a rerun from the cache train on the same numbers.
            features = extract(resize_image(decoded.pixels, size)).astype(np.float16)
            write_atomically(path, lambda tmp: np.save(tmp, features))
        cells = mapper.grid(features.shape[:2]).scaled(image_size[0] / size[0],
                                                       image_size[1] / size[1])
        result.append(HeadExample(features, row_targets(row, wnids, args.factor, cells,
                                                        args.foreground, args.background)))
    return result


def examples(labels: Sequence[str], settings: dict, mapper: ResponseMapper, cache: Path,
             args: argparse.Namespace) -> tuple[list[HeadExample], list[HeadExample], int, int]:
    """(fit, held-out) examples of every labelled image at every scale, the images split
    by a hash of their file name, and the number of images on each side."""
    extract = FeatureExtractor(mapper)
    scales = parse_scales(",".join(settings["scales"]))
    cache.mkdir(parents=True, exist_ok=True)
    fit, held_out, images = [], [], [0, 0]
    for output in labels:
        for n, row in enumerate(iter_labels(output, LABEL_COLUMNS), start=1):
            # Split by file name: the same images are held out in every run of this command.
            side = int(hashlib.sha256(file_name(row["image_uri"]).encode()).hexdigest()[-8:], 16)
            held = side / 16 ** 8 < args.held_out
            (held_out if held else fit).extend(
                image_examples(row, settings, scales, mapper, extract, cache, args))
            images[held] += 1
            if n % 50 == 0:
                print(f"features: {n} images of {output}", file=sys.stderr, flush=True)
    return fit, held_out, images[0], images[1]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        check_stores(args.labels, args.filesystems)
        settings = run_settings(args.labels)
        mapper = ResponseMapper.load(settings["model"], settings["weights"], "cell")
        fit, held_out, fit_images, held_out_images = examples(
            args.labels, settings, mapper, out / "features", args)
        if not fit or not held_out:
            raise TrainError(f"{fit_images + held_out_images} labelled images: too few to fit "
                             f"and hold out {args.held_out:.0%}")
    except (TrainError, OutputError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"training on {fit_images} images, stopping on {held_out_images} (each at "
          f"{len(settings['scales'])} scales)", file=sys.stderr)
    epoch_line = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(
        f"epoch {epoch + 1}/{args.epochs}: loss {logs['loss']:.4f}, held-out {logs['val_loss']:.4f}",
        file=sys.stderr, flush=True))
    head, history = train_head(fit, held_out, args.factor, args.epochs, args.learning_rate,
                               seed=args.seed, callbacks=[epoch_line])
    head.save_weights(out / HEAD_WEIGHTS)
    manifest = {
        **settings, "factor": args.factor, "features_layer": mapper.backbone.features_layer,
        "features": int(fit[0].features.shape[-1]),
        "pseudo_masks": {"foreground": args.foreground, "background": args.background},
        "data": {"labels": list(args.labels), "fit_images": fit_images,
                 "held_out_images": held_out_images, "examples": len(fit) + len(held_out)},
        "training": {"epochs_run": len(history["loss"]), "learning_rate": args.learning_rate,
                     "seed": args.seed, "history": history},
        "loss": {"fit": evaluate_loss(head, fit), "held_out": evaluate_loss(head, held_out)},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    print(f"head of {len(settings['synsets'])} synsets: {out / HEAD_WEIGHTS} (held-out loss "
          f"{manifest['loss']['held_out']:.4f})")
    return 0


if __name__ == "__main__":
    exit_with(main, "no head was saved; the photos' features computed so far are kept "
                     "under --out, and a rerun into it reuses them")
