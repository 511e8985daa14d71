"""python -m pipeline.export: a finished run's boxes in the formats detectors and
labelling tools read.

    python -m pipeline.export --labels OUTPUT_DIR --format coco|yolo|voc|labelstudio \\
        --out DIR [--min-score S] [--min-confidence C] [--max-boxes-per-synset N]
        [--images copy|link|none]

coco: DIR/annotations.json (train detectors: Detectron2, MMDetection, torchvision);
yolo: DIR/data.yaml, DIR/labels/, DIR/images/ (Ultralytics); voc: DIR/Annotations/,
DIR/JPEGImages/; labelstudio: DIR/tasks.json with predictions and DIR/label_config.xml
(import both into a Label Studio project to review the boxes). Categories are the run's
synsets (its --synsets, or in top-k mode its whole vocabulary) in the run's order, so
runs with the same synsets export the same ids. OUTPUT_DIR may be on any Beam
filesystem; DIR is local. A run without _SUCCESS is refused: its tables may be partial.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from apache_beam.io.filesystems import FileSystems

from pipeline.console import exit_with
from pipeline.filesystems import FILESYSTEM_EPILOG, StoreError, check_stores, parse_with_filesystems
from pipeline.options import user_path
from pipeline.outputs import (SUCCESS, OutputError, check_folder_can_be_made, is_finished,
                              iter_table_rows, read_run_record)
from transforms.export.coco import write_coco
from transforms.export.label_studio import write_label_studio
from transforms.export.labelled import (CategoryIndex, LabelledImage, UniqueNames, categories,
                                        labelled_images)
from transforms.export.pascal_voc import IMAGES as VOC_IMAGES
from transforms.export.pascal_voc import write_pascal_voc
from transforms.export.yolo import write_yolo
from transforms.vocab.vocabularies import recorded_synsets

FORMATS = ("coco", "yolo", "voc", "labelstudio")
IMAGE_MODES = ("copy", "link", "none")
# Where each format keeps the images; and whether it needs them beside the labels.
IMAGE_FOLDERS = {"coco": "images", "yolo": "images", "voc": VOC_IMAGES, "labelstudio": "images"}
DEFAULT_IMAGES = {"coco": "none", "yolo": "copy", "voc": "copy", "labelstudio": "none"}
# Formats with a label file per photo, named by the photo's file name in the export.
FILE_PER_PHOTO = ("yolo", "voc")
LABEL_COLUMNS = ["image_uri", "width", "height", "boxes"]
LOCAL_FILES_URL = "/data/local-files/?d="


class ExportError(Exception):
    """A mistake in what to export or where (exit 2, nothing written)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.export",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=FILESYSTEM_EPILOG)
    parser.add_argument("--labels", type=user_path, required=True, metavar="DIR",
                        help="output folder of a finished pipeline run (any Beam filesystem)")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", type=user_path, required=True, metavar="DIR",
                        help="local folder to write to: new or empty")
    parser.add_argument("--min-score", type=float, default=0.0, metavar="S",
                        help="leave out boxes scoring below S (default: keep every box)")
    parser.add_argument("--min-confidence", type=float, default=0.0, metavar="C",
                        help="leave out boxes less likely than C to be right (their confidence; "
                             "needs a run that gave boxes one). Default: keep every box")
    parser.add_argument("--max-boxes-per-synset", type=int, default=None, metavar="N",
                        help="keep each image's N best boxes of each synset (default: all)")
    parser.add_argument("--images", choices=IMAGE_MODES, default=None,
                        help="put the photos in the export: copy them (from any filesystem), "
                             "link them (local photos), or none (they stay where they are: coco "
                             "and labelstudio name each by its URI, a voc annotation in its "
                             "source; not for yolo). Default: copy for yolo and voc, which need "
                             "them beside the labels; none for coco and labelstudio")
    args, args.filesystems = parse_with_filesystems(parser, argv)
    if args.max_boxes_per_synset is not None and args.max_boxes_per_synset < 1:
        parser.error("--max-boxes-per-synset must be at least 1")
    for flag, value in (("--min-score", args.min_score), ("--min-confidence", args.min_confidence)):
        if not 0 <= value < 1:
            parser.error(f"{flag} is a probability in [0, 1), got {value}")
    args.images = args.images or DEFAULT_IMAGES[args.format]
    if args.format == "yolo" and args.images == "none":
        # Its label files name no photo: YOLO pairs them by file name under images/.
        parser.error("--images none: YOLO pairs each photo with its labels by file name "
                     "under images/, so the photos must be there: give --images copy or link")
    return args


def require_local(uri: str) -> None:
    """--images link links local files only."""
    if FileSystems.get_scheme(uri) not in (None, "file"):
        raise ExportError(f"--images link needs local photos, and {uri} is not: use --images copy")


