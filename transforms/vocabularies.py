"""Vocabularies: named synsets, such as a dataset's classes mapped to ImageNet-1k.

A vocabulary is a JSON object {name: spec or [spec, ...]}; each spec is what
``--synsets`` takes (a wnid, a WordNet name, ``classes:I+J``). A name with one spec is
that synset under the vocabulary's name (its wnid kept); a name with several is the
union of their classes, a class list (``classes:…``) under that name. Built in:
``voc``, the 19 PASCAL VOC classes other than person (``data/voc.json``; the mapping
and its reasons are in ``data/README.md``).
"""
from __future__ import annotations

import importlib.resources
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from transforms.synsets import Synset, SynsetError, parse_synset_spec, resolve_class_indices

BUILTIN = {"voc": "voc.json"}


def named_synset(name: str, specs: str | Sequence[str]) -> Synset:
    """The synset of a vocabulary entry, labelled ``name``.

    Raises:
        SynsetError: a spec names no synset, or the list is empty.
    """
    if isinstance(specs, str):
        specs = [specs]
    synsets = [parse_synset_spec(spec) for spec in specs]
    if not synsets:
        raise SynsetError(f"{name!r}: no synset given")
    if len(synsets) == 1:
        wnid, indices = synsets[0].wnid, synsets[0].class_indices
    else:
        union = resolve_class_indices(i for s in synsets for i in s.class_indices)
        wnid, indices = union.wnid, union.class_indices
    return Synset(wnid, (name,), indices)


def vocabulary_from_mapping(mapping: Mapping[str, str | Sequence[str]]) -> dict[str, Synset]:
    """{name: synset} of a {name: spec or [spec, ...]} mapping.

    Raises:
        SynsetError: an entry that is not a spec or a list of specs, or names no synset.
    """
    vocabulary = {}
    for name, specs in mapping.items():
        if not isinstance(specs, str) and not (
                isinstance(specs, list) and all(isinstance(s, str) for s in specs)):
            raise SynsetError(f"{name!r}: expected a synset spec or a list of them, got {specs!r}")
        try:
            vocabulary[name] = named_synset(name, specs)
        except SynsetError as e:
            raise SynsetError(f"{name!r}: {e}") from None
    return vocabulary


def is_vocabulary(token: str) -> bool:
    """Whether ``token`` names a vocabulary (built in, or a .json file) rather than a synset."""
    return token in BUILTIN or token.endswith(".json")


def load_vocabulary(name_or_path: str) -> dict[str, Synset]:
    """A built-in vocabulary by name, or a JSON file {name: spec or [spec, ...]}.

    Raises:
        SynsetError: the file cannot be read or an entry names no synset.
    """
    if name_or_path in BUILTIN:
        text = (importlib.resources.files(__package__) / "data" / BUILTIN[name_or_path]).read_text()
    else:
        try:
            text = Path(name_or_path).read_text()
        except OSError as e:
            raise SynsetError(f"vocabulary {name_or_path}: {e.strerror or e}; built in: "
                              f"{', '.join(BUILTIN)}") from None
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as e:
        raise SynsetError(f"vocabulary {name_or_path}: not JSON ({e})") from None
    if not isinstance(mapping, dict):
        raise SynsetError(f"vocabulary {name_or_path}: expected a JSON object {{name: synset}}")
    try:
        return vocabulary_from_mapping(mapping)
    except SynsetError as e:
        raise SynsetError(f"vocabulary {name_or_path}: {e}") from None


def parse_synset_list(text: str) -> tuple[Synset, ...]:
    """``--synsets``: comma-separated synset specs and vocabularies (``voc``, a .json
    file), each vocabulary standing for all its synsets.

    Raises:
        SynsetError: see ``parse_synset_spec`` and ``load_vocabulary``.
    """
    synsets: list[Synset] = []
    for token in (t.strip() for t in text.split(",")):
        synsets += load_vocabulary(token).values() if is_vocabulary(token) else [parse_synset_spec(token)]
    return tuple(synsets)
