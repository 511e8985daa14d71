import pytest

from transforms.maps.scales import Scale, parse_scales


def test_parse_fixed_and_shorter_side_scales():
    assert parse_scales("200x320, 400x640,800×1280") == (
        Scale(size=(200, 320)), Scale(size=(400, 640)), Scale(size=(800, 1280)))
    assert parse_scales("224,448") == (Scale(shorter_side=224), Scale(shorter_side=448))
    assert [str(s) for s in parse_scales("224,400x640")] == ["224", "400x640"]


def test_a_scale_run_also_mirrored_reads_and_prints_as_given():
    assert parse_scales("288+flip, 640,200x320 + FLIP") == (
        Scale(shorter_side=288, flip=True), Scale(shorter_side=640),
        Scale(size=(200, 320), flip=True))
    assert [str(s) for s in parse_scales("288+flip,640,200x320+flip")] == [
        "288+flip", "640", "200x320+flip"]


@pytest.mark.parametrize("text", ["", "abc", "224,,448", "400x", "0", "224x0", "-224", "288+",
                                  "288flip", "+flip"])
def test_unparseable_scales_say_how_to_fix(text):
    with pytest.raises(ValueError, match="HxW|positive"):
        parse_scales(text)


@pytest.mark.parametrize("text", ["20000x20000", "288,4097", "4100x300+flip"])
def test_scales_past_the_network_input_limit_are_refused(text):
    # Before: accepted, and every image's network call then asked for tens of GB.
    with pytest.raises(ValueError, match="over the network input's limit of 4096 pixels a side"):
        parse_scales(text)
    assert parse_scales("4096x4096,4096") == (Scale(size=(4096, 4096)), Scale(shorter_side=4096))


def test_shorter_side_keeps_aspect_ratio_in_stride_multiples():
    assert Scale(shorter_side=288).input_size((576, 768), 32) == (288, 384)
    assert Scale(shorter_side=224).input_size((300, 451), 32) == (224, 352)  # 336.7 → 352
    assert Scale(shorter_side=224).input_size((768, 576), 32) == (288, 224)
    # Extreme aspect ratios: the longer side stays within the limit, the shorter side
    # never falls below one stride.
    assert Scale(shorter_side=288).input_size((20, 10000), 32) == (32, 4096)
    assert Scale(shorter_side=288).input_size((10000, 20), 32, max_side=2048) == (2048, 32)
    assert Scale(shorter_side=288).input_size((1000, 3000), 32) == (288, 864)  # unaffected


def test_fixed_size_ignores_the_image():
    assert Scale(size=(200, 320)).input_size((3000, 20), 32) == (200, 320)
