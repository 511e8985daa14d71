"""The output directory's life: template, refusing or replacing an earlier run, the run
record and the _SUCCESS marker that readers wait for; reading its tables back.

Readers see no partial output: Beam's file sinks write each bundle to a temporary file
and rename only the files of committed bundles into place when the write finalises (a
retried bundle's first attempt is discarded, so retries add no duplicate rows); the
_SUCCESS marker is written after every table and run.json, so a reader that waits for it
never reads a table that is still being written. On object stores a rename is a copy
and a delete, not atomic: a run stopped while it renames leaves some tables and no
_SUCCESS, and the next run into the folder removes them before it writes.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import string
import tempfile
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem

from transforms.io.heatmap_png import HeatmapEncodingError
from transforms.io.records import decoded_row, table_heatmap_encoding

SUCCESS = "_SUCCESS"
# Beam's file sinks write each bundle under <output>/beam-temp-<table>-<id>/ first.
TEMPORARY = "beam-temp-"
RUN_RECORD = "run.json"
TABLES = ("labels", "errors", "skipped")
TEMPLATE_FIELDS = ("date", "run_id")


class OutputError(ValueError):
    """The output directory cannot be used as asked."""


def default_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def resolve_output(template: str, now: dt.datetime, run_id: str | None = None) -> str:
    """``{date}`` → the UTC date (YYYY-MM-DD), ``{run_id}`` → ``run_id`` (default: UTC
    time stamp) in the --output template."""
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    unknown = fields - set(TEMPLATE_FIELDS)
    if unknown:
        raise OutputError(f"--output {template}: unknown field {{{sorted(unknown)[0]}}}; "
                          f"use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}")
    if run_id is not None and "run_id" not in fields:
        raise OutputError(f"--run-id {run_id} fills {{run_id}} in --output, and --output "
                          f"{template} has none: add it (e.g. labels/{{date}}/{{run_id}}), or "
                          "drop --run-id")
    return template.format(date=now.strftime("%Y-%m-%d"), run_id=run_id or default_run_id(now))


def _path(output: str, name: str) -> str:
    return FileSystems.join(output, name)


def _existing_outputs(output: str) -> list[str]:
    patterns = [_path(output, f"{table}-*.parquet") for table in TABLES]
    patterns += [_path(output, RUN_RECORD), _path(output, SUCCESS)]
    return [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]


def _temporary_files(output: str) -> list[str]:
    """The files in the folders of Beam's file sinks (``beam-temp-<table>-<id>/``) that a
    run stopped before its writes finalised left behind."""
    return [m.path for m in FileSystems.match([_path(output, f"{TEMPORARY}*/*")])[0].metadata_list]


def check_folder_can_be_made(flag: str, folder: str) -> None:
    """OutputError where a file stands in the place of the local ``folder`` or of a folder
    above it: its writers would fail only when they start, after work was done. (An
    object store's folders are prefixes: nothing to check.)"""
    if FileSystems.get_scheme(folder) is not None:
        return
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputError(f"{flag} {folder}: {existing} is a file, not a folder; choose "
                          f"another {flag}")


def prepare_output(output: str, overwrite: bool) -> list[str]:
    """Make ``output`` ready for a new run; returns the files it removed.

    A completed run (its _SUCCESS marker present) is refused unless ``overwrite``; the
    leftovers of an unfinished run (no marker) are always removed, as no reader may
    trust them, with the temporary folders of one stopped while it wrote (a killed
    run's; a finished write removes its own).
    """
    check_folder_can_be_made("--output", output)
    if FileSystems.exists(_path(output, SUCCESS)) and not overwrite:
        raise OutputError(f"{output} holds a completed run ({SUCCESS} present): pass "
                          "--overwrite to replace it, or choose another --output (e.g. with "
                          "{date} or {run_id} in it)")
    temporary = _temporary_files(output)
    stale = _existing_outputs(output) + temporary
    if stale:
        FileSystems.delete(stale)
    # The folders themselves, where a filesystem has folders (an object store's are
    # only the prefix of their files, gone with them).
    folders = sorted({FileSystems.split(path)[0] for path in temporary})
    folders = [folder for folder in folders if FileSystems.exists(folder)]
    if folders:
        FileSystems.delete(folders)
    return stale + folders


def write_json(output: str, name: str, record: dict) -> None:
    with FileSystems.create(_path(output, name)) as f:
        f.write(json.dumps(record, indent=2, sort_keys=True).encode())


def is_finished(output: str) -> bool:
    """Whether a run wrote its _SUCCESS marker: its tables are complete."""
    return FileSystems.exists(_path(output, SUCCESS))


def has_run_record(output: str) -> bool:
    return FileSystems.exists(_path(output, RUN_RECORD))


def read_run_record(output: str) -> dict:
    """A run's run.json."""
    if not FileSystems.exists(_path(output, RUN_RECORD)):
        raise OutputError(f"no {RUN_RECORD} in {output}: give the --output folder of a "
                          "pipeline run")
    with FileSystems.open(_path(output, RUN_RECORD)) as f:
        return json.loads(f.read())


def read_image_bytes(uri: str) -> bytes:
    """A labelled image's file, from any Beam filesystem, as stored (a photo named *.gz
    is not gunzipped)."""
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def names_image(image: str, uri: str) -> bool:
    """Whether ``image``, as a user names one (the URI as in an image_uri column, a path
    to it, a path suffix or just the file name), names the image at ``uri``."""
    if image == uri or uri.endswith("/" + image.lstrip("/")):
        return True
    return ("://" not in image and "://" not in uri
            and os.path.abspath(image) == os.path.abspath(uri))


def table_files(output: str, name: str) -> list[str]:
    """The Parquet files of one of a run's tables, in shard order (any Beam filesystem)."""
    pattern = _path(output, f"{name}-*.parquet")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


# Remote table files are copied to local disk this many bytes at a time.
COPY_CHUNK_BYTES = 8 << 20


@contextlib.contextmanager
def _parquet_file(path: str) -> Iterator[pq.ParquetFile]:
    """One Parquet file of a table, for Arrow to read by itself: a local file by its
    path, a remote one (gs://, s3://) from a temporary local copy.

    Not through a Python file object (Beam's): Arrow's threads then hold Python buffers
    that they may release after the read has returned, and if the interpreter is
    exiting by then that thread cannot take the GIL and the process aborts ("terminate
    called without an active exception", apache/arrow#34314), so that a job that had
    succeeded could exit with SIGABRT after reading its errors table."""
    with contextlib.ExitStack() as stack:
        if not isinstance(FileSystems.get_filesystem(path), LocalFileSystem):
            copy = stack.enter_context(tempfile.NamedTemporaryFile(suffix=".parquet"))
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                shutil.copyfileobj(f, copy, COPY_CHUNK_BYTES)
            copy.flush()
            path = copy.name
        with pq.ParquetFile(path) as parquet:
            yield parquet


def count_rows(output: str, name: str) -> int:
    """Rows in all of one of a run's tables' Parquet files, from their footers (any Beam
    filesystem; only the footer is read, on this thread, so a Python file is safe here)."""
    total = 0
    for path in table_files(output, name):
        with FileSystems.open(path) as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def failures_by_kind(output: str) -> dict[str, dict]:
    """The rows of a run's errors table counted by kind ("stage: error type"), most
    frequent first, each with its count and the URI of one image that failed so."""
    paths = table_files(output, "errors")
    if not paths:
        return {}
    errors = _read_files(paths, ["stage", "error_type", "image_uri"])
    kinds = (errors.group_by(["stage", "error_type"])
             .aggregate([("image_uri", "count"), ("image_uri", "min")]).to_pylist())
    kinds.sort(key=lambda k: (-k["image_uri_count"], k["stage"], k["error_type"]))
    return {f"{k['stage']}: {k['error_type']}": {"count": k["image_uri_count"],
                                                  "example": k["image_uri_min"]}
            for k in kinds}


def _table_files(output: str, name: str) -> list[str]:
    paths = table_files(output, name)
    if not paths:
        raise OutputError(f"no {name} table in {output}: give the --output folder of a "
                          "pipeline run")
    return paths


def _file_rows(parquet: pq.ParquetFile, columns: list[str] | None, batch_rows: int,
               optional: Sequence[str]) -> Iterator[dict]:
    present = set(parquet.schema_arrow.names)
    read = None if columns is None else [c for c in columns if c not in optional or c in present]
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=read):
        yield from batch.to_pylist()


