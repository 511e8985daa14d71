"""Pipeline vs model-only throughput, in one run, on the same images and settings.

    python -m benchmarks.pipeline_vs_model [--images 200] [--photos DIR] [--model-batch-size 8]
        [--batch-size 0] [--engines onnxruntime,tensorflow] [-- PIPELINE OPTIONS]

The photos: --images generated ones (phone, camera, web, panorama and thumbnail sizes up
to 4032×3024, a quarter PNG; benchmarks/large_collection.py), or the first --images
files of DIR (e.g. ../shared/voc07-dev/JPEGImages: 500×375 web photos).

model-only: the FCN forward at the configured scales (and on the mirrored inputs at a
+flip scale) on pre-decoded, pre-resized images, padded and grouped by shape into full
batches of --model-batch-size, with each engine
(TensorFlow, and ONNX Runtime on all cores). pipeline: the whole job (match → decode →
maps → boxes → Parquet) on the FnApiRunner with --batch-size (0: the worker's choice, as
the job's default), once per engine of --engines, timed from its run.json: the whole
job (without interpreter start-up and option checks), and after start-up (from the first
image done to the last, without matching and model loading: the steady rate).

Before the pipelines, a stage profile on the same images in this one process, with the
first engine: CPU and wall milliseconds per image of each stage the pipeline runs, one
stage at a time: what the pipeline spends besides the model.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from apache_beam.options.pipeline_options import PipelineOptions

from benchmarks.common import machine, table
from benchmarks.large_collection import make_collection
from pipeline.options import label_config
from transforms.beam.inference import FcnModelHandler, result_row
from transforms.config import LabelConfig
from transforms.io.decode import decode_image
from transforms.model.fcn import ResponseMapper
from transforms.maps.multiscale import DEFAULT_BUCKET, largest_input, scale_image
from transforms.maps.scales import DEFAULT_SCALES
from transforms.io.records import LABELS_SCHEMA, SourceFile


class StageClock:
    """CPU and wall seconds spent per named stage."""

    def __init__(self):
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)

    def run(self, stage: str, fn, *args):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.cpu[stage] += time.process_time() - cpu
            self.wall[stage] += time.perf_counter() - wall


class TimedMapper:
    """A ResponseMapper whose network calls are timed as the "forward" stage."""

    def __init__(self, mapper: ResponseMapper, clock: StageClock):
        self._mapper, self._clock = mapper, clock

    def __getattr__(self, name):
        return getattr(self._mapper, name)

    def logits(self, *args):
        return self._clock.run("forward", self._mapper.logits, *args)


def stage_profile(photos: list[Path], config: LabelConfig, mapper: ResponseMapper,
                  workdir: Path) -> StageClock:
    """Every stage of the pipeline's work, one after another in this thread, through the
    pipeline's model handler and its batches (TensorFlow uses every core inside "forward")."""
    clock = StageClock()
    timed = TimedMapper(mapper, clock)
    handler = FcnModelHandler(config)
    batch_size = handler.batch_elements_kwargs()["max_batch_size"]
    needed = largest_input(config.scales, mapper.backbone.stride)
    rows = []
    for start in range(0, len(photos), batch_size):
        paths = photos[start:start + batch_size]
        decoded = [clock.run("read, decode", lambda p: decode_image(p.read_bytes(), needed), p)
                   for p in paths]
        scaled = [clock.run("resize", scale_image, d.pixels, d.size, config.scales,
                            mapper.backbone.stride) for d in decoded]
        results = clock.run("maps, fusion", handler.run_inference, scaled, timed)
        rows += [clock.run("boxes, row", result_row, SourceFile(str(p)), r, config)
                 for p, r in zip(paths, results)]
    clock.run("Parquet", lambda: pq.write_table(pa.Table.from_pylist(rows, LABELS_SCHEMA),
                                                workdir / "profile.parquet", compression="zstd"))
    for field in (clock.cpu, clock.wall):  # "maps, fusion" timed the forward calls inside it
        field["maps, fusion"] -= field["forward"]
    return clock


