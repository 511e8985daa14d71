"""The benchmark scripts' measuring code runs (their figures are in benchmarks/README.md)."""
import json

from benchmarks import (confidence, cost_per_image, localization, localization_levers,
                        top_k_vocabulary, trained_head)
from benchmarks.large_collection import make_collection
from benchmarks.pipeline_vs_model import model_only, stage_profile
from transforms.config import LabelConfig
from transforms.maps.scales import parse_scales

from conftest import DATA

LABELLED = DATA / "labelled"


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


def test_localization_benchmark_scores_the_job_and_its_calibration(tmp_path, weights_cache, capsys):
    """On the labelled set, which has the VOC layout (tests/data/README.md)."""
    out = tmp_path / "localization"
    assert localization.main(["--voc", str(LABELLED), "--out", str(out), "--name", "t",
                              "--calibrate", "--", "--scales", "224"]) == 0
    summary = json.loads((out / "t" / "summary.json").read_text())
    assert summary["job_args"] == ["--scales", "224"] and summary["images"] == 7
    # The labelled photos' VOC objects other than persons: buses and a car, a bottle,
    # chairs and tables, a dog and a horse (the quokka and the ladybug are not VOC's).
    assert summary["pairs"] == 7 and 0 <= summary["corloc"] <= 100
    low, high = summary["corloc_interval"]  # over 7 photos: wide
    assert low <= summary["corloc"] <= high and high - low > 20
    assert summary["calibrated_2fold"]["pairs"] == 7
    assert (out / "t" / "thresholds-half0.json").exists()
    assert sum(summary["top_boxes"].values()) == 7
    assert summary["boxed_classes"]["absent_pairs"] == 7 * 19 - 7
    assert "| t | 7 |" in capsys.readouterr().out


def test_trained_head_benchmark_trains_on_each_half_and_scores_the_other(tmp_path, weights_cache,
                                                                         capsys):
    out = tmp_path / "head"
    assert trained_head.main(["--voc", str(LABELLED), "--out", str(out),
                              "--train-args=--held-out 0.5 --epochs 2", "--", "--scales", "224"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["settings"]) == ["without head", "head maps", "head fused with the classifier's"]
    for setting in summary["settings"].values():
        assert setting["overall"]["pairs"] == 7 and len(setting["halves"]) == 2
        assert 0 <= setting["overall"]["corloc"] <= 100
    # Each head learnt from its own half only (4 and 3 of the 7 photos).
    for half, images in ((0, 4), (1, 3)):
        data = json.loads((out / f"head-of-half{half}" / "manifest.json").read_text())["data"]
        assert data["fit_images"] + data["held_out_images"] == images
    record = json.loads((out / "half1-head-of-half0" / "run.json").read_text())
    assert record["head"]["dir"] == str(out / "head-of-half0")
    assert "| head maps | 7 |" in capsys.readouterr().out


def test_confidence_benchmark_fits_on_each_half_and_labels_the_other(tmp_path, weights_cache,
                                                                       capsys):
    out = tmp_path / "confidence"
    assert confidence.main(["--voc", str(LABELLED), "--out", str(out),
                            "--minimum", "synsets=0.01,top_k=0.2", "--", "--scales", "224"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["modes"]) == {"synsets", "top_k"}
    for mode, minimum in (("synsets", 0.01), ("top_k", 0.2)):
        figures = summary["modes"][mode]
        assert figures["default_minimum"] == minimum
        assert min(float(m) for m in figures["held_out"]) == minimum
        assert 0 <= figures["default"]["map"] <= 100
        for half in (0, 1):
            # Each half labelled by the job with the confidence fitted on the other.
            fitted = out / mode / f"confidence-half{half}.json"
            record = json.loads((out / mode / f"half{1 - half}-with-confidence-of-half{half}"
                                 / "run.json").read_text())
            assert record["config"]["confidence"]["file"] == str(fitted)
            assert record["config"]["min_confidence"] == minimum
    assert "held-out (2-fold) boxes by minimum confidence" in capsys.readouterr().out


def test_localization_benchmark_says_why_without_a_voc_folder(tmp_path, capsys):
    assert localization.main(["--voc", str(tmp_path / "missing")]) == 2
    assert "no VOC folder at" in capsys.readouterr().err


def test_top_k_vocabulary_benchmark_finds_voc_classes_among_each_images_synsets(
        tmp_path, weights_cache, capsys):
    out = tmp_path / "top_k"
    assert top_k_vocabulary.main(["--voc", str(LABELLED), "--out", str(out), "--top-k", "3",
                                  "--", "--scales", "224"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["settings"]) == [name for name, _ in top_k_vocabulary.SETTINGS]
    for result in summary["settings"].values():
        assert result["pairs"] == 7 and result["corloc_all"] <= result["found"] <= 1
    # The bus photo's "bus" (three classes) is among its top synsets either way.
    assert summary["by_class"]["concepts"]["bus"]["found"] == 1.0
    assert summary["by_class"]["ImageNet classes"]["bus"]["found"] == 1.0
    assert "| concepts | 7 |" in capsys.readouterr().out


def test_lever_study_scores_every_lever(weights_cache, capsys):
    assert localization_levers.main(["--voc", str(LABELLED), "--limit", "2", "--scales", "224"]) == 0
    out = capsys.readouterr().out
    for lever in ("the job's defaults", "component: largest", "flip averaged in",
                  "shift-and-stitch", "context: logit margin", "per-synset thresholds, shrinkage 10"):
        assert lever in out, lever


def test_cost_benchmark_reads_each_column_s_bytes_and_profiles_both_modes(tmp_path, weights_cache,
                                                                         capsys):
    assert cost_per_image.main(["--photos", str(LABELLED / "JPEGImages"), "--images", "3",
                                "--profile-images", "2", "--workdir", str(tmp_path), "--",
                                "--scales", "224"]) == 0
    for mode in ("synsets", "top-k"):
        sizes = cost_per_image.column_bytes(tmp_path / mode)
        assert {"image_uri", "boxes", "heatmaps", "top_classes"} <= set(sizes)
        # The column chunks are the files less their footers.
        files = sum(p.stat().st_size for p in (tmp_path / mode).glob("labels-*.parquet"))
        assert 0 < sizes["heatmaps"] < sum(sizes.values()) < files
    out = capsys.readouterr().out
    assert "| --synsets voc | 3 |" in out and "| top-k (default) | 3 |" in out
    assert "per million images" in out
