"""A fully convolutional head trained on the job's own weak labels (FCN-style): a 1×1
convolution from the frozen backbone's features to one logit per synset, then a
transposed convolution initialised as bilinear upsampling (Long, Shelhamer and Darrell's
"deconvolution" layers), so that training starts from exactly the maps the classifier's
cells would give when upsampled, and may sharpen them.

Bilinear here is what ``tf.image.resize(..., "bilinear")`` computes (half-pixel centres,
edges held): the logits are padded by one cell with their edge values, upsampled by the
transposed convolution (kernel 2f, stride f) and cropped by 1.5 f on each side, which
puts every output pixel p at input coordinate (p + 0.5) / f - 0.5.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

DEFAULT_FACTOR = 4  # stride 32 → 8: a map cell per 8×8 pixels of the network input


def bilinear_kernel(factor: int, channels: int) -> np.ndarray:
    """(2f, 2f, channels, channels) transposed-convolution kernel upsampling each channel
    bilinearly by ``factor`` (even), channels kept apart."""
    if factor < 2 or factor % 2:
        raise ValueError(f"the upsampling factor must be even and at least 2, got {factor}")
    centre = factor - 0.5
    taps = 1 - np.abs(np.arange(2 * factor) - centre) / factor
    kernel = np.zeros((2 * factor, 2 * factor, channels, channels), np.float32)
    for c in range(channels):
        kernel[:, :, c, c] = np.outer(taps, taps)
    return kernel


class EdgePad2D(layers.Layer):
    """Pads height and width by one cell on each side with the edge values (a symmetric
    pad of one repeats the edge; TensorFlow has no "edge" mode)."""

    def call(self, x):
        return keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return n, None if h is None else h + 2, None if w is None else w + 2, c


def build_head(features: int, synsets: int, factor: int = DEFAULT_FACTOR,
               name: str = "synset_head") -> keras.Model:
    """(N, h, w, features) backbone features → (N, h·f, w·f, synsets) synset logits."""
    inputs = keras.Input((None, None, features), name="features")
    logits = layers.Conv2D(synsets, 1, name="synset_logits")(inputs)
    padded = EdgePad2D(name="edge_pad")(logits)
    upsampled = layers.Conv2DTranspose(
        synsets, 2 * factor, strides=factor, padding="valid", use_bias=False,
        kernel_initializer=keras.initializers.Constant(bilinear_kernel(factor, synsets)),
        name="upsample")(padded)
    crop = 3 * factor // 2
    outputs = layers.Cropping2D(((crop, crop), (crop, crop)), name="crop")(upsampled)
    return keras.Model(inputs, outputs, name=name)
