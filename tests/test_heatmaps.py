"""Map grids, bilinear resampling and fusion."""
import numpy as np
import pytest
from scipy import ndimage

from transforms.maps.heatmaps import fuse, resample
from transforms.model.grid import MapGrid


def test_uniform_grid_centres_cells():
    grid = MapGrid.uniform(2, 4, (100, 200))
    assert (grid.y0, grid.dy, grid.x0, grid.dx) == (25, 50, 25, 50)
    assert grid.scaled(2, 0.5) == MapGrid(2, 4, 50, 100, 12.5, 25)


def test_resample_onto_the_same_grid_is_the_identity():
    values = np.random.default_rng(0).random((5, 7, 3))
    grid = MapGrid.uniform(5, 7, (50, 70))
    np.testing.assert_allclose(resample(values, grid, grid), values, atol=1e-6)


def test_bilinear_resampling_reproduces_a_linear_ramp():
    source = MapGrid.uniform(4, 4, (40, 40))  # centres at 5, 15, 25, 35
    ys, xs = np.meshgrid(source.y0 + source.dy * np.arange(4),
                         source.x0 + source.dx * np.arange(4), indexing="ij")
    ramp = 2 * ys + xs
    target = MapGrid.uniform(40, 40, (40, 40))  # every pixel centre
    out = resample(ramp, source, target)
    ty, tx = np.meshgrid(np.arange(40) + 0.5, np.arange(40) + 0.5, indexing="ij")
    inside = (ty >= 5) & (ty <= 35) & (tx >= 5) & (tx <= 35)
    np.testing.assert_allclose(out[inside], (2 * ty + tx)[inside], atol=1e-4)
    # Outside the outermost centres the edge value is held (no extrapolation).
    assert out[0, 0] == pytest.approx(ramp[0, 0])
    assert out[-1, -1] == pytest.approx(ramp[-1, -1])


@pytest.mark.parametrize("channels", [None, 3])
def test_resample_equals_scipy_map_coordinates(channels):
    rng = np.random.default_rng(4)
    values = rng.random((5, 7) if channels is None else (5, 7, channels))
    source = MapGrid(5, 7, 30.0, 40.0, 10.0, 25.0)  # not uniform over the image: windows
    target = MapGrid.uniform(90, 110, (220, 190))  # reaches past the source's edge cells
    rows = (target.y0 + target.dy * np.arange(90) - source.y0) / source.dy
    cols = (target.x0 + target.dx * np.arange(110) - source.x0) / source.dx
    coords = np.stack(np.meshgrid(rows, cols, indexing="ij"))
    planes = values[..., None] if channels is None else values
    expected = np.stack([ndimage.map_coordinates(planes[..., s], coords, order=1, mode="nearest")
                         for s in range(planes.shape[-1])], axis=-1)
    out = resample(values, source, target)
    assert out.shape == values.shape[:0] + (90, 110) + values.shape[2:]
    np.testing.assert_allclose(out, expected[..., 0] if channels is None else expected, atol=1e-6)


def test_resample_checks_the_grid():
    with pytest.raises(ValueError, match="do not match"):
        resample(np.zeros((3, 3)), MapGrid.uniform(4, 4, (8, 8)), MapGrid.uniform(2, 2, (8, 8)))


def test_geometric_mean_of_identical_maps_is_the_map():
    heat = np.random.default_rng(1).random((6, 9)).astype(np.float32)
    heat[0, 0] = 0.0
    np.testing.assert_allclose(fuse([heat, heat, heat], "geomean"), heat, rtol=1e-6)
    for method in ("mean", "max"):
        np.testing.assert_allclose(fuse([heat, heat], method), heat, rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_max_mean_geomean_order(seed):
    maps = list(np.random.default_rng(seed).random((3, 8, 8)))
    maps[0][2, 2] = 0.0  # a zero anywhere makes the geometric mean zero there
    mx, mean, geo = (fuse(maps, m) for m in ("max", "mean", "geomean"))
    assert (mx >= mean - 1e-7).all() and (mean >= geo - 1e-7).all()
    assert geo[2, 2] == 0.0 and mean[2, 2] > 0
    assert (mx > geo).any()


def test_fuse_rejects_unknown_methods_and_negative_geomean():
    with pytest.raises(ValueError, match="fusion must be one of"):
        fuse([np.ones((2, 2))], "median")
    with pytest.raises(ValueError, match="non-negative"):
        fuse([-np.ones((2, 2))], "geomean")


def test_synset_logits_are_the_log_sum_exp_of_their_classes_without_overflow():
    from scipy.special import logsumexp

    from transforms.maps.heatmaps import synset_logits
    from transforms.vocab.synsets import class_matrix, resolve_class_indices

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 5, (3, 4, 1000)).astype(np.float32)
    logits[0, 0, 7] = 400.0    # exp would overflow float32 and float64
    logits[1, 1, :] = -300.0   # and underflow
    synsets = [resolve_class_indices([7, 8, 9]), resolve_class_indices([500])]
    out = synset_logits(logits, class_matrix(synsets))
    expected = np.stack([logsumexp(logits[..., [7, 8, 9]].astype(np.float64), axis=-1),
                         logits[..., 500]], axis=-1)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-4)


def test_min_max_normalized_rescales_each_map_and_leaves_flat_maps_at_zero():
    from transforms.maps.heatmaps import min_max_normalized

    maps = np.stack([np.arange(12.0).reshape(3, 4) - 5, np.full((3, 4), 2.0)], axis=-1)
    out = min_max_normalized(maps)
    np.testing.assert_allclose(out[..., 0], np.arange(12.0).reshape(3, 4) / 11)
    assert (out[..., 1] == 0).all()
    np.testing.assert_allclose(min_max_normalized(maps[..., 0]), out[..., 0])
