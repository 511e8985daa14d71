"""What every export reads: a run's labelled images with their boxes, the categories
(one per synset, with stable ids) and unique file names for the images."""
from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from transforms.io.records import LabelBox, file_name, row_boxes


@dataclass(frozen=True)
class LabelledImage:
    uri: str
    width: int
    height: int
    boxes: tuple[LabelBox, ...]


@dataclass(frozen=True)
class Category:
    """One synset as a category: ``id`` from 1 in the run's synset order (the same
    synsets, the same ids); ``name`` its label, followed by its wnid when two synsets
    share a label (ImageNet has two "crane"s and two "maillot"s)."""

    id: int
    wnid: str
    label: str
    name: str


def categories(synsets: Sequence[tuple[str, str]]) -> list[Category]:
    """(wnid, label) pairs in the run's order → categories."""
    labels = [label for _, label in synsets]
    return [Category(i, wnid, label, label if labels.count(label) == 1 else f"{label} {wnid}")
            for i, (wnid, label) in enumerate(synsets, start=1)]


class CategoryIndex:
    """wnid → category; a synset the run's list lacks becomes a new category at the end."""

    def __init__(self, known: Sequence[Category]):
        self._by_wnid = {c.wnid: c for c in known}

    def __getitem__(self, box: LabelBox) -> Category:
        category = self._by_wnid.get(box.synset)
        if category is None:
            category = Category(len(self._by_wnid) + 1, box.synset, box.label,
                                f"{box.label} {box.synset}")
            self._by_wnid[box.synset] = category
        return category

    def all(self) -> list[Category]:
        return sorted(self._by_wnid.values(), key=lambda c: c.id)


def labelled_images(rows: Iterable[dict], min_score: float = 0.0,
                    max_boxes_per_synset: int | None = None,
                    min_confidence: float = 0.0) -> Iterator[LabelledImage]:
    """Labels rows (image_uri, width, height, boxes) → images with the boxes kept: score
    and confidence at least ``min_score`` and ``min_confidence`` (boxes without a
    confidence are kept only when it is 0), at most ``max_boxes_per_synset`` per synset
    (the best: by confidence, else by score)."""
    for row in rows:
        kept: list[LabelBox] = []
        per_synset: dict[str, int] = {}
        for box in sorted(row_boxes(row), key=lambda b: -b.rank):
            count = per_synset.get(box.synset, 0)
            confident = (min_confidence <= 0 if box.confidence is None
                         else box.confidence >= min_confidence)
            if box.score < min_score or not confident or (max_boxes_per_synset is not None
                                                          and count >= max_boxes_per_synset):
                continue
            per_synset[box.synset] = count + 1
            kept.append(box)
        yield LabelledImage(row["image_uri"], int(row["width"]), int(row["height"]), tuple(kept))


class UniqueNames:
    """An image's file name for an export folder: its own, or, when another image had
    it already, with a short digest of its URI before the extension. Remembers the names
    given (a few dozen bytes per image)."""

    def __init__(self):
        self._taken: set[str] = set()

    def __call__(self, uri: str) -> str:
        name = file_name(uri)
        if name in self._taken:
            stem, extension = posixpath.splitext(name)
            name = f"{stem}-{hashlib.sha1(uri.encode()).hexdigest()[:8]}{extension}"
        self._taken.add(name)
        return name
