"""The Apache Beam pipeline: wiring, options and CLI around ``transforms``.

Not built yet: the next issue adds ``python -m pipeline`` (read image collections,
run the fully convolutional model once per worker, write Parquet heatmaps and boxes).
"""
