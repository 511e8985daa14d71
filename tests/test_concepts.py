"""The concept vocabulary (the default top-k vocabulary), its generator's rule, top-k
vocabulary files and image-level scores."""
import json
from pathlib import Path

import numpy as np
import pytest

from tools.build_concepts import JOINED, build, first_senses
from transforms.maps.multiscale import pooled_scores
from transforms.vocab.synsets import NUM_CLASSES, SynsetError, class_names, class_wnids, resolve_synset
from transforms.vocab.vocabularies import concepts, top_k_vocabulary

DATA_DIR = Path(__file__).resolve().parents[1] / "transforms" / "vocab" / "data"


def _by_label():
    return {c.label: c for c in concepts()}


def _names(concept):
    """The short names of a concept's ImageNet classes."""
    return {class_names()[i].split(",")[0] for i in concept.class_indices}


def test_every_imagenet_class_is_in_exactly_one_concept():
    indices = sorted(i for c in concepts() for i in c.class_indices)
    assert indices == list(range(NUM_CLASSES))
    labels = [c.label for c in concepts()]
    assert len(set(labels)) == len(labels)  # names tell concepts apart
    assert len({c.wnid for c in concepts()}) == len(concepts())


def test_each_concept_is_a_wordnet_synset_over_its_classes_but_the_hand_joined_ones():
    joined = {i for i, wnid in enumerate(class_wnids()) if wnid in JOINED}
    assert len(joined) == len(JOINED)  # every join names an ImageNet class
    for concept in concepts():
        rest = set(concept.class_indices) - joined
        assert rest <= set(resolve_synset(concept.wnid).class_indices), concept.label


def test_the_hand_review_joins_what_a_person_names_with_one_word():
    concept = _by_label()
    assert _names(concept["train"]) == {"bullet train", "electric locomotive", "steam locomotive",
                                       "freight car", "passenger car"}
    assert _names(concept["screen"]) == {"monitor", "screen", "television"}
    assert _names(concept["radio"]) == {"radio"}
    assert {"catamaran", "trimaran"} <= _names(concept["boat"]) and "schooner" in _names(concept["ship"])
    assert _names(concept["sheep"]) == {"ram", "bighorn"}
    assert "web site" not in _names(concept["computer"]) and "slide rule" not in _names(concept["computer"])
    assert "filing cabinet" in concept and "file" not in concept
    assert not {"communication system", "locomotive", "shield"} & set(concept)


