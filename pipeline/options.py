"""Command-line options: a PipelineOptions subclass (so they reach the workers) and
their validation into a LabelConfig, before any work."""
from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
from typing import Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from transforms.model.backbones import (WeightsUnavailableError, backbone_names, get_backbone,
                                        sha256_file)
from transforms.maps.boxes import DEFAULT_MIN_SCORE
from transforms.maps.confidence import (DEFAULT_CALIBRATION, ConfidenceCalibration, ConfidenceError,
                                        file_digest, mode_of, shipped_calibration)
from transforms.maps.hypotheses import DEFAULT_THRESHOLDS
from transforms.quality.calibration import Calibration, CalibrationError
from transforms.config import DEFAULT_MODEL, LabelConfig
from transforms.io.decode import DEFAULT_MAX_PIXELS
from transforms.io.records import DEFAULT_HEATMAPS, HEATMAPS_KEPT
from transforms.model.fcn import ENGINES, MAP_MODES, resolve_engine
from transforms.maps.heatmaps import DEFAULT_FUSION, DEFAULT_HEAT, FUSIONS, HEATS
from transforms.maps.refine import DEFAULT_REFINEMENT, REFINEMENTS
from transforms.maps.multiscale import (DEFAULT_HEAD_MAPS, DEFAULT_SCORE_CELLS, DEFAULT_TOP_K,
                                        HEAD_MAPS)
from transforms.model.head import HEAD_WEIGHTS, MANIFEST, check_head_fits
from transforms.maps.scales import DEFAULT_SCALES, parse_scales
from transforms.vocab.synsets import SynsetError
from transforms.vocab.vocabularies import (DEFAULT_TOP_K_VOCABULARY, TOP_K_VOCABULARIES,
                                           parse_synset_list, top_k_vocabulary)
from transforms.beam.read import (DEFAULT_MANIFEST_COLUMN, first_match, manifest_column_index,
                                  manifest_format)


log = logging.getLogger(__name__)
# --confidence's default: the shipped calibration where it fits the run.
AUTO_CONFIDENCE = "auto"
# A run where more than half of the images failed is not a success (exit 1, no _SUCCESS):
# what a scheduled job fed a stale manifest, or pointed at the wrong bucket, looks like.
DEFAULT_MAX_ERROR_FRACTION = 0.5


class ConfigError(ValueError):
    """A configuration mistake, found before the pipeline starts."""


def user_path(value: str) -> str:
    """A path option's value with a leading ``~`` or ``~user`` made the home folder, as the
    shell does only where it sees one: not after ``--output=``, nor in quotes, where a
    folder named "~" would be made in the current one (other URIs are left as they are)."""
    return os.path.expanduser(value)


def _add(group, name: str, *aliases: str, **kwargs) -> None:
    """--name (and --alias ...), also spelt with underscores as Beam's own options are
    (--top-k, --top_k)."""
    flags = [f"--{spelling}" for flag in (name, *aliases)
             for spelling in dict.fromkeys((flag, flag.replace("-", "_")))]
    group.add_argument(*flags, dest=name.replace("-", "_"), **kwargs)


class LabelOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        group = parser.add_argument_group("weak labelling")
        # Inputs and outputs.
        _add(group, "input", type=user_path, action="append", metavar="PATTERN",
             help="image file pattern on any Beam filesystem (local, gs://, s3://), quoted so "
                  "that the shell leaves it alone: '/photos/**' for every file below a folder; "
                  "repeatable")
        _add(group, "manifest", type=user_path, action="append", metavar="PATH",
             help="file (or pattern of files) listing image URIs: text (one per line), CSV "
                  "or Parquet (column --manifest-column); repeatable")
        _add(group, "manifest-column", default=DEFAULT_MANIFEST_COLUMN,
             help="URI column of CSV and Parquet manifests (default: %(default)s)")
        _add(group, "output", type=user_path,
             help="output directory (any Beam filesystem); required. May contain {date} (UTC, "
                  "YYYY-MM-DD) and {run_id} for scheduled runs")
        _add(group, "run-id", help="value of {run_id} in --output (default: UTC time stamp)")
        _add(group, "overwrite", action="store_true",
             help="replace a completed run already in --output (default: refuse)")
        _add(group, "skip-existing", type=user_path, metavar="GLOB",
             help="incremental run: skip images already labelled in the labels tables matching "
                  "GLOB (e.g. 'out/*/labels-*.parquet') whose size and modification time (or "
                  "content hash, with --content-hash) are unchanged; failed images are retried")
        _add(group, "content-hash", action="store_true",
             help="record each input's sha256 and compare contents, not size and time, for "
                  "--skip-existing (reads every input once more)")
        _add(group, "max-error-fraction", type=float, default=DEFAULT_MAX_ERROR_FRACTION,
             help="fail the run (exit 1, outputs still written, no _SUCCESS) when more than "
                  "this fraction of the images failed, as when a stale manifest names files "
                  "that are gone (default: %(default)s; 1: never)")
        # What is computed.
        _add(group, "synsets",
             help="comma-separated synsets: wnids (n02084071), WordNet names (dog, domestic "
                  "cat), class lists (classes:281+282) or vocabularies (voc: the PASCAL VOC "
                  "classes; a .json file {name: spec or [specs]}); default: each image's "
                  "top-k synsets of --vocabulary")
        _add(group, "vocabulary", type=user_path,
             help="without --synsets, what each image's top-k synsets are chosen from: "
                  "concepts (basic-level words: dog, car, bottle; each ImageNet class in one), "
                  "imagenet (the 1000 classes) or a text file of synset specs, one per line "
                  f"(default: {DEFAULT_TOP_K_VOCABULARY})")
        _add(group, "top-k", type=int, default=DEFAULT_TOP_K,
             help="synsets mapped per image when --synsets is not given, and top classes "
                  "recorded (default: %(default)s)")
        _add(group, "score-cells", type=float, default=DEFAULT_SCORE_CELLS,
             help="a synset's image-level score (what top-k ranks by) is its probability "
                  "averaged over this fraction of the cells where it is highest; 1: the "
                  "whole image (default: %(default)s)")
        _add(group, "scales", default=",".join(map(str, DEFAULT_SCALES)),
             help="comma-separated input scales: HxW (fixed size, e.g. 200x320) or a shorter "
                  "side (aspect ratio kept, e.g. 448), either followed by +flip to also run "
                  "the mirrored image and average its maps in (default: %(default)s)")
        _add(group, "fusion", default=DEFAULT_FUSION,
             help=f"how scales are fused: {', '.join(FUSIONS)} (default: %(default)s)")
        _add(group, "heat", default=DEFAULT_HEAT,
             help=f"what the heatmaps hold: {', '.join(HEATS)}. probability: each synset's "
                  "classes' probabilities summed per cell; logit: its logit (log-sum-exp of "
                  "its classes' logits) min-max normalised per image; blend: the mean of the "
                  "two, normalised (default: %(default)s)")
        _add(group, "threshold", default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS),
             help="comma-separated heat levels (0-1) whose connected components are the "
                  "box hypotheses of each synset; one level gives the plain components "
                  "(default: %(default)s)")
        _add(group, "thresholds", type=user_path, metavar="JSON",
             help="per-synset thresholds from python -m pipeline.evaluate --calibrate (any Beam "
                  "filesystem): one level per synset, replacing --threshold; the file's "
                  "default applies to the synsets it does not list")
        _add(group, "relative-threshold", action="store_true",
             help="read --threshold as fractions of each heatmap's maximum")
        _add(group, "min-box-area", type=float, default=0.0,
             help="drop boxes whose component covers less than this fraction of the image")
        _add(group, "min-score", type=float, default=DEFAULT_MIN_SCORE,
             help="drop boxes whose score (the synset's peak probability in the box's "
                  "component) is lower (default: %(default)s)")
        _add(group, "confidence", type=user_path, default=AUTO_CONFIDENCE,
             metavar="auto|none|JSON",
             help="what gives each box its confidence, the probability that it is right: a "
                  "calibration from python -m pipeline.evaluate --fit-confidence (any Beam "
                  "filesystem; refused unless fitted with this run's settings); auto: the "
                  "one shipped (fitted on PASCAL VOC photos at the default settings) when "
                  "the run's settings are those, else none; none: no confidence, boxes "
                  "ranked by score (default: %(default)s)")
        _add(group, "min-confidence", type=float, default=None,
             help="drop boxes less likely than this to be right (needs a confidence); "
                  "default: the calibration's own for the run's mode (the shipped one: "
                  f"{_shipped_minimum('synsets')} with --synsets, {_shipped_minimum('top_k')} "
                  "in top-k mode)")
        _add(group, "refine-boxes", default=DEFAULT_REFINEMENT,
             help=f"{', '.join(REFINEMENTS)}. grabcut: each box shrunk to the object the "
                  "photo's colours separate from its surroundings (OpenCV's GrabCut, seeded "
                  "by the heat); none: the heat's components as they are, faster "
                  "(default: %(default)s)")
        _add(group, "head", type=user_path, metavar="MODEL_DIR",
             help="a head trained on earlier runs' labels (python -m pipeline.train --out "
                  "MODEL_DIR, any Beam filesystem): its maps make the heat, on a grid "
                  "--factor times finer; needs the head's model, weights and (some of its) "
                  "--synsets")
        _add(group, "head-maps", default=DEFAULT_HEAD_MAPS,
             help=f"with --head: {', '.join(HEAD_MAPS)}. head: the head's maps alone; fused: "
                  "averaged with the classifier's heat (default: %(default)s)")
        _add(group, "heatmaps", default=DEFAULT_HEATMAPS,
             help=f"which synsets' heatmaps the labels rows keep: {', '.join(HEATMAPS_KEPT)}. "
                  "all: every synset's (what pipeline.evaluate and pipeline.train need); "
                  "boxed: only those of synsets with a box; none: boxes only, the fewest "
                  "bytes (default: %(default)s)")
        _add(group, "keep-scale-maps", action="store_true",
             help="also write each scale's heatmaps (on the fused grid) in the labels rows, "
                  "for pictures of how scales fuse (python -m pipeline.render --scales-of)")
        _add(group, "map-mode", default="cell",
             help=f"response map mode: {', '.join(MAP_MODES)} (default: %(default)s)")
        _add(group, "window-stride", type=int, default=1,
             help="cells between windows in window mode: 1 slides, 7 tiles (default: %(default)s)")
        # The model and how it runs.
        _add(group, "model", default=DEFAULT_MODEL,
             help=f"backbone: {', '.join(backbone_names())} (default: %(default)s)")
        _add(group, "weights", type=user_path, default="imagenet",
             help="'imagenet' (the model's published weights) or a Keras weights file on any "
                  "Beam filesystem (default: %(default)s)")
        _add(group, "engine", default="auto",
             help=f"what runs the model: {', '.join(ENGINES)} or auto: ONNX Runtime on CPU "
                  "workers (it runs the model 1.6 times as fast as TensorFlow there; its "
                  "graph is exported from the Keras model once and cached beside the "
                  "weights), TensorFlow on GPU workers and with --mixed-precision or --xla "
                  "(default: %(default)s)")
        _add(group, "batch-size", type=int, default=0,
             help="images per model call; 0: each worker chooses, 1 on CPUs (as fast there, "
                  "with far less memory) and 8 on GPUs (default: %(default)s)")
        _add(group, "max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS,
             help="images with more pixels are refused as decompression bombs; 0 = no limit "
                  "(default: %(default)s, Pillow's)")
        _add(group, "large-model", action="store_true",
             help="one model per machine shared by its SDK processes (RunInference "
                  "large_model); use on GPU workers")
        _add(group, "mixed-precision", action="store_true",
             help="float16 compute (Keras mixed_float16) for GPUs with tensor cores; slower on CPU")
        _add(group, "xla", action="store_true",
             help="compile the model with XLA (once per input shape)")
        _add(group, "threads", "tf-threads", type=int, default=0,
             help="intra-op threads per worker process of the engine (ONNX Runtime's or "
                  "TensorFlow's), of numpy's BLAS and of OpenCV; --tf-threads is its "
                  "older name, still accepted. 0: on the local runners "
                  "with --direct_num_workers N (threads or processes), cores / N, else all "
                  "cores. With several SDK processes per machine, give cores / processes "
                  "(default: %(default)s)")
        _add(group, "progress-every", type=int, default=1000,
             help="log a progress line every N images per worker")
        _add(group, "verbose", action="store_true",
             help="also show every library's log (TensorFlow's start-up, Beam's INFO lines, "
                  "warnings that ask nothing of you); by default the job shows what it does, "
                  "its progress and warnings to act on")


