"""The trainable FCN head: bilinear initialisation, saved weights, pseudo-masks."""
import numpy as np
import pytest
import tensorflow as tf

from transforms.maps.heatmaps import MapGrid, resample
from transforms.maps.pseudo_masks import BACKGROUND, FOREGROUND, IGNORE, pseudo_mask
from transforms.model.head import bilinear_kernel, build_head


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_the_transposed_convolution_starts_as_exact_bilinear_upsampling(factor):
    head = build_head(features=16, synsets=3, factor=factor)
    features = np.random.default_rng(factor).normal(size=(2, 5, 7, 16)).astype(np.float32)
    upsampled = head(features).numpy()
    logits = head.get_layer("synset_logits")(features).numpy()
    assert upsampled.shape == (2, 5 * factor, 7 * factor, 3)
    # As TensorFlow resizes (half-pixel centres, edges held) ...
    resized = tf.image.resize(logits, (5 * factor, 7 * factor), "bilinear").numpy()
    np.testing.assert_allclose(upsampled, resized, atol=1e-5)
    # ... and as the job resamples its maps: cells of 32 px onto cells of 32 / factor px.
    step = 32 / factor
    cells, finer = MapGrid(5, 7, 16, 32, 16, 32), MapGrid(5 * factor, 7 * factor, step / 2, step, step / 2, step)
    np.testing.assert_allclose(upsampled[0], resample(logits[0], cells, finer), atol=1e-5)


def test_the_bilinear_kernel_keeps_channels_apart_and_needs_an_even_factor():
    kernel = bilinear_kernel(2, 2)
    np.testing.assert_allclose(kernel[:, 0, 0, 0], [0.0625, 0.1875, 0.1875, 0.0625])
    assert not kernel[:, :, 0, 1].any() and not kernel[:, :, 1, 0].any()
    with pytest.raises(ValueError, match="even"):
        bilinear_kernel(3, 1)


def test_saved_head_weights_reload_to_the_same_outputs(tmp_path):
    head = build_head(features=8, synsets=2)
    head.get_layer("synset_logits").set_weights(
        [np.random.default_rng(1).normal(size=(1, 1, 8, 2)).astype(np.float32), np.ones(2, np.float32)])
    path = tmp_path / "head.weights.h5"
    head.save_weights(path)
    again = build_head(features=8, synsets=2)
    again.load_weights(path)
    features = np.random.default_rng(2).normal(size=(1, 3, 4, 8)).astype(np.float32)
    np.testing.assert_array_equal(head(features).numpy(), again(features).numpy())


def test_pseudo_masks_keep_the_confident_cells_only():
    heat = np.array([[0.0, 0.05, 0.3], [0.5, 0.9, 0.1]])
    np.testing.assert_array_equal(pseudo_mask(heat, has_box=True), [
        [BACKGROUND, BACKGROUND, IGNORE], [FOREGROUND, FOREGROUND, BACKGROUND]])
    # A synset without a box in the image: background everywhere, however its heat looks.
    assert (pseudo_mask(heat, has_box=False) == BACKGROUND).all()
    with pytest.raises(ValueError):
        pseudo_mask(heat, True, foreground=0.1, background=0.2)


def test_training_on_a_few_photos_lowers_the_loss(lite0_mapper):
    """Real features and the real job's heat on the three test photos (one scale, 288,
    for speed): fitted on two, stopped on the third, the pseudo-label loss falls."""
    from transforms.io.records import SourceFile, label_row
    from transforms.maps.multiscale import scale_image, synset_heatmaps
    from transforms.maps.scales import parse_scales
    from transforms.train.examples import FeatureExtractor, HeadExample, row_targets
    from transforms.train.fit import evaluate_loss, train_head
    from transforms.vocab.synsets import parse_synset_spec

    from conftest import GOOD, load_photo

    scales = parse_scales("288")
    synsets = [parse_synset_spec(s) for s in ("dog", "n02121620", "bicycle", "n01503061")]
    extract = FeatureExtractor(lite0_mapper)
    examples = []
    for name in GOOD:
        photo = load_photo(name)
        row = label_row(SourceFile(name), synset_heatmaps(lite0_mapper, photo, synsets, scales),
                        "efficientnet_lite0", "blend", 5, {"threshold": 0.25, "min_score": 0.05})
        features = extract(scale_image(photo, photo.shape[:2], scales, 32).inputs[0])
        assert features.shape[:2] == (row["heatmaps"][0]["height"], row["heatmaps"][0]["width"])
        targets = row_targets(row, [s.wnid for s in synsets], factor=4)
        assert targets.shape == (features.shape[0] * 4, features.shape[1] * 4, 4)
        assert (targets == 1).any() and (targets == 0).any()
        examples.append(HeadExample(features, targets))

    head, history = train_head(examples[:2], examples[2:], epochs=20, learning_rate=1e-2, patience=20)
    untrained = train_head(examples[:2], examples[2:], epochs=0)[0]
    assert evaluate_loss(head, examples[:2]) < 0.5 * evaluate_loss(untrained, examples[:2])
    assert history["loss"][-1] < history["loss"][0]