def iter_table_rows(output: str, name: str, columns: list[str] | None = None,
                    batch_rows: int = 256, optional: Sequence[str] = ()) -> Iterator[dict]:
    """The rows of one of a run's tables as dicts, as stored, file by file,
    ``batch_rows`` at a time: memory does not grow with the table. Those of ``columns``
    named in ``optional`` are read where a file has them (tables of older runs lack
    newer columns)."""
    for path in _table_files(output, name):
        with _parquet_file(path) as parquet:
            yield from _file_rows(parquet, columns, batch_rows, optional)


def iter_labels(output: str, columns: list[str] | None = None, batch_rows: int = 256,
                optional: Sequence[str] = ()) -> Iterator[dict]:
    """A run's labels rows as ``iter_table_rows`` reads them, with their heatmaps as
    arrays (``records.decoded_row``), whichever encoding the run wrote; a table whose
    heatmaps cannot be read back is an OutputError naming its file."""
    for path in _table_files(output, "labels"):
        with _parquet_file(path) as parquet:
            try:
                encoding = table_heatmap_encoding(parquet.schema_arrow)
                for row in _file_rows(parquet, columns, batch_rows, optional):
                    yield decoded_row(row, encoding)
            except HeatmapEncodingError as e:
                raise OutputError(f"{path}: {e}") from e


def read_labels(output: str, columns: list[str] | None = None) -> list[dict]:
    """Every labels row of a run (``iter_labels``), in memory."""
    return list(iter_labels(output, columns, batch_rows=1024))


def read_table(output: str, name: str, columns: list[str] | None = None) -> pa.Table:
    """All Parquet files of one of a run's tables, as one table (as stored)."""
    return _read_files(_table_files(output, name), columns)


def _read_files(paths: Sequence[str], columns: list[str] | None) -> pa.Table:
    tables = []
    for path in paths:
        with _parquet_file(path) as parquet:
            tables.append(parquet.read(columns=columns))
    return pa.concat_tables(tables)
