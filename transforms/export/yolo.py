"""YOLO detection format, Ultralytics layout: ``images/NAME``, ``labels/STEM.txt`` (one
line per box: class, centre x, centre y, width, height, all but the class divided by the
image's size) and ``data.yaml`` naming the classes (0-based: category id - 1)."""
from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Iterable

from transforms.export.labelled import CategoryIndex, LabelledImage

DATA_YAML = "data.yaml"


def write_yolo(out: Path, images: Iterable[tuple[LabelledImage, str]], index: CategoryIndex) -> Path:
    """``images``: (image, its file name in ``out/images``). An image without boxes gets
    an empty labels file: a background image to YOLO."""
    labels = out / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    for image, name in images:
        lines = []
        for box in image.boxes:
            cx, cy = (box.x0 + box.x1) / 2 / image.width, (box.y0 + box.y1) / 2 / image.height
            w, h = (box.x1 - box.x0) / image.width, (box.y1 - box.y0) / image.height
            lines.append(f"{index[box].id - 1} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        (labels / (posixpath.splitext(name)[0] + ".txt")).write_text("".join(lines))
    path = out / DATA_YAML
    # JSON strings are YAML strings: names with quotes or colons stay intact.
    names = "".join(f"  {c.id - 1}: {json.dumps(c.name)}\n" for c in index.all())
    path.write_text(f"path: {json.dumps(str(out.resolve()))}\ntrain: images\nval: images\n"
                    f"names:\n{names}")
    return path
