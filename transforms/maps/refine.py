"""A box's extent refined by the photo's colours: GrabCut seeded by the heat.

The classifier's heat says where an object is, not how far it extends: a small object's
heat spreads beyond it, and objects of one class side by side melt into one component
(benchmarks/README.md, "Where the defaults' top boxes go wrong"). GrabCut (Rother et
al. 2004, OpenCV's implementation) separates an object from its surroundings by colour
models of the two, learnt from seeds, and a graph cut that prefers boundaries along the
photo's edges. Here the seeds come from one component of the thresholded heat:

- around the component's box, a ring of the photo (``RING`` of the box's size): sure
  background, where the background's colours are learnt;
- in the box, heat under ``SURE_BACKGROUND``: sure background; over the box threshold:
  probable foreground; at least ``SURE_FOREGROUND`` of the component's peak: sure
  foreground; the rest probable background.

The refined box bounds the foreground region holding most of the heat. It can only
shrink: the heat already marks everything the classifier saw. Measured on 553 PASCAL VOC
pairs (benchmarks/README.md): the job's top boxes right for 55.5 % of them, against 51.7
without refinement, at about half the speed.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

# How the job refines boxes (--refine-boxes): GrabCut, or not at all.
REFINEMENTS = ("grabcut", "none")
DEFAULT_REFINEMENT = "grabcut"
# Seeds, as measured on voc07-dev (benchmarks/README.md): with sure foreground anywhere
# within 0.6–0.8 of the peak the top boxes' CorLoc moved by under a point.
SURE_FOREGROUND = 0.7
SURE_BACKGROUND = 0.05
RING = 0.25
# One round of colour models and graph cut: two or four rounds gave the same CorLoc and
# each costs as much as the first.
ITERATIONS = 1
# GrabCut's cost grows with the pixels (about 3 µs each per round here); a box's crop is
# shrunk to this longer side first. At 128 the CorLoc equals GrabCut at full raster size
# (8 pixels per map cell); at 96 it lost 2.7 points, at 64 4.2: its edge term weighs more
# against its colour term on fewer pixels.
MAX_SIDE = 128
RANDOM_SEED = 0


def resize_photo(photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (h, w, 3) at ``shape``, area-averaged: the raster a heatmap
    is thresholded on."""
    if photo.shape[:2] == tuple(shape):
        return photo
    return cv2.resize(photo, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def seed_mask(raster: np.ndarray, rows: slice, cols: slice, component: np.ndarray,
              cutoff: float) -> tuple[np.ndarray, tuple[slice, slice]]:
    """GrabCut's seed mask over the box (``rows``, ``cols`` of ``raster``) and its ring,
    and the crop of the raster it covers. ``component`` is the box-shaped boolean mask
    of the component's own pixels."""
    height, width = raster.shape
    pad_y = int(np.ceil(RING * (rows.stop - rows.start)))
    pad_x = int(np.ceil(RING * (cols.stop - cols.start)))
    crop = (slice(max(0, rows.start - pad_y), min(height, rows.stop + pad_y)),
            slice(max(0, cols.start - pad_x), min(width, cols.stop + pad_x)))
    mask = np.full((crop[0].stop - crop[0].start, crop[1].stop - crop[1].start), cv2.GC_BGD,
                   np.uint8)
    heat = raster[rows, cols]
    box = np.full(heat.shape, cv2.GC_PR_BGD, np.uint8)
    box[heat >= cutoff] = cv2.GC_PR_FGD
    box[component & (heat >= SURE_FOREGROUND * heat[component].max())] = cv2.GC_FGD
    box[heat < SURE_BACKGROUND] = cv2.GC_BGD
    mask[rows.start - crop[0].start:rows.stop - crop[0].start,
         cols.start - crop[1].start:cols.stop - crop[1].start] = box
    return mask, crop


def grabcut_extent(photo: np.ndarray, raster: np.ndarray, rows: slice, cols: slice,
                   component: np.ndarray, cutoff: float) -> tuple[slice, slice]:
    """The box (``rows``, ``cols`` of ``raster``) of one heat component, refined by
    GrabCut on ``photo`` (the (h, w, 3) uint8 RGB photo at the raster's shape); the box
    unchanged where GrabCut has nothing to separate (no background seed, or no
    foreground left)."""
    mask, crop = seed_mask(raster, rows, cols, component, cutoff)
    # RGB as it is: GrabCut's colour models and edge weights do not depend on the
    # channels' order.
    pixels = np.ascontiguousarray(photo[crop])
    shrink = min(1.0, MAX_SIDE / max(mask.shape))
    small_mask = mask
    if shrink < 1.0:
        size = (max(1, round(mask.shape[1] * shrink)), max(1, round(mask.shape[0] * shrink)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    foreground = _foreground(small_mask)
    if foreground.all() or not foreground.any():
        return rows, cols
    # GrabCut starts its colour models by k-means++ from the thread's random generator:
    # seeded here, so that a box does not depend on what the thread refined before it
    # (a rerun, or another worker, gives the same boxes).
    cv2.setRNGSeed(RANDOM_SEED)
    cv2.grabCut(pixels, small_mask, None, np.zeros((1, 65)), np.zeros((1, 65)), ITERATIONS,
                cv2.GC_INIT_WITH_MASK)
    if shrink < 1.0:
        small_mask = cv2.resize(small_mask, (mask.shape[1], mask.shape[0]),
                                interpolation=cv2.INTER_NEAREST)
    regions, count = ndimage.label(_foreground(small_mask), structure=np.ones((3, 3)))
    if count == 0:
        return rows, cols
    heat = np.bincount(regions.ravel(), weights=raster[crop].ravel(), minlength=count + 1)[1:]
    found_rows, found_cols = ndimage.find_objects(regions)[int(np.argmax(heat))]
    # Within the box: a mask enlarged back from a shrunk crop can reach a pixel past it.
    return (_within(found_rows, crop[0].start, rows), _within(found_cols, crop[1].start, cols))


def _foreground(mask: np.ndarray) -> np.ndarray:
    """Where a GrabCut mask says (probable) foreground: GC_FGD (1) and GC_PR_FGD (3) are
    its odd values, the background's (0, 2) its even ones."""
    return (mask & 1).astype(bool)


def _within(found: slice, offset: int, box: slice) -> slice:
    """``found`` (in the crop, which starts at ``offset``) moved to the raster and
    clipped to ``box``."""
    return slice(max(found.start + offset, box.start), min(found.stop + offset, box.stop))
