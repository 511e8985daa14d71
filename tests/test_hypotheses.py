"""Box hypotheses at several thresholds, their features and confidence, refinement only
where worth it, and the boxes kept (one per object, the minimum confidence)."""
import numpy as np
import pytest

from transforms.maps import hypotheses as H
from transforms.maps.boxes import Box, raster_boxes
from transforms.maps.confidence import LogisticConfidence
from transforms.maps.hypotheses import (FEATURES, REFINE_CONFIDENCE, RefineGate, SynsetEvidence,
                                        kept_boxes, refine_gate, synset_evidence,
                                        synset_hypotheses)

SIZE = (120, 200)  # the raster is the image: one pixel each
EVIDENCE = SynsetEvidence(score=0.5, best_score=0.8, rank=1, classes=12)


def _two_objects() -> np.ndarray:
    """Two hot blobs side by side, joined by a warm bridge: one component at 0.2, two at 0.5."""
    heat = np.zeros(SIZE, np.float32)
    heat[30:90, 20:80] = 0.9
    heat[30:90, 120:180] = 0.8
    heat[50:70, 80:120] = 0.3
    return heat


@pytest.fixture
def grabcut_calls(monkeypatch) -> list:
    """The arguments of every GrabCut refinement the hypotheses make, as they make them."""
    calls = []
    refine = H.grabcut_extent

    def counting(*args):
        calls.append(args)
        return refine(*args)

    monkeypatch.setattr(H, "grabcut_extent", counting)
    return calls


def _model(**weights) -> LogisticConfidence:
    """A confidence of the named features' standardised values (mean 0, scale 1)."""
    names = tuple(weights)
    return LogisticConfidence(names, (0.0,) * len(names), (1.0,) * len(names),
                              tuple(weights.values()), 0.0)


def test_each_level_gives_its_components_with_their_features():
    heat = _two_objects()
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, thresholds=(0.2, 0.5), refine_all=True)
    plain = [h for h in found if not h.refined]
    assert sorted((h.threshold, h.box.x0, h.box.x1) for h in plain) == [
        (0.2, 20, 180), (0.5, 20, 80), (0.5, 120, 180)]
    features = {(h.threshold, h.box.x0): dict(zip(FEATURES, h.features)) for h in plain}
    whole, left, right = features[0.2, 20], features[0.5, 20], features[0.5, 120]
    assert whole["threshold"] == 0.2 and left["threshold"] == 0.5
    assert whole["log_components"] == 0 and left["log_components"] == pytest.approx(np.log(2))
    assert left["log_component_rank"] == 0 and right["log_component_rank"] == pytest.approx(np.log(2))
    assert left["log_peak"] == pytest.approx(np.log(0.9), abs=1e-5)
    assert right["log_peak_ratio"] == pytest.approx(np.log(0.8 / 0.9), abs=1e-5)
    assert left["heat_share"] + right["heat_share"] == pytest.approx(1.0)
    assert whole["log_box_share"] == pytest.approx(np.log(160 * 60 / (120 * 200)), abs=1e-4)
    assert left["log_image_score_ratio"] == pytest.approx(np.log(0.5 / 0.8), abs=1e-4)
    assert left["log_synset_rank"] == pytest.approx(np.log(2))
    assert whole["border"] == 0 and whole["refined"] == 0 and whole["log_refined_share"] == 0
    assert whole["log_hypotheses"] == pytest.approx(np.log(3))
    assert whole["log_classes"] == right["log_classes"] == pytest.approx(np.log(12))
    # No other level's box is the same as any of these.
    assert whole["log_same_box"] == left["log_same_box"] == 0


def test_a_box_the_same_at_two_levels_counts_as_stable():
    heat = np.zeros(SIZE, np.float32)
    heat[30:90, 20:80] = 0.9
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, thresholds=(0.2, 0.5, 0.95))
    # Without a model only the lowest level: one box.
    assert len(found) == 1
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, thresholds=(0.2, 0.5), refine_all=True)
    assert all(dict(zip(FEATURES, h.features))["log_same_box"] == pytest.approx(np.log(2))
               for h in found)


def test_without_a_model_the_boxes_are_the_lowest_levels_components():
    heat = _two_objects()
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, thresholds=(0.5, 0.2))
    expected = raster_boxes(heat, 0.2, SIZE, score_raster=heat)
    assert [h.box for h in found] == expected
    assert all(h.box.confidence is None for h in found)


def test_the_more_confident_hypotheses_are_kept_one_per_object():
    heat = _two_objects()
    # Higher levels more confident: the two objects' own boxes first.
    prefer_tight = _model(threshold=4.0)
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, (0.2, 0.5, 0.6), model=prefer_tight)
    kept = kept_boxes(found)
    assert [(b.x0, b.x1) for b in kept[:2]] in ([(20, 80), (120, 180)], [(120, 180), (20, 80)])
    # Each object's 0.5 and 0.6 boxes are the same box: one of them is dropped.
    assert len(kept) == 3 and kept[2].x1 - kept[2].x0 == 160
    assert kept == sorted(kept, key=lambda b: -b.confidence)
    # The minimum confidence drops the whole (less confident) box.
    cut = (kept[1].confidence + kept[2].confidence) / 2
    assert kept_boxes(found, min_confidence=cut) == kept[:2]


