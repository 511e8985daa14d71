"""Pictures of a finished run's labels (``python -m pipeline.render``): per image, the
photo beside each synset's heatmap and boxes; on request, the maps of each input scale
beside the fused one; and index.html, a sortable contact sheet.

This module reads (tables with pyarrow, images through Beam's FileSystems, so any
filesystem the job could read works) and writes; the drawing is in
``transforms/viz/overlay.py``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from typing import Iterator, Sequence

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.console import exit_with
from pipeline.filesystems import FILESYSTEM_EPILOG, StoreError, check_stores, parse_with_filesystems
from pipeline.options import user_path
from pipeline.outputs import (RUN_RECORD, SUCCESS, OutputError, check_folder_can_be_made,
                              is_finished, iter_labels, names_image, read_image_bytes, table_files)
from transforms.io.records import file_name

# What the colour stands for, by the run's --heat.
HEAT_NOTES = {"probability": "summed class probability",
              "logit": "the synset's logit, normalised to each image's range"}

INSTALL_HINT = "pip install 'fcn-weak-labels[viz]'"
# What a picture needs from a labels row; older tables may lack scale_heatmaps.
COLUMNS = ("image_uri", "width", "height", "boxes", "heatmaps", "top_classes", "scale_heatmaps")
INDEX = "index.html"
THUMBNAILS = "thumbs"


class RenderError(ValueError):
    """A mistake in what was asked for: nothing is rendered."""


def _arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.render",
        description="Pictures of a finished run's labels: per image a PNG with the photo beside "
                    "each synset's fused heatmap (blended over the photo, inferno colour map on a "
                    "fixed 0-1 heat scale) and its boxes, and VIZ/index.html, a contact sheet "
                    "sortable by best score and by name.",
        epilog=f"Needs matplotlib: {INSTALL_HINT}. Exit codes: 0 done; 1 some images could not "
               "be read or decoded (the others are rendered); 2 a mistake in the arguments. "
               + FILESYSTEM_EPILOG)
    parser.add_argument("--labels", type=user_path, required=True, metavar="DIR",
                        help="output directory of a pipeline run (its labels-*.parquet)")
    parser.add_argument("--out", type=user_path, required=True, metavar="VIZ",
                        help="directory for the PNGs and index.html (created if missing)")
    parser.add_argument("--limit", type=_non_negative, default=None, metavar="N",
                        help="render only the first N images of the tables (default: all)")
    parser.add_argument("--scales-of", action="append", default=[], metavar="IMAGE",
                        help="also draw IMAGE's maps at every input scale beside the fused one "
                             "(a URI as in the table, or its file name; repeatable); the job "
                             "must have run with --keep-scale-maps")
    parser.add_argument("--max-side", type=_positive, default=640, metavar="PX",
                        help="longer side of each panel in pixels (default: %(default)s)")
    parser.add_argument("--columns", type=_positive, default=None, metavar="N",
                        help="panels per line of a picture (default: up to 4, lines filled evenly)")
    return parser


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def read_rows(labels: str) -> Iterator[dict]:
    """Labels rows with their heatmaps as arrays, table by table, a batch at a time (so
    --limit reads little); columns an older run's tables lack are left out."""
    return iter_labels(labels, list(COLUMNS), batch_rows=64, optional=COLUMNS)


def _read_json(path: str) -> dict | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read())


def find_rows(labels: str, images: list[str]) -> dict[str, dict]:
    """The labels row of each of ``images`` (URI or file name). Reads every row, since an
    image may sit in two of them. Raises RenderError for an image found in no row, or
    in several."""
    found = {image: [] for image in images}
    if images:
        for row in read_rows(labels):
            for image in images:
                if names_image(image, row["image_uri"]):
                    found[image].append(row)
    for image, matched in found.items():
        if not matched:
            raise RenderError(f"--scales-of {image}: no such image in the labels tables "
                              "(give its URI as in the image_uri column, or its file name)")
        if len(matched) > 1:
            raise RenderError(f"--scales-of {image} matches {len(matched)} images ("
                              + ", ".join(r["image_uri"] for r in matched[:5])
                              + "): give the full URI")
    return {image: matched[0] for image, matched in found.items()}


class _Stems:
    """A distinct, filesystem-safe file stem per URI: the image's own name, numbered
    when two images share it (photos/a/1.jpg, photos/b/1.jpg)."""

    def __init__(self):
        self._stems: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, uri: str) -> str:
        if uri not in self._stems:
            name = file_name(uri)
            base = re.sub(r"[^\w.-]", "_", name.rsplit(".", 1)[0] if "." in name[1:] else name)
            base = base or "image"
            stem, n = base, 1
            while stem in self._taken:
                n += 1
                stem = f"{base}-{n}"
            self._taken.add(stem)
            self._stems[uri] = stem
        return self._stems[uri]


