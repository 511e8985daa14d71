"""The output contract: Parquet schemas of the labels, errors and skipped tables, and
their rows; the labels rows read back with their heatmaps as arrays."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pyarrow as pa

from transforms.io import heatmap_png
from transforms.io.heatmap_png import FLOAT32, PNG8, HeatmapEncodingError

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
# ``heat_png``: the heat (see LABELS_SCHEMA's ``heat``) on a height × width grid, an 8-bit
# PNG of heat_max · code / 255 (transforms/io/heatmap_png.py); ``probability_png``: the
# synset's probability per cell on the same grid, code / 255; ``score``: the synset's
# image-level score (its probability averaged over the cells where it is highest, see
# transforms.maps.multiscale.pooled_scores), what top-k mode ranks by.
HEATMAP = pa.struct([
    ("synset", pa.string()), ("label", pa.string()), ("score", pa.float32()), ("height", pa.int32()),
    ("width", pa.int32()), ("heat_png", pa.binary()), ("heat_max", pa.float32()),
    ("probability_png", pa.binary()),
])
# Which synsets' heatmaps a row keeps (--heatmaps): every synset's, those with a box, none.
HEATMAPS_KEPT = ("all", "boxed", "none")
DEFAULT_HEATMAPS = "all"
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
    ("model", pa.string()), ("heat", pa.string()),  # what heatmap values are: blend, logit, probability
    ("boxes", pa.list_(BOX)), ("heatmaps", pa.list_(HEATMAP)),
    ("top_classes", pa.list_(TOP_CLASS)), ("scale_heatmaps", pa.list_(SCALE_HEATMAP)),
    *SOURCE_FIELDS,
], metadata={heatmap_png.METADATA_KEY: PNG8.encode()})
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


def table_heatmap_encoding(schema: pa.Schema) -> str:
    """How a labels table (its Arrow schema) stores heatmaps: as its metadata says, or
    where that was lost (a table rewritten by another tool) as its fields show."""
    named = (schema.metadata or {}).get(heatmap_png.METADATA_KEY)
    if named is not None:
        encoding = named.decode(errors="replace")
        if encoding not in heatmap_png.ENCODINGS:
            raise HeatmapEncodingError(
                f"heatmap encoding {encoding!r} is unknown to this version, which reads "
                f"{', '.join(heatmap_png.ENCODINGS)}: read the run with the version that wrote it")
        return encoding
    if "heatmaps" not in schema.names:
        return PNG8
    fields = {field.name for field in schema.field("heatmaps").type.value_type}
    return FLOAT32 if "values" in fields else PNG8


def decoded_row(row: dict, encoding: str) -> dict:
    """A labels row as read from a table of ``encoding`` with its heatmaps as (height,
    width) float32 arrays: each ``heatmaps`` entry's ``heat`` and ``probability``, each
    ``scale_heatmaps`` entry's ``heat``."""
    decoded = dict(row)
    try:
        if row.get("heatmaps") is not None:
            decoded["heatmaps"] = [_decoded_heatmap(entry, encoding) for entry in row["heatmaps"]]
        if row.get("scale_heatmaps") is not None:
            decoded["scale_heatmaps"] = [
                {**_fields(entry, "values"), "heat": _array(entry["values"], entry)}
                for entry in row["scale_heatmaps"]]
    except (HeatmapEncodingError, KeyError, TypeError, ValueError) as e:
        raise HeatmapEncodingError(f"{row.get('image_uri')}: heatmaps in {encoding} expected, "
                                   f"{type(e).__name__}: {e}") from e
    return decoded


def _decoded_heatmap(entry: dict, encoding: str) -> dict:
    shape = (entry["height"], entry["width"])
    if encoding == FLOAT32:
        return {**_fields(entry, "values", "probabilities"), "heat": _array(entry["values"], entry),
                "probability": _array(entry["probabilities"], entry)}
    try:
        return {**_fields(entry, "heat_png", "heat_max", "probability_png"),
                "heat": heatmap_png.decode(entry["heat_png"], shape, entry["heat_max"]),
                "probability": heatmap_png.decode(entry["probability_png"], shape, 1.0)}
    except HeatmapEncodingError as e:
        raise HeatmapEncodingError(f"synset {entry['synset']}: {e}") from e


