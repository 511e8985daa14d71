"""Real photos, real EfficientNet-Lite ImageNet weights: classes, heatmaps and boxes.

Ground-truth boxes were measured by looking at the photos (tests/data/README.md).
"""
import functools

import numpy as np
import pytest

from transforms.model.backbones import get_backbone, load_classifier
from transforms.model.fcn import ResponseMapper, fully_convolutional
from transforms.maps.multiscale import resize_image, scale_image, synset_heatmaps, synset_heatmaps_batch
from transforms.maps.scales import parse_scales
from transforms.vocab.synsets import class_wnids, resolve_synset
from transforms.vocab.vocabularies import top_k_vocabulary

from conftest import CountingMapper, load_photo

DOG_BOX = (132, 220, 310, 542)
BICYCLE_BOX = (125, 140, 567, 420)
CAT_BOX = (0, 0, 400, 300)


def _intersection(a, b):
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(a):
    return (a[2] - a[0]) * (a[3] - a[1])


def iou(a, b) -> float:
    inter = _intersection(a, b)
    return inter / (_area(a) + _area(b) - inter)


def _xyxy(box):
    return box.x0, box.y0, box.x1, box.y1


@functools.lru_cache(maxsize=None)
def _classifier(name):
    return load_classifier(name)


@pytest.mark.parametrize("name, photo, top1", [
    ("efficientnet_lite0", "dog.jpg", 235),      # German shepherd
    ("efficientnet_lite0", "chelsea.png", 285),  # Egyptian cat
    ("efficientnet_lite0", "eagle.jpg", 22),     # bald eagle
    ("efficientnet_lite1", "chelsea.png", 285),  # (Lite1 calls the crowded dog.jpg a schnauzer)
    ("efficientnet_lite1", "eagle.jpg", 22),
    ("efficientnet_lite2", "dog.jpg", 235),
    ("efficientnet_lite2", "chelsea.png", 285),
    ("efficientnet_lite2", "eagle.jpg", 22),
])
def test_top1_and_window_map_equal_the_classifier(weights_cache, name, photo, top1):
    backbone = get_backbone(name)
    classifier = _classifier(name)
    image = resize_image(load_photo(photo), (backbone.input_size,) * 2)[None]
    probabilities = classifier(backbone.preprocess(image.astype("f4"))).numpy()[0]
    assert probabilities.argmax() == top1
    window = ResponseMapper(backbone, fully_convolutional(classifier, backbone, "window"), "window")
    np.testing.assert_allclose(window.class_maps(image)[0, 0, 0], probabilities, atol=1e-5)


def test_cat_photo_best_synset_is_cat_and_its_box_covers_the_cat(lite0_mapper):
    synsets = [resolve_synset(s) for s in ("dog", "n02121620", "bird", "n02958343")]
    heatmaps = synset_heatmaps(lite0_mapper, load_photo("chelsea.png"), synsets)
    peaks = heatmaps.probability.max(axis=(0, 1))
    assert synsets[int(peaks.argmax())].wnid == "n02121620"
    top = heatmaps.boxes(photo=load_photo("chelsea.png"))["n02121620"][0]
    assert _intersection(_xyxy(top), CAT_BOX) / _area(CAT_BOX) >= 0.8


def _top_dog_box(mapper, image):
    """The top dog box as the job gives it: refined by the photo."""
    dog = resolve_synset("dog")
    return _xyxy(synset_heatmaps(mapper, image, [dog]).boxes(photo=image)[dog.wnid][0])


def test_dog_box_is_on_the_dog_not_the_bicycle(lite0_mapper):
    box = _top_dog_box(lite0_mapper, load_photo("dog.jpg"))
    assert iou(box, DOG_BOX) >= 0.5
    assert iou(box, BICYCLE_BOX) < 0.5 and iou(box, BICYCLE_BOX) < iou(box, DOG_BOX)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert DOG_BOX[0] <= cx < DOG_BOX[2] and DOG_BOX[1] <= cy < DOG_BOX[3]


