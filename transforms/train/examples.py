"""Training examples for the head: an image's backbone features at one of the run's scales
and, per synset, pseudo-mask targets from its fused heatmaps at the head's resolution."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import keras
import numpy as np

from transforms.maps.heatmaps import resample
from transforms.model.grid import MapGrid
from transforms.maps.pseudo_masks import DEFAULT_BACKGROUND, DEFAULT_FOREGROUND, pseudo_mask
from transforms.model.fcn import ResponseMapper
from transforms.model.head import finer_grid


@dataclass(frozen=True)
class HeadExample:
    """``features`` (h, w, C), float16 or float32 (the fit computes in float32);
    ``targets`` (h·f, w·f, S) float32: 1 foreground, 0 background, -1 left out of the loss."""

    features: np.ndarray
    targets: np.ndarray


class FeatureExtractor:
    """The frozen backbone of a cell-mode ``ResponseMapper``: (H, W, 3) RGB → (h, w, C)
    features, the cells its class logits are computed from."""

    def __init__(self, mapper: ResponseMapper):
        if mapper.map_mode != "cell":
            raise ValueError("a head is trained on cell-mode features")
        model = mapper.model
        self._backbone = mapper.backbone
        self._model = keras.Model(model.input, model.get_layer("classifier_conv").input)
        self.channels = int(self._model.output.shape[-1])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = np.asarray(self._backbone.preprocess(pixels[None].astype(np.float32)), np.float32)
        return keras.ops.convert_to_numpy(self._model(x, training=False))[0]


def row_targets(row: dict, synsets: Sequence[str], factor: int, cells: MapGrid,
                foreground: float = DEFAULT_FOREGROUND,
                background: float = DEFAULT_BACKGROUND) -> np.ndarray:
    """(h·f, w·f, S) targets of a labels row (its heatmaps as arrays:
    ``records.decoded_row``) for ``synsets`` (wnids, the head's order),
    for features on ``cells`` (their grid in the original image's pixels, at any of the
    run's scales): each synset's fused heat (uniform over the image) resampled bilinearly
    to the head's finer cells, then pseudo-masked; a synset without a heatmap in the row
    (top-k mode: not among the image's best; ``--heatmaps boxed``: without a box) is
    background throughout."""
    heatmaps = {h["synset"]: h for h in row["heatmaps"]}
    with_boxes = {b["synset"] for b in row["boxes"] or ()}
    finer = finer_grid(cells, factor)
    targets = np.zeros((*finer.shape, len(synsets)), np.float32)
    for s, wnid in enumerate(synsets):
        entry = heatmaps.get(wnid)
        if entry is None:
            continue
        heat_grid = MapGrid.uniform(*entry["heat"].shape, (row["height"], row["width"]))
        heat = resample(entry["heat"], heat_grid, finer)
        targets[..., s] = pseudo_mask(heat, wnid in with_boxes, foreground, background)
    return targets
