"""Beam: the fully convolutional model under RunInference, and labels rows from its maps."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any, Iterable, Optional, Sequence

import apache_beam as beam
import cv2
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
import tensorflow as tf
import threadpoolctl

from transforms.beam.read import ERRORS, logged_failure
from transforms.config import METRICS_NAMESPACE, LabelConfig
from transforms.model.fcn import GPU_BATCH_SIZE, ResponseMapper, default_batch_size, resolve_engine
from transforms.model.head import HEAD_WEIGHTS, MANIFEST, TrainedHead
from transforms.maps.multiscale import ScaledImage, SynsetHeatmaps, synset_heatmaps_batch
from transforms.io.records import SourceFile, as_stored, error_record, error_row, label_row

log = logging.getLogger(__name__)


def configure_tensorflow(intra_op_threads: int = 0) -> None:
    """GPU memory growth, so that several SDK processes on one VM can share a GPU (and a
    model shared through large_model does not grab all memory at start); the CPU thread
    pool size (0: TensorFlow's default, all cores). Both only take effect before
    TensorFlow starts its runtime, which loading the model does."""
    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    except RuntimeError as e:  # the runtime already runs (another model in this process)
        log.warning("TensorFlow settings not applied: %s", e)


def limit_library_threads(threads: int = 0) -> None:
    """numpy's and scipy's BLAS (OpenBLAS) and OpenCV (the boxes' GrabCut) to ``threads``
    per process (0: their defaults, one per core). The maps' matrix products are small;
    with several bundles at once each product woke a BLAS thread on every core, which
    then spun waiting and took CPU from the other bundle's network call
    (benchmarks/README.md, (a)). Process-wide, as these pools are: it limits every BLAS
    loaded by then (numpy's and SciPy's)."""
    if threads:
        threadpoolctl.threadpool_limits(threads, user_api="blas")
        cv2.setNumThreads(threads)


def is_remote(path: str) -> bool:
    """Whether ``path`` is on a Beam filesystem other than the local one (gs://, s3://)."""
    return FileSystems.get_scheme(path) not in (None, "file")


def _copy(remote: str, local: str) -> None:
    with open(local, "wb") as out, FileSystems.open(remote) as f:
        shutil.copyfileobj(f, out, 1 << 24)


def local_weights(weights: str) -> str:
    """A local path for ``weights``: "imagenet" as is; a file on a remote Beam filesystem
    copied to a temporary file first, as Keras reads local files only."""
    if weights == "imagenet" or not is_remote(weights):
        return weights
    suffix = ".weights.h5" if weights.endswith(".weights.h5") else os.path.splitext(weights)[1]
    fd, local = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    _copy(weights, local)
    return local


def load_head(directory: str) -> TrainedHead:
    """The trained head in ``directory`` on any Beam filesystem (a remote one's files are
    copied to a temporary folder for Keras, which reads local files only)."""
    if not is_remote(directory):
        return TrainedHead.load(directory)
    with tempfile.TemporaryDirectory() as local:
        for name in (HEAD_WEIGHTS, MANIFEST):
            _copy(FileSystems.join(directory, name), os.path.join(local, name))
        return TrainedHead.load(local)


class FcnModelHandler(ModelHandler[ScaledImage, SynsetHeatmaps, Any]):
    """RunInference handler: one ResponseMapper per worker process (or one per machine
    with ``large_model``), batches of ScaledImages → their fused synset heatmaps.

    ``config.batch_size`` images go through the network per call; 0 lets each worker
    choose (``fcn.default_batch_size``: batches on a GPU, single images on a CPU).
    """

    def __init__(self, config: LabelConfig, *, large_model: bool = False):
        super().__init__(min_batch_size=1, max_batch_size=config.batch_size or GPU_BATCH_SIZE,
                         large_model=large_model)
        self._config = config
        self._images_per_call: int | None = None  # known on the worker, at the first batch
        self._oom_splits = Metrics.counter(METRICS_NAMESPACE, "oom_batch_splits")

    def load_model(self):
        config = self._config
        configure_tensorflow(config.intra_op_threads)
        engine = resolve_engine(config.engine, config.mixed_precision or config.xla)
        log.info("loading %s (%s map) with weights %s, engine %s", config.model, config.map_mode,
                 config.weights, engine)
        head = None if config.head is None else load_head(config.head)
        weights = local_weights(config.weights)
        try:
            return ResponseMapper.load(config.model, weights, config.map_mode,
                                       config.window_stride, config.mixed_precision, config.xla,
                                       engine, config.intra_op_threads, head)
        finally:
            if weights != config.weights:  # the temporary copy of a remote file
                os.remove(weights)

    def run_inference(self, batch: Sequence[ScaledImage], model,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        heatmaps = self._heatmaps(batch, model)
        return [PredictionResult(image, maps, model_id=self._config.model)
                for image, maps in zip(batch, heatmaps)]

    def _heatmaps(self, batch: Sequence[ScaledImage], model) -> list[SynsetHeatmaps]:
        """Out of accelerator memory, the batch is split in halves and each tried again,
        down to single images; a single image that still does not fit fails its batch
        (RunInference's dead letters then report it)."""
        config = self._config
        if self._images_per_call is None:  # this worker's first batch
            self._images_per_call = config.batch_size or default_batch_size()
            # Here, not in load_model: with large_model the network runs in another
            # process, the maps' products in this one.
            limit_library_threads(config.intra_op_threads)
        try:
            return synset_heatmaps_batch(model, batch, config.scales, config.synsets,
                                         config.top_k, config.fusion,
                                         images_per_call=self._images_per_call, heat=config.heat,
                                         vocabulary=config.top_k_candidates(),
                                         score_cells=config.score_cells,
                                         head_maps=config.head_maps)
        except Exception as e:
            if len(batch) == 1 or not model.is_out_of_memory(e):
                raise
            self._oom_splits.inc()
            log.warning("out of memory on a batch of %d images: splitting it", len(batch))
            half = len(batch) // 2
            return self._heatmaps(batch[:half], model) + self._heatmaps(batch[half:], model)

    def get_num_bytes(self, batch: Sequence[ScaledImage]) -> int:
        return sum(pixels.nbytes for image in batch for pixels in image.inputs)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE


def result_row(source: SourceFile, result: PredictionResult, config: LabelConfig) -> dict:
    """The labels row of one image's RunInference result (its ScaledImage and maps):
    its boxes (made from the maps as the row stores them, refined by the image's largest
    input when the config says so) and maps."""
    photo = result.example.largest() if config.refine_boxes == "grabcut" else None
    boxes = as_stored(result.inference).boxes(photo=photo, **config.box_options())
    return label_row(source, result.inference, boxes, config.model, config.heat, config.top_k,
                     config.keep_scale_maps, config.heatmaps)


class ToLabelRows(beam.DoFn):
    """(SourceFile, PredictionResult) → a labels row (boxes, heatmaps, top classes); failures
    go to the ``errors`` output."""

    def __init__(self, config: LabelConfig, progress_every: int = 1000):
        self._config = config
        self._progress_every = progress_every

    def setup(self):
        self._labelled = Metrics.counter(METRICS_NAMESPACE, "images_labelled")
        self._boxes = Metrics.counter(METRICS_NAMESPACE, "boxes_emitted")
        self._failed = Metrics.counter(METRICS_NAMESPACE, "images_failed_postprocess")
        self._done = 0

    def process(self, element) -> Iterable:
        source, result = element
        config = self._config
        try:
            row = result_row(source, result, config)
        except Exception as e:
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(ERRORS, logged_failure(error_row(source, "postprocess", e)))
            return
        self._labelled.inc()
        self._boxes.inc(len(row["boxes"]))
        self._done += 1
        if self._done % self._progress_every == 0:
            log.info("labelled %d images in this worker", self._done)
        yield row


def failed_batch_rows(failure) -> Iterable[dict]:
    """RunInference's dead letters — (batch of (SourceFile, image), (exception type, its
    repr, traceback lines)) — as error rows, one per image of the failed batch."""
    batch, (error_type, message, _traceback) = failure
    for source, _ in batch:
        yield logged_failure(error_record(source, "inference", error_type.__name__, message))
