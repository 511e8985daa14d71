"""The weak-labelling job: read → decode → multi-scale maps (RunInference) → synset
heatmaps, fusion, boxes → Parquet; then run.json and a summary line."""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import logging
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipeline.console import configure_console, exit_with
from pipeline.filesystems import StoreError, check_stores
from pipeline.flush import flush_outputs_by_size, timed_flush_experiment
from pipeline.options import (ConfigError, LabelOptions, choose_local_parallelism, engine_threads,
                              head_record, label_config, stray_arguments, suggest,
                              unknown_flags, workers_in_this_process)
from pipeline.outputs import (RUN_RECORD, SUCCESS, OutputError, count_rows, failures_by_kind,
                              prepare_output, resolve_output, write_json)
from transforms.beam.inference import (FcnModelHandler, ToLabelRows, configure_tensorflow,
                                       failed_batch_rows)
from transforms.beam.progress import TALLY, ProgressReporter, count_finished
from transforms.beam.read import (ERRORS, SKIPPED, DecodeImages, ReadImageUris, SkipUnchanged,
                                  StatFiles)
from transforms.beam.write import WriteTable
from transforms.config import METRICS_NAMESPACE, LabelConfig
from transforms.io.heatmap_png import PNG8
from transforms.io.records import ERRORS_SCHEMA, LABELS_SCHEMA, SKIPPED_SCHEMA

log = logging.getLogger(__name__)

PACKAGES = ("fcn-weak-labels", "apache-beam", "tensorflow", "tensorflow-cpu", "keras", "numpy",
            "pillow", "pyarrow", "scipy")


def build(p: beam.Pipeline, opts: LabelOptions, config: LabelConfig, output: str,
          skip_existing: str | None) -> None:
    """Wire the job into ``p``; ``skip_existing``: a glob of earlier labels tables."""
    uris = p | "ReadImageUris" >> ReadImageUris(opts.input or [], opts.manifest or [],
                                                opts.manifest_column)
    stat = uris | "Stat" >> beam.ParDo(StatFiles(opts.content_hash)).with_outputs(ERRORS, main="sources")
    sources = stat.sources
    if skip_existing:
        split = sources | "SkipUnchanged" >> SkipUnchanged(skip_existing, opts.content_hash)
        sources = split.new
        (split[SKIPPED] | "ProgressSkipped" >> beam.Map(count_finished)
         | "WriteSkipped" >> WriteTable(output, "skipped", SKIPPED_SCHEMA))
    decoded = sources | "Decode" >> beam.ParDo(DecodeImages(config)).with_outputs(ERRORS, main="images")
    handler = KeyedModelHandler(FcnModelHandler(config, large_model=opts.large_model))
    maps, dead_letters = (decoded.images
                          | "ResponseMaps" >> RunInference(handler).with_exception_handling())
    rows = maps | "LabelRows" >> beam.ParDo(
        ToLabelRows(config, opts.progress_every)).with_outputs(ERRORS, main="labels")
    failed_batches = dead_letters.failed_inferences | "FailedBatches" >> beam.FlatMap(failed_batch_rows)
    errors = ((stat[ERRORS], decoded[ERRORS], rows[ERRORS], failed_batches)
              | "AllErrors" >> beam.Flatten())
    (rows.labels | "ProgressLabelled" >> beam.Map(count_finished)
     | "WriteLabels" >> WriteTable(output, "labels", LABELS_SCHEMA))
    (errors | "ProgressFailed" >> beam.Map(count_finished)
     | "WriteErrors" >> WriteTable(output, "errors", ERRORS_SCHEMA))


