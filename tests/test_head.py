"""The trainable FCN head: bilinear initialisation, saved weights, pseudo-masks."""
import numpy as np
import pytest
import tensorflow as tf

from transforms.maps.heatmaps import resample
from transforms.model.grid import MapGrid
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
    from transforms.io.heatmap_png import PNG8
    from transforms.io.records import SourceFile, decoded_row, label_row
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
        maps = synset_heatmaps(lite0_mapper, photo, synsets, scales)
        row = decoded_row(label_row(SourceFile(name), maps,
                                    maps.boxes(thresholds=(0.25,), min_score=0.05),
                                    "efficientnet_lite0", "blend", 5), PNG8)
        network_input = scale_image(photo, photo.shape[:2], scales, 32).inputs[0]
        features = extract(network_input)
        assert features.shape[:2] == (row["heatmaps"][0]["height"], row["heatmaps"][0]["width"])
        cells = lite0_mapper.grid(features.shape[:2]).scaled(
            photo.shape[0] / network_input.shape[0], photo.shape[1] / network_input.shape[1])
        targets = row_targets(row, [s.wnid for s in synsets], 4, cells)
        assert targets.shape == (features.shape[0] * 4, features.shape[1] * 4, 4)
        assert (targets == 1).any() and (targets == 0).any()
        examples.append(HeadExample(features, targets))

    head, history = train_head(examples[:2], examples[2:], epochs=20, learning_rate=1e-2, patience=20)
    untrained = train_head(examples[:2], examples[2:], epochs=0)[0]
    assert evaluate_loss(head, examples[:2]) < 0.5 * evaluate_loss(untrained, examples[:2])
    assert history["loss"][-1] < history["loss"][0]


def _random_head(wnids, seed=0):
    from transforms.model.head import TrainedHead

    model = build_head(1280, len(wnids))
    rng = np.random.default_rng(seed)
    model.get_layer("synset_logits").set_weights(
        [rng.normal(0, 0.05, (1, 1, 1280, len(wnids))).astype(np.float32),
         rng.normal(0, 1, len(wnids)).astype(np.float32)])
    manifest = {"synsets": [{"wnid": w, "label": w} for w in wnids], "factor": 4,
                "features": 1280}
    return TrainedHead(manifest, model)


@pytest.mark.parametrize("engine", ["tensorflow", "onnxruntime"])
def test_the_network_gives_the_heads_cell_logits_with_the_classes(lite0_mapper, engine):
    """One call, both outputs: the classes' logits unchanged (on a padded batch too), then
    exactly what the head's 1×1 convolution gives on the backbone's features."""
    from transforms.model.fcn import ResponseMapper
    from transforms.train.examples import FeatureExtractor

    from conftest import load_photo

    head = _random_head(["n02084071", "n02121620"])
    with_head = ResponseMapper.load("efficientnet_lite0", engine=engine, head=head)
    photo = load_photo("dog.jpg")[:224, :288]
    assert with_head.num_classes == 1000
    logits = with_head.logits(photo[None])
    np.testing.assert_allclose(logits[..., :1000], lite0_mapper.class_logits(photo[None]), atol=1e-4)
    features = FeatureExtractor(lite0_mapper)(photo)
    expected = head.cell_layer(features[None]).numpy()
    np.testing.assert_allclose(logits[..., 1000:], expected, atol=1e-4)
    batch = np.zeros((2, 256, 320, 3), np.uint8)
    batch[0, :224, :288] = photo
    sizes = np.array([[224, 288], [256, 320]])
    np.testing.assert_allclose(with_head.logits(batch, sizes)[..., :1000],
                               lite0_mapper.class_logits(batch, sizes), atol=1e-4)


def test_head_maps_replace_the_heat_on_a_finer_grid(lite0_mapper):
    """The head's maps, per scale upsampled, squashed and fused, become the heat (alone or
    averaged with the classifier's); box scores stay the classifier's probabilities."""
    from scipy.special import expit

    from transforms.maps.multiscale import resize_image, synset_heatmaps, with_head_maps
    from transforms.maps.scales import parse_scales
    from transforms.model.fcn import ResponseMapper
    from transforms.model.head import finer_grid
    from transforms.vocab.synsets import parse_synset_spec

    from conftest import load_photo

    photo = load_photo("dog.jpg")
    scales = parse_scales("224x288")  # a fixed size: the network sees it unpadded
    head = _random_head(["n02121620", "n02084071"])  # another order than the job's
    synsets = [parse_synset_spec(s) for s in ("dog", "n02121620")]
    plain = synset_heatmaps(lite0_mapper, photo, synsets, scales)
    mapper = ResponseMapper.load("efficientnet_lite0", head=head)
    maps = synset_heatmaps(mapper, photo, synsets, scales)
    h, w = plain.grid.shape
    assert maps.grid.shape == (4 * h, 4 * w) and maps.fused.shape == (4 * h, 4 * w, 2)
    network_input = resize_image(photo, scales[0].input_size(photo.shape[:2], 32))
    cells = mapper.logits(network_input[None])[0, ..., 1000:]
    head_only = resample(expit(head.upsample(cells))[..., [1, 0]],
                         finer_grid(plain.per_scale[0].grid, 4), maps.grid)
    np.testing.assert_allclose(maps.fused, (head_only + resample(plain.fused, plain.grid, maps.grid)) / 2,
                               atol=1e-4)
    alone = with_head_maps(plain, head, [cells], mode="head")
    np.testing.assert_allclose(alone.fused, head_only, atol=1e-4)
    np.testing.assert_allclose(alone.probability, resample(plain.probability, plain.grid, maps.grid))
    with pytest.raises(ValueError, match="give synsets"):
        synset_heatmaps(mapper, photo, None, scales)
