"""The benchmark scripts' measuring code runs (their figures are in benchmarks/README.md)."""
from benchmarks.large_collection import make_collection
from benchmarks.pipeline_vs_model import model_only, stage_profile
from transforms.config import LabelConfig
from transforms.scales import parse_scales


def test_model_only_and_stage_profile_measure_every_stage(lite0_mapper, tmp_path):
    good, bad = make_collection(tmp_path / "photos", 3, bad_fraction=0.0)
    assert (good, bad) == (3, 0)
    photos = sorted((tmp_path / "photos").iterdir())
    scales = parse_scales("96,192")
    assert model_only(photos, scales, 2, lite0_mapper) > 0
    clock = stage_profile(photos, LabelConfig(scales=scales), lite0_mapper, tmp_path)
    assert set(clock.cpu) == {"read, decode", "resize", "forward", "maps, fusion", "boxes, row",
                              "Parquet"}
    assert all(seconds > 0 for stage, seconds in clock.wall.items() if stage != "maps, fusion")
    assert (tmp_path / "profile.parquet").exists()
