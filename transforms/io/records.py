"""The output contract: Parquet schemas of the labels, errors and skipped tables, and
their rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pyarrow as pa

from transforms.vocab.synsets import class_synset

if TYPE_CHECKING:  # the maps need TensorFlow; readers of the tables (export, render) do not
    from transforms.maps.boxes import Box
    from transforms.maps.multiscale import SynsetHeatmaps

# ``score``: the synset's peak probability in the box's heat component; ``confidence``:
# the probability that the box is right (transforms.maps.confidence), null where the run
# had no confidence model (and in runs made before it existed, which lack the field).
BOX = pa.struct([
    ("synset", pa.string()), ("label", pa.string()), ("score", pa.float32()),
    ("x0", pa.float32()), ("y0", pa.float32()), ("x1", pa.float32()), ("y1", pa.float32()),
    ("confidence", pa.float32()),
])
# ``values`` is the heat (see LABELS_SCHEMA's ``heat``), ``probabilities`` the synset's
# probability per cell, on the same grid; ``score`` the synset's image-level score (its
# probability averaged over the cells where it is highest, see
# transforms.maps.multiscale.pooled_scores), what top-k mode ranks by.
HEATMAP = pa.struct([
    ("synset", pa.string()), ("label", pa.string()), ("score", pa.float32()), ("height", pa.int32()),
    ("width", pa.int32()), ("values", pa.list_(pa.float32())),
    ("probabilities", pa.list_(pa.float32())),
])
# A synset's map at one input scale, resampled to the fused heatmap's grid (kept on request).
SCALE_HEATMAP = pa.struct([
    ("synset", pa.string()), ("scale", pa.string()), ("height", pa.int32()),
    ("width", pa.int32()), ("values", pa.list_(pa.float32())),
])
TOP_CLASS = pa.struct([
    ("index", pa.int32()), ("wnid", pa.string()), ("label", pa.string()), ("score", pa.float32()),
])
# What identifies the version of an input an output row was made from; incremental runs
# compare them. Null where unknown (a file that could not even be looked at).
SOURCE_FIELDS = [
    ("source_size", pa.int64()), ("source_modified", pa.float64()),  # bytes; Unix time, s
    ("content_sha256", pa.string()),  # only with --content-hash
]
LABELS_SCHEMA = pa.schema([
    ("image_uri", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("model", pa.string()), ("heat", pa.string()),  # what heatmap values are: logit or probability
    ("boxes", pa.list_(BOX)), ("heatmaps", pa.list_(HEATMAP)),
    ("top_classes", pa.list_(TOP_CLASS)), ("scale_heatmaps", pa.list_(SCALE_HEATMAP)),
    *SOURCE_FIELDS,
])
ERRORS_SCHEMA = pa.schema([
    ("image_uri", pa.string()), ("stage", pa.string()), ("error_type", pa.string()),
    ("message", pa.string()), *SOURCE_FIELDS,
])
SKIPPED_SCHEMA = pa.schema([("image_uri", pa.string()), *SOURCE_FIELDS])


@dataclass(frozen=True)
class LabelBox:
    """A box of a labels row, in original image pixels (x0, y0 inclusive, x1, y1
    exclusive), as its readers (pictures, exports) take it."""

    synset: str
    label: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float
    confidence: float | None = None

    @property
    def rank(self) -> float:
        """What boxes are ranked by: the confidence where there is one, else the score."""
        return self.score if self.confidence is None else self.confidence


def row_boxes(row: dict) -> list[LabelBox]:
    """A labels row's boxes, best first (as written)."""
    return [LabelBox(b["synset"], b["label"], float(b["score"]), float(b["x0"]), float(b["y0"]),
                     float(b["x1"]), float(b["y1"]),
                     None if b.get("confidence") is None else float(b["confidence"]))
            for b in row.get("boxes") or []]


def heatmap_values(entry: dict, field: str = "values") -> np.ndarray:
    """A heatmaps (or scale_heatmaps) entry of a labels row back as its (height, width)
    array: the inverse of the row-major ``values`` (or ``probabilities``) list written here."""
    return np.asarray(entry[field], np.float32).reshape(entry["height"], entry["width"])


def file_name(uri: str) -> str:
    """The file name at the end of an image URI or path."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SourceFile:
    """An input as found: its URI, size in bytes, modification time (Unix seconds) and,
    when asked for, the sha256 of its content."""

    uri: str
    size: int | None = None
    modified: float | None = None
    sha256: str | None = None

    def fields(self) -> dict:
        return {"image_uri": self.uri, "source_size": self.size,
                "source_modified": self.modified, "content_sha256": self.sha256}


def label_row(source: SourceFile, heatmaps: SynsetHeatmaps, boxes: Mapping[str, Sequence[Box]],
              model: str, heat: str, top_k: int, keep_scale_maps: bool = False) -> dict:
    """One labels row: the ``boxes`` of every synset (by wnid) best first (by confidence
    where they have one, else by score), the fused heatmaps and probability maps
    (row-major), the image's top classes and, if asked for, every scale's heatmaps."""
    ranked = sorted(((synset, box) for synset in heatmaps.synsets
                     for box in boxes.get(synset.wnid, ())), key=lambda s_box: -s_box[1].rank)
    rows = [{"synset": synset.wnid, "label": synset.label, "score": box.score, "x0": box.x0,
             "y0": box.y0, "x1": box.x1, "y1": box.y1, "confidence": box.confidence}
            for synset, box in ranked]
    height, width = heatmaps.grid.shape
    top_classes = [(class_synset(index), score) for index, score in heatmaps.top_classes(top_k)]
    return {
        **source.fields(),
        "width": heatmaps.image_size[1],
        "height": heatmaps.image_size[0],
        "model": model,
        "heat": heat,
        "boxes": rows,
        "heatmaps": [
            {"synset": synset.wnid, "label": synset.label, "score": float(heatmaps.scores[i]),
             "height": height, "width": width,
             "values": heatmaps.fused[..., i].ravel().tolist(),
             "probabilities": heatmaps.probability[..., i].ravel().tolist()}
            for i, synset in enumerate(heatmaps.synsets)
        ],
        "top_classes": [
            {"index": synset.class_indices[0], "wnid": synset.wnid, "label": synset.label,
             "score": score}
            for synset, score in top_classes
        ],
        "scale_heatmaps": [
            {"synset": synset.wnid, "scale": str(scale_maps.scale), "height": height,
             "width": width, "values": heatmaps.on_grid[s, ..., i].ravel().tolist()}
            for s, scale_maps in enumerate(heatmaps.per_scale)
            for i, synset in enumerate(heatmaps.synsets)
        ] if keep_scale_maps else [],
    }


def error_record(source: SourceFile, stage: str, error_type: str, message: str) -> dict:
    """One errors row; ``stage`` is where it failed: read, decode, inference, postprocess."""
    return {**source.fields(), "stage": stage, "error_type": error_type, "message": message}


def error_row(source: SourceFile, stage: str, error: BaseException) -> dict:
    """The errors row of an exception."""
    return error_record(source, stage, type(error).__name__, str(error) or repr(error))