def test_concepts_are_the_words_people_use():
    concept = _by_label()
    assert concept["dog"].class_indices == resolve_synset("n02084071").class_indices  # all 118
    assert len(concept["bird"].class_indices) == 59
    for word in ("cat", "car", "truck", "bus", "bicycle", "boat", "ship", "aircraft", "chair",
                 "bottle", "fish", "snake", "monkey", "horse", "sheep", "sofa", "train"):
        assert word in concept, word
    assert _names(concept["cat"]) >= {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert _names(concept["bicycle"]) == {"bicycle-built-for-two", "mountain bike"}
    # The hand review's exclusions hold: no superordinates such as food or tool.
    assert not {"food", "produce", "tool", "vehicle", "animal", "device"} & set(concept)


def _fake_wordnet():
    """entity > vehicle > car > {cab, jeep}; vehicle > bicycle > tandem;
    entity > animal > dog > {terrier > airedale, boxer}; entity > amphibian > axolotl;
    entity > cap (hat) > beret; entity > lens > cap (lens cap, the word's 2nd sense)."""
    tree = {"entity": [], "vehicle": ["entity"], "car": ["vehicle"], "cab": ["car"],
            "jeep": ["car"], "bicycle": ["vehicle"], "tandem": ["bicycle"],
            "animal": ["entity"], "dog": ["animal"], "terrier": ["dog"], "airedale": ["terrier"],
            "boxer": ["dog"], "amphibian": ["entity"], "axolotl": ["amphibian"],
            "cap": ["entity"], "beret": ["cap"], "lens": ["entity"], "lens cap": ["lens"]}
    lemmas = {"lens cap": ["cap", "lens cap"]}
    synsets = {w: [lemmas.get(w, [w]), parents] for w, parents in tree.items()}
    classes = [[w, w] for w in ("cab", "jeep", "tandem", "airedale", "boxer", "axolotl",
                                "beret", "lens cap")]
    senses = {w: w for w in tree} | {"cap": "cap"}  # "cap" is first the hat
    zipf = {"entity": 3.0, "vehicle": 4.8, "car": 5.4, "cab": 3.0, "jeep": 3.7, "bicycle": 4.0,
            "tandem": 2.9, "animal": 4.8, "dog": 5.1, "terrier": 3.2, "airedale": 2.0,
            "boxer": 4.0, "amphibian": 3.4, "axolotl": 2.5, "cap": 4.3, "beret": 3.0,
            "lens": 3.0, "lens cap": 4.0}
    return synsets, classes, senses, zipf.__getitem__


def test_the_rule_picks_the_most_inclusive_common_synset_below_superordinates():
    synsets, classes, senses, zipf = _fake_wordnet()
    assigned = {name: [classes[i][0] for i in indices] for _, name, indices in build(synsets, classes, senses, zipf)}
    assert assigned["car"] == ["cab", "jeep"]  # vehicle is above car, a more common word
    assert assigned["bicycle"] == ["tandem"]
    assert assigned["dog"] == ["airedale", "boxer"]  # terrier and boxer are rarer than dog
    assert assigned["axolotl"] == ["axolotl"]  # no common synset above it: its own concept
    # "cap" is the hat (the word's first sense); the lens cap keeps its own name.
    assert assigned["cap"] == ["beret"] and assigned["lens cap"] == ["lens cap"]
    assert not {"vehicle", "animal", "terrier", "entity"} & set(assigned)


def test_the_hand_review_moves_a_class_to_another_concept_or_its_own_and_renames():
    synsets, classes, senses, zipf = _fake_wordnet()
    made = build(synsets, classes, senses, zipf,
                 joined={"tandem": ("car", "why"), "boxer": ("boxer", "why")},
                 named={"car": ("automobile", "why")})
    assigned = {name: [classes[i][0] for i in indices] for _, name, indices in made}
    assert assigned["automobile"] == ["cab", "jeep", "tandem"] and "bicycle" not in assigned
    assert assigned["dog"] == ["airedale"] and assigned["boxer"] == ["boxer"]
    assert sorted(i for _, _, indices in made for i in indices) == list(range(len(classes)))


def test_index_noun_gives_each_lemma_its_first_sense(tmp_path):
    (tmp_path / "index.noun").write_text(
        "  1 This software and database is being provided\n"
        "dog n 7 5 @ ~ #m #p %p 7 1 02084071 10114209 10023039 09886220 07676602 03901548 02710044  \n"
        "lens_cap n 1 1 @ 1 0 03656484  \n")
    assert first_senses(tmp_path / "index.noun") == {"dog": "n02084071", "lens_cap": "n03656484"}


@pytest.mark.skipif(not Path("/usr/share/wordnet/index.noun").exists(),
                    reason="WordNet (Debian wordnet-base) is not installed: the shipped file is not regenerated")
def test_the_shipped_concepts_are_what_the_generator_makes():
    wordfreq = pytest.importorskip("wordfreq", reason="wordfreq (PyPI) is only needed to regenerate")
    document = json.loads((DATA_DIR / "imagenet_synsets.json").read_text())
    made = build(document["synsets"], document["classes"],
                 first_senses(Path("/usr/share/wordnet/index.noun")),
                 lambda name: wordfreq.zipf_frequency(name, "en"))
    assert made == json.loads((DATA_DIR / "concepts.json").read_text())["concepts"]


def test_a_vocabulary_file_lists_synset_specs_one_per_line(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# animals\ndog\n\n n02121620 \nclasses:444+671\n")
    vocabulary = top_k_vocabulary(str(path))
    assert [s.wnid for s in vocabulary] == ["n02084071", "n02121620", "classes:444+671"]
    path.write_text("dog\ndgo\n")
    with pytest.raises(SynsetError, match="words.txt line 2: 'dgo' names no synset"):
        top_k_vocabulary(str(path))
    path.write_text("# nothing\n")
    with pytest.raises(SynsetError, match="no synset in it"):
        top_k_vocabulary(str(path))
    assert len(top_k_vocabulary("imagenet")) == NUM_CLASSES


def test_pooled_scores_average_the_best_cells_of_each_scale():
    rng = np.random.default_rng(0)
    small, large = rng.dirichlet(np.ones(4), (2, 5)), rng.dirichlet(np.ones(4), (4, 5))
    matrix = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], np.float32)  # synsets {0, 1} and {2}
    per_cell = [p.reshape(-1, 4) @ matrix for p in (small, large)]
    np.testing.assert_allclose(pooled_scores([small, large], matrix, 1.0),
                               np.mean([c.mean(0) for c in per_cell], 0), rtol=1e-6)
    np.testing.assert_allclose(pooled_scores([small, large], matrix, 0.01),  # one cell each
                               np.mean([c.max(0) for c in per_cell], 0), rtol=1e-6)
    # A tenth of 10 and of 20 cells: the best 1 and the best 2.
    best = [np.sort(c, 0)[-n:].mean(0) for c, n in zip(per_cell, (1, 2))]
    np.testing.assert_allclose(pooled_scores([small, large], matrix, 0.1), np.mean(best, 0), rtol=1e-6)
