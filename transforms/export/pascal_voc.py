"""Pascal VOC format: ``Annotations/STEM.xml`` per image, ``JPEGImages/NAME`` beside.
Corners are 1-based and inclusive, as VOC's devkit reads them: xmin = x0 + 1 (the first
column is 1), xmax = x1, rounded to whole pixels (the inverse of
transforms.quality.ground_truth)."""
from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Iterable
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

from transforms.export.labelled import CategoryIndex, LabelledImage

ANNOTATIONS = "Annotations"
IMAGES = "JPEGImages"


def write_pascal_voc(out: Path, images: Iterable[tuple[LabelledImage, str]],
                     index: CategoryIndex) -> Path:
    """``images``: (image, its file name in ``out/JPEGImages``)."""
    annotations = out / ANNOTATIONS
    annotations.mkdir(parents=True, exist_ok=True)
    for image, name in images:
        tree = ElementTree(_annotation(image, name, index))
        indent(tree)
        tree.write(annotations / (posixpath.splitext(name)[0] + ".xml"), encoding="utf-8",
                   xml_declaration=True)
    return annotations


def _annotation(image: LabelledImage, name: str, index: CategoryIndex) -> Element:
    root = Element("annotation")
    SubElement(root, "folder").text = IMAGES
    SubElement(root, "filename").text = name
    SubElement(SubElement(root, "source"), "database").text = image.uri
    size = SubElement(root, "size")
    for tag, value in (("width", image.width), ("height", image.height), ("depth", 3)):
        SubElement(size, tag).text = str(value)
    SubElement(root, "segmented").text = "0"
    for box in image.boxes:
        obj = SubElement(root, "object")
        SubElement(obj, "name").text = index[box].name
        SubElement(obj, "pose").text = "Unspecified"
        SubElement(obj, "truncated").text = "0"
        SubElement(obj, "difficult").text = "0"
        corners = SubElement(obj, "bndbox")
        xmin = min(max(1, round(box.x0) + 1), image.width)
        ymin = min(max(1, round(box.y0) + 1), image.height)
        for tag, value in (("xmin", xmin), ("ymin", ymin),
                           ("xmax", min(max(xmin, round(box.x1)), image.width)),
                           ("ymax", min(max(ymin, round(box.y1)), image.height))):
            SubElement(corners, tag).text = str(value)
    return root
