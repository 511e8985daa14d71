"""The backbone registry and weights handling: cache, checksum, fail-fast errors."""
import keras
import numpy as np
import pytest

from transforms import backbones, legacy_torch
from transforms.backbones import (WeightsUnavailableError, backbone_names, get_backbone,
                                  load_classifier)


def test_registry_lists_both_backbones_and_rejects_unknown_names():
    assert {"efficientnet_lite0", "resnet50"} <= set(backbone_names())
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


def test_lite0_source_checksum_is_verified(tmp_path, monkeypatch):
    monkeypatch.setenv(backbones.CACHE_ENV, str(tmp_path / "empty-cache"))
    bogus = tmp_path / "efficientnet-lite0.pth"
    bogus.write_bytes(b"not the published weights")
    monkeypatch.setattr(backbones, "_lite0_torch_file", lambda: str(bogus))
    with pytest.raises(WeightsUnavailableError, match="sha256 .* reinstall efficientnet-lite0"):
        load_classifier("efficientnet_lite0")


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
