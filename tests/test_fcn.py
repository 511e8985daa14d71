"""Dense → 1×1 conv: exactness against the classifier, map shapes, batching."""
import keras
import numpy as np
import pytest

from transforms.model.backbones import get_backbone, load_classifier
from transforms.model.fcn import ResponseMapper, dtype_policy, fully_convolutional
from transforms.model.grid import MapGrid
from transforms.maps.multiscale import resize_image

from conftest import load_photo


def _photos_224(size: int = 224) -> np.ndarray:
    return np.stack([resize_image(load_photo(name), (size, size))
                     for name in ("dog.jpg", "chelsea.png", "eagle.jpg")])


def _image_dependent_head(classifier, backbone, images, seed=0):
    """Random weights give a near-uniform softmax, the same for every image, which a bug
    could still match to 1e-5. Pooled random features are mostly one large vector shared
    by all images: a random head made orthogonal to it (so that float32 logits do not
    come from cancelling large numbers) and rescaled gives logits that vary by a few
    units from image to image."""
    dense = classifier.get_layer(backbone.classifier_layer)
    pooled = keras.Model(classifier.input, dense.input)(backbone.preprocess(images.astype("f4")))
    pooled = np.asarray(pooled, np.float64)
    common = pooled.mean(0) / np.linalg.norm(pooled.mean(0))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=dense.get_weights()[0].shape)
    kernel -= np.outer(common, common @ kernel)
    kernel *= 4 / (pooled @ kernel).std()
    dense.set_weights([kernel, rng.normal(size=kernel.shape[1])])


def _random_classifier(name):
    backbone = get_backbone(name)
    classifier = load_classifier(name, weights=None)
    _image_dependent_head(classifier, backbone, _photos_224(backbone.input_size))
    return backbone, classifier


@pytest.fixture(scope="module", params=["efficientnet_lite0", "resnet50"])
def classifier_under_test(request):
    return _random_classifier(request.param)


@pytest.fixture
def float64():
    """Random features are badly conditioned (a large common part, a small image-dependent
    one), so float32 rounding alone moves probabilities by ~1e-5 between two
    evaluations of the same network. The exactness test is about the conversion, not
    rounding: both networks compute in float64 there."""
    with dtype_policy("float64"):
        yield


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1",
                                  "efficientnet_lite2", "resnet50"])