def _weights_checksum(model: str, weights: str) -> str:
    """The checksum recorded in run.json; also checks the weights exist."""
    backbone = get_backbone(model)
    if weights == "imagenet":
        # Fetches (resnet50, online) or converts (efficientnet_lite0) now, on the launcher,
        # so that missing weights fail before any work.
        backbone.imagenet_weights()
        return backbone.imagenet_checksum
    if not FileSystems.exists(weights):
        raise WeightsUnavailableError(f"weights file {weights} does not exist")
    if FileSystems.get_scheme(weights) in (None, "file"):
        return f"sha256:{sha256_file(weights)}"
    return "remote: not computed"


def label_config(options: PipelineOptions) -> tuple[LabelConfig, str]:
    """Validate the options into a LabelConfig and the weights' checksum.

    Raises ConfigError with a message that says how to fix the mistake.
    """
    opts = options.view_as(LabelOptions)
    if not opts.input and not opts.manifest:
        raise ConfigError("no input: give --input PATTERN and/or --manifest PATH")
    if not opts.output:
        raise ConfigError("no output: give --output DIR")
    _choice("--model", opts.model, backbone_names())
    _choice("--fusion", opts.fusion, FUSIONS)
    _choice("--heat", opts.heat, HEATS)
    _choice("--refine-boxes", opts.refine_boxes, REFINEMENTS)
    _choice("--heatmaps", opts.heatmaps, HEATMAPS_KEPT)
    if opts.heat != "probability" and opts.fusion == "geomean":
        raise ConfigError(f"--fusion geomean multiplies probabilities: give --heat probability, "
                          f"or fuse {opts.heat} heat with mean or max")
    _choice("--map-mode", opts.map_mode, MAP_MODES)
    _choice("--engine", opts.engine, (*ENGINES, "auto"))
    tensorflow_only = opts.mixed_precision or opts.xla
    if opts.engine == "onnxruntime" and tensorflow_only:
        raise ConfigError("--mixed-precision and --xla are TensorFlow's: give --engine "
                          "tensorflow (or auto), or drop them")
    for name, value, low in (("--top-k", opts.top_k, 1), ("--batch-size", opts.batch_size, 0),
                             ("--window-stride", opts.window_stride, 1),
                             ("--progress-every", opts.progress_every, 1),
                             ("--threads", opts.threads, 0),
                             ("--max-image-pixels", opts.max_image_pixels, 0)):
        if value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
    if not 0 <= opts.max_error_fraction <= 1:
        raise ConfigError(f"--max-error-fraction is a fraction in [0, 1], got {opts.max_error_fraction}")
    if not 0 < opts.score_cells <= 1:
        raise ConfigError(f"--score-cells is a fraction of the cells in (0, 1], got {opts.score_cells}")
    if not 0 <= opts.min_score < 1:
        raise ConfigError(f"--min-score is a probability in [0, 1), got {opts.min_score}")
    if not 0 <= opts.min_box_area < 1:
        raise ConfigError(f"--min-box-area is a fraction of the image in [0, 1), got {opts.min_box_area}")
    _check_options_used(opts)
    thresholds = _thresholds(opts.threshold, opts.relative_threshold)
    # One match is enough to tell a typo or a folder: cheap on buckets of millions.
    for pattern in opts.input or []:
        _first_match("--input", pattern)
    for manifest in opts.manifest or []:
        first = _first_match("--manifest", manifest)
        if manifest_format(manifest) != "text":
            try:
                manifest_column_index(first, opts.manifest_column)
            except ValueError as e:
                raise ConfigError(f"--manifest: {e}") from None
    try:
        scales = parse_scales(opts.scales)
    except ValueError as e:
        raise ConfigError(f"--scales: {e}") from None
    if opts.synsets is not None and not opts.synsets.strip():
        # As a script passes an unset variable: not a run in top-k mode by accident.
        raise ConfigError("--synsets is empty: name the synsets (e.g. dog,bicycle or voc), or "
                          "leave it out for each image's top-k synsets")
    try:
        synsets = parse_synset_list(opts.synsets) if opts.synsets else None
    except SynsetError as e:
        raise ConfigError(f"--synsets: {e}") from None
    if synsets is not None and opts.vocabulary is not None:
        raise ConfigError("--vocabulary chooses what each image's top-k synsets come from; "
                          "with --synsets every image gets the synsets given: drop one of them")
    vocabulary = opts.vocabulary or DEFAULT_TOP_K_VOCABULARY
    try:
        vocabulary_synsets = top_k_vocabulary(vocabulary)
    except SynsetError as e:
        raise ConfigError(f"--vocabulary: {e}") from None
    try:
        checksum = _weights_checksum(opts.model, opts.weights)
    except WeightsUnavailableError as e:
        raise ConfigError(f"--weights: {e}") from None
    if opts.head:
        _check_head(opts.head, opts.model, checksum, opts.map_mode, synsets)
    _choice("--head-maps", opts.head_maps, HEAD_MAPS)
    config = LabelConfig(
        model=opts.model, weights=opts.weights, map_mode=opts.map_mode,
        window_stride=opts.window_stride, scales=scales, synsets=synsets, top_k=opts.top_k,
        vocabulary=vocabulary, score_cells=opts.score_cells,
        vocabulary_synsets=() if vocabulary in TOP_K_VOCABULARIES else vocabulary_synsets,
        fusion=opts.fusion, heat=opts.heat, threshold=thresholds,
        relative_threshold=opts.relative_threshold,
        min_box_area=opts.min_box_area, min_score=opts.min_score, refine_boxes=opts.refine_boxes,
        head=opts.head, head_maps=opts.head_maps, heatmaps=opts.heatmaps,
        keep_scale_maps=opts.keep_scale_maps,
        batch_size=opts.batch_size,
        max_pixels=opts.max_image_pixels or None, mixed_precision=opts.mixed_precision,
        xla=opts.xla, intra_op_threads=engine_threads(options),
        # The launcher is the worker on the local runners: record what auto will be there.
        engine=resolve_engine(opts.engine, tensorflow_only) if is_local(options) else opts.engine)
    if opts.thresholds:
        calibration = _read_thresholds(opts.thresholds, config)
        config = dataclasses.replace(config, threshold=(calibration.default,),
                                     synset_thresholds=calibration.thresholds())
    return confidence_config(config, opts.confidence, opts.min_confidence), checksum


