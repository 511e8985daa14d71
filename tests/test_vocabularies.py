"""Vocabularies: named synsets, the built-in PASCAL VOC mapping, and --synsets lists."""
import json

import pytest

from transforms.config import LabelConfig
from transforms.vocab.synsets import SynsetError, class_names, resolve_synset
from transforms.vocab.vocabularies import (concepts, load_vocabulary, named_synset,
                                           parse_synset_list, recorded_synsets,
                                           recorded_top_k_vocabulary, top_k_vocabulary,
                                           vocabulary_from_mapping)

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "pottedplant", "sheep",
               "sofa", "train", "tvmonitor")


def _names(synset) -> set[str]:
    return {class_names()[i].split(",")[0] for i in synset.class_indices}


def test_voc_is_the_nineteen_classes_but_person_each_with_imagenet_classes():
    voc = load_vocabulary("voc")
    assert tuple(voc) == VOC_CLASSES  # no person: ImageNet-1k has no person class
    for name, synset in voc.items():
        assert synset.label == name and synset.class_indices


def test_voc_classes_include_what_voc_includes():
    voc = load_vocabulary("voc")
    assert _names(voc["aeroplane"]) == {"airliner", "warplane", "wing"}
    assert {"electric locomotive", "steam locomotive", "passenger car", "bullet train"} <= _names(voc["train"])
    assert "streetcar" not in _names(voc["train"])  # VOC leaves trams out
    assert {"monitor", "screen", "television"} <= _names(voc["tvmonitor"])
    assert {"moped", "motor scooter"} == _names(voc["motorbike"])
    assert {"tricycle", "unicycle", "mountain bike"} <= _names(voc["bicycle"])
    assert voc["dog"].class_indices == resolve_synset("dog").class_indices
    assert voc["boat"].wnid == "n04530566"  # vessel, watercraft: ships as well as boats


def test_one_spec_keeps_its_wnid_several_become_a_class_list():
    chair = named_synset("chair", "n03001627")
    assert (chair.wnid, chair.label) == ("n03001627", "chair")
    assert chair.class_indices == resolve_synset("n03001627").class_indices
    cow = named_synset("cow", ["ox", "n02408429"])
    assert (cow.wnid, cow.label, cow.class_indices) == ("classes:345+346", "cow", (345, 346))


def test_synset_lists_expand_vocabularies(tmp_path):
    assert len(parse_synset_list("voc")) == 19
    path = tmp_path / "pets.json"
    path.write_text(json.dumps({"pet": ["dog", "n02121808"], "bird": "bird"}))
    synsets = parse_synset_list(f"{path}, n02084071")
    assert [s.label for s in synsets] == ["pet", "bird", "dog"]
    assert len(synsets[0].class_indices) == 118 + 5


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "expected a JSON object"),
    ("{", "not JSON"),
    ('{"pet": "dgo"}', "'pet': 'dgo' names no synset"),
    ('{"pet": 3}', "'pet': expected a synset spec or a list"),
    ('{"pet": []}', "'pet': no synset given"),
])
def test_bad_vocabulary_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "v.json"
    path.write_text(content)
    with pytest.raises(SynsetError, match=message):
        load_vocabulary(str(path))
    with pytest.raises(SynsetError, match="No such file.*built in: voc"):
        load_vocabulary(str(tmp_path / "missing.json"))


def test_a_vocabulary_from_a_mapping_names_each_entry():
    vocabulary = vocabulary_from_mapping({"kitty": "domestic cat"})
    assert vocabulary["kitty"].label == "kitty" and vocabulary["kitty"].wnid == "n02121808"


def test_a_run_record_names_its_synsets_and_how_many_classes_each_sums():
    voc = parse_synset_list("voc")
    recorded = recorded_synsets(LabelConfig(synsets=voc).record())
    assert [(s["wnid"], s["label"], s["classes"]) for s in recorded] == [
        (s.wnid, s.label, len(s.class_indices)) for s in voc]
    assert {s["label"]: s["classes"] for s in recorded}["dog"] == 118
    # Top-k with a built-in vocabulary: the record names it only; its synsets are read again.
    top_k = recorded_synsets(LabelConfig().record())
    assert [(s["wnid"], s["classes"]) for s in top_k] == [
        (s.wnid, len(s.class_indices)) for s in concepts()]
    assert sum(s["classes"] for s in top_k) == 1000  # the concepts hold every class once


def test_a_top_k_run_record_gives_its_vocabulary_file_s_synsets_after_the_file_is_gone(tmp_path):
    path = tmp_path / "vocabulary.txt"
    path.write_text("# retrievers, a cat, and the dogs\nclasses:207+208\ntabby\nn02084071\n")
    synsets = top_k_vocabulary(str(path))
    record = LabelConfig(vocabulary=str(path), vocabulary_synsets=synsets).record()
    path.unlink()
    assert recorded_top_k_vocabulary(record) == synsets
    assert [len(s.class_indices) for s in synsets] == [2, 1, 118]
    # A built-in vocabulary is recorded by name only and read from the package.
    assert recorded_top_k_vocabulary(LabelConfig().record()) == concepts()