def test_non_maximum_suppression_by_hand():
    def box(x0, confidence):
        return H.Hypothesis(Box(x0, 0, x0 + 100, 100, score=0.5, mean=0.5, area=1e4,
                                confidence=confidence), 0.2, False, np.zeros(len(FEATURES)), 0)
    # IoU of boxes 20 px apart: 80/120 = 0.67 > 0.5: dropped; 40 px: 60/140 = 0.43: kept.
    kept = kept_boxes([box(20, 0.8), box(0, 0.9), box(60, 0.7)])
    assert [(b.x0, b.confidence) for b in kept] == [(0, 0.9), (60, 0.7)]


def test_only_hypotheses_worth_it_are_refined(grabcut_calls):
    heat = _two_objects()
    photo = np.zeros((*SIZE, 3), np.uint8)
    photo[30:90, 20:80] = 255  # the left object stands out of its surroundings
    calls = grabcut_calls
    hopeless = _model(threshold=-50.0)  # every box below REFINE_CONFIDENCE
    # ... and under half the minimum of a run keeping boxes of at least 0.01
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, (0.2, 0.5), photo=photo, model=hopeless,
                              refine=refine_gate(0.01))
    assert not calls and all(not h.refined for h in found)
    assert all(h.box.confidence < 0.005 for h in found)
    sure = _model(threshold=50.0)
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, (0.2, 0.5), photo=photo, model=sure)
    assert len(calls) == 3  # every component
    # GrabCut changes the whole box (the bridge and the dark right object are background
    # in the photo): a refined hypothesis beside its component's.
    refined = [h for h in found if h.refined]
    assert refined and all(h.box.confidence is not None for h in refined)
    assert all(dict(zip(FEATURES, h.features))["log_refined_share"] < 0 for h in refined)


def test_the_gate_refines_the_most_confident_component_where_its_box_could_be_kept():
    gate = RefineGate(confidence=0.07, best=0.005)
    assert gate.chosen([0.01, 0.003, 0.08]).tolist() == [False, False, True]
    assert gate.chosen([0.01, 0.003, 0.006]).tolist() == [True, False, False]
    assert gate.chosen([0.004, 0.001]).tolist() == [False, False]
    assert gate.chosen([]).tolist() == []
    # A run's gate: half its minimum for the best, and at least REFINE_CONFIDENCE for all.
    assert refine_gate(0.01) == RefineGate(REFINE_CONFIDENCE, 0.005)
    assert refine_gate(0.3) == RefineGate(0.15, 0.15)


def test_an_unsure_synset_still_has_its_best_component_refined(grabcut_calls):
    heat = _two_objects()
    heat[30:90, 20:80] = 0.6  # the left object: its heat's core sure, the rest not
    heat[50:70, 40:60] = 0.9
    photo = np.zeros((*SIZE, 3), np.uint8)
    photo[40:80, 30:70] = 255  # ... and smaller than its heat
    # Every box 2.7-4.5 % likely, under REFINE_CONFIDENCE; the left object's component
    # at 0.5 the most confident (the higher threshold, the higher peak).
    unsure = LogisticConfidence(("threshold", "log_peak"), (0.0, 0.0), (1.0, 1.0), (2.0, 1.0), -4.0)
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, (0.2, 0.5), photo=photo, model=unsure,
                              refine=refine_gate(0.01))
    assert all(h.box.confidence < REFINE_CONFIDENCE for h in found if not h.refined)
    assert len(grabcut_calls) == 1
    (refined,) = [h for h in found if h.refined]
    best = max((h for h in found if not h.refined), key=lambda h: h.box.confidence)
    assert refined.component == best.component and (best.threshold, best.box.x0) == (0.5, 20)
    assert (refined.box.x0, refined.box.y0) == (30, 40)
    # A run keeping only boxes of at least 0.1 refines none of them.
    grabcut_calls.clear()
    synset_hypotheses(heat, heat, SIZE, EVIDENCE, (0.2, 0.5), photo=photo, model=unsure,
                      refine=refine_gate(0.1))
    assert not grabcut_calls


def test_a_box_the_same_at_two_levels_is_refined_once(grabcut_calls):
    heat = np.zeros(SIZE, np.float32)
    heat[30:90, 20:80] = 0.6  # one object, the same component at 0.2 and at 0.5
    heat[50:70, 40:60] = 0.9
    photo = np.zeros((*SIZE, 3), np.uint8)
    photo[40:80, 30:70] = 255
    calls = grabcut_calls
    found = synset_hypotheses(heat, heat, SIZE, EVIDENCE, (0.2, 0.5), photo=photo,
                              model=_model(threshold=50.0))
    assert len(calls) == 1
    # The more confident level's (the model favours the higher threshold) is refined,
    # to the photo's object.
    (refined,) = [h for h in found if h.refined]
    assert refined.threshold == 0.5 and (refined.box.x0, refined.box.y0) == (30, 40)
    # Fitting a confidence refines every component.
    calls.clear()
    synset_hypotheses(heat, heat, SIZE, EVIDENCE, (0.2, 0.5), photo=photo, refine_all=True)
    assert len(calls) == 2


def test_synset_evidence_ranks_by_image_score_and_keeps_each_synsets_classes():
    evidence = synset_evidence(np.array([0.2, 0.6, 0.4]), [118, 1, 3])
    assert [e.rank for e in evidence] == [2, 0, 1]
    assert all(e.best_score == pytest.approx(0.6) for e in evidence)
    assert [e.classes for e in evidence] == [118, 1, 3]
    with pytest.raises(ValueError):  # a count per synset, no fewer
        synset_evidence(np.array([0.2, 0.6]), [118])
