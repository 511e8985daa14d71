"""Beam: compressed Parquet tables under the output directory."""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
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
