"""Boxes from a heatmap: upsample to the image, threshold, one box per connected component."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from transforms.maps.heatmaps import resample
from transforms.model.grid import MapGrid
from transforms.maps.refine import grabcut_extent, resize_photo

# On the default heat (blend, 0-1 per image) with boxes refined by GrabCut: the best single
# threshold on 553 PASCAL VOC object pairs (benchmarks/README.md, "Localization"). Without
# refinement 0.25 is (the heat's own components are then the boxes, and must be tighter).
DEFAULT_THRESHOLD = 0.2
# Box scores are the synset's peak probability in the box's component. Every normalised
# map reaches 1 somewhere, so every synset would get a box in every image: 0.05
# drops three quarters of the boxes of synsets absent from a VOC photo and keeps 95 % of
# the present ones (benchmarks/README.md).
DEFAULT_MIN_SCORE = 0.05

# 8-connectivity: diagonal neighbours belong to the same component.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Box:
    """A box in original image pixels: x0, y0 inclusive, x1, y1 exclusive.

    ``score`` is the peak inside the component of the heat or of the score map given
    (the synset's probability), ``mean`` its mean heat and ``area`` its size in image
    pixels (the component, not the box). ``confidence``: the probability that the box is
    right, where a confidence model gave one (``transforms.maps.hypotheses``); else None.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    mean: float
    area: float
    confidence: float | None = None

    @property
    def rank(self) -> float:
        """What boxes are ranked by: the confidence where there is one, else the score."""
        return self.score if self.confidence is None else self.confidence


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 4) × (m, 4) boxes as x0, y0, x1, y1 → (n, m) intersection over union."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def raster_shape(grid: MapGrid, image_size: tuple[int, int],
                 pixels_per_cell: int | None = None) -> tuple[int, int]:
    """The (h, w) raster ``upsample`` lays a map on ``grid`` to."""
    height, width = image_size
    if pixels_per_cell:
        height = min(height, pixels_per_cell * grid.height)
        width = min(width, pixels_per_cell * grid.width)
        shrink = min(1.0, MAX_RASTER_SIDE / max(height, width))
        height, width = max(1, round(height * shrink)), max(1, round(width * shrink))
    return height, width


def upsample(heatmap: np.ndarray, grid: MapGrid, image_size: tuple[int, int],
             pixels_per_cell: int | None = None) -> np.ndarray:
    """Bilinear upsampling of a (h, w) heatmap on ``grid`` (image coordinates) to the
    image's pixels or, with ``pixels_per_cell``, to a raster of at most that many pixels
    per map cell along each axis, laid over the whole image."""
    return resample(heatmap, grid, MapGrid.uniform(*raster_shape(grid, image_size, pixels_per_cell),
                                                   image_size))


# Between two cell centres a bilinear map is linear, so a threshold crossing is placed to
# within 1/16 of a cell on a raster of 8 pixels per cell: a full-size raster of a 24-Mpixel
# photo (hundreds of pixels per cell) adds nothing but time.
PIXELS_PER_CELL = 8
# And to within 1/256 of the image's longer side: the classifier's maps (at most 32 cells
# along a side at the default scales) never reach this; a trained head's, 4 times finer,
# would otherwise be thresholded at the photo's own size, 19 synsets at 8 ms each.
MAX_RASTER_SIDE = 256


def boxes_from_heatmap(heatmap: np.ndarray, grid: MapGrid, image_size: tuple[int, int],
                       threshold: float = DEFAULT_THRESHOLD, relative: bool = False,
                       min_area: float = 0.0, pixels_per_cell: int | None = PIXELS_PER_CELL,
                       scores: np.ndarray | None = None, min_score: float = 0.0,
                       photo: np.ndarray | None = None) -> list[Box]:
    """All connected components of the upsampled heatmap above the threshold, as boxes
    sorted by score, then mean heat, best first; with ``photo``, each box refined by
    GrabCut on it (``transforms.maps.refine``).

    Args:
        heatmap: (h, w) map on ``grid``, in image coordinates.
        image_size: the original image's (H, W); boxes are in its pixels.
        threshold: absolute heat, or with ``relative`` a fraction of the map's maximum.
        min_area: components smaller than this fraction of the image are dropped.
        pixels_per_cell: resolution of the thresholded raster (see ``upsample``); None:
            the image's own pixels.
        scores: an (h, w) map on ``grid`` whose peak in a component is its box's score
            (the synset's probability, when the heat is not one); None: the heat's.
        min_score: boxes scoring less are dropped.
        photo: the (H', W', 3) uint8 RGB image, any size (resized to the raster's; pass
            it at ``raster_shape`` to resize it once for several heatmaps); None: boxes
            as the heat's components give them.
    """
    raster = upsample(heatmap, grid, image_size, pixels_per_cell)
    cutoff = threshold * float(raster.max()) if relative else threshold
    score_raster = None if scores is None else upsample(scores, grid, image_size, pixels_per_cell)
    photo = None if photo is None else resize_photo(photo, raster.shape)
    return raster_boxes(raster, cutoff, image_size, min_area, score_raster, min_score, photo)


