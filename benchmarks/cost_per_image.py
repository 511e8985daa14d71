"""What a large run costs per image: bytes of labels, CPU per stage, images/s, and what
that comes to per million images.

    python -m benchmarks.cost_per_image [--photos DIR] [--images N] [--profile-images 100]
        [--workdir DIR] [-- JOB OPTIONS ...]

Runs the real job (FnApiRunner, two bundles in threads) on the first N photos of DIR
(default ../shared/voc07-dev/JPEGImages, 500 VOC photos), once with ``--synsets voc`` and
once in top-k mode (the defaults): the bytes of its labels table per image (the files),
of its heatmaps and boxes columns (compressed, from the Parquet footers; the rest is the
other columns and the footers), and from run.json its images/s. Then the stage profile of
``benchmarks.pipeline_vs_model`` on --profile-images of the photos in each mode: CPU
milliseconds per image of decoding, the network, and what comes after it. The last
table: gigabytes of labels and core-hours per million images at those rates (the CPU
of the stages added up, one stage after another in one process).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

from benchmarks.common import machine, table
from benchmarks.localization import LOCAL
from benchmarks.pipeline_vs_model import stage_profile
from pipeline.options import label_config
from pipeline.run import run
from transforms.model.fcn import ResponseMapper

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "voc07-dev" / "JPEGImages"
MODES = {"--synsets voc": ["--synsets", "voc"], "top-k (default)": []}
# The stages after the network, as the stage profile names them.
AFTER_NETWORK = ("maps, fusion", "boxes, row", "Parquet")


def column_bytes(output: Path) -> dict[str, int]:
    """Compressed bytes of each top-level column of a run's labels table (all files)."""
    sizes: dict[str, int] = defaultdict(int)
    for path in sorted(output.glob("labels-*.parquet")):
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for column in range(row_group.num_columns):
                chunk = row_group.column(column)
                sizes[chunk.path_in_schema.split(".")[0]] += chunk.total_compressed_size
    return dict(sizes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--profile-images", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cost-per-image"))
    parser.add_argument("job_args", nargs="*", help="more options for python -m pipeline")
    args = parser.parse_args(argv)
    photos = sorted(p for p in args.photos.iterdir() if p.is_file())[:args.images]
    args.workdir.mkdir(parents=True, exist_ok=True)
    manifest = args.workdir / "photos.txt"
    manifest.write_text("\n".join(str(p.resolve()) for p in photos) + "\n")

    byte_rows, cost_rows, profile_rows = [], [], []
    for mode, mode_args in MODES.items():
        output = args.workdir / mode.strip("-").split()[0]
        job = ["--manifest", str(manifest), *mode_args, *LOCAL, *args.job_args]
        if run([*job, "--output", str(output), "--overwrite"]) != 0:
            return 1
        record = json.loads((output / "run.json").read_text())
        images = record["counts"]["labelled"]
        sizes = column_bytes(output)
        # What is stored: the files, footers (schema, statistics) and all.
        total = sum(p.stat().st_size for p in output.glob("labels-*.parquet"))
        other = total - sizes.get("heatmaps", 0) - sizes.get("boxes", 0)
        byte_rows.append([mode, images, f"{total / images / 1000:.1f}",
                          f"{sizes.get('heatmaps', 0) / images / 1000:.1f}",
                          f"{sizes.get('boxes', 0) / images / 1000:.2f}",
                          f"{other / images / 1000:.2f}",
                          record["images_per_s"], record["steady_images_per_s"]])

        config, _ = label_config(PipelineOptions([*job, "--output", str(output)]))
        # Threads as the job's bundles have them (cores ÷ bundles, for the engine and,
        # through the model handler, BLAS and OpenCV): threads of a pool that wait for
        # work spin, and their CPU would count as work.
        mapper = ResponseMapper.load(config.model, config.weights, config.map_mode,
                                     config.window_stride, engine="onnxruntime",
                                     intra_op_threads=config.intra_op_threads)
        profiled = photos[:args.profile_images]
        clock = stage_profile(profiled, config, mapper, args.workdir)
        cpu = {stage: 1000 * s / len(profiled) for stage, s in clock.cpu.items()}
        after = sum(cpu.get(stage, 0.0) for stage in AFTER_NETWORK)
        profile_rows.append([mode, *(f"{cpu.get(s, 0.0):.0f}" for s in
                                     ("read, decode", "resize", "forward", *AFTER_NETWORK)),
                             f"{after:.0f}", f"{after / cpu['forward']:.2f}"])
        cost_rows.append([mode, f"{total / images:.0f}", f"{total / images / 1000:.1f}",
                          f"{sum(cpu.values()) / 1000 * 1e6 / 3600:.0f}",
                          f"{1e6 / record['steady_images_per_s'] / 3600:.0f}"])

    print(f"machine: {machine()}")
    print(f"photos: {len(photos)} of {args.photos}; job options: {' '.join(args.job_args) or 'defaults'}\n")
    print(table(["mode", "images", "labels KB/image", "heatmaps", "boxes", "the rest",
                 "images/s", "after start-up"], byte_rows))
    print(f"\nstage profile (CPU ms per image, {args.profile_images} photos, one stage after another):")
    print(table(["mode", "read, decode", "resize", "network", "maps, fusion", "boxes, row",
                 "Parquet", "after the network", "÷ network"], profile_rows))
    print("\nper million images:")
    print(table(["mode", "labels bytes/image", "labels GB", "CPU core-hours (stage profile)",
                 "hours of this machine (steady rate)"], cost_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
