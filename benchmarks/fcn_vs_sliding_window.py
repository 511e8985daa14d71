"""One fully convolutional pass vs the classifier on every 224-px window of the same grid.

    python -m benchmarks.fcn_vs_sliding_window [--size 576x768] [--repeats 5]

The FCN in window mode (stride 1) gives one prediction per 224-px window placed every 32
px; the sliding window crops those windows and runs the original classifier on them in
batches. Same model (EfficientNet-Lite0, ImageNet weights), same windows.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import best_of, machine, table
from transforms.model.backbones import get_backbone, load_classifier
from transforms.model.fcn import ResponseMapper, fully_convolutional

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="576x768", help="image HxW")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="windows per classifier call")
    args = parser.parse_args()
    height, width = map(int, args.size.split("x"))
    image = np.asarray(Image.open(DATA / "dog.jpg").convert("RGB").resize((width, height)))

    backbone = get_backbone("efficientnet_lite0")
    classifier = load_classifier("efficientnet_lite0")
    fcn = ResponseMapper(backbone, fully_convolutional(classifier, backbone, "window", 1), "window", 1)
    rows, cols = fcn.map_size((height, width))
    window, step = backbone.input_size, backbone.stride
    crops = np.stack([image[i * step:i * step + window, j * step:j * step + window]
                      for i in range(rows) for j in range(cols)]).astype("f4")

    import tensorflow as tf

    classify = tf.function(lambda x: classifier(backbone.preprocess(x), training=False),
                           reduce_retracing=True)

    def sliding():
        return np.concatenate([classify(crops[i:i + args.batch_size]).numpy()
                               for i in range(0, len(crops), args.batch_size)])

    fcn_s = best_of(args.repeats, lambda: fcn.class_maps(image[None]))
    sliding_s = best_of(args.repeats, sliding)
    # Inside the image both see the same pixels; near the edges the FCN's windows see the
    # neighbouring features (not zero padding), so the values differ slightly there.
    agree = (fcn.class_maps(image[None])[0].reshape(-1, 1000).argmax(1) == sliding().argmax(1)).mean()
    print(f"machine: {machine()}")
    print(f"image {height}x{width}: {rows}x{cols} = {rows * cols} windows of {window} px every {step} px")
    print(table(["method", "seconds", "windows/s"], [
        ["FCN (one pass)", f"{fcn_s:.3f}", f"{rows * cols / fcn_s:.0f}"],
        ["sliding window (classifier per crop)", f"{sliding_s:.3f}", f"{rows * cols / sliding_s:.0f}"]]))
    print(f"speed-up FCN / sliding window: {sliding_s / fcn_s:.1f}x; same top class in "
          f"{agree:.0%} of windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
