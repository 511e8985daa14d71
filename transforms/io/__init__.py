"""Reading images and writing the output contract: decode (Pillow), records (Parquet schemas and rows)."""