def _fields(entry: dict, *stored: str) -> dict:
    return {k: v for k, v in entry.items() if k not in stored}


def _array(values: Sequence[float], entry: dict) -> np.ndarray:
    return np.asarray(values, np.float32).reshape(entry["height"], entry["width"])


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
              model: str, heat: str, top_k: int, keep_scale_maps: bool = False,
              kept_heatmaps: str = DEFAULT_HEATMAPS) -> dict:
    """One labels row: the ``boxes`` of every synset (by wnid) best first (by confidence
    where they have one, else by score), the fused heatmaps and probability maps of the
    synsets ``kept_heatmaps`` names (as PNGs), the image's top classes and, if asked for,
    every scale's heatmaps (float32, row-major)."""
    ranked = sorted(((synset, box) for synset in heatmaps.synsets
                     for box in boxes.get(synset.wnid, ())), key=lambda s_box: -s_box[1].rank)
    rows = [{"synset": synset.wnid, "label": synset.label, "score": box.score, "x0": box.x0,
             "y0": box.y0, "x1": box.x1, "y1": box.y1, "confidence": box.confidence}
            for synset, box in ranked]
    kept = {"all": range(len(heatmaps.synsets)), "none": (),
            "boxed": [i for i, s in enumerate(heatmaps.synsets) if boxes.get(s.wnid)]}[kept_heatmaps]
    height, width = heatmaps.grid.shape
    return {
        **source.fields(),
        "width": heatmaps.image_size[1],
        "height": heatmaps.image_size[0],
        "model": model,
        "heat": heat,
        "boxes": rows,
        "heatmaps": [_heatmap_entry(heatmaps, i) for i in kept],
        "top_classes": [
            {"index": synset.class_indices[0], "wnid": synset.wnid, "label": synset.label,
             "score": score}
            for synset, score in heatmaps.top_classes(top_k)
        ],
        "scale_heatmaps": [
            {"synset": synset.wnid, "scale": str(scale_maps.scale), "height": height,
             "width": width, "values": heatmaps.on_grid[s, ..., i].ravel().tolist()}
            for s, scale_maps in enumerate(heatmaps.per_scale)
            for i, synset in enumerate(heatmaps.synsets)
        ] if keep_scale_maps else [],
    }


def as_stored(heatmaps: SynsetHeatmaps) -> SynsetHeatmaps:
    """``heatmaps`` with their fused heat and probability maps as a reader of their
    labels row gets them back (``label_row`` stores their 8-bit codes): the maps the job
    makes its boxes from, so that a run's stored heatmaps give its boxes again and the
    confidence is fitted on the maps it scores (pipeline.evaluate makes every hypothesis
    again from them)."""
    tops = [_heat_max(heatmaps.fused[..., i]) for i in range(heatmaps.fused.shape[-1])]
    return replace(heatmaps, fused=heatmap_png.as_stored(heatmaps.fused, tops),
                   probability=heatmap_png.as_stored(heatmaps.probability, 1.0))


def _heat_max(heat: np.ndarray) -> float:
    """The top a synset's heat is stored against: the row's ``heat_max``."""
    return float(heat.max(initial=0.0))


def _heatmap_entry(heatmaps: SynsetHeatmaps, i: int) -> dict:
    synset, heat = heatmaps.synsets[i], heatmaps.fused[..., i]
    height, width = heat.shape
    heat_max = _heat_max(heat)
    return {"synset": synset.wnid, "label": synset.label, "score": float(heatmaps.scores[i]),
            "height": height, "width": width, "heat_png": heatmap_png.encode(heat, heat_max),
            "heat_max": heat_max,
            "probability_png": heatmap_png.encode(heatmaps.probability[..., i], 1.0)}


def error_record(source: SourceFile, stage: str, error_type: str, message: str) -> dict:
    """One errors row; ``stage`` is where it failed: read, decode, inference, postprocess."""
    return {**source.fields(), "stage": stage, "error_type": error_type, "message": message}


def error_row(source: SourceFile, stage: str, error: BaseException) -> dict:
    """The errors row of an exception."""
    return error_record(source, stage, type(error).__name__, str(error) or repr(error))
