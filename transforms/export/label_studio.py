"""Label Studio tasks with predictions, for review by people: ``tasks.json`` (a JSON list
of tasks, each ``data.image`` and one prediction of ``rectanglelabels`` in percent of the
image, with scores and ``model_version``) and ``label_config.xml``, the labelling
interface whose names the predictions use (``label`` on ``image``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import quoteattr

from transforms.export.labelled import CategoryIndex, LabelledImage

TASKS_FILE = "tasks.json"
CONFIG_FILE = "label_config.xml"
FROM_NAME, TO_NAME = "label", "image"


def write_label_studio(out: Path, images: Iterable[tuple[LabelledImage, str]],
                       index: CategoryIndex, model_version: str) -> Path:
    """``images``: (image, the URL or path Label Studio loads it from). Streams the list."""
    path = out / TASKS_FILE
    with path.open("w") as f:
        f.write("[")
        for n, (image, url) in enumerate(images):
            f.write(("," if n else "") + "\n" + json.dumps(_task(image, url, index, model_version)))
        f.write("\n]\n")
    labels = "".join(f"    <Label value={quoteattr(c.name)}/>\n" for c in index.all())
    (out / CONFIG_FILE).write_text(
        f'<View>\n  <Image name="{TO_NAME}" value="$image"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">\n{labels}'
        f"  </RectangleLabels>\n</View>\n")
    return path


def _task(image: LabelledImage, url: str, index: CategoryIndex, model_version: str) -> dict:
    results = [{
        "id": f"box{i}", "type": "rectanglelabels", "from_name": FROM_NAME, "to_name": TO_NAME,
        "original_width": image.width, "original_height": image.height, "image_rotation": 0,
        "value": {"x": 100 * box.x0 / image.width, "y": 100 * box.y0 / image.height,
                  "width": 100 * (box.x1 - box.x0) / image.width,
                  "height": 100 * (box.y1 - box.y0) / image.height,
                  "rotation": 0, "rectanglelabels": [index[box].name]},
        "score": box.rank,
    } for i, box in enumerate(image.boxes)]
    # The prediction's own score (Label Studio sorts tasks by it): its best box's.
    score = max((box.rank for box in image.boxes), default=0.0)
    return {"data": {"image": url},
            "predictions": [{"model_version": model_version, "score": score, "result": results}]}