def _counters(result) -> dict[str, int] | None:
    """The job's counters, summed over steps; None where the runner reports none."""
    try:
        metrics = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except Exception:  # some runners do not report metrics to the launcher
        return None
    counts: dict[str, int] = {}
    for counter in metrics["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + (value or 0)
    return counts


def _versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Weak labels (synset heatmaps and boxes) for image collections, from a "
                    "fully convolutional ImageNet classifier, as an Apache Beam batch job.",
        epilog="Every standard Beam option is passed through, e.g. --runner (FnApiRunner locally: "
               "the DirectRunner first tries to download Prism), --direct_num_workers, "
               "--direct_running_mode, --setup_file, --temp_location, Dataflow options "
               "(--project, --region, --sdk_container_image, --dataflow_service_options, "
               "--machine_type) and portable/Flink options (--job_endpoint, --environment_type, "
               "--environment_config, --flink_master) and object stores' (--s3_endpoint_url, "
               "--s3_access_key_id, --s3_secret_access_key, --s3_region_name; see "
               "docs/object-stores.md). Every option explained: docs/options.md.")
    LabelOptions._add_argparse_args(parser)
    return parser


def run(argv: list[str] | None = None) -> int:
    """Run the job; returns the process exit code: 0 done (per-image errors are in the
    errors table), 1 the run failed its checks (outputs written, no _SUCCESS), 2 a
    configuration mistake (nothing done)."""
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        _arg_parser().print_help()
        return 0
    options = PipelineOptions(argv)
    local_parallelism = choose_local_parallelism(options, argv)
    if local_parallelism is not None:
        flush_outputs_by_size()
    opts = options.view_as(LabelOptions)
    started_at = dt.datetime.now(dt.timezone.utc)
    try:
        unknown = unknown_flags(options)
        if unknown:
            raise ConfigError(f"unknown option --{unknown[0]}"
                              f"{suggest(unknown[0], options.get_all_options())}")
        if stray := stray_arguments(options, argv):
            raise ConfigError(f"unexpected argument {stray[0]!r} ({len(stray)} in all): each "
                              "option takes one value; quote a pattern so that the shell does "
                              "not expand it (--input '/photos/*.jpg'), and repeat --input or "
                              "--manifest for more")
        if experiment := timed_flush_experiment(options):
            raise ConfigError(f"--experiments {experiment}: Beam's SDK workers "
                              "then lose elements written while the timer flushes (see "
                              "docs/running-locally.md); leave it out, they flush by size")
        if workers_in_this_process(options):
            # Before anything starts TensorFlow's runtime here (converting weights does),
            # as the workers of this process can set its threads only until then.
            configure_tensorflow(max(0, engine_threads(options)))
        p = _pipeline(options)
        # Object stores need their options before the first match (the inputs', in
        # label_config); each bucket is checked before any work.
        FileSystems.set_options(options)
        output = opts.output and resolve_output(opts.output, started_at, opts.run_id)
        check_stores([*(opts.input or []), *(opts.manifest or []), opts.skip_existing, output],
                     options)
        config, weights_checksum = label_config(options)
        removed = prepare_output(output, opts.overwrite)
    except (ConfigError, OutputError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if removed:
        log.info("removed %d files and folders of an earlier run from %s", len(removed), output)
    skip_existing = opts.skip_existing
    if skip_existing and not FileSystems.match([skip_existing], limits=[1])[0].metadata_list:
        log.info("--skip-existing %s matches no earlier labels: every image is new", skip_existing)
        skip_existing = None

    started = time.time()
    build(p, opts, config, output, skip_existing)
    TALLY.reset()
    with ProgressReporter() if workers_in_this_process(options) else contextlib.nullcontext():
        result = p.run()
        result.wait_until_finish()
    return _finish(result, output, options, config, weights_checksum,
                   started_at, time.time() - started, local_parallelism)


def _pipeline(options: PipelineOptions) -> beam.Pipeline:
    """The pipeline, once Beam has checked the runner's name and its options (Dataflow's
    --project, --region, --temp_location, …): a mistake there is a configuration one."""
    try:
        return beam.Pipeline(options=options)
    except ValueError as e:
        runner = options.view_as(StandardOptions).runner
        raise ConfigError(f"Beam's check of the options (--runner {runner}): "
                          f"{' '.join(str(e).split())} (what each runner needs: "
                          "docs/dataflow.md, docs/flink.md)") from None


def _finish(result, output: str, options: PipelineOptions, config: LabelConfig,
            weights_checksum: str, started_at: dt.datetime, wall: float,
            local_parallelism: dict | None) -> int:
    """Count, check the accounting and the error fraction, write run.json and, when
    all holds, the _SUCCESS marker (last)."""
    opts = options.view_as(LabelOptions)
    counters = _counters(result)
    labelled, failed = count_rows(output, "labels"), count_rows(output, "errors")
    skipped = count_rows(output, "skipped")
    counts = {"labelled": labelled, "failed": failed, "skipped": skipped}
    problems = []
    if counters is None:
        log.warning("the runner reports no metrics: matched = labelled + failed is not checked")
    else:
        counts.update(matched=counters.get("images_matched", 0),
                      duplicates=counters.get("uris_listed", 0) - counters.get("images_matched", 0),
                      boxes=counters.get("boxes_emitted", 0))
        if counts["matched"] != labelled + failed + skipped:
            problems.append(f"accounting: {counts['matched']} images matched, but {labelled} "
                            f"labelled + {failed} failed + {skipped} skipped")
    processed = labelled + failed
    # Of every image the run accounts for: skipped ones are the collection's too, so that
    # a nightly run retrying the same two broken files, with nothing new, is not a failure.
    accounted = processed + skipped
    if accounted and failed / accounted > opts.max_error_fraction:
        problems.append(f"{failed} of {accounted} images failed ({failed / accounted:.1%}), more "
                        f"than --max-error-fraction {opts.max_error_fraction}; see the errors "
                        f"table in {output}")
    record = {
        "status": "failed" if problems else "succeeded",
        "problems": problems,
        "output": output,
        "skip_existing": opts.skip_existing,
        "started_at": started_at.isoformat(),
        "model": config.model,
        "weights": config.weights,
        "weights_checksum": weights_checksum,
        "config": config.record(),
        # How the labels table stores heatmaps (transforms/io/heatmap_png.py).
        "heatmap_encoding": PNG8,
        "head": None if config.head is None else head_record(config.head),
        "options": options.get_all_options(drop_default=True),
        # On the local runners: bundles at once and how, given or chosen by the job.
        "local_parallelism": local_parallelism,
        "versions": _versions(),
        "counts": counts,
        # Failures by kind ("stage: error type"): how many, and one image's URI each.
        "failures": failures_by_kind(output) if failed else {},
        "counters": counters,
        "wall_time_s": round(wall, 3),
        "images_per_s": round(processed / wall, 3) if wall else None,
        # Without start-up (matching, model loading): from the first image done to the last.
        "steady_images_per_s": _rounded(TALLY.steady_rate() if workers_in_this_process(options)
                                        else None),
    }
    write_json(output, RUN_RECORD, record)
    skipped_note = f" ({skipped} more skipped as unchanged)" if opts.skip_existing else ""
    steady = (f", {record['steady_images_per_s']} after start-up"
              if record["steady_images_per_s"] else "")
    print(f"{processed} images: {labelled} labelled, {failed} failed{skipped_note}, "
          f"{counts.get('boxes')} boxes "
          f"in {wall:.1f} s ({record['images_per_s']} images/s{steady}); output in {output}")
    if record["failures"]:
        print("failed: " + "; ".join(f"{kind} {failure['count']} (e.g. {failure['example']})"
                                     for kind, failure in record["failures"].items()))
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    write_json(output, SUCCESS, {"counts": counts, "started_at": record["started_at"]})
    return 0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> None:
    configure_console(sys.argv[1:])  # unless __main__ did, before the imports above
    exit_with(run, "the run did not finish, and its output has no _SUCCESS; a run into the "
                   "same folder first clears what this one wrote")
