"""Label a few photos with the core library and print their boxes.

A stand-in for the Beam job (``python -m pipeline``, next issue) so that run_local.sh
does something real today:

    python tools/label_photos.py tests/data/dog.jpg --synsets dog,bicycle
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image, ImageOps

from transforms.boxes import DEFAULT_THRESHOLD
from transforms.fcn import ResponseMapper
from transforms.heatmaps import FUSIONS
from transforms.multiscale import synset_heatmaps
from transforms.scales import DEFAULT_SCALES, parse_scales
from transforms.synsets import SynsetError, parse_synset_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--synsets", default="dog,n02121620,bird",
                        help="comma-separated wnids, names or classes:I+J (default: %(default)s)")
    parser.add_argument("--scales", default=",".join(map(str, DEFAULT_SCALES)),
                        help="HxW or shorter side, comma-separated (default: %(default)s)")
    parser.add_argument("--fusion", choices=FUSIONS, default="mean")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--model", default="efficientnet_lite0")
    args = parser.parse_args(argv)
    try:
        synsets = [parse_synset_spec(s) for s in args.synsets.split(",")]
        scales = parse_scales(args.scales)
    except (SynsetError, ValueError) as e:
        parser.error(str(e))

    mapper = ResponseMapper.load(args.model)
    for path in args.photos:
        image = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        heatmaps = synset_heatmaps(mapper, image, synsets, scales, args.fusion)
        print(f"{path} ({image.shape[1]}x{image.shape[0]})")
        for synset, boxes in zip(synsets, heatmaps.boxes(threshold=args.threshold).values()):
            for box in boxes:
                print(f"  {synset.label:<12} {synset.wnid}  score {box.score:.2f}  "
                      f"box x {box.x0:.0f}-{box.x1:.0f} y {box.y0:.0f}-{box.y1:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