def test_boxes_follow_a_rotated_photo(lite0_mapper):
    photo = load_photo("dog.jpg")
    width = photo.shape[1]
    rotated = np.ascontiguousarray(np.rot90(photo))  # 90° counter-clockwise: (x, y) → (y, W - x)
    x0, y0, x1, y1 = DOG_BOX
    assert iou(_top_dog_box(lite0_mapper, rotated), (y0, width - x1, y1, width - x0)) >= 0.5


@pytest.mark.parametrize("size", [(1152, 1536), (500, 800)])  # 2x; squashed
def test_boxes_follow_a_resized_photo(lite0_mapper, size):
    photo = load_photo("dog.jpg")
    sy, sx = size[0] / photo.shape[0], size[1] / photo.shape[1]
    x0, y0, x1, y1 = DOG_BOX
    box = _top_dog_box(lite0_mapper, resize_image(photo, size))
    assert box[2] <= size[1] and box[3] <= size[0]
    assert iou(box, (x0 * sx, y0 * sy, x1 * sx, y1 * sy)) >= 0.5


def test_a_batch_of_mixed_sizes_equals_single_images(lite0_mapper):
    scales = parse_scales("288,200x320")
    synsets = [resolve_synset("dog"), resolve_synset("n02121620")]
    photos = [load_photo("dog.jpg"), load_photo("chelsea.png"),
              np.ascontiguousarray(np.rot90(load_photo("eagle.jpg")))]  # portrait
    scaled = [scale_image(p, p.shape[:2], scales, 32) for p in photos]
    batch = synset_heatmaps_batch(lite0_mapper, scaled, scales, synsets)
    for photo, together in zip(photos, batch):
        alone = synset_heatmaps(lite0_mapper, photo, synsets, scales)
        assert together.grid == alone.grid
        np.testing.assert_allclose(together.fused, alone.fused, atol=1e-4)
        np.testing.assert_allclose(together.class_scores, alone.class_scores, atol=1e-5)


def test_images_per_call_bounds_each_network_call_and_not_the_maps(lite0_mapper):
    scales = parse_scales("200x320")  # one shape: every image in one group
    photos = [load_photo("dog.jpg"), load_photo("chelsea.png"), load_photo("eagle.jpg")]
    scaled = [scale_image(p, p.shape[:2], scales, 32) for p in photos]
    whole, chunked = CountingMapper(lite0_mapper), CountingMapper(lite0_mapper)
    together = synset_heatmaps_batch(whole, scaled, scales, top_k=2)
    in_pairs = synset_heatmaps_batch(chunked, scaled, scales, top_k=2, images_per_call=2)
    assert (whole.calls, chunked.calls) == ([3], [2, 1])
    for a, b in zip(together, in_pairs):
        assert a.synsets == b.synsets
        np.testing.assert_allclose(a.fused, b.fused, atol=1e-4)


