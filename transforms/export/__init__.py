"""Exports of a finished run's labels for the tools that use them: COCO and YOLO for
training detectors, Pascal VOC for both, Label Studio for review by people. One module
per format, writing local files from ``labelled.LabelledImage``s; nothing here reads
Parquet or knows Beam (``pipeline.export`` does the reading and the image copies)."""
