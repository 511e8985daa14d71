"""Beam: image URIs from file patterns and manifests, then read and decode them."""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import os
from typing import Iterable, Sequence

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem
from apache_beam.metrics import Metrics
import pyarrow.parquet as pq
from PIL import Image

from transforms.beam.progress import count_listed
from transforms.model.backbones import get_backbone
from transforms.config import METRICS_NAMESPACE, LabelConfig
from transforms.io.decode import decode_image
from transforms.maps.multiscale import check_inputs_fit, largest_input, scale_image
from transforms.io.records import SKIPPED_SCHEMA, SourceFile, error_row

log = logging.getLogger(__name__)

ERRORS = "errors"  # tag of the error-row output of DoFns that can fail per element
# Per-image failures logged one by one per worker process before they are only counted:
# a stale manifest of a million missing files would log a million lines. Every one is in
# the errors table, and run.json counts them by kind.
LOGGED_FAILURES = 10
_failures_seen = itertools.count()  # next() on it is atomic: bundles in threads share it


def logged_failure(row: dict) -> dict:
    """An errors row, logged if it is one of this process's first LOGGED_FAILURES."""
    seen = next(_failures_seen)
    if seen < LOGGED_FAILURES:
        log.warning("%s failed at %s: %s: %s", row["image_uri"], row["stage"],
                    row["error_type"], row["message"])
    elif seen == LOGGED_FAILURES:
        log.warning("more images failed: no longer logged one by one (the errors table "
                    "lists each; run.json and the summary count them by kind)")
    return row


DEFAULT_MANIFEST_COLUMN = "image_uri"
BYTE_ORDER_MARK = "\ufeff"


def manifest_format(path: str) -> str:
    """parquet, csv or text (one URI per line), from the file name."""
    name = path.lower()
    return "parquet" if name.endswith(".parquet") else "csv" if name.endswith(".csv") else "text"


def first_match(pattern: str) -> str:
    """The first file ``pattern`` matches (any Beam filesystem); ValueError, saying how to
    name a folder's files, where it matches none or names a local folder."""
    plain = not any(c in pattern for c in "*?[")
    matched = FileSystems.match([pattern], limits=[1])[0].metadata_list
    # Only a pattern without wildcards can match a folder: Beam lists files only.
    folder_hint = f"give a pattern of its files, e.g. '{pattern.rstrip('/')}/**' (every file below it)"
    if not matched:
        maybe_folder = plain and not os.path.splitext(pattern.rstrip("/"))[1]
        raise ValueError(f"{pattern} matches no file"
                         + (f" (if it is a folder, {folder_hint})" if maybe_folder else ""))
    path = matched[0].path
    if plain and isinstance(FileSystems.get_filesystem(path), LocalFileSystem) \
            and os.path.isdir(path):
        raise ValueError(f"{pattern} is a folder: {folder_hint}")
    return path


