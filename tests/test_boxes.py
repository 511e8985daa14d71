"""Boxes from heatmaps: components, thresholds, coordinates, sorting."""
import numpy as np
import pytest

from transforms.maps.boxes import boxes_from_heatmap, upsample
from transforms.model.grid import MapGrid


def _pixel_grid(shape):
    return MapGrid.uniform(shape[0], shape[1], shape)


def test_one_box_per_component_sorted_by_score_exclusive_ends():
    heat = np.zeros((60, 80), np.float32)
    heat[10:20, 5:15] = 0.6            # rows 10..19, cols 5..14
    heat[30:50, 40:70] = 0.9
    heat[40, 55] = 1.0                 # peak inside the big blob
    heat[5:7, 70:72] = 0.3             # small, weak
    boxes = boxes_from_heatmap(heat, _pixel_grid(heat.shape), heat.shape, threshold=0.25)
    assert [(b.x0, b.y0, b.x1, b.y1) for b in boxes] == [(40, 30, 70, 50), (5, 10, 15, 20), (70, 5, 72, 7)]
    assert [b.score for b in boxes] == pytest.approx([1.0, 0.6, 0.3])
    assert boxes[0].area == 600 and boxes[0].mean == pytest.approx((599 * 0.9 + 1.0) / 600)


def test_min_area_and_relative_threshold():
    heat = np.zeros((60, 80), np.float32)
    heat[10:20, 5:15] = 0.6
    heat[30:50, 40:70] = 0.9
    shape, grid = heat.shape, _pixel_grid(heat.shape)
    assert len(boxes_from_heatmap(heat, grid, shape, threshold=0.25, min_area=0.05)) == 1
    # Relative: 0.7 of the max (0.9) = 0.63 drops the 0.6 blob.
    relative = boxes_from_heatmap(heat, grid, shape, threshold=0.7, relative=True)
    assert [(b.x0, b.y0) for b in relative] == [(40, 30)]
    assert boxes_from_heatmap(heat, grid, shape, threshold=0.95) == []


def test_diagonal_neighbours_join_one_component():
    heat = np.zeros((10, 10), np.float32)
    heat[2, 2] = heat[3, 3] = 1.0
    assert len(boxes_from_heatmap(heat, _pixel_grid(heat.shape), heat.shape, threshold=0.5)) == 1


def test_coarse_map_boxes_land_in_original_pixels():
    # One hot cell of a 4x4 map over a 400x300 (H x W) image: its box is around that
    # cell's quarter of the image, in image pixels.
    heat = np.zeros((4, 4), np.float32)
    heat[1, 2] = 1.0
    grid = MapGrid.uniform(4, 4, (400, 300))
    (box,) = boxes_from_heatmap(heat, grid, (400, 300), threshold=0.5)
    # Bilinear falls to 0.5 half way to the neighbouring centres: cell ± half a cell.
    assert (box.x0, box.y0, box.x1, box.y1) == pytest.approx((150, 100, 225, 200), abs=1)


def test_large_images_are_thresholded_on_a_raster_of_a_few_pixels_per_cell():
    heat = np.zeros((4, 4), np.float32)
    heat[1, 2] = 1.0
    grid = MapGrid.uniform(4, 4, (4000, 3000))
    assert upsample(heat, grid, (4000, 3000), pixels_per_cell=8).shape == (32, 32)
    assert upsample(heat, grid, (20, 3000), pixels_per_cell=8).shape == (20, 32)
    (box,) = boxes_from_heatmap(heat, grid, (4000, 3000), threshold=0.5, pixels_per_cell=8)
    # Within 1/8 of a cell (500 x 375 px) of the full-resolution answer.
    assert (box.x0, box.y0, box.x1, box.y1) == pytest.approx((1500, 1000, 2250, 2000), abs=47)
    (full,) = boxes_from_heatmap(heat, grid, (4000, 3000), threshold=0.5, pixels_per_cell=None)
    assert (full.x0, full.y0, full.x1, full.y1) == pytest.approx((1500, 1000, 2250, 2000), abs=1)


def test_fine_maps_are_thresholded_on_at_most_256_pixels_along_the_longer_side():
    """A trained head's map, 96 × 128 cells on a 1000 × 1500 photo: 8 px per cell would be
    768 × 1024 px; the raster shrinks to 256 px along its longer side, the box stays within
    1/256 of the photo's side of the full-resolution one."""
    heat = np.zeros((96, 128), np.float32)
    heat[20:60, 30:90] = 1.0
    grid = MapGrid.uniform(96, 128, (1000, 1500))
    assert upsample(heat, grid, (1000, 1500), pixels_per_cell=8).shape == (192, 256)
    (box,) = boxes_from_heatmap(heat, grid, (1000, 1500), threshold=0.5)
    (full,) = boxes_from_heatmap(heat, grid, (1000, 1500), threshold=0.5, pixels_per_cell=None)
    assert (box.x0, box.y0, box.x1, box.y1) == pytest.approx((full.x0, full.y0, full.x1, full.y1),
                                                             abs=1500 / 256)


def test_boxes_can_be_scored_by_another_map_and_low_scores_dropped():
    heat = np.zeros((40, 60), np.float32)
    heat[5:15, 5:15] = 1.0     # the hotter blob...
    heat[20:35, 30:55] = 0.8
    scores = np.zeros_like(heat)
    scores[5:15, 5:15] = 0.2   # ...is the less probable one
    scores[20:35, 30:55] = 0.7
    grid = _pixel_grid(heat.shape)
    boxes = boxes_from_heatmap(heat, grid, heat.shape, threshold=0.5, scores=scores)
    assert [(b.x0, b.y0, b.score) for b in boxes] == [(30, 20, pytest.approx(0.7)),
                                                      (5, 5, pytest.approx(0.2))]
    assert boxes[1].mean == pytest.approx(1.0)  # the mean is still the heat's
    kept = boxes_from_heatmap(heat, grid, heat.shape, threshold=0.5, scores=scores, min_score=0.5)
    assert [(b.x0, b.y0) for b in kept] == [(30, 20)]
