"""Tests of transforms.vocab.synsets against the shipped WordNet 3.0 / ImageNet-1k data."""
from __future__ import annotations

import numpy as np
import pytest

from transforms.vocab.synsets import (
                                      Synset,
                                      SynsetError,
                                      class_matrix,
                                      class_names,
                                      class_wnids,
                                      parse_synset_spec,
                                      resolve_class_indices,
                                      resolve_synset,
                                      )

DOG = tuple(range(151, 269))


@pytest.mark.parametrize("spec", ["n02084071", "dog", "Dog", " DOMESTIC_DOG ", "canis familiaris"])
def test_dog_is_the_118_dog_classes(spec: str) -> None:
    dog = resolve_synset(spec)
    assert dog.wnid == "n02084071"
    assert dog.label == "dog"
    assert dog.class_indices == DOG
    assert len(dog.class_indices) == 118


@pytest.mark.parametrize(
    ("spec", "wnid", "indices"),
    [
        ("bus", "n02924116", (654, 779, 874)),  # minibus, school bus, trolleybus
        ("n02121620", "n02121620", tuple(range(281, 288))),  # cat, true cat
        ("domestic cat", "n02121808", tuple(range(281, 286))),
        ("n02121808", "n02121808", tuple(range(281, 286))),
        ("horse", "n02374451", (339,)),  # sorrel is the only horse class
        ("bear", "n02131653", (294, 295, 296, 297)),
    ],
)
def test_synset_classes(spec: str, wnid: str, indices: tuple[int, ...]) -> None:
    synset = resolve_synset(spec)
    assert synset.wnid == wnid
    assert synset.class_indices == indices


@pytest.mark.parametrize(("spec", "count"), [("n02958343", 10), ("n01503061", 59), ("bird", 59)])
def test_synset_class_counts(spec: str, count: int) -> None:
    assert len(resolve_synset(spec).class_indices) == count


def test_person_covers_the_three_people_classes() -> None:
    # ImageNet-1k has no "person" class, but three classes are hyponyms of person.
    person = resolve_synset("person")
    assert person.wnid == "n00007846"
    assert [class_names()[i] for i in person.class_indices] == [
        "ballplayer, baseball player",
        "groom, bridegroom",
        "scuba diver",
    ]


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(SynsetError, match=r"close matches:.*\bdog\b"):
        resolve_synset("dgo")


@pytest.mark.parametrize(
    ("name", "wnids"),
    [
        ("cat", ["n02121620", "n02127808"]),  # true cat, big cat
        ("crane", ["n02012849", "n03126707"]),  # the bird (134), the machine (517)
        ("car", ["n02958343", "n02959942"]),  # automobile, railcar
    ],
)
def test_ambiguous_name_lists_candidates(name: str, wnids: list[str]) -> None:
    with pytest.raises(SynsetError, match="Pass the wnid") as error:
        resolve_synset(name)
    for wnid in wnids:
        assert wnid in str(error.value)


def test_ambiguous_name_describes_candidates() -> None:
    with pytest.raises(SynsetError) as error:
        resolve_synset("cat")
    assert "n02121620 (cat, true cat; 7 classes)" in str(error.value)
    assert "n02127808 (big cat, cat; 6 classes)" in str(error.value)


@pytest.mark.parametrize(
    "wnid",
    [
        "n99999999",  # not a WordNet offset
        "n05833840",  # idea, thought: a real WordNet noun above no ImageNet class
    ],
)
def test_wnid_outside_the_set(wnid: str) -> None:
    with pytest.raises(SynsetError, match="covers no ImageNet-1k class"):
        resolve_synset(wnid)


def test_every_class_resolves_to_itself() -> None:
    wnids = class_wnids()
    assert len(wnids) == len(set(wnids)) == 1000
    for index, wnid in enumerate(wnids):
        assert index in resolve_synset(wnid).class_indices


def test_class_names() -> None:
    names = class_names()
    assert len(names) == 1000
    assert names[151].startswith("Chihuahua")
    assert names[0] == "tench, Tinca tinca"


def test_class_list() -> None:
    cats = resolve_class_indices([283, 281, 282, 281])
    assert cats == Synset("classes:281+282+283", ("tabby + tiger cat + Persian cat",), (281, 282, 283))
    assert cats.label == "tabby + tiger cat + Persian cat"
    assert resolve_class_indices(np.array([281, 282, 283])) == cats
    assert parse_synset_spec("classes:281+282+283") == cats
    assert parse_synset_spec(cats.wnid) == cats


@pytest.mark.parametrize("indices", [[], [1000], [-1], [5, 1000], [1.5]])
def test_class_list_validation(indices: list) -> None:
    with pytest.raises(SynsetError):
        resolve_class_indices(indices)


@pytest.mark.parametrize("spec", ["classes:", "classes:281,282", "classes:1+x", "classes:1000"])
def test_bad_class_list_spec(spec: str) -> None:
    with pytest.raises(SynsetError):
        parse_synset_spec(spec)


def test_parse_synset_spec_names_and_wnids() -> None:
    assert parse_synset_spec("dog") == parse_synset_spec("n02084071") == resolve_synset("dog")


def test_class_matrix() -> None:
    synsets = [resolve_synset("dog"), resolve_synset("bus"), resolve_class_indices([0, 1])]
    matrix = class_matrix(synsets)
    assert matrix.shape == (1000, 3)
    assert matrix.dtype == np.float32
    assert set(np.unique(matrix)) == {0.0, 1.0}
    assert matrix.sum(axis=0).tolist() == [118, 3, 2]
    assert np.flatnonzero(matrix[:, 1]).tolist() == [654, 779, 874]
    # One matmul sums each synset's class probabilities.
    probabilities = np.full((2, 1000), 1 / 1000, dtype=np.float32)
    np.testing.assert_allclose(probabilities @ matrix, [[0.118, 0.003, 0.002]] * 2, rtol=1e-5)


def test_class_matrix_rejects_indices_beyond_num_classes() -> None:
    with pytest.raises(ValueError):
        class_matrix([resolve_synset("dog")], num_classes=200)
