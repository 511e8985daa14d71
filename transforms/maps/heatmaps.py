"""Synset heat from class maps, bilinear resampling between grids, and fusion across
scales.

Plain numpy/scipy: nothing here knows about TensorFlow or Beam.

Kinds of heat per map cell, from the classifier's class logits there:

- ``probability``: the synset's probability, its classes' softmax probabilities summed.
  Bounded by 1 and comparable across images, but flat wherever the classifier is sure:
  a confidently recognised object and its surroundings are one plateau of ≈1.
- ``logit``: the synset's logit, log Σ exp(logit) over its classes: the classifier's
  evidence for the synset in that cell, before the softmax weighs it against the other
  classes (class activation maps are logits too). It keeps its shape where the
  probability saturates, but peaks on the most telling part (a dog's face). Unbounded:
  after fusion each map is min-max normalised over its image, so 0 is the image's least
  and 1 its most synset-like cell.
- ``blend``: the mean of the two, the logit heat normalised first, normalised again:
  the logit's shape where the classifier hesitates, the probability's extent where it
  is sure. On PASCAL VOC photos its boxes beat either alone (benchmarks/README.md).

A response map's cells are points on a regular grid in pixel coordinates
(``transforms.model.grid``); resampling one map onto another grid (a common fusion
grid, or the image's pixels) is bilinear interpolation at the target points, clamped at
the borders.
"""
from __future__ import annotations

import functools
from typing import Literal, Sequence

import numpy as np
from scipy import interpolate

from transforms.model.grid import MapGrid

Fusion = Literal["mean", "geomean", "max"]
FUSIONS = ("mean", "geomean", "max")
Heat = Literal["blend", "logit", "probability"]
HEATS = ("blend", "logit", "probability")
# Chosen on PASCAL VOC photos (benchmarks/README.md, "Localization").
DEFAULT_FUSION: Fusion = "mean"
DEFAULT_HEAT: Heat = "blend"


def synset_logits(logits: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., classes) logits and a (classes, S) 0/1 class matrix → (..., S) each synset's
    logit, log Σ exp(logit) over its classes (log-sum-exp, computed relative to each
    cell's largest logit so nothing overflows)."""
    top = logits.max(axis=-1, keepdims=True).astype(np.float64)
    summed = np.exp(logits - top) @ matrix.astype(np.float64)
    return (top + np.log(np.maximum(summed, np.finfo(np.float64).tiny))).astype(np.float32)


def finished_heat(heat: Heat, maps: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The heat written out and thresholded, from (h, w, S) ``maps`` of that kind (synset
    logits for logit and blend heat, fused over scales or not) and the synset
    probabilities on the same cells."""
    if heat == "probability":
        return maps
    if heat == "logit":
        return min_max_normalized(maps)
    return min_max_normalized((min_max_normalized(maps) + probabilities) / 2)


def min_max_normalized(maps: np.ndarray) -> np.ndarray:
    """An (h, w) map, or each of (h, w, S) maps, rescaled to [0, 1] over its cells; a
    flat map is all 0 (no threshold separates anything in it)."""
    low = maps.min(axis=(0, 1), keepdims=True)
    span = maps.max(axis=(0, 1), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0).astype(np.float32)


def _linear_weights(positions: np.ndarray, n: int) -> np.ndarray:
    """(len(positions), n) matrix of 1-D linear interpolation at fractional indices into n
    samples, clamped to the first and last (each row has at most two non-zero weights)."""
    if n == 1:
        return np.ones((len(positions), 1))
    return interpolate.interp1d(np.arange(n), np.eye(n), axis=0, assume_sorted=True)(
        np.clip(positions, 0, n - 1))


@functools.lru_cache(maxsize=256)
def _axis_weights(source: MapGrid, target: MapGrid) -> tuple[np.ndarray, np.ndarray]:
    """The row and column interpolation matrices from ``source`` to ``target``, made once
    per pair of grids: an image's boxes resample every synset's maps between the same two
    grids, and photos of one size share them all (read-only, shared between threads)."""
    rows = (target.y0 + target.dy * np.arange(target.height) - source.y0) / source.dy
    cols = (target.x0 + target.dx * np.arange(target.width) - source.x0) / source.dx
    weights = _linear_weights(rows, source.height), _linear_weights(cols, source.width)
    for matrix in weights:
        matrix.flags.writeable = False
    return weights


def resample(values: np.ndarray, source: MapGrid, target: MapGrid) -> np.ndarray:
    """Bilinear resampling of (h, w) or (h, w, S) ``values`` laid out on ``source`` at the
    cell centres of ``target``; points outside the source take the nearest edge value.

    Target points form a grid, so bilinear interpolation separates into a matrix per axis:
    out = Wy @ values @ Wxᵀ, far cheaper than interpolating every target point on its own
    (it equals ndimage.map_coordinates(order=1, mode="nearest") at those points).
    """
    if values.shape[:2] != source.shape:
        raise ValueError(f"values of shape {values.shape[:2]} do not match grid {source.shape}")
    wy, wx = _axis_weights(source, target)
    # Two tensordots (BLAS products), not einsum(optimize=True), whose search for a
    # contraction order cost more than the products themselves on maps this small.
    rows = np.tensordot(wy, values.astype(np.float64), axes=1)  # (H, w, ...)
    return np.ascontiguousarray(np.moveaxis(np.tensordot(wx, rows, axes=(1, 1)), 0, 1),
                                np.float32)


def fuse(maps: Sequence[np.ndarray], method: Fusion = DEFAULT_FUSION) -> np.ndarray:
    """Elementwise fusion of same-shaped maps: arithmetic mean, geometric mean or max.

    The geometric mean is 0 wherever any map is 0 (a scale that sees nothing vetoes).
    """
    if method not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {method!r}")
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in maps])
    if method == "mean":
        fused = stack.mean(axis=0)
    elif method == "max":
        fused = stack.max(axis=0)
    else:
        if (stack < 0).any():
            raise ValueError("the geometric mean needs non-negative maps")
        with np.errstate(divide="ignore"):
            fused = np.exp(np.log(stack).mean(axis=0))
    return fused.astype(np.float32)