def test_an_image_alone_in_its_call_is_not_padded(lite0_mapper):
    """Images share a call at their bucket's padded shape; alone in a call (a CPU
    worker's every call) an image keeps its own shape, and its maps are those of the
    image by itself, not of the image with padding beside it."""
    scales = parse_scales("288")
    photo = load_photo("dog.jpg")
    narrower = np.ascontiguousarray(photo[:, :photo.shape[1] * 15 // 16])
    scaled = [scale_image(p, p.shape[:2], scales, 32) for p in (photo, narrower)]
    assert [s.inputs[0].shape[:2] for s in scaled] == [(288, 384), (288, 352)]  # one bucket
    shared, single = CountingMapper(lite0_mapper), CountingMapper(lite0_mapper)
    together = synset_heatmaps_batch(shared, scaled, scales, [resolve_synset("dog")])
    alone = synset_heatmaps_batch(single, scaled, scales, [resolve_synset("dog")],
                                  images_per_call=1)
    assert shared.shapes == [(288, 384)] and single.shapes == [(288, 384), (288, 352)]
    by_itself = synset_heatmaps(lite0_mapper, narrower, [resolve_synset("dog")], scales)
    np.testing.assert_allclose(alone[1].fused, by_itself.fused, atol=1e-4)
    # The padding changes the maps beside it: why an image alone is not padded.
    assert np.abs(together[1].probability - by_itself.probability).max() > 1e-3


def test_a_flipped_scale_gives_the_mirrored_photo_the_mirrored_maps(lite0_mapper):
    """At a +flip scale the maps are the mean of the photo's and its mirror image's,
    mirrored back: the same for the photo and for its mirror image, mirrored. The
    network's own maps are not mirror-symmetric, which is what the mean evens out."""
    photo = load_photo("dog.jpg")
    mirror = np.ascontiguousarray(photo[:, ::-1])
    dog = [resolve_synset("dog")]
    for spec, symmetric in (("288+flip", True), ("288", False)):
        counting = CountingMapper(lite0_mapper)
        maps = synset_heatmaps(counting, photo, dog, parse_scales(spec))
        mirrored = synset_heatmaps(lite0_mapper, mirror, dog, parse_scales(spec))
        assert counting.calls == ([1, 1] if symmetric else [1])
        difference = max(np.abs(maps.fused - mirrored.fused[:, ::-1]).max(),
                         np.abs(maps.probability - mirrored.probability[:, ::-1]).max())
        assert difference < 1e-5 if symmetric else difference > 0.05


def test_imagenet_vocabulary_maps_each_images_best_classes(lite0_mapper):
    heatmaps = synset_heatmaps(lite0_mapper, load_photo("chelsea.png"), None, top_k=3,
                               vocabulary=top_k_vocabulary("imagenet"))
    top = heatmaps.top_classes(3)
    indices = [synset.class_indices[0] for synset, _ in top]
    assert set(indices) == {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert [s.class_indices for s in heatmaps.synsets] == [(index,) for index in indices]
    assert [s.wnid for s in heatmaps.synsets] == [class_wnids()[index] for index in indices]
    assert heatmaps.fused.shape[-1] == 3
    assert top[0][1] > top[1][1] > top[2][1] > 0.05


def test_concepts_give_one_dog_box_on_the_dog_and_bicycle_boxes_on_the_bicycle_only(lite0_mapper):
    """The default top-k vocabulary on dog.jpg: the 118 dog classes' probability in one
    "dog" map, whose one box covers the dog (classes alone gave a malamute and a German
    shepherd box, each on part of it), and one "bicycle" map whose top box is on the
    bicycle."""
    heatmaps = synset_heatmaps(lite0_mapper, load_photo("dog.jpg"), None)
    assert [s.label for s in heatmaps.synsets[:2]] == ["dog", "bicycle"]
    assert heatmaps.scores[0] > heatmaps.scores[1] > 2 * heatmaps.scores[2]
    boxes = heatmaps.boxes(photo=load_photo("dog.jpg"))
    (dog,) = boxes[heatmaps.synsets[0].wnid]
    assert iou(_xyxy(dog), DOG_BOX) >= 0.5
    bicycle, *pieces = boxes[heatmaps.synsets[1].wnid]
    # On the bicycle, not on the dog in front of it. It covers all but the front wheel,
    # which is behind the dog (IoU 0.58 with the whole bicycle's box), and so reaches a
    # little into the dog's box, as the bicycle itself does (IoU 0.13; the whole
    # bicycle's box 0.25).
    x0, y0, x1, y1 = _xyxy(bicycle)
    assert BICYCLE_BOX[0] <= (x0 + x1) / 2 <= BICYCLE_BOX[2] and BICYCLE_BOX[1] <= (y0 + y1) / 2 <= BICYCLE_BOX[3]
    assert not (DOG_BOX[0] <= (x0 + x1) / 2 <= DOG_BOX[2])  # its centre is beside the dog
    assert iou(_xyxy(bicycle), BICYCLE_BOX) >= 0.5 > 0.2 > iou(_xyxy(bicycle), DOG_BOX)
    # Any other bicycle box (at 288,576 the front wheel, seen between the dog's legs, was
    # one) is on the bicycle and scores under a tenth of it: one bicycle, boxes on it only.
    for piece in pieces:
        px0, py0, px1, py1 = _xyxy(piece)
        assert BICYCLE_BOX[0] <= px0 and px1 <= BICYCLE_BOX[2]
        assert BICYCLE_BOX[1] <= py0 and py1 <= BICYCLE_BOX[3]
        assert piece.score < bicycle.score / 10
