"""Beam: image URIs from file patterns and manifests, then read and decode them."""
from __future__ import annotations

import csv
import io
import logging
from typing import Iterable, Sequence

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from PIL import Image

from transforms.backbones import get_backbone
from transforms.config import METRICS_NAMESPACE, LabelConfig
from transforms.decode import decode_image
from transforms.multiscale import check_inputs_fit, largest_input, scale_image
from transforms.records import error_row

log = logging.getLogger(__name__)

ERRORS = "errors"  # tag of the error-row output of DoFns that can fail per element
DEFAULT_MANIFEST_COLUMN = "image_uri"


def manifest_format(path: str) -> str:
    """parquet, csv or text (one URI per line), from the file name."""
    name = path.lower()
    return "parquet" if name.endswith(".parquet") else "csv" if name.endswith(".csv") else "text"


def csv_column_index(path: str, column: str) -> int:
    """Index of ``column`` in the header of the CSV manifest at ``path`` (read at
    pipeline construction, so a wrong column fails before any work)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        header = next(csv.reader(io.TextIOWrapper(f, encoding="utf-8")), [])
    if column not in header:
        raise ValueError(f"manifest {path} has no column {column!r} (columns: {header}); "
                         "set --manifest-column")
    return header.index(column)


class ReadManifest(beam.PTransform):
    """URIs listed in a manifest: a text file (one per line, '#' comments), a CSV file
    with a header, or a Parquet file; the last two take ``column``."""

    def __init__(self, path: str, column: str = DEFAULT_MANIFEST_COLUMN):
        super().__init__()
        self._path, self._column = path, column

    def expand(self, pbegin):
        kind = manifest_format(self._path)
        if kind == "parquet":
            column = self._column
            return (pbegin | beam.io.ReadFromParquet(self._path, columns=[column])
                    | beam.Map(lambda row: row[column]))
        lines = pbegin | beam.io.ReadFromText(self._path, skip_header_lines=int(kind == "csv"))
        if kind == "csv":
            index = csv_column_index(self._path, self._column)
            return lines | beam.Map(lambda line: next(csv.reader([line]))[index].strip())
        return (lines | beam.Map(str.strip)
                | beam.Filter(lambda uri: uri and not uri.startswith("#")))


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
                | "Distinct" >> beam.Distinct() | "CountMatched" >> beam.Map(_counted, matched))


class DecodeImages(beam.DoFn):
    """uri → (uri, ScaledImage): read, decode (EXIF, draft), resize for every scale.
    Failures go to the ``errors`` output as error rows."""

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

    def _fail(self, uri: str, stage: str, error: Exception):
        self._failed[stage].inc()
        log.warning("%s failed at %s: %s: %s", uri, stage, type(error).__name__, error)
        return beam.pvalue.TaggedOutput(ERRORS, error_row(uri, stage, error))

    def process(self, uri: str) -> Iterable:
        config = self._config
        try:
            # UNCOMPRESSED: a photo named *.gz is not to be gunzipped by the filesystem.
            with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                data = f.read()
        except Exception as e:  # any filesystem's error: missing, permission, directory…
            yield self._fail(uri, "read", e)
            return
        try:
            decoded = decode_image(data, self._largest, config.max_pixels)
            scaled = scale_image(decoded.pixels, decoded.size, config.scales, self._backbone.stride)
            check_inputs_fit(scaled, config.scales, self._backbone, config.map_mode,
                             config.window_stride)
        except Exception as e:
            yield self._fail(uri, "decode", e)
            return
        self._decoded.inc()
        yield uri, scaled
