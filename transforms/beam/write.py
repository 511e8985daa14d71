"""Beam: compressed Parquet tables under the output directory; counting their rows, and an
errors table's rows by kind."""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

# Beam writes Parquet uncompressed unless told otherwise; zstd is read by pandas,
# pyarrow, DuckDB and Spark alike.
PARQUET_CODEC = "zstd"


def table_prefix(output: str, name: str) -> str:
    return FileSystems.join(output, name)


# Rows wait as Python dicts until this many are converted to Arrow, and as Arrow until a
# row group this large is written. Beam's defaults (1000 rows, 64 MiB) let a writer hold
# hundreds of MiB of heatmap lists as Python floats: memory then grows with the run.
RECORD_BATCH_SIZE = 64
ROW_GROUP_BYTES = 8 << 20


class WriteTable(beam.PTransform):
    """Rows (dicts) → ``<output>/<name>-SSSSS-of-NNNNN.parquet`` with ``schema``."""

    def __init__(self, output: str, name: str, schema: pa.Schema):
        super().__init__()
        self._prefix, self._schema = table_prefix(output, name), schema

    def expand(self, rows):
        return rows | beam.io.WriteToParquet(
            self._prefix, self._schema, codec=PARQUET_CODEC, file_name_suffix=".parquet",
            record_batch_size=RECORD_BATCH_SIZE, row_group_buffer_size=ROW_GROUP_BYTES)


def _table_files(output: str, name: str) -> list[str]:
    return [m.path for m in
            FileSystems.match([table_prefix(output, name) + "-*.parquet"])[0].metadata_list]


def count_rows(output: str, name: str) -> int:
    """Rows in all of a table's Parquet files, from their footers (any Beam filesystem)."""
    total = 0
    for path in _table_files(output, name):
        with FileSystems.open(path) as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def failures_by_kind(output: str, name: str = "errors") -> dict[str, dict]:
    """The rows of an errors table counted by kind ("stage: error type"), most frequent
    first, each with its count and the URI of one image that failed so."""
    tables = []
    for path in _table_files(output, name):
        with FileSystems.open(path) as f:
            tables.append(pq.read_table(f, columns=["stage", "error_type", "image_uri"]))
    if not tables:
        return {}
    kinds = (pa.concat_tables(tables).group_by(["stage", "error_type"])
             .aggregate([("image_uri", "count"), ("image_uri", "min")]).to_pylist())
    kinds.sort(key=lambda k: (-k["image_uri_count"], k["stage"], k["error_type"]))
    return {f"{k['stage']}: {k['error_type']}": {"count": k["image_uri_count"],
                                                  "example": k["image_uri_min"]}
            for k in kinds}
