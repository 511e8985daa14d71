"""Generate transforms/vocab/data/concepts.json: the words people use for ImageNet-1k classes.

Each of the 1000 classes goes to exactly one *concept*, a basic-level WordNet synset
("dog" for the 118 breeds, "car" for cabs and convertibles, "bird" for 59 species),
so that a job without --synsets labels images with the names a person would use and
each concept's heatmap holds all of its classes' probability. The rule (after Rosch's
basic level: the most inclusive level whose name is in everyday use, and after
Ordonez et al., "From Large Scale Image Categorization to Entry-Level Categories",
ICCV 2013, who chose ImageNet names by word frequency along the WordNet hierarchy):

1. Candidates are the synsets in ``transforms/vocab/data/imagenet_synsets.json``: the
   classes and their hypernym ancestors. A synset's name is its first lemma.
2. A synset is *common* when it is its name's first (most frequent) noun sense in
   WordNet (``index.noun``) and the name's Zipf frequency in English (PyPI
   ``wordfreq``), less 1 per word after the first, is at least ``MIN_ZIPF`` (3.5:
   "frog" 3.9 and "bicycle" 4.0 are in, "canine" 3.3 and "feline" 3.1 are out).
3. A common synset is *basic-level* unless a synset below it has a more frequent
   name (then it is a superordinate: vehicle has car below it, animal has dog) or it
   is in ``EXCLUDED``, the hand review below.
4. Each class goes to its most inclusive basic-level ancestor, itself included (the
   one covering most classes); a class with none is a concept of its own.
5. The hand review's joins (``JOINED``): a class a person names with the word of
   another concept, which WordNet files elsewhere, joins that concept (locomotives and
   railcars are members of a train in WordNet, not kinds of one; a catamaran is a
   sailboat, filed under vessel rather than boat), or becomes a concept of its own
   when the rule's concept for it is an odd grouping (the slide rule under computer).
6. Two concepts with one name: the smaller takes its first lemma not yet taken, unless
   ``NAMED`` gives the everyday word ("filing cabinet" rather than "file").

Usage (from the repository root):
  apt-get install wordnet-base && pip install wordfreq==3.1.1
  python tools/build_concepts.py
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

MIN_ZIPF = 3.5
EXTRA_WORD_PENALTY = 1.0

# The rule's odd picks, reviewed by hand: {wnid: why it is not a concept}. Their classes
# fall to the next basic-level synset below them, or become concepts of their own.
SUPERORDINATE = "groups things of different shapes, above the basic level"
RARE_SENSE = "the word is common in another sense than this one"
EXCLUDED = {
    "n00021265": f"food: {SUPERORDINATE} (bread, dishes, fruit)",
    "n07705711": f"produce: {SUPERORDINATE} (vegetables, fruit)",
    "n04451818": f"tool: {SUPERORDINATE} (Rosch's own example: hammer, saw)",
    "n04285146": f"sports equipment: {SUPERORDINATE} (balls, barbells, balance beam)",
    "n03309808": f"fabric: {SUPERORDINATE} (towels, bibs, handkerchiefs)",
    "n03932203": f"piece: {SUPERORDINATE} (towels, bibs, handkerchiefs, once fabric is out)",
    "n04377057": f"system: {SUPERORDINATE} (iPod, maze, radio, television)",
    "n04317420": f"stick: {SUPERORDINATE} (crutch, drumstick, flagpole, matchstick)",
    "n04474466": f"trap: {RARE_SENSE} (mousetrap and spider web)",
    "n09409512": f"ridge: {RARE_SENSE} (coral reef and sandbar)",
    "n03247620": f"drug: {RARE_SENSE} (face powder, lipstick)",
    "n03982060": f"pool: {RARE_SENSE} (rain barrel)",
    "n02671780": f"accessory: {RARE_SENSE} (seat belt)",
    "n04362025": f"surface: {RARE_SENSE} (stage)",
    "n04515129": f"upright: {RARE_SENSE} (maypole)",
    "n03282591": f"emblem: {RARE_SENSE} (totem pole)",
    "n13809207": f"part: {RARE_SENSE} (toilet tissue, espresso, cup)",
    "n04605726": f"wrapping: {RARE_SENSE} (book jacket)",
    "n03956922": f"plant: {RARE_SENSE} (lumbermill)",
    "n02727825": f"apparatus: {RARE_SENSE} (photocopier)",
    "n06595351": f"magazine: {RARE_SENSE} (comic book)",
}

# Step 5, the hand review's joins: {class wnid: (wnid of the concept it joins, or its own
# for a concept of its own; why)}. A joined concept keeps its WordNet wnid, which then
# no longer covers every class in it.
TRAIN, SCREEN, BOAT, SHIP = "n04468005", "n04152593", "n02858304", "n04194289"
JOINED = {
    "n03272562": (TRAIN, "electric locomotive: part of a train (in WordNet a member of one)"),
    "n04310018": (TRAIN, "steam locomotive: part of a train (in WordNet a member of one)"),
    "n03393912": (TRAIN, "freight car: a railcar, in WordNet a member of a train"),
    "n03895866": (TRAIN, "passenger car: a railcar, in WordNet a member of a train"),
    "n03782006": (SCREEN, "monitor: a screen (WordNet: electronic equipment, part of a television)"),
    "n04404412": (SCREEN, "television: a screen (WordNet: a system, beside the radio)"),
    "n04041544": ("n04041544", "radio: its own concept once television leaves 'communication system'"),
    "n02981792": (BOAT, "catamaran: a sailboat, which WordNet files under vessel, not boat"),
    "n04483307": (BOAT, "trimaran: a sailboat, which WordNet files under vessel, not boat"),
    "n04147183": (SHIP, "schooner: a sailing ship, which WordNet files under vessel, not ship"),
    "n02415577": ("n02411705", "bighorn: a wild sheep, which WordNet files under bovid, not sheep"),
    "n03791053": ("n03790512", "motor scooter: a two-wheeled motor vehicle, as is the moped in motorcycle"),
    "n03459775": ("n02958343", "grille: the front of a car (in WordNet a part of one)"),
    "n04592741": ("n02686568", "wing: an airplane's (in WordNet a part of one)"),
    "n02895154": ("n02739668", "breastplate: body armor, which the rule put under 'shield'"),
    "n03929855": ("n03929855", "pickelhaube: a helmet, not a shield"),
    "n04238763": ("n04238763", "slide rule: not what a person calls a computer"),
    "n06359193": ("n06359193", "web site: a page, not what a person calls a computer"),
}
# Step 6's exceptions: {wnid: (name, why)} where the first free lemma is not the everyday word.
NAMED = {
    "n03337140": ("filing cabinet", "'file' is first a document"),
}


def first_senses(index_noun: Path) -> dict[str, str]:
    """lemma (lower case, underscores) → wnid of its first, most frequent, noun sense.

    index.noun lines: ``lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt
    tagsense_cnt synset_offset [synset_offset...]``, offsets in sense order.
    """
    senses = {}
    with index_noun.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):  # licence header
                continue
            fields = line.split()
            synset_count = int(fields[2])
            senses[fields[0]] = "n" + fields[-synset_count]
    return senses


def build(synsets: dict, classes: list, senses: dict[str, str], zipf,
          joined: dict[str, tuple[str, str]] = JOINED,
          named: dict[str, tuple[str, str]] = NAMED) -> list[list]:
    """[[wnid, name, [class indices]], ...] ordered by first class index; ``joined`` and
    ``named``: the hand review's steps 5 and 6 (the module's by default)."""
    class_wnids = [wnid for wnid, _ in classes]
    ancestors = [_reachable(wnid, lambda w: synsets[w][1]) for wnid in class_wnids]
    covered: dict[str, set[int]] = defaultdict(set)
    for index, seen in enumerate(ancestors):
        for wnid in seen:
            covered[wnid].add(index)
    children: dict[str, set[str]] = defaultdict(set)
    for wnid in covered:
        for parent in synsets[wnid][1]:
            children[parent].add(wnid)
    below = {wnid: _reachable(wnid, children.__getitem__) - {wnid} for wnid in covered}

    def naturalness(wnid: str) -> float:
        name = synsets[wnid][0][0]
        if senses.get(name.lower().replace(" ", "_")) != wnid:
            return float("-inf")
        return zipf(name) - EXTRA_WORD_PENALTY * name.count(" ")

    natural = {wnid: naturalness(wnid) for wnid in covered}
    basic = {wnid for wnid in covered
             if natural[wnid] >= MIN_ZIPF and wnid not in EXCLUDED
             and all(natural[d] < natural[wnid] for d in below[wnid])}
    members: dict[str, list[int]] = defaultdict(list)
    for index, seen in enumerate(ancestors):
        candidates = seen & basic
        concept = max(candidates, key=lambda w: (len(covered[w]), w)) if candidates else class_wnids[index]
        if class_wnids[index] in joined:  # step 5, the hand review's joins
            concept = joined[class_wnids[index]][0]
        members[concept].append(index)
    concepts = sorted(members.items(), key=lambda item: (-len(item[1]), item[0]))
    taken, result = set(), []
    for wnid, indices in concepts:  # larger concepts keep their first lemma
        lemmas = [named[wnid][0]] if wnid in named else synsets[wnid][0]
        name = next((lemma for lemma in lemmas if lemma not in taken), None)
        if name is None:
            raise SystemExit(f"{wnid}: every lemma of it names a larger concept; review it")
        taken.add(name)
        result.append([wnid, name, sorted(indices)])
    return sorted(result, key=lambda concept: concept[2][0])


def _reachable(start: str, step: Callable[[str], Iterable[str]]) -> set[str]:
    """``start`` and every synset reached from it by repeating ``step`` (wnid → wnids)."""
    seen, pending = set(), [start]
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(step(current))
    return seen


def main() -> None:
    from wordfreq import zipf_frequency

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"),
                        help="directory holding WordNet 3.0's index.noun")
    parser.add_argument("--synsets", type=Path, default=Path("transforms/vocab/data/imagenet_synsets.json"))
    parser.add_argument("--out", type=Path, default=Path("transforms/vocab/data/concepts.json"))
    args = parser.parse_args()

    document = json.loads(args.synsets.read_text(encoding="utf-8"))
    concepts = build(document["synsets"], document["classes"],
                     first_senses(args.wordnet_dir / "index.noun"),
                     lambda name: zipf_frequency(name, "en"))
    assert sorted(i for _, _, indices in concepts for i in indices) == list(range(len(document["classes"])))
    output = {
        "header": {
            "source": f"{document['header']['source']} (index.noun sense order) and "
                      f"{args.synsets.name}",
            "word_frequencies": f"wordfreq {importlib.metadata.version('wordfreq')} (PyPI)",
            "license": "WordNet 3.0 license, Princeton University",
            "generator": "tools/build_concepts.py",
            "rule": {"min_zipf": MIN_ZIPF, "extra_word_penalty": EXTRA_WORD_PENALTY,
                     "excluded": EXCLUDED, "joined": JOINED, "named": NAMED},
            "concepts_format": ["wnid", "name", "class indices"],
        },
        "concepts": concepts,
    }
    args.out.write_text(json.dumps(output, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(concepts)} concepts, {sum(len(c[2]) > 1 for c in concepts)} of several "
          f"classes, written to {args.out}")


if __name__ == "__main__":
    main()