def manifest_columns(path: str) -> list[str]:
    """The columns of the CSV (its header) or Parquet (its schema) manifest file at
    ``path``; read at pipeline construction, so a wrong column fails before any work."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        if manifest_format(path) == "parquet":
            # The footer only, on this thread (no read-ahead by Arrow's threads).
            return pq.ParquetFile(f).schema_arrow.names
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte order mark, which
        # would otherwise be part of the first column's name.
        return next(csv.reader(io.TextIOWrapper(f, encoding="utf-8-sig")), [])


def manifest_column_index(path: str, column: str) -> int:
    """Index of ``column`` among the columns of the manifest file at ``path``."""
    columns = manifest_columns(path)
    if column not in columns:
        raise ValueError(f"manifest {path} has no column {column!r} (columns: {columns}); "
                         "set --manifest-column")
    return columns.index(column)


class ReadManifest(beam.PTransform):
    """URIs listed in a manifest: a text file (one per line, '#' comments), a CSV file
    with a header, or a Parquet file; the last two take ``column``."""

    def __init__(self, path: str, column: str = DEFAULT_MANIFEST_COLUMN):
        super().__init__()
        self._path, self._column = path, column

    def expand(self, pbegin):
        kind = manifest_format(self._path)
        if kind != "text":
            # Its first file (the path may be a pattern) says whether the column is there.
            index = manifest_column_index(first_match(self._path), self._column)
        if kind == "parquet":
            column = self._column
            return (pbegin | beam.io.ReadFromParquet(self._path, columns=[column])
                    | beam.Map(lambda row: row[column]))
        lines = pbegin | beam.io.ReadFromText(self._path, skip_header_lines=int(kind == "csv"))
        if kind == "csv":
            return lines | beam.Map(lambda line: next(csv.reader([line]))[index].strip())
        return (lines | beam.Map(_listed_uri)
                | beam.Filter(lambda uri: uri and not uri.startswith("#")))


def _listed_uri(line: str) -> str:
    """A text manifest's line as a URI: without surrounding spaces, nor the byte order
    mark that editors on Windows put before the first line (no URI starts with one)."""
    return line.lstrip(BYTE_ORDER_MARK).strip()


def _counted(uri: str, counter) -> str:
    counter.inc()
    return uri


class ReadImageUris(beam.PTransform):
    """Every distinct image URI matched by ``patterns`` (any Beam filesystem: local,
    gs://, s3://) or listed in ``manifests``, redistributed so that workers share the work."""

    def __init__(self, patterns: Sequence[str] = (), manifests: Sequence[str] = (),
                 manifest_column: str = DEFAULT_MANIFEST_COLUMN):
        super().__init__()
        self._patterns, self._manifests = list(patterns), list(manifests)
        self._column = manifest_column

    def expand(self, pbegin):
        sources = []
        if self._patterns:
            sources.append(pbegin | "Patterns" >> beam.Create(self._patterns)
                           | fileio.MatchAll() | "Paths" >> beam.Map(lambda m: m.path))
        for i, manifest in enumerate(self._manifests):
            sources.append(pbegin | f"Manifest{i}" >> ReadManifest(manifest, self._column))
        listed = Metrics.counter(METRICS_NAMESPACE, "uris_listed")
        matched = Metrics.counter(METRICS_NAMESPACE, "images_matched")
        # A URI listed twice (twice in a manifest, or by overlapping patterns) is processed
        # once. Distinct's shuffle also spreads the work, which was matched on one worker.
        return (sources | beam.Flatten() | "CountListed" >> beam.Map(_counted, listed)
                | "ProgressListed" >> beam.Map(count_listed)
                | "Distinct" >> beam.Distinct() | "CountMatched" >> beam.Map(_counted, matched))


def _failure(counter, source: SourceFile, stage: str, error: Exception):
    counter.inc()
    return beam.pvalue.TaggedOutput(ERRORS, logged_failure(error_row(source, stage, error)))


class StatFiles(beam.DoFn):
    """uri → SourceFile (size, modification time and, with ``content_hash``, the sha256 of
    the content); a file that cannot be looked at goes to the ``errors`` output."""

    def __init__(self, content_hash: bool = False):
        self._content_hash = content_hash

    def setup(self):
        self._failed = Metrics.counter(METRICS_NAMESPACE, "images_failed_read")

    def process(self, uri: str) -> Iterable:
        try:
            metadata = FileSystems.get_filesystem(uri).metadata(uri)
            digest = None
            if self._content_hash:
                digest = hashlib.sha256()
                with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
        except Exception as e:  # any filesystem's error: missing, permission, directory…
            yield _failure(self._failed, SourceFile(uri), "read", e)
            return
        yield SourceFile(uri, metadata.size_in_bytes, metadata.last_updated_in_seconds,
                         digest and digest.hexdigest())


SKIPPED = "skipped"


class SkipUnchanged(beam.PTransform):
    """Sources → those not labelled already by an earlier run, whose labels tables match
    ``previous`` (a glob); the others go to the ``skipped`` output as skipped rows.
    Unchanged means same URI and same size and modification time, or with
    ``content_hash`` the same sha256. Images that failed earlier are tried again."""

    def __init__(self, previous: str, content_hash: bool = False):
        super().__init__()
        self._previous, self._content_hash = previous, content_hash

    def expand(self, sources):
        version = _content_version if self._content_hash else _file_version
        previous = (sources.pipeline
                    | "ReadEarlierLabels" >> beam.io.ReadFromParquet(
                        self._previous, columns=SKIPPED_SCHEMA.names)
                    | "EarlierVersions" >> beam.Map(lambda row: (row["image_uri"], version(row))))
        current = sources | "KeyByUri" >> beam.Map(lambda source: (source.uri, source))
        return ({"current": current, "previous": previous} | beam.CoGroupByKey()
                | "Split" >> beam.ParDo(_SplitUnchanged(version)).with_outputs(SKIPPED, main="new"))


def _file_version(row: dict) -> tuple:
    return row["source_size"], row["source_modified"]


def _content_version(row: dict) -> str | None:
    return row["content_sha256"]


class _SplitUnchanged(beam.DoFn):
    def __init__(self, version):
        self._version = version

    def setup(self):
        self._skipped = Metrics.counter(METRICS_NAMESPACE, "images_skipped")

    def process(self, element) -> Iterable:
        _, grouped = element
        earlier = set(grouped["previous"])
        for source in grouped["current"]:
            row = source.fields()
            if self._version(row) in earlier:
                self._skipped.inc()
                yield beam.pvalue.TaggedOutput(SKIPPED, row)
            else:
                yield source


class DecodeImages(beam.DoFn):
    """SourceFile → (SourceFile, ScaledImage): read, decode (EXIF, draft), resize for
    every scale. Failures go to the ``errors`` output as error rows."""

    def __init__(self, config: LabelConfig):
        self._config = config

    def setup(self):
        config = self._config
        # Pillow's own guard, in case anything opens images without our check.
        Image.MAX_IMAGE_PIXELS = config.max_pixels
        self._backbone = get_backbone(config.model)
        self._largest = largest_input(config.scales, self._backbone.stride)
        self._decoded = Metrics.counter(METRICS_NAMESPACE, "images_decoded")
        self._failed = {stage: Metrics.counter(METRICS_NAMESPACE, f"images_failed_{stage}")
                        for stage in ("read", "decode")}

    def process(self, source: SourceFile) -> Iterable:
        config = self._config
        try:
            # UNCOMPRESSED: a photo named *.gz is not to be gunzipped by the filesystem.
            with FileSystems.open(source.uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                data = f.read()
        except Exception as e:  # any filesystem's error: missing, permission, directory…
            yield _failure(self._failed["read"], source, "read", e)
            return
        try:
            decoded = decode_image(data, self._largest, config.max_pixels)
            scaled = scale_image(decoded.pixels, decoded.size, config.scales, self._backbone.stride)
            check_inputs_fit(scaled, config.scales, self._backbone, config.map_mode,
                             config.window_stride)
        except Exception as e:
            yield _failure(self._failed["decode"], source, "decode", e)
            return
        self._decoded.inc()
        yield source, scaled
