"""Detection quality (VOC07 AP and the figures at the emitted boxes) on hand-worked cases,
and which ground-truth class a run's synset stands for."""
import numpy as np
import pytest

from transforms.quality.detection import (Detection, Objects, average_precision,
                                          detection_summary, match_detections, stands_for,
                                          truth_synset_lookup, voc07_average_precision)
from transforms.vocab.synsets import parse_synset_spec
from transforms.vocab.vocabularies import load_vocabulary, top_k_vocabulary

A = (0, 0, 100, 100)
B = (200, 200, 300, 300)


def _objects(*boxes, difficult=()):
    return Objects(np.array(boxes, np.float64).reshape(-1, 4),
                   np.array([i in difficult for i in range(len(boxes))], bool))


def test_eleven_point_average_precision_by_hand():
    # Two objects; ranked boxes right, wrong, right: recall 0.5, 0.5, 1; precision 1, 0.5, 2/3.
    # Recall levels 0-0.5 (6 of them) see precision 1, levels 0.6-1 (5) see 2/3.
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert voc07_average_precision(recall, precision) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    # Only half of the objects found, every box right: levels 0-0.5 only.
    assert voc07_average_precision(np.array([0.5]), np.array([1.0])) == pytest.approx(6 / 11)
    # Nothing found.
    assert voc07_average_precision(np.array([]), np.array([])) == 0.0


def test_matching_counts_duplicates_wrong_and_ignores_difficult_objects():
    objects = {("a.jpg", "dog"): _objects(A, B, difficult=(1,))}
    detections = [
        Detection("a.jpg", "dog", 0.9, (0, 0, 100, 90)),     # on A: right
        Detection("a.jpg", "dog", 0.8, (5, 0, 100, 100)),    # on A again: a duplicate, wrong
        Detection("a.jpg", "dog", 0.7, (200, 200, 300, 290)),  # on B, difficult: ignored
        Detection("a.jpg", "dog", 0.6, (400, 400, 500, 500)),  # on nothing: wrong
        Detection("b.jpg", "dog", 0.95, A),                  # no dog in b.jpg: wrong
    ]
    np.testing.assert_array_equal(match_detections(detections, objects), [1, 0, -1, 0, 0])
    # The most confident box claims the object, whatever the order given.
    swapped = [detections[1], detections[0]]
    np.testing.assert_array_equal(match_detections(swapped, objects), [0, 1])


def test_average_precision_skips_ignored_boxes():
    # Ranked: right, ignored, wrong, right over 2 objects → as right, wrong, right.
    outcome = np.array([1, -1, 0, 1], np.int8)
    ap = average_precision(np.array([0.9, 0.8, 0.7, 0.6]), outcome, objects=2)
    assert ap == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    assert np.isnan(average_precision(np.array([]), np.array([], np.int8), objects=0))


def test_summary_figures_by_hand():
    objects = {("a.jpg", "dog"): _objects(A, B), ("b.jpg", "cat"): _objects(A),
               ("c.jpg", "cat"): _objects(B, difficult=(0,))}
    detections = [
        Detection("a.jpg", "dog", 0.9, A),                   # right
        Detection("a.jpg", "dog", 0.5, (0, 0, 100, 80)),     # duplicate on A: wrong, but on an object
        Detection("b.jpg", "cat", 0.8, (300, 300, 400, 400)),  # wrong: elsewhere
        Detection("b.jpg", "dog", 0.7, A),                   # dog absent from b.jpg: wrong
        Detection("c.jpg", "cat", 0.6, B),                   # on a difficult cat: ignored
    ]
    s = detection_summary(detections, objects, ["a.jpg", "b.jpg", "c.jpg"], ["dog", "cat"],
                          boxes_emitted=7)
    assert s["synsets"]["dog"]["objects"] == 2 and s["synsets"]["cat"]["objects"] == 1
    # dog: right (0.9), wrong (0.7), wrong (0.5); recall 0.5 at precision 1: 6/11.
    assert s["synsets"]["dog"]["ap"] == pytest.approx(100 * 6 / 11)
    assert s["synsets"]["cat"]["ap"] == 0.0
    assert s["map"] == pytest.approx(100 * 3 / 11)
    assert s["precision"] == pytest.approx(100 * 1 / 4)   # 4 boxes not ignored, 1 right
    assert s["precision_any"] == pytest.approx(100 * 2 / 4)  # the duplicate lies on an object
    assert s["recall"] == pytest.approx(100 * 1 / 3)
    assert s["boxes_per_image"] == pytest.approx(7 / 3)
    # Pairs with an object to find: (a, dog), (b, cat); only (a, dog) has a correct box.
    assert (s["pairs"], s["pairs_with_correct_box"]) == (2, 50.0)
    # Absent pairs: (b, dog), (c, dog), (a, cat) ((c, cat) has a difficult cat): one boxed.
    assert (s["absent_pairs"], s["absent_with_box"]) == (3, pytest.approx(100 / 3))


def test_images_and_classes_outside_the_ground_truth_are_not_counted():
    objects = {("a.jpg", "dog"): _objects(A)}
    detections = [Detection("a.jpg", "dog", 0.9, A), Detection("z.jpg", "dog", 0.99, B),
                  Detection("a.jpg", "cow", 0.99, B)]
    s = detection_summary(detections, objects, ["a.jpg"], ["dog"], boxes_emitted=2)
    assert s["synsets"]["dog"]["ap"] == pytest.approx(100.0)
    assert s["boxes_counted"] == 1


def test_a_concept_stands_for_the_class_sharing_half_its_imagenet_classes():
    voc = load_vocabulary("voc")
    concepts = {s.label: s for s in top_k_vocabulary("concepts")}
    lookup = truth_synset_lookup(concepts.values(), voc.values())
    assert lookup[concepts["dog"].wnid] == voc["dog"].wnid
    assert lookup[concepts["screen"].wnid] == voc["tvmonitor"].wnid
    assert lookup[concepts["boat"].wnid] == lookup[concepts["ship"].wnid] == voc["boat"].wnid
    assert concepts["truck"].wnid not in lookup      # two of its seven classes are vans
    assert concepts["fungus"].wnid not in lookup
    # A synset the ground truth names itself stands for itself.
    dog = parse_synset_spec("dog")
    assert truth_synset_lookup([dog], [dog]) == {dog.wnid: dog.wnid}
    assert stands_for((1, 2, 3, 4), (1, 2)) == 2 and stands_for((1, 2, 3), (1,)) == 0
    car = voc["car"].class_indices
    assert stands_for(concepts["car"].class_indices, car)
    assert not stands_for(concepts["truck"].class_indices, car)  # 2 vans of 7 trucks
    assert stands_for((656,), car) and not stands_for((656,), voc["dog"].class_indices)  # minivan
