"""GrabCut refinement of boxes (transforms/maps/refine.py) on drawn photos whose objects'
extents are known; the real photos' boxes with refinement are in test_real_photos.py."""
import numpy as np
import pytest

from transforms.maps.boxes import raster_boxes
from transforms.maps.refine import MAX_SIDE, grabcut_extent, resize_photo
from transforms.quality.localization import iou_matrix

SIZE = (120, 160)
OBJECT = (50, 40, 90, 80)  # x0, y0, x1, y1
SECOND = (110, 45, 140, 75)


def _photo(*objects, size=SIZE) -> np.ndarray:
    """Grass-like green noise with flat red objects."""
    rng = np.random.default_rng(0)
    photo = np.empty((*size, 3), np.uint8)
    photo[...] = (60, 140, 50)
    photo = np.clip(photo + rng.normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    for x0, y0, x1, y1 in objects:
        photo[y0:y1, x0:x1] = (200, 30, 40)
    return photo


def _heat(centre, spread, size=SIZE) -> np.ndarray:
    """A blob of heat wider than the object under it, as a classifier's is."""
    y, x = np.mgrid[:size[0], :size[1]]
    return np.exp(-(((x - centre[0]) / spread[0]) ** 2 + ((y - centre[1]) / spread[1]) ** 2) / 2)


def _xyxy(box) -> tuple:
    return box.x0, box.y0, box.x1, box.y1


def _iou(a, b) -> float:
    return float(iou_matrix(np.array([a]), np.array([b]))[0, 0])


def test_a_box_whose_heat_spreads_beyond_the_object_shrinks_to_it():
    heat = _heat((70, 60), (28, 24))
    (plain,) = raster_boxes(heat, 0.2, SIZE)
    (refined,) = raster_boxes(heat, 0.2, SIZE, photo=_photo(OBJECT))
    assert _iou(_xyxy(plain), OBJECT) < 0.3
    assert _iou(_xyxy(refined), OBJECT) > 0.75  # one round of GrabCut keeps a little grass
    # Only the extent changes: score, mean and area are the heat component's.
    assert (refined.score, refined.mean, refined.area) == (plain.score, plain.mean, plain.area)


def test_two_objects_under_one_component_give_the_box_of_the_one_with_more_heat():
    heat = np.maximum(_heat((70, 60), (24, 20)), 0.6 * _heat((125, 60), (16, 16)))
    (plain,) = raster_boxes(heat, 0.2, SIZE)
    assert plain.x0 < OBJECT[0] and plain.x1 > SECOND[0]  # both in one box
    (refined,) = raster_boxes(heat, 0.2, SIZE, photo=_photo(OBJECT, SECOND))
    assert _iou(_xyxy(refined), OBJECT) > 0.85
    assert refined.x1 <= SECOND[0]


def test_a_box_with_no_background_to_learn_from_stays_as_it_is():
    heat = np.full(SIZE, 0.9)  # the whole raster above the threshold: nothing to separate
    (plain,) = raster_boxes(heat, 0.2, SIZE)
    (refined,) = raster_boxes(heat, 0.2, SIZE, photo=_photo(OBJECT))
    assert _xyxy(refined) == _xyxy(plain) == (0, 0, SIZE[1], SIZE[0])


def test_a_large_box_is_refined_on_a_shrunk_crop_to_the_same_extent():
    scale = 3  # the photo and heat three times larger: the crop exceeds MAX_SIDE
    size = (SIZE[0] * scale, SIZE[1] * scale)
    assert max(size) > MAX_SIDE
    heat = _heat((70 * scale, 60 * scale), (28 * scale, 24 * scale), size)
    photo = _photo(tuple(v * scale for v in OBJECT), size=size)
    labels = heat >= 0.2
    rows = slice(*np.flatnonzero(labels.any(axis=1))[[0, -1]] + [0, 1])
    cols = slice(*np.flatnonzero(labels.any(axis=0))[[0, -1]] + [0, 1])
    found_rows, found_cols = grabcut_extent(photo, heat, rows, cols, labels[rows, cols], 0.2)
    box = (found_cols.start, found_rows.start, found_cols.stop, found_rows.stop)
    assert _iou(box, tuple(v * scale for v in OBJECT)) > 0.75  # as at full size


@pytest.mark.parametrize("centre", [300, 315, 330])
def test_an_object_filling_its_box_keeps_the_box_and_never_exceeds_it(centre):
    """GrabCut only shrinks a box. On a shrunk crop the mask is enlarged back by nearest
    neighbours, which put foreground a pixel past the box on these sizes before the box
    was clipped to it."""
    size = (480, 640)
    heat = _heat((centre, 240), (75, 60), size)
    labels = heat >= 0.2
    rows = slice(*np.flatnonzero(labels.any(axis=1))[[0, -1]] + [0, 1])
    cols = slice(*np.flatnonzero(labels.any(axis=0))[[0, -1]] + [0, 1])
    assert max(rows.stop - rows.start, cols.stop - cols.start) > MAX_SIDE
    photo = _photo((cols.start, rows.start, cols.stop, rows.stop), size=size)
    found_rows, found_cols = grabcut_extent(photo, heat, rows, cols, labels[rows, cols], 0.2)
    assert rows.start <= found_rows.start < found_rows.stop <= rows.stop
    assert cols.start <= found_cols.start < found_cols.stop <= cols.stop
    box = (cols.start, rows.start, cols.stop, rows.stop)
    assert _iou((found_cols.start, found_rows.start, found_cols.stop, found_rows.stop), box) > 0.95


@pytest.mark.parametrize("shape", [(60, 80), (120, 160), (240, 320)])
def test_the_photo_is_resized_to_the_raster(shape):
    photo = _photo(OBJECT)
    resized = resize_photo(photo, shape)
    assert resized.shape == (*shape, 3) and resized.dtype == np.uint8
    if shape == SIZE:
        assert resized is photo


def test_a_box_does_not_depend_on_what_was_refined_before_it():
    heat = _heat((70, 60), (28, 24))
    photo = _photo(OBJECT)
    first = raster_boxes(heat, 0.2, SIZE, photo=photo)
    for seed in range(3):  # other photos' GrabCuts move the thread's random generator
        other = np.random.default_rng(seed).integers(0, 255, (*SIZE, 3), dtype=np.uint8)
        raster_boxes(heat, 0.2, SIZE, photo=other)
        assert raster_boxes(heat, 0.2, SIZE, photo=photo) == first


def test_a_limit_returns_the_best_boxes_and_refines_only_those(monkeypatch):
    """Calibration asks for the top box at every threshold: the others are not refined."""
    import transforms.maps.boxes as boxes_module

    heat = np.maximum(_heat((70, 60), (14, 12)), 0.6 * _heat((125, 60), (8, 8)))
    photo = _photo(OBJECT, SECOND)
    every = raster_boxes(heat, 0.2, SIZE, photo=photo)
    assert len(every) == 2 and every[0].score > every[1].score
    refined = []

    def counted(*args):
        refined.append(args[2])
        return grabcut_extent(*args)

    monkeypatch.setattr(boxes_module, "grabcut_extent", counted)
    assert raster_boxes(heat, 0.2, SIZE, photo=photo, limit=1) == every[:1]
    assert len(refined) == 1
    assert raster_boxes(heat, 0.2, SIZE, limit=1) == raster_boxes(heat, 0.2, SIZE)[:1]
