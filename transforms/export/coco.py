"""COCO detection format: one JSON file with ``images``, ``annotations`` (``bbox`` as
[x, y, width, height] in pixels, with ``area`` and ``score``) and ``categories`` (one per
synset, its wnid kept)."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from transforms.export.labelled import CategoryIndex, LabelledImage

ANNOTATIONS_FILE = "annotations.json"


def write_coco(out: Path, images: Iterable[tuple[LabelledImage, str]], index: CategoryIndex,
               info: dict) -> Path:
    """``images``: (image, file_name) pairs, file_name as COCO tools join it to the images
    folder. Streams: images are written as they come, annotations wait in a temporary
    file, so memory does not grow with the number of images."""
    path = out / ANNOTATIONS_FILE
    annotation_id = 0
    with tempfile.TemporaryFile("w+", dir=out) as annotations, path.open("w") as f:
        f.write('{"info": %s, "licenses": [], "images": [' % json.dumps(info))
        for image_id, (image, name) in enumerate(images, start=1):
            f.write(("," if image_id > 1 else "") + json.dumps(
                {"id": image_id, "file_name": name, "width": image.width, "height": image.height}))
            for box in image.boxes:
                annotation_id += 1
                width, height = box.x1 - box.x0, box.y1 - box.y0
                annotations.write(("," if annotation_id > 1 else "") + json.dumps({
                    "id": annotation_id, "image_id": image_id, "category_id": index[box].id,
                    "bbox": [round(v, 2) for v in (box.x0, box.y0, width, height)],
                    "area": round(width * height, 2), "iscrowd": 0,
                    "score": round(box.rank, 4), "peak_probability": round(box.score, 4)}))
        f.write('], "annotations": [')
        annotations.seek(0)
        shutil.copyfileobj(annotations, f)
        f.write('], "categories": %s}' % json.dumps(
            [{"id": c.id, "name": c.name, "supercategory": "", "wnid": c.wnid, "label": c.label}
             for c in index.all()]))
    return path