def model_only(photos: list[Path], scales, batch_size: int, mapper: ResponseMapper) -> float:
    """Seconds for the network alone over every image and scale."""
    stride = mapper.backbone.stride
    needed = largest_input(scales, stride)
    scaled = []
    for path in photos:
        decoded = decode_image(path.read_bytes(), needed)
        scaled.append(scale_image(decoded.pixels, decoded.size, scales, stride))
    batches = []
    for s, scale in enumerate(scales):
        by_shape = defaultdict(list)
        for image in scaled:
            by_shape[scale.padded_size(image.inputs[s].shape[:2], DEFAULT_BUCKET)].append(image.inputs[s])
        for shape, inputs in by_shape.items():
            for start in range(0, len(inputs), batch_size):
                chunk = inputs[start:start + batch_size]
                for mirrored in (False, True) if scale.flip else (False,):
                    batch = np.zeros((len(chunk), *shape, 3), np.uint8)
                    for j, pixels in enumerate(chunk):
                        h, w = pixels.shape[:2]
                        batch[j, :h, :w] = pixels[:, ::-1] if mirrored else pixels
                    batches.append((batch, np.array([p.shape[:2] for p in chunk], np.int32)))
    for batch, sizes in batches:  # trace every shape once, untimed
        mapper.class_logits(batch[:1], sizes[:1])
    started = time.perf_counter()
    for batch, sizes in batches:
        mapper.class_logits(batch, sizes)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--photos", type=Path, default=None,
                        help="a folder of photos to use instead of generated ones")
    parser.add_argument("--model-batch-size", type=int, default=8,
                        help="images per call of the model-only run")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="the pipeline's --batch-size (0: the worker's choice)")
    parser.add_argument("--scales", default=",".join(map(str, DEFAULT_SCALES)))
    parser.add_argument("--engines", default="onnxruntime,tensorflow",
                        help="the pipeline's --engine, one run each")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("pipeline_args", nargs="*", help="more options for python -m pipeline")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pipeline-vs-model-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.photos is not None:
        photos = sorted(p for p in args.photos.iterdir() if p.is_file())[:args.images]
        (workdir / "photos").mkdir(exist_ok=True)
        for photo in photos:  # the job reads a glob: links to exactly these files
            link = workdir / "photos" / photo.name
            if not link.exists():
                link.symlink_to(photo.resolve())
    elif not (workdir / "photos").is_dir():
        make_collection(workdir / "photos", args.images, bad_fraction=0.0)
    photos = sorted((workdir / "photos").iterdir())
    engines = args.engines.split(",")
    # The job's options, parsed as the job parses them: the profile labels as the runs do.
    job_args = ["--input", str(workdir / "photos" / "*"), "--scales", args.scales,
                "--batch-size", str(args.batch_size), "--runner", "FnApiRunner",
                *args.pipeline_args]
    config, _ = label_config(PipelineOptions([*job_args, "--output", str(workdir / "profile")]))
    # The model the job loads (--model, --weights, --map-mode): model-only runs the same.
    tensorflow = ResponseMapper.load(config.model, config.weights, config.map_mode,
                                     config.window_stride)
    mappers = {"tensorflow": tensorflow,
               "onnxruntime": ResponseMapper(tensorflow.backbone, tensorflow.model,
                                             engine="onnxruntime")}
    model_s = {engine: model_only(photos, config.scales, args.model_batch_size, mapper)
               for engine, mapper in mappers.items()}
    clock = stage_profile(photos, config, mappers[engines[0]], workdir)

    pipeline_s, steady = {}, {}
    for engine in engines:
        output = workdir / f"out-{engine}"
        subprocess.run([sys.executable, "-m", "pipeline", *job_args, "--output", str(output),
                        "--overwrite", "--engine", engine], check=True)
        record = json.loads((output / "run.json").read_text())
        pipeline_s[engine] = record["wall_time_s"]
        steady[engine] = record["steady_images_per_s"]
    n = len(photos)
    print(f"machine: {machine()}")
    print(f"settings: {n} images ({args.photos or 'generated'}), scales {args.scales}, model-only batch {args.model_batch_size}, "
          f"pipeline --batch-size {args.batch_size} {' '.join(args.pipeline_args)}")
    rows = [[f"model only, {engine}", n, f"{s:.1f}", f"{n / s:.2f}", "", "", ""]
            for engine, s in model_s.items()]
    rows += [[f"pipeline, --engine {engine}", n, f"{s:.1f}", f"{n / s:.2f}",
              f"{model_s[engine] / s:.2f}", f"{steady[engine]:.2f}",
              f"{steady[engine] * model_s[engine] / n:.2f}"] for engine, s in pipeline_s.items()]
    print(table(["mode", "images", "seconds", "images/s", "pipeline / model only",
                 "after start-up: images/s", "pipeline / model only"], rows))
    if {"onnxruntime", "tensorflow"} <= set(pipeline_s):
        print(f"pipeline, onnxruntime / tensorflow: "
              f"{pipeline_s['tensorflow'] / pipeline_s['onnxruntime']:.2f}× (whole job), "
              f"{steady['onnxruntime'] / steady['tensorflow']:.2f}× (after start-up)")
    total_cpu = sum(clock.cpu.values())
    print(f"\nstage profile, one stage after another in one process ({n} images):")
    print(table(["stage", "CPU ms/image", "wall ms/image", "share of CPU"], [
        [stage, f"{1000 * cpu / n:.1f}", f"{1000 * clock.wall[stage] / n:.1f}",
         f"{cpu / total_cpu:.0%}"] for stage, cpu in clock.cpu.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
