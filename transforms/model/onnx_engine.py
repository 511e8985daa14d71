"""ONNX Runtime as the engine of the fully convolutional model, on CPUs.

The Keras model stays the source of truth: its ONNX graph is exported from it
(``keras.Model.export(format="onnx")``, dynamic batch, height and width) and cached
beside the converted weights, under a name that holds everything the graph depends on
(the model's name, a digest of its weights, Keras and tf2onnx versions), written
atomically so that workers exporting at once never read half a file. Preprocessing
and the padded-content mask run in numpy before the graph, as the TensorFlow engine
runs them in its own graph.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import warnings
from pathlib import Path

import keras
import numpy as np

from transforms.model.backbones import cache_dir, write_atomically

log = logging.getLogger(__name__)


def weights_digest(model: keras.Model) -> str:
    """sha256 of the model's weights, in order: what its exported graph is a function of."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def onnx_path(model: keras.Model) -> Path:
    """Where the model's exported graph is cached."""
    versions = f"keras{keras.__version__}-tf2onnx{importlib.metadata.version('tf2onnx')}"
    return cache_dir() / f"{model.name}-{weights_digest(model)[:16]}-{versions}.onnx"


def export_onnx(model: keras.Model, path: Path) -> None:
    """The model as an ONNX graph taking float32 (N, H, W, 3) of any N, H, W."""
    spec = keras.InputSpec(shape=(None, None, None, 3), dtype="float32")
    with warnings.catch_warnings():  # Keras's own numpy-2 patch of tf2onnx warns; nothing to act on
        warnings.simplefilter("ignore", FutureWarning)
        write_atomically(path, lambda tmp: model.export(tmp, format="onnx", input_signature=[spec],
                                                        verbose=False))


class OnnxRuntimeEngine:
    """Runs a Keras model's exported graph with ONNX Runtime's CPU provider.

    ``intra_op_threads`` 0: ONNX Runtime's default (one thread per core)."""

    def __init__(self, model: keras.Model, intra_op_threads: int = 0):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        # No memory patterns: ONNX Runtime plans and keeps one per input shape, and a CPU
        # worker runs each image at its own shape (transforms/maps/multiscale.py). Without
        # them the job's peak memory was about 230 MiB lower at 100 and at 1000 images of
        # mixed sizes, at the same rate within run-to-run noise (benchmarks/README.md, (c)).
        options.enable_mem_pattern = False
        path = onnx_path(model)
        if not path.is_file():
            export_onnx(model, path)

        def open_session():
            return onnxruntime.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        try:
            session = open_session()
        except Exception as e:  # a damaged or truncated cache file: make it again
            log.warning("cached ONNX graph %s cannot be loaded (%s): exporting it again", path, e)
            export_onnx(model, path)
            session = open_session()
        self.path = path
        self._session = session
        self._input = session.get_inputs()[0].name

    @staticmethod
    def is_out_of_memory(error: BaseException) -> bool:
        """ONNX Runtime reports a failed allocation as a RuntimeException saying so."""
        from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

        return isinstance(error, RuntimeException) and "allocat" in str(error).lower()

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float32 network inputs → the model's output."""
        return self._session.run(None, {self._input: inputs})[0]