def test_window_mode_at_the_training_size_equals_the_classifier(name, float64):
    """At 224² (Lite1: 240², Lite2: 260²) the window map is one cell: the classifier."""
    backbone, classifier = _random_classifier(name)
    mapper = ResponseMapper(backbone, fully_convolutional(classifier, backbone, "window"), "window")
    images = _photos_224(backbone.input_size)
    expected = classifier(backbone.preprocess(images.astype("f8")), training=False).numpy()
    assert expected.max() > 0.05  # not a near-uniform softmax (1/1000)
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # and it depends on the image
    maps = mapper.class_maps(images)
    assert maps.shape == (3, 1, 1, 1000)
    np.testing.assert_allclose(maps[:, 0, 0], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def resnet50():
    backbone = get_backbone("resnet50")
    return backbone, load_classifier("resnet50", weights=None)


@pytest.mark.parametrize("mode, stride, input_size, map_size", [
    ("cell", 1, (800, 600), (25, 19)),
    ("cell", 1, (200, 300), (7, 10)),
    ("window", 7, (725, 1920), (3, 8)),
    ("window", 1, (725, 1920), (17, 54)),
])
def test_resnet50_map_shapes(resnet50, mode, stride, input_size, map_size):
    backbone, classifier = resnet50
    mapper = ResponseMapper(backbone, fully_convolutional(classifier, backbone, mode, stride),
                            mode, stride)
    maps = mapper.class_maps(np.zeros((1, *input_size, 3), np.uint8))
    assert maps.shape == (1, *map_size, 1000)
    assert mapper.map_size(input_size) == map_size
    # Cell centres every 32 px from 16; window centres 112 px (3.5 cells) into each window.
    first, step = (16, 32) if mode == "cell" else (112, 32 * stride)
    assert mapper.grid(map_size) == MapGrid(*map_size, first, step, first, step)


def test_batch_equals_single_images_and_padding_is_masked(classifier_under_test):
    backbone, classifier = classifier_under_test
    mapper = ResponseMapper(backbone, fully_convolutional(classifier, backbone, "cell"), "cell")
    images = np.random.default_rng(2).integers(0, 256, (2, 96, 160, 3), dtype=np.uint8)
    batch = mapper.class_maps(images)
    assert batch.shape == (2, 3, 5, 1000)
    for i in range(2):
        # Kernels differ with the batch size; a peaky softmax turns their rounding
        # differences into ~1e-4 of probability.
        np.testing.assert_allclose(batch[i], mapper.class_maps(images[i:i + 1])[0], atol=1e-3)
    # Whatever lies in the padding of a content_sizes batch does not matter.
    padded = np.concatenate([images, np.full((2, 96, 64, 3), 255, np.uint8)], axis=2)
    noisy = padded.copy()
    noisy[:, :, 160:] = np.random.default_rng(3).integers(0, 256, (2, 96, 64, 3))
    sizes = np.array([[96, 160], [96, 160]])
    np.testing.assert_allclose(mapper.class_maps(padded, sizes), mapper.class_maps(noisy, sizes),
                               atol=1e-6)
    assert not np.allclose(mapper.class_maps(padded), mapper.class_maps(noisy), atol=1e-3)


def test_rejects_bad_arguments(resnet50):
    backbone, classifier = resnet50
    with pytest.raises(ValueError, match="map_mode"):
        fully_convolutional(classifier, backbone, "sliding")
    mapper = ResponseMapper(backbone, fully_convolutional(classifier, backbone, "cell"))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        mapper.class_maps(np.zeros((224, 224, 3), np.uint8))


def test_any_gap_dense_classifier_can_be_registered():
    """The conversion is generic: a small custom classifier, registered in a few lines."""
    from transforms.model.backbones import Backbone

    def build():
        inputs = keras.Input((64, 64, 3))
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
        x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="c2")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))

    backbone = Backbone("tiny", build, lambda x: x / 255.0, "c2", "logits",
                        imagenet_weights=lambda: "", imagenet_checksum="", input_size=64, stride=4)
    classifier = build()
    mapper = ResponseMapper(backbone, fully_convolutional(classifier, backbone, "window"), "window")
    image = np.random.default_rng(3).uniform(0, 255, (1, 64, 64, 3)).astype("f4")
    expected = keras.ops.softmax(classifier(image / 255.0)).numpy()
    np.testing.assert_allclose(mapper.class_maps(image)[:, 0, 0], expected, atol=1e-6)
    assert mapper.class_maps(np.zeros((1, 128, 96, 3), "f4")).shape == (1, 17, 9, 5)


def test_mixed_precision_gives_float32_maps_close_to_float32(weights_cache):
    image = resize_image(load_photo("dog.jpg"), (224, 288))[None]
    full = ResponseMapper.load().class_maps(image)
    mixed_mapper = ResponseMapper.load(mixed_precision=True)
    assert mixed_mapper.model.get_layer("classifier_conv").compute_dtype == "float16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    mixed = mixed_mapper.class_maps(image)
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, full, atol=0.05)  # float16 logits: ~1e-3 relative
    assert (mixed.argmax(-1) == full.argmax(-1)).mean() > 0.9


def test_xla_gives_the_same_maps(weights_cache):
    image = resize_image(load_photo("chelsea.png"), (224, 320))[None]
    plain = ResponseMapper.load().class_maps(image)
    xla = ResponseMapper.load(jit_compile=True)
    np.testing.assert_allclose(xla.class_maps(image), plain, atol=1e-4)
