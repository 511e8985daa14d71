"""How the labels table stores a heatmap: an 8-bit grayscale PNG, one pixel per map cell.

A map of values in [0, ``top``] is written as the codes round(255 · value / ``top``):
its value at a cell is ``top`` · code / 255, within ``top`` / 510 of the map computed.
Readers need no part of this project, only a PNG decoder (Pillow, OpenCV, imageio):

    heat = np.asarray(PIL.Image.open(io.BytesIO(entry["heat_png"]))) / 255 * entry["heat_max"]

Measured on voc07-dev (benchmarks/README.md, "Cost per image"): read back from 8 bits,
the heatmaps localize as before (MaxBoxAccV2 55.64 with ``--synsets voc``, unchanged;
in top-k mode 60.07 → 59.72, 2 of 576 pair-and-IoU decisions, as 7, 9, 10 bits or a
shifted rounding move it, 59.7-60.2), and PNG's prediction from neighbouring cells stores
them in about two thirds of the bytes of the same codes as a list. The
encoder codes the prediction residuals by Huffman only: the maps are too small for
zlib's string matching to pay (6 % fewer bytes than zlib's default strategy there).

Tables written before heatmaps were PNGs (no ``heatmap_encoding`` in their Parquet
metadata) hold float32 lists (``values``, ``probabilities``); ``ENCODINGS`` names both.
"""
from __future__ import annotations

import cv2
import numpy as np

PNG8 = "png8"
FLOAT32 = "float32"  # the lists of runs made before PNG8: read, no longer written
ENCODINGS = (PNG8, FLOAT32)
# The labels table's Parquet (schema) metadata key that names its heatmaps' encoding.
METADATA_KEY = b"heatmap_encoding"
LEVELS = 255
_PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 9,
                cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]


class HeatmapEncodingError(ValueError):
    """A stored heatmap that cannot be read back: an unknown encoding, or bytes that are
    not the PNG of a map of its size."""


def encode(values: np.ndarray, top: float) -> bytes:
    """An (h, w) map of values in [0, ``top``] → the PNG of its 8-bit codes (all 0 where
    ``top`` is 0: a map without heat)."""
    ok, png = cv2.imencode(".png", _codes(values, top), _PNG_OPTIONS)
    if not ok:  # OpenCV reports no reason; an (h, w) uint8 array always encodes
        raise HeatmapEncodingError(f"OpenCV could not encode a {values.shape} map as PNG")
    return png.tobytes()


def as_stored(values: np.ndarray, tops: np.ndarray | float) -> np.ndarray:
    """Maps as a reader gets them back: ``values`` (..., channels) in [0, ``tops``] (one
    top per channel, or one for all) rounded to their 8-bit codes, float32. The job
    makes its boxes from these, so that a run's stored heatmaps give its boxes again."""
    tops = np.broadcast_to(np.asarray(tops, np.float32), values.shape[-1:])
    return np.stack([_values(_codes(values[..., c], float(top)), float(top))
                     for c, top in enumerate(tops)], axis=-1)


def _codes(values: np.ndarray, top: float) -> np.ndarray:
    if top <= 0:
        return np.zeros(values.shape, np.uint8)
    return np.clip(np.rint(values * (LEVELS / top)), 0, LEVELS).astype(np.uint8)


def _values(codes: np.ndarray, top: float) -> np.ndarray:
    return codes.astype(np.float32) * np.float32(top / LEVELS)


def decode(png: bytes, shape: tuple[int, int], top: float) -> np.ndarray:
    """The (h, w) float32 map of an ``encode``d PNG, which must be ``shape``."""
    codes = None
    if png:
        codes = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if codes is None or codes.dtype != np.uint8 or codes.ndim != 2:
        raise HeatmapEncodingError(f"not an 8-bit grayscale PNG ({len(png or b'')} bytes)")
    if codes.shape != tuple(shape):
        raise HeatmapEncodingError(f"a {codes.shape[0]}×{codes.shape[1]} PNG for a "
                                   f"{shape[0]}×{shape[1]} map")
    return _values(codes, top)