def _write(path: str, data: bytes, mime_type: str) -> None:
    with FileSystems.create(path, mime_type=mime_type,
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


def render(labels: str, out: str, limit: int | None = None, scales_of: Sequence[str] = (),
           max_side: int = 640, columns: int | None = None) -> int:
    """Render the pictures and the contact sheet; returns the exit code (see --help).
    Raises RenderError for a mistake in what was asked (nothing is written then)."""
    from transforms.viz import overlay

    check_folder_can_be_made("--out", out)
    tables = table_files(labels, "labels")
    if not tables:
        raise RenderError(f"no labels tables (labels-*.parquet) in {labels}: give the --output "
                          "directory of a pipeline run")
    if not is_finished(labels):
        print(f"warning: {labels} has no {SUCCESS} marker: the run failed or is unfinished, its "
              "tables may be incomplete", file=sys.stderr)
    scale_rows = find_rows(labels, list(scales_of))
    record = _read_json(FileSystems.join(labels, RUN_RECORD)) or {}
    fusion = (record.get("config") or {}).get("fusion")
    for image, row in scale_rows.items():
        if not row.get("scale_heatmaps"):
            raise RenderError(f"--scales-of {image}: the labels hold no per-scale maps: rerun the "
                              "job with --keep-scale-maps")

    stems = _Stems()
    scale_pictures = {row["image_uri"]: f"{stems(row['image_uri'])}.scales.png"
                      for row in scale_rows.values()}
    entries, failed = [], set()

    def photo_of(row: dict):
        try:
            return overlay.load_photo(read_image_bytes(row["image_uri"]),
                                      (row["height"], row["width"]), max_side)
        except Exception as e:  # one unreadable image must not stop the others
            print(f"warning: {row['image_uri']}: cannot render: {type(e).__name__}: {e}",
                  file=sys.stderr)
            failed.add(row["image_uri"])
            return None

    # One row at a time: memory stays flat however many images the run labelled.
    for row in itertools.islice(read_rows(labels), limit):
        uri, size = row["image_uri"], (row["height"], row["width"])
        photo = photo_of(row)
        if photo is None:
            continue
        stem = stems(uri)
        picture, thumb = f"{stem}.png", f"{THUMBNAILS}/{stem}.jpg"
        _write(FileSystems.join(out, picture),
               overlay.encode(overlay.render_row(row, photo, columns)), "image/png")
        boxes = overlay.row_boxes(row)
        _write(FileSystems.join(out, THUMBNAILS, f"{stem}.jpg"),
               overlay.encode(overlay.thumbnail(photo, size, boxes[0] if boxes else None), "JPEG"),
               "image/jpeg")
        entries.append(overlay.SheetEntry.of_row(row, picture, thumb, scale_pictures.get(uri)))
    scale_rows = {r["image_uri"]: r for r in scale_rows.values()}  # each image once
    for row in scale_rows.values():
        photo = photo_of(row)
        if photo is None:
            continue
        _write(FileSystems.join(out, scale_pictures[row["image_uri"]]),
               overlay.encode(overlay.render_scales(row, photo, fusion)), "image/png")

    counts = record.get("counts") or {}
    note = (f"{len(entries)} images rendered from {labels}"
            + (f" (the run labelled {counts['labelled']})" if "labelled" in counts else "")
            + f". Heat colour: {overlay.DEFAULT_COLORMAP} on a fixed 0-1 scale "
            f"({HEAT_NOTES.get((record.get('config') or {}).get('heat'), 'heat')}), "
            "blended over the photo more opaquely the hotter it is. "
            "Sort by clicking the column headers.")
    index = FileSystems.join(out, INDEX)
    _write(index, overlay.contact_sheet_html(entries, f"Weak labels: {labels}", note).encode(),
           "text/html")
    print(f"{len(entries)} pictures, {len(scale_rows) - len(failed & set(scale_rows))} per-scale "
          f"pictures, {len(failed)} images not rendered; contact sheet: {index}")
    return 1 if failed else 0


def run(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    args, options = parse_with_filesystems(_arg_parser(), argv)
    try:
        import matplotlib  # noqa: F401  (the colour maps)
    except ModuleNotFoundError:
        print(f"error: python -m pipeline.render needs matplotlib: {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        check_stores([args.labels, args.out], options)
        return render(args.labels, args.out, args.limit, args.scales_of, args.max_side, args.columns)
    except (RenderError, OutputError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main() -> None:
    exit_with(run, "the contact sheet (index.html, written last) was not written; a rerun "
                   "into the same --out writes every picture again")


if __name__ == "__main__":
    main()