@dataclass(frozen=True)
class Component:
    """A connected component of a thresholded raster: its bounding ``rows`` and ``cols``
    (raster slices), ``inside`` (its own pixels in that box), its score (the peak of the
    score raster in it), mean and summed heat, and size in raster pixels."""

    rows: slice
    cols: slice
    inside: np.ndarray
    score: float
    mean: float
    heat: float
    pixels: int


def components(raster: np.ndarray, cutoff: float, score_raster: np.ndarray | None = None,
               min_pixels: float = 0, min_score: float = 0.0) -> list[Component]:
    """The connected components of ``raster >= cutoff`` with at least ``min_pixels``
    pixels and a score (the peak of ``score_raster``, None: of ``raster``) of at least
    ``min_score``, best score first (then mean heat)."""
    mask = raster >= cutoff
    # Labelled within the box of what is over the cutoff: at the higher of a synset's
    # many levels that is a small part of the raster.
    filled_rows, filled_cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not filled_rows.size:
        return []
    top, left = int(filled_rows[0]), int(filled_cols[0])
    labels, _ = ndimage.label(mask[top:filled_rows[-1] + 1, left:filled_cols[-1] + 1],
                              structure=_EIGHT_CONNECTED)
    score_raster = raster if score_raster is None else score_raster
    found = []
    # Measured inside each component's bounding slice: ndimage.maximum & co. would scan
    # the whole raster once per statistic.
    for label, (label_rows, label_cols) in enumerate(ndimage.find_objects(labels), start=1):
        inside = labels[label_rows, label_cols] == label
        rows = slice(label_rows.start + top, label_rows.stop + top)
        cols = slice(label_cols.start + left, label_cols.stop + left)
        values = raster[rows, cols][inside]
        score = float(score_raster[rows, cols][inside].max())
        if values.size >= min_pixels and score >= min_score:
            found.append(Component(rows, cols, inside, score, float(values.mean()),
                                   float(values.sum()), values.size))
    found.sort(key=lambda c: (c.score, c.mean), reverse=True)
    return found


def raster_box(rows: slice, cols: slice, raster_shape: tuple[int, int],
               image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Raster slices → (x0, y0, x1, y1) in the image's pixels."""
    sy, sx = image_size[0] / raster_shape[0], image_size[1] / raster_shape[1]
    return cols.start * sx, rows.start * sy, cols.stop * sx, rows.stop * sy


def raster_boxes(raster: np.ndarray, cutoff: float, image_size: tuple[int, int],
                 min_area: float = 0.0, score_raster: np.ndarray | None = None,
                 min_score: float = 0.0, photo: np.ndarray | None = None,
                 limit: int | None = None) -> list[Box]:
    """Boxes of the connected components of ``raster >= cutoff``, where ``raster`` is a
    heatmap laid uniformly over an image of ``image_size``, scored by the peak of
    ``score_raster`` (None: of ``raster``) in each; best first, at most ``limit`` (None:
    all); those under ``min_area`` or ``min_score`` dropped. With ``photo`` (the image at
    the raster's shape), each returned box is refined by GrabCut
    (``refine.grabcut_extent``); score, mean and area stay the component's, so the order
    is the components' and only the boxes returned are refined. Threshold sweeps upsample
    once and call this per threshold."""
    sy, sx = image_size[0] / raster.shape[0], image_size[1] / raster.shape[1]
    boxes = []
    for c in components(raster, cutoff, score_raster, min_area * raster.size, min_score)[:limit]:
        rows, cols = c.rows, c.cols
        if photo is not None:
            rows, cols = grabcut_extent(photo, raster, rows, cols, c.inside, cutoff)
        boxes.append(Box(*raster_box(rows, cols, raster.shape, image_size), score=c.score,
                         mean=c.mean, area=float(c.pixels * sy * sx)))
    return boxes
