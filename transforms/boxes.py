"""Boxes from a heatmap: upsample to the image, threshold, one box per connected component."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from transforms.heatmaps import MapGrid, resample

# Absolute heat. Background cells sit near 0.1 (a near-uniform softmax summed over a
# synset's classes); 0.4 keeps a dog's box off the bicycle beside it in dog.jpg while a
# frame-filling cat still gets one box (see tests/test_real_photos.py).
DEFAULT_THRESHOLD = 0.4

# 8-connectivity: diagonal neighbours belong to the same component.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Box:
    """A box in original image pixels: x0, y0 inclusive, x1, y1 exclusive.

    ``score`` is the peak heat inside the component, ``mean`` its mean heat and
    ``area`` its size in image pixels (the component, not the box).
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    mean: float
    area: float


def upsample(heatmap: np.ndarray, grid: MapGrid, image_size: tuple[int, int],
             pixels_per_cell: int | None = None) -> np.ndarray:
    """Bilinear upsampling of a (h, w) heatmap on ``grid`` (image coordinates) to the
    image's pixels or, with ``pixels_per_cell``, to a raster of at most that many pixels
    per map cell along each axis, laid over the whole image."""
    height, width = image_size
    if pixels_per_cell:
        height = min(height, pixels_per_cell * grid.height)
        width = min(width, pixels_per_cell * grid.width)
    return resample(heatmap, grid, MapGrid.uniform(height, width, image_size))


# Between two cell centres a bilinear map is linear, so a threshold crossing is placed to
# within 1/16 of a cell on a raster of 8 pixels per cell: a full-size raster of a 24-Mpixel
# photo (hundreds of pixels per cell) adds nothing but time.
PIXELS_PER_CELL = 8


def boxes_from_heatmap(heatmap: np.ndarray, grid: MapGrid, image_size: tuple[int, int],
                       threshold: float = DEFAULT_THRESHOLD, relative: bool = False,
                       min_area: float = 0.0,
                       pixels_per_cell: int | None = PIXELS_PER_CELL) -> list[Box]:
    """All connected components of the upsampled heatmap above the threshold, as boxes
    sorted by score (peak heat, then mean heat), best first.

    Args:
        heatmap: (h, w) map on ``grid``, in image coordinates.
        image_size: the original image's (H, W); boxes are in its pixels.
        threshold: absolute heat, or with ``relative`` a fraction of the map's maximum.
        min_area: components smaller than this fraction of the image are dropped.
        pixels_per_cell: resolution of the thresholded raster (see ``upsample``); None:
            the image's own pixels.
    """
    raster = upsample(heatmap, grid, image_size, pixels_per_cell)
    cutoff = threshold * float(raster.max()) if relative else threshold
    return raster_boxes(raster, cutoff, image_size, min_area)


def raster_boxes(raster: np.ndarray, cutoff: float, image_size: tuple[int, int],
                 min_area: float = 0.0) -> list[Box]:
    """Boxes of the connected components of ``raster >= cutoff``, where ``raster`` is a
    heatmap laid uniformly over an image of ``image_size``; best first. Threshold sweeps
    upsample once and call this per threshold."""
    labels, _ = ndimage.label(raster >= cutoff, structure=_EIGHT_CONNECTED)
    sy, sx = image_size[0] / raster.shape[0], image_size[1] / raster.shape[1]
    min_pixels = min_area * raster.size
    boxes = []
    # Measured inside each component's bounding slice: ndimage.maximum & co. would scan
    # the whole raster once per statistic.
    for label, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        values = raster[rows, cols][labels[rows, cols] == label]
        if values.size >= min_pixels:
            boxes.append(Box(x0=cols.start * sx, y0=rows.start * sy, x1=cols.stop * sx,
                             y1=rows.stop * sy, score=float(values.max()),
                             mean=float(values.mean()), area=float(values.size * sy * sx)))
    return sorted(boxes, key=lambda b: (b.score, b.mean), reverse=True)