def option_given_alone(checks: Sequence[tuple[str, bool, str]]) -> str | None:
    """What to say of the first (flag, given without the other, the other) in ``checks``:
    an option that acts only together with another one, given without it, would do
    nothing; None if there is none."""
    for flag, alone, needed in checks:
        if alone:
            return f"{flag} acts only with {needed}: give that too, or drop {flag}"
    return None


def _check_options_used(opts: LabelOptions) -> None:
    """ConfigError for an option that acts only together with another one not given: the
    run would go ahead without what was asked for (and --window-stride in cell mode would
    also cost the boxes their confidence, as the calibration's settings no longer match)."""
    if problem := option_given_alone((
            ("--window-stride", opts.window_stride != 1 and opts.map_mode != "window",
             "--map-mode window"),
            ("--head-maps", opts.head_maps != DEFAULT_HEAD_MAPS and not opts.head,
             "--head MODEL_DIR"),
            ("--manifest-column", opts.manifest_column != DEFAULT_MANIFEST_COLUMN
             and not opts.manifest, "--manifest PATH"))):
        raise ConfigError(problem)


def _first_match(flag: str, pattern: str) -> str:
    try:
        return first_match(pattern)
    except ValueError as e:
        raise ConfigError(f"{flag} {e}") from None


def _thresholds(text: str, relative: bool) -> tuple[float, ...]:
    """--threshold's levels, checked."""
    try:
        levels = tuple(sorted({float(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise ConfigError(f"--threshold {text}: give numbers separated by commas, e.g. "
                          "0.2 or 0.15,0.2,0.3") from None
    if not levels or levels[0] <= 0 or levels[-1] > 1:
        raise ConfigError(f"--threshold {text}: heat levels must be in (0, 1] (heat is "
                          f"normalised to 0-1{', and relative levels are fractions of its maximum' if relative else ''})")
    return levels


def _shipped_minimum(mode: str) -> str:
    try:
        return f"{shipped_calibration().minimum(mode):g}"
    except (OSError, ConfidenceError):
        return "none shipped"


def confidence_config(config: LabelConfig, choice: str, min_confidence: float | None) -> LabelConfig:
    """``config`` with the confidence model of --confidence (``choice``) and the minimum
    confidence; a calibration file that does not fit the run is a ConfigError."""
    mode = mode_of(config.synsets)
    record = config.record()
    if choice == "none":
        calibration = None
    elif choice == AUTO_CONFIDENCE:
        calibration = shipped_calibration()
        differ = calibration.differences(record, mode) if mode in calibration.models else ["mode"]
        if differ:
            log.warning("boxes have no confidence: the shipped calibration was fitted with other "
                        "settings (%s); fit one for these with python -m pipeline.evaluate "
                        "--fit-confidence, or give --confidence none to silence this",
                        "; ".join(differ))
            calibration = None
        source = {"file": "shipped", "sha256": file_digest(DEFAULT_CALIBRATION.read_text())}
    else:
        try:
            with FileSystems.open(choice) as f:
                text = f.read().decode()
            calibration = ConfidenceCalibration.from_json(text)
            calibration.model(mode)  # one for this mode, or the reason why not
        except OSError as e:
            raise ConfigError(f"--confidence {choice}: cannot read it ({e})") from None
        except ConfidenceError as e:
            raise ConfigError(f"--confidence {choice}: {e}") from None
        differ = calibration.differences(record, mode)
        if differ:
            raise ConfigError(f"--confidence {choice}: fitted with other settings: "
                              + "; ".join(differ) + ". Give the run those settings, or fit a "
                              "calibration on a run with this run's (python -m pipeline.evaluate "
                              "--fit-confidence)")
        source = {"file": choice, "sha256": file_digest(text)}
    if calibration is None:
        if min_confidence is not None:
            raise ConfigError("--min-confidence needs a confidence: give --confidence auto (at "
                              "the default settings) or a calibration file, or filter on "
                              "--min-score")
        return config
    minimum = calibration.minimum(mode) if min_confidence is None else min_confidence
    if not 0 <= minimum < 1:
        raise ConfigError(f"--min-confidence is a probability in [0, 1), got {minimum}")
    return dataclasses.replace(config, confidence=calibration.model(mode),
                               confidence_source={**source, "mode": mode},
                               min_confidence=minimum)


def read_head_manifest(directory: str) -> dict:
    """The manifest of the trained head in ``directory`` (any Beam filesystem)."""
    with FileSystems.open(FileSystems.join(directory, MANIFEST)) as f:
        return json.loads(f.read().decode())


def head_record(directory: str) -> dict:
    """What run.json says of a trained head: where it is, what it was trained on and
    how, its losses."""
    manifest = read_head_manifest(directory)
    return {"dir": directory, "synsets": [s["wnid"] for s in manifest["synsets"]],
            **{key: manifest.get(key) for key in ("factor", "pseudo_masks", "data", "loss")}}


def _check_head(directory: str, model: str, weights_checksum: str, map_mode: str,
                synsets) -> None:
    """Fail fast on a head the job cannot use."""
    try:
        manifest = read_head_manifest(directory)
        if not FileSystems.exists(FileSystems.join(directory, HEAD_WEIGHTS)):
            raise OSError(f"{HEAD_WEIGHTS} is missing")
        check_head_fits(manifest, model, weights_checksum, map_mode,
                        None if synsets is None else [s.wnid for s in synsets])
    except OSError as e:
        raise ConfigError(f"--head {directory}: no trained head there ({e}); give the --out "
                          "folder of python -m pipeline.train") from None
    except ValueError as e:  # the checks' own messages, or a manifest that is not JSON
        raise ConfigError(f"--head {directory}: {e}") from None


def _read_thresholds(path: str, config: LabelConfig) -> Calibration:
    """The calibration in ``path``, checked against the run's settings."""
    try:
        with FileSystems.open(path) as f:
            calibration = Calibration.from_json(f.read().decode())
        calibration.check_settings(config.record())
    except OSError as e:
        raise ConfigError(f"--thresholds {path}: cannot read it ({e})") from None
    except CalibrationError as e:
        raise ConfigError(f"--thresholds {path}: {e}") from None
    return calibration


# Beam's own flags for how many bundles the local runners run at once, and how.
LOCAL_PARALLELISM_FLAGS = ("--direct_num_workers", "--direct_running_mode")
# The job's choice when none is given: two bundles in threads, so that decoding and
# boxes (Python) overlap the model (which releases the GIL), each model call on half the
# cores. Measured on 2 cores: 0.60 of model-only throughput one bundle at a time, 0.96
# with two in threads, no better with three (benchmarks/README.md, (a)).
AUTO_LOCAL_PARALLELISM = {"direct_num_workers": 2, "direct_running_mode": "multi_threading"}


def choose_local_parallelism(options: PipelineOptions, argv: Sequence[str]) -> dict | None:
    """On the local runners, the bundles at once and how: the user's (any of
    ``LOCAL_PARALLELISM_FLAGS`` given wins) or else the job's ``AUTO_LOCAL_PARALLELISM``,
    set in ``options``. Returns what runs, and who chose it, for run.json; None elsewhere."""
    if not is_local(options):
        return None
    direct = options.view_as(DirectOptions)
    given = any(arg.split("=", 1)[0] in LOCAL_PARALLELISM_FLAGS for arg in argv)
    if not given:
        for name, value in AUTO_LOCAL_PARALLELISM.items():
            setattr(direct, name, value)
    return {"direct_num_workers": direct.direct_num_workers,
            "direct_running_mode": direct.direct_running_mode,
            "chosen_by": "user" if given else "job"}


def engine_threads(options: PipelineOptions) -> int:
    """Intra-op threads per model call: --threads, else the local runners' share."""
    return options.view_as(LabelOptions).threads or local_threads(options)


def local_threads(options: PipelineOptions) -> int:
    """Engine threads per model call when the job runs on this machine with several
    bundles at once (--direct_num_workers N in multi_threading or multi_processing mode):
    the cores shared among them, as N calls each using every core oversubscribe the CPU
    (benchmarks/README.md, (a)). 0 (the engine's default, all cores) otherwise."""
    direct = options.view_as(DirectOptions)
    if not is_local(options) or direct.direct_running_mode == "in_memory":  # one bundle at a time
        return 0
    cores = os.cpu_count() or 1
    bundles = direct.direct_num_workers or cores  # Beam reads 0 as one per core
    return max(1, cores // bundles) if bundles > 1 else 0


def is_local(options: PipelineOptions) -> bool:
    """Whether the job runs on this machine (the DirectRunner or its FnApiRunner)."""
    runner = (options.view_as(StandardOptions).runner or "DirectRunner").lower()
    return runner.removesuffix("runner") in ("direct", "fnapi")


def workers_in_this_process(options: PipelineOptions) -> bool:
    """Whether the job's workers run inside this process (the local runners in memory or
    in threads), so that what they tally here is the job's progress."""
    direct = options.view_as(DirectOptions)
    return is_local(options) and direct.direct_running_mode != "multi_processing"


def _choice(flag: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{flag} {value!r}: choose one of {', '.join(choices)}")


def unknown_flags(options: PipelineOptions) -> list[str]:
    """Flags no registered PipelineOptions knows (Beam would only log and drop them)."""
    known = options.get_all_options()
    every = options.get_all_options(retain_unknown_options=True)
    return sorted(set(every) - set(known))


def stray_arguments(options: PipelineOptions, argv: Sequence[str]) -> list[str]:
    """Arguments that are neither an option nor an option's value (Beam would log and drop
    them): most often the files of an unquoted --input pattern that the shell expanded,
    of which only the first would be labelled."""
    parsers = []  # Beam's own parser of every registered option, as it parses them
    options.get_all_options(add_extra_args_fn=parsers.append)
    _, unknown = parsers[0].parse_known_args(list(argv))
    return [arg for arg in unknown if not arg.startswith("-")]


def suggest(flag: str, parser_flags) -> str:
    close = difflib.get_close_matches(flag, parser_flags, n=1)
    return f"; did you mean --{close[0]}?" if close else ""