class ImagePlacer:
    """Names each photo in the export (its file name, made unique), puts it in the
    export's image folder (copy or link; with ``none`` it stays where it is) and says
    how labels refer to it."""

    def __init__(self, folder: Path, mode: str, file_per_photo: bool):
        self._folder, self._mode = folder, mode
        # Unique names are remembered: with none, only where label files need them, so
        # that a COCO or Label Studio export's memory does not grow with its photos.
        self._named = mode != "none" or file_per_photo
        self._names = UniqueNames()
        if mode != "none":
            folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, uri: str) -> str:
        """The photo's file name in the export, which also names its label file: never
        its URI, or that would be written beside the photo, outside the export."""
        if not self._named:
            return uri
        name = self._names(uri)
        if self._mode == "none":
            return name
        target = self._folder / name
        if self._mode == "link":
            require_local(uri)
            os.symlink(os.path.abspath(uri.removeprefix("file://")), target)
        else:
            with FileSystems.open(uri) as source, target.open("wb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
        return name

    def reference(self, uri: str, name: str) -> str:
        """How COCO's ``file_name`` names a photo: its file name in the export's image
        folder, or with ``none`` its URI."""
        return uri if self._mode == "none" else name

    def url(self, uri: str, name: str) -> str:
        """How Label Studio loads a photo: its URI as it is (gs://, s3:// with cloud
        storage set up, http), or a placed photo through its local-files storage
        (``LOCAL_FILES_SERVING_ENABLED=true``, ``LOCAL_FILES_DOCUMENT_ROOT=/``)."""
        if self._mode == "none":
            return uri
        return LOCAL_FILES_URL + str((self._folder / name).resolve()).lstrip("/")


def placed(images: Iterable[LabelledImage], placer: ImagePlacer) -> Iterator[tuple[LabelledImage, str]]:
    for image in images:
        yield image, placer(image.uri)


def export(args: argparse.Namespace) -> dict:
    """Write the export; returns what was written (counts, the main file)."""
    if not is_finished(args.labels):
        raise ExportError(f"{args.labels} has no {SUCCESS}: the run did not finish, or failed "
                          "its checks (see its run.json); export a finished run")
    record = read_run_record(args.labels)
    if args.min_confidence > 0 and not (record.get("config") or {}).get("confidence"):
        raise ExportError(f"--min-confidence: the boxes of {args.labels} have no confidence (a "
                          "run with --confidence none, other settings than the calibration's, "
                          "or made before confidences): filter on --min-score")
    check_folder_can_be_made("--out", args.out)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"--out {out} is not empty: give a new or empty folder")
    if args.images == "link":  # before anything is written, as far as the first photo tells
        first = next(iter_table_rows(args.labels, "labels", ["image_uri"]), None)
        if first:
            require_local(first["image_uri"])
    out.mkdir(parents=True, exist_ok=True)
    synsets = recorded_synsets(record["config"])
    index = CategoryIndex(categories([(s["wnid"], s["label"]) for s in synsets]))
    placer = ImagePlacer(out / IMAGE_FOLDERS[args.format], args.images,
                         args.format in FILE_PER_PHOTO)
    counts = {"images": 0, "boxes": 0}

    def counted(images: Iterable[LabelledImage]) -> Iterator[LabelledImage]:
        for image in images:
            counts["images"] += 1
            counts["boxes"] += len(image.boxes)
            yield image

    images = counted(labelled_images(iter_table_rows(args.labels, "labels", LABEL_COLUMNS),
                                     args.min_score, args.max_boxes_per_synset,
                                     args.min_confidence))
    entries = placed(images, placer)
    if args.format == "coco":
        path = write_coco(out, ((image, placer.reference(image.uri, name))
                                for image, name in entries), index, {
            "description": f"weak labels of {args.labels}", "version": _model_version(record),
            "date_created": record["started_at"]})
    elif args.format == "yolo":
        path = write_yolo(out, entries, index)
    elif args.format == "voc":
        path = write_pascal_voc(out, entries, index)
    else:
        path = write_label_studio(out, ((image, placer.url(image.uri, name))
                                        for image, name in entries), index, _model_version(record))
    return {**counts, "categories": len(index.all()), "path": str(path)}


def _model_version(record: dict) -> str:
    """The run as a model version: its model and when it started."""
    return f"{record['model']} {record['started_at']}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_stores([args.labels], args.filesystems)
        written = export(args)
    except (ExportError, OutputError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{written['images']} images, {written['boxes']} boxes, {written['categories']} "
          f"categories as {args.format}: {written['path']}")
    return 0


if __name__ == "__main__":
    exit_with(main, "the export did not finish, and its --out folder holds part of it; "
                     "remove that folder, or give a new one, and export again")
