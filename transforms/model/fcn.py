"""Classifier → fully convolutional network giving a response map at any input size.

The Dense(classes) head is copied into a 1×1 convolution (kernel reshaped to
(1, 1, C, classes), bias copied) applied to the feature map instead of its global
average. Two map modes:

- ``cell``: one prediction per cell of the final feature map (input / stride).
- ``window``: a window_cells × window_cells average pool first (7×7 for 224-px
  classifiers), so every output equals the original classifier on one 224-px window;
  ``window_stride`` 1 slides it cell by cell, 7 tiles the image. At 224² the map is
  1×1 and equals the classifier's output.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from scipy import special

from transforms.model.backbones import Backbone, get_backbone, load_classifier
from transforms.model.head import TrainedHead
from transforms.model.grid import MapGrid

MapMode = Literal["cell", "window"]
MAP_MODES = ("cell", "window")
# What runs the model: TensorFlow (the Keras model in a tf.function) or ONNX Runtime (its
# exported graph, transforms/model/onnx_engine.py; CPU only, float32, no XLA).
ENGINES = ("tensorflow", "onnxruntime")

# Images per network call when the worker chooses (--batch-size 0). On a CPU, oneDNN
# compiles kernels for every (layer, input shape, batch size) it meets, and TensorFlow
# keeps them (per thread): calls of one image meet few combinations, run as fast there
# and stop memory growing with the run (benchmarks/README.md, (c)). A GPU needs batches
# to be kept busy.
CPU_BATCH_SIZE = 1
GPU_BATCH_SIZE = 8


def resolve_engine(engine: str, tensorflow_only: bool = False) -> str:
    """The engine ``auto`` means here: ONNX Runtime on a CPU (it runs the model 1.6 times
    as fast as TensorFlow there, benchmarks/README.md, (a)), TensorFlow where it sees a
    GPU (this ONNX Runtime build is CPU-only) or a TensorFlow-only setting is asked for
    (mixed precision, XLA)."""
    if engine != "auto":
        return engine
    return "tensorflow" if tensorflow_only or tf.config.list_physical_devices("GPU") else "onnxruntime"


def default_batch_size() -> int:
    """Images per network call on this machine: GPU_BATCH_SIZE where TensorFlow sees a
    GPU, else CPU_BATCH_SIZE."""
    return GPU_BATCH_SIZE if tf.config.list_physical_devices("GPU") else CPU_BATCH_SIZE


def fully_convolutional(classifier: keras.Model, backbone: Backbone, map_mode: MapMode = "cell",
                        window_stride: int = 1) -> keras.Model:
    """(N, H, W, 3) preprocessed images of any size → (N, h, w, classes) logits: the
    classifier's logits in every cell (its probabilities are their softmax).

    The returned model shares its layers (and so its weights) with ``classifier``.
    """
    if map_mode not in MAP_MODES:
        raise ValueError(f"map_mode must be one of {MAP_MODES}, got {map_mode!r}")
    dense = classifier.get_layer(backbone.classifier_layer)
    if not isinstance(dense, layers.Dense) or dense.activation not in (
            keras.activations.softmax, keras.activations.linear):
        raise ValueError(f"{backbone.classifier_layer} must be a Dense layer with softmax or "
                         "linear activation")
    body = keras.Model(classifier.inputs, classifier.get_layer(backbone.features_layer).output)
    # Re-run the same layers on an input of unknown height and width.
    inputs = keras.Input((None, None, 3), name="image")
    features = keras.models.clone_model(body, input_tensors=[inputs],
                                        clone_function=lambda layer: layer).output
    if map_mode == "window":
        features = layers.AveragePooling2D(backbone.window_cells, strides=window_stride,
                                           padding="valid", name="window_pool")(features)
    kernel, bias = dense.get_weights()
    head = layers.Conv2D(kernel.shape[1], 1, name="classifier_conv")
    logits = head(features)
    head.set_weights([kernel.reshape(1, 1, *kernel.shape), bias])
    # float32 logits also under a mixed-precision policy.
    logits = layers.Activation("linear", dtype="float32", name="class_logits")(logits)
    return keras.Model(inputs, logits, name=f"{classifier.name}_fcn_{map_mode}")


def with_head_logits(model: keras.Model, head: TrainedHead) -> keras.Model:
    """A cell-mode FCN whose output also holds a trained head's cell logits, after the
    classes': the head's 1×1 convolution reads the same features as the classifier's, so
    one network call (and one exported graph) gives both, at the cost of a few channels."""
    features = model.get_layer("classifier_conv").input
    cells = layers.Conv2D(len(head.wnids), 1, name="head_cell_logits")
    head_logits = layers.Activation("linear", dtype="float32", name="head_logits")(cells(features))
    cells.set_weights(head.cell_layer.get_weights())
    outputs = layers.Concatenate(name="class_and_head_logits")([model.output, head_logits])
    return keras.Model(model.input, outputs, name=f"{model.name}_head")


@contextlib.contextmanager
def dtype_policy(policy: str | None):
    """Layers built inside take ``policy`` (None: leave the current one)."""
    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def map_size(input_size: tuple[int, int], backbone: Backbone, map_mode: MapMode = "cell",
             window_stride: int = 1) -> tuple[int, int]:
    """The (h, w) of the response map of an (H, W) input; 0 where a window does not fit."""
    h, w = (-(-n // backbone.stride) for n in input_size)  # cells of a 'same' network
    if map_mode == "window":
        k = backbone.window_cells
        h, w = ((n - k) // window_stride + 1 if n >= k else 0 for n in (h, w))
    return h, w


@dataclass
class ResponseMapper:
    """A fully convolutional backbone ready for batched inference.

    Images go in as RGB arrays in [0, 255] (uint8 or float), a batch of one size at a
    time; preprocessing runs inside the TensorFlow graph, or in numpy before the ONNX
    Runtime one (``engine``; ``intra_op_threads`` 0: the engine's default, every core).
    With a trained ``head``, the model's output holds its cell logits after the classes'
    (``with_head_logits``).
    """

    backbone: Backbone
    model: keras.Model
    map_mode: MapMode = "cell"
    window_stride: int = 1
    jit_compile: bool = False
    engine: str = "tensorflow"
    intra_op_threads: int = 0
    head: TrainedHead | None = None

    @classmethod
    def load(cls, name: str = "efficientnet_lite0", weights: str | None = "imagenet",
             map_mode: MapMode = "cell", window_stride: int = 1,
             mixed_precision: bool = False, jit_compile: bool = False,
             engine: str = "tensorflow", intra_op_threads: int = 0,
             head: TrainedHead | None = None) -> ResponseMapper:
        """``mixed_precision``: float16 compute with float32 weights and outputs (Keras's
        mixed_float16 policy), for GPUs with tensor cores; CPUs run it too, slowly.
        ``jit_compile``: XLA, compiled once per input shape (shape buckets keep those few).
        Both are TensorFlow's: the onnxruntime engine refuses them. ``head``: a trained
        head (cell mode) whose cell logits the network gives too."""
        backbone = get_backbone(name)
        with dtype_policy("mixed_float16" if mixed_precision else None):
            classifier = load_classifier(name, weights)
            model = fully_convolutional(classifier, backbone, map_mode, window_stride)
            if head is not None:
                if map_mode != "cell":
                    raise ValueError("a trained head works on cell-mode maps")
                model = with_head_logits(model, head)
        return cls(backbone, model, map_mode, window_stride, jit_compile, engine,
                   intra_op_threads, head)

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        self._onnx = None
        if self.engine == "onnxruntime":
            if self.jit_compile or self.model.dtype_policy.name != "float32":
                raise ValueError("the onnxruntime engine runs the float32 model without XLA: "
                                 "use the tensorflow engine for mixed precision or XLA")
            from transforms.model.onnx_engine import OnnxRuntimeEngine

            self._onnx = OnnxRuntimeEngine(self.model, self.intra_op_threads)
            return
        # One trace per input shape; reduce_retracing generalises after a few shapes
        # (not under XLA, which compiles each shape anyway).
        self._logits = tf.function(self._logits_graph, jit_compile=self.jit_compile,
                                         reduce_retracing=not self.jit_compile)

    @property
    def num_classes(self) -> int:
        head_channels = 0 if self.head is None else len(self.head.wnids)
        return int(self.model.output.shape[-1]) - head_channels

    def _logits_graph(self, images, content_sizes):
        x = self.backbone.preprocess(tf.cast(images, tf.float32))
        # Padding beyond each image's content is zero in network-input space, as the
        # first convolution's own 'same' padding would be.
        shape = tf.shape(x)
        rows = tf.range(shape[1])[None, :] < content_sizes[:, :1]
        cols = tf.range(shape[2])[None, :] < content_sizes[:, 1:]
        mask = tf.cast(rows[:, :, None, None] & cols[:, None, :, None], x.dtype)
        return self.model(x * mask, training=False)

    def logits(self, images: np.ndarray, content_sizes: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W, 3) → (N, h, w, classes [+ head synsets]) per-cell logits: the
        classes', then (with a head) the head's cell logits.

        ``content_sizes`` (N, 2): each image's (height, width) when it was padded at the
        bottom and right to share the batch's shape; None: no padding.
        """
        images = _as_batch(images)
        sizes = _content_sizes(images, content_sizes)
        if self._onnx is not None:
            return self._onnx(self._masked_inputs(images, sizes))
        return self._logits(images, sizes).numpy()

    def class_logits(self, images: np.ndarray, content_sizes: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W, 3) → (N, h, w, classes) per-cell class logits (as ``logits``)."""
        return self.logits(images, content_sizes)[..., :self.num_classes]

    def _masked_inputs(self, images: np.ndarray, content_sizes: np.ndarray) -> np.ndarray:
        """What ``_logits_graph`` feeds the model, in numpy: preprocessed inputs,
        zero beyond each image's content."""
        x = np.asarray(self.backbone.preprocess(images.astype(np.float32)), np.float32)
        for image, (height, width) in zip(x, content_sizes):  # in place: no mask-sized temporaries
            image[height:] = 0
            image[:, width:] = 0
        return x

    def class_maps(self, images: np.ndarray, content_sizes: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W, 3) → (N, h, w, classes) per-cell class probabilities (as
        ``class_logits``, softmax over the classes)."""
        return special.softmax(self.class_logits(images, content_sizes), axis=-1)

    def is_out_of_memory(self, error: BaseException) -> bool:
        """Whether ``error``, raised by ``logits``, means the batch did not fit."""
        if self._onnx is not None:
            return self._onnx.is_out_of_memory(error)
        return isinstance(error, tf.errors.ResourceExhaustedError)

    def map_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """The response map's (h, w) for an (H, W) input, without running the network."""
        return map_size(input_size, self.backbone, self.map_mode, self.window_stride)

    def grid(self, map_size: tuple[int, int]) -> MapGrid:
        """Where the cells of a map of map_size (h, w) sit, in input pixel coordinates:
        cell centres for ``cell``, window centres for ``window``."""
        stride = self.backbone.stride
        if self.map_mode == "cell":
            step, first = stride, stride / 2
        else:  # a window's centre: window_cells cells from its first cell
            step, first = stride * self.window_stride, stride * self.backbone.window_cells / 2
        return MapGrid(map_size[0], map_size[1], first, step, first, step)


def _content_sizes(images: np.ndarray, content_sizes: np.ndarray | None) -> np.ndarray:
    if content_sizes is None:
        return np.tile(np.array(images.shape[1:3], np.int32), (len(images), 1))
    return np.asarray(content_sizes, np.int32).reshape(len(images), 2)


def _as_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected a batch of RGB images (N, H, W, 3), got shape {images.shape}")
    return images
