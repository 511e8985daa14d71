"""A fully convolutional head trained on the job's own weak labels (FCN-style): a 1×1
convolution from the frozen backbone's features to one logit per synset, then a
transposed convolution initialised as bilinear upsampling (Long, Shelhamer and Darrell's
"deconvolution" layers), so that training starts from exactly the maps the classifier's
cells would give when upsampled, and may sharpen them.

Bilinear here is what ``tf.image.resize(..., "bilinear")`` computes (half-pixel centres,
edges held): the logits are padded by one cell with their edge values, upsampled by the
transposed convolution (kernel 2f, stride f) and cropped by 1.5 f on each side, which
puts every output pixel p at input coordinate (p + 0.5) / f - 0.5.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from transforms.model.grid import MapGrid

DEFAULT_FACTOR = 4  # stride 32 → 8: a map cell per 8×8 pixels of the network input
# A trained head's folder (python -m pipeline.train --out): its weights and what they are.
HEAD_WEIGHTS = "head.weights.h5"
MANIFEST = "manifest.json"
# What the job needs of a manifest to check and load the head.
MANIFEST_KEYS = ("model", "weights", "weights_checksum", "synsets", "factor", "features")


def bilinear_kernel(factor: int, channels: int) -> np.ndarray:
    """(2f, 2f, channels, channels) transposed-convolution kernel upsampling each channel
    bilinearly by ``factor`` (even), channels kept apart."""
    if factor < 2 or factor % 2:
        raise ValueError(f"the upsampling factor must be even and at least 2, got {factor}")
    centre = factor - 0.5
    taps = 1 - np.abs(np.arange(2 * factor) - centre) / factor
    kernel = np.zeros((2 * factor, 2 * factor, channels, channels), np.float32)
    for c in range(channels):
        kernel[:, :, c, c] = np.outer(taps, taps)
    return kernel


class EdgePad2D(layers.Layer):
    """Pads height and width by one cell on each side with the edge values (a symmetric
    pad of one repeats the edge; TensorFlow has no "edge" mode)."""

    def call(self, x):
        return keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return n, None if h is None else h + 2, None if w is None else w + 2, c


def build_upsampler(synsets: int, factor: int = DEFAULT_FACTOR,
                    name: str = "upsampler") -> keras.Model:
    """(N, h, w, synsets) cell logits → (N, h·f, w·f, synsets), starting as bilinear."""
    logits = keras.Input((None, None, synsets), name="cell_logits")
    padded = EdgePad2D(name="edge_pad")(logits)
    upsampled = layers.Conv2DTranspose(
        synsets, 2 * factor, strides=factor, padding="valid", use_bias=False,
        kernel_initializer=keras.initializers.Constant(bilinear_kernel(factor, synsets)),
        name="upsample")(padded)
    crop = 3 * factor // 2
    outputs = layers.Cropping2D(((crop, crop), (crop, crop)), name="crop")(upsampled)
    return keras.Model(logits, outputs, name=name)


def build_head(features: int, synsets: int, factor: int = DEFAULT_FACTOR,
               name: str = "synset_head") -> keras.Model:
    """(N, h, w, features) backbone features → (N, h·f, w·f, synsets) synset logits: a
    1×1 convolution per cell (``synset_logits``), then the ``upsampler``."""
    inputs = keras.Input((None, None, features), name="features")
    logits = layers.Conv2D(synsets, 1, name="synset_logits")(inputs)
    return keras.Model(inputs, build_upsampler(synsets, factor)(logits), name=name)


def finer_grid(cells: MapGrid, factor: int) -> MapGrid:
    """Where the head's outputs sit for a map of ``cells``: each cell split into
    factor × factor (the upsampler's pixel p at cell coordinate (p + 0.5) / f - 0.5)."""
    dy, dx = cells.dy / factor, cells.dx / factor
    return MapGrid(cells.height * factor, cells.width * factor, cells.y0 - cells.dy / 2 + dy / 2,
                   dy, cells.x0 - cells.dx / 2 + dx / 2, dx)


class HeadMismatchError(ValueError):
    """A trained head does not fit the job's model, weights or synsets."""


@dataclass(frozen=True)
class TrainedHead:
    """A head saved by ``python -m pipeline.train``: its Keras model and its manifest
    (backbone, weights checksum, synsets, factor, data, losses)."""

    manifest: dict
    model: keras.Model

    @classmethod
    def load(cls, directory: str | Path) -> "TrainedHead":
        """The head in a local folder (HEAD_WEIGHTS and MANIFEST)."""
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST).read_text())
        model = build_head(manifest["features"], len(manifest["synsets"]), manifest["factor"])
        model.load_weights(directory / HEAD_WEIGHTS)
        return cls(manifest, model)

    @property
    def wnids(self) -> list[str]:
        return [s["wnid"] for s in self.manifest["synsets"]]

    @property
    def factor(self) -> int:
        return int(self.manifest["factor"])

    @property
    def cell_layer(self) -> layers.Conv2D:
        """The 1×1 convolution from features to cell logits."""
        return self.model.get_layer("synset_logits")

    def upsample(self, cell_logits: np.ndarray) -> np.ndarray:
        """(h, w, S) cell logits of one image → (h·f, w·f, S) logits."""
        upsampler = self.model.get_layer("upsampler")
        return keras.ops.convert_to_numpy(upsampler(cell_logits[None].astype(np.float32)))[0]


def check_head_fits(manifest: dict, model: str, weights_checksum: str, map_mode: str,
                    wnids: list[str] | None) -> None:
    """Raise HeadMismatchError, saying what to change, unless a head of ``manifest``
    can give the maps of a job with this model, weights, map mode and synsets."""
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise HeadMismatchError(f"its {MANIFEST} lacks {', '.join(missing)}: train the head "
                                "again with python -m pipeline.train")
    if manifest["model"] != model or manifest["weights_checksum"] != weights_checksum:
        raise HeadMismatchError(
            f"it was trained on {manifest['model']} with weights {manifest['weights']} "
            f"({manifest['weights_checksum']}): run with --model {manifest['model']} --weights "
            f"{manifest['weights']}, or train a head on runs of this model and weights")
    if map_mode != "cell":
        raise HeadMismatchError("it works on cell-mode features: drop --map-mode window")
    head_wnids = [s["wnid"] for s in manifest["synsets"]]
    if wnids is None:
        raise HeadMismatchError("it gives maps of the synsets it was trained on: run with "
                                f"--synsets {','.join(head_wnids)} (or some of them)")
    unknown = [w for w in wnids if w not in head_wnids]
    if unknown:
        raise HeadMismatchError(f"it was not trained on {', '.join(unknown)}: give --synsets "
                                f"among {','.join(head_wnids)}, or train a head on those")
