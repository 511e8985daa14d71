"""Ground-truth boxes from PASCAL VOC XML, COCO JSON or a simple JSON list, as
(image, synset) pairs.

Boxes come out as x0, y0, x1, y1 in pixels with x0, y0 inclusive and x1, y1 exclusive,
as the pipeline writes them. VOC's corners are 1-based and inclusive (xmin 1 is the first
column), so x0 = xmin - 1, x1 = xmax; COCO's [x, y, width, height] and the simple format
are 0-based already. Objects marked ``difficult`` in VOC are left out of the pairs, as
VOC's own evaluation does, and kept apart: a detection measure ignores boxes on them.

Dataset class names become synsets through a vocabulary {class name: synset} (see
``transforms.vocab.vocabularies``: ``voc`` is built in); classes it does not name are counted
and left out. Without one, class names are read as synset specs.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from transforms.vocab.synsets import Synset, SynsetError, parse_synset_spec

FORMATS = ("auto", "voc", "coco", "simple")


class GroundTruthError(ValueError):
    """A ground-truth file that cannot be read, with what is wrong in it."""


@dataclass(frozen=True)
class GroundTruth:
    """The boxes (n, 4) of one synset in one image; ``image`` is the image's file name."""

    image: str
    synset: Synset
    boxes: np.ndarray


@dataclass(frozen=True)
class GroundTruthSet:
    """The (image, synset) pairs of objects to find; the objects marked difficult, as
    pairs of their own; every annotated image's file name, with objects of a mapped
    class or not."""

    pairs: list[GroundTruth]
    unmapped: Counter  # class name → objects left out because no synset was mapped
    difficult: list[GroundTruth] = field(default_factory=list)
    images: tuple[str, ...] = ()


def read_ground_truth(path: str | Path, classes: Mapping[str, Synset] | None = None,
                      fmt: str = "auto") -> GroundTruthSet:
    """Pairs from ``path``: a folder of VOC XML files, one VOC XML file, a COCO JSON file
    or a simple JSON list of {"image", "synset", "boxes": [[x0, y0, x1, y1], …]}."""
    path = Path(path)
    if fmt not in FORMATS:
        raise GroundTruthError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not path.exists():
        raise GroundTruthError(f"{path} does not exist")
    if fmt == "auto":
        fmt = _detect_format(path)
    objects = {"voc": _voc_objects, "coco": _coco_objects, "simple": _simple_objects}[fmt](path)
    return _pairs(objects, _synset_lookup(classes))


def _detect_format(path: Path) -> str:
    if path.is_dir() or path.suffix.lower() == ".xml":
        return "voc"
    data = _load_json(path)
    if isinstance(data, dict) and {"images", "annotations"} <= data.keys():
        return "coco"
    if isinstance(data, list):
        return "simple"
    raise GroundTruthError(f"{path}: neither COCO JSON (images, annotations) nor a simple "
                           "JSON list; give --format")


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GroundTruthError(f"{path}: not readable JSON ({e})") from None


# (image file name, class name, (x0, y0, x1, y1), difficult) per object; an image without
# objects appears once with class name None, so that the set knows every image.
Object = tuple[str, str | None, tuple[float, float, float, float] | None, bool]


def _voc_objects(path: Path) -> Iterable[Object]:
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files and (path / "Annotations").is_dir():  # a VOC dataset's own folder
        files = sorted((path / "Annotations").glob("*.xml"))
    if not files:
        raise GroundTruthError(f"{path}: no VOC .xml files in this folder (nor in an "
                               "Annotations folder in it)")
    for file in files:
        try:
            root = ElementTree.parse(file).getroot()
            image = root.findtext("filename", "").strip() or file.with_suffix(".jpg").name
            yield image, None, None, False
            for obj in root.iter("object"):
                box = obj.find("bndbox")
                xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
                yield (image, obj.findtext("name", "").strip(), (xmin - 1, ymin - 1, xmax, ymax),
                       obj.findtext("difficult", "0").strip() == "1")
        except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as e:
            raise GroundTruthError(f"{file}: not a PASCAL VOC annotation ({e})") from None


def _coco_objects(path: Path) -> Iterable[Object]:
    data = _load_json(path)
    try:
        images = {image["id"]: image["file_name"] for image in data["images"]}
        categories = {c["id"]: c["name"] for c in data["categories"]}
        for name in images.values():
            yield name, None, None, False
        for a in data["annotations"]:
            x, y, w, h = (float(v) for v in a["bbox"])
            yield images[a["image_id"]], categories[a["category_id"]], (x, y, x + w, y + h), False
    except (KeyError, TypeError, ValueError) as e:
        raise GroundTruthError(f"{path}: not COCO JSON (missing or bad {e})") from None


def _simple_objects(path: Path) -> Iterable[Object]:
    data = _load_json(path)
    try:
        for entry in data:
            yield entry["image"], None, None, False
            for box in entry["boxes"]:
                x0, y0, x1, y1 = (float(v) for v in box)
                yield entry["image"], entry["synset"], (x0, y0, x1, y1), False
    except (KeyError, TypeError, ValueError) as e:
        raise GroundTruthError(f"{path}: entries need image, synset and boxes "
                               f"[[x0, y0, x1, y1], …] (bad {e})") from None


def _synset_lookup(classes: Mapping[str, Synset] | None):
    """class name → Synset or None (not mapped)."""
    def lookup(name: str) -> Synset | None:
        if classes is not None:
            return classes.get(name)
        try:
            return parse_synset_spec(name)
        except SynsetError as e:
            raise GroundTruthError(f"class {name!r} is not a synset ({e}); give a class "
                                   "mapping (--classes)") from None
    return lookup


def _pairs(objects: Iterable[Object], lookup) -> GroundTruthSet:
    boxes: dict[bool, dict[tuple[str, Synset], list]] = {False: defaultdict(list),
                                                         True: defaultdict(list)}
    unmapped: Counter = Counter()
    images: dict[str, None] = {}
    for image, name, box, difficult in objects:
        images[image] = None
        if name is None:
            continue
        synset = lookup(name)
        if synset is None:
            if not difficult:
                unmapped[name] += 1
        else:
            boxes[difficult][image, synset].append(box)
    pairs, difficult = (
        [GroundTruth(image, synset, np.array(b, np.float64))
         for (image, synset), b in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1].wnid))]
        for found in (boxes[False], boxes[True]))
    return GroundTruthSet(pairs, unmapped, difficult, tuple(images))
