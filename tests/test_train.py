"""python -m pipeline.train on a finished run of the sample photos: a head and its
manifest, features cached, and the runs it must refuse."""
import json
import shutil

import numpy as np
import pytest

from pipeline.outputs import iter_labels
from pipeline.run import run
from pipeline.train import main as train
from transforms.model.head import build_head

from conftest import DATA, GOOD, LOCAL, as_float32_run

SYNSETS = "dog,n02121620,bicycle"


@pytest.fixture(scope="module")
def train_photos(tmp_path_factory):
    photos = tmp_path_factory.mktemp("train-photos")
    for name in GOOD:
        shutil.copy(DATA / name, photos / name)
    return photos


@pytest.fixture(scope="module")
def synsets_run(train_photos, tmp_path_factory, weights_cache):
    output = tmp_path_factory.mktemp("train-run") / "out"
    assert run(["--input", str(train_photos / "*"), "--output", str(output), "--synsets", SYNSETS,
                *LOCAL]) == 0
    return output


def test_a_head_and_its_manifest_from_a_run(synsets_run, tmp_path, capsys):
    out = tmp_path / "head"
    # dog.jpg is held out (by its file name's hash), the cat and the eagle fit.
    argv = ["--labels", str(synsets_run), "--out", str(out), "--held-out", "0.6", "--epochs", "3"]
    assert train(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    run_record = json.loads((synsets_run / "run.json").read_text())
    assert manifest["model"] == "efficientnet_lite0" and manifest["features"] == 1280
    assert manifest["weights_checksum"] == run_record["weights_checksum"]
    assert [s["wnid"] for s in manifest["synsets"]] == ["n02084071", "n02121620", "n02834778"]
    assert (manifest["data"]["fit_images"], manifest["data"]["held_out_images"]) == (2, 1)
    assert manifest["training"]["epochs_run"] == 3
    assert manifest["loss"]["fit"] < manifest["training"]["history"]["loss"][0]
    assert "epoch 3/3: loss" in capsys.readouterr().err

    # The saved weights are the head: loaded as data into the builder, they run.
    head = build_head(1280, 3, manifest["factor"])
    head.load_weights(out / "head.weights.h5")
    assert head(np.zeros((1, 2, 3, 1280), np.float32)).shape == (1, 8, 12, 3)

    # Features are computed once per image and scale (the two default scales) and read
    # back on the next run.
    cached = sorted(out.glob("features/*.npy"))
    assert len(cached) == 6 and manifest["data"]["examples"] == 6
    times = [p.stat().st_mtime_ns for p in cached]
    assert train(argv) == 0
    assert [p.stat().st_mtime_ns for p in cached] == times


def test_runs_a_head_cannot_come_from_are_refused(synsets_run, tmp_path, capsys, weights_cache):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(synsets_run, unfinished)
    (unfinished / "_SUCCESS").unlink()
    assert train(["--labels", str(unfinished), "--out", str(tmp_path / "a")]) == 2
    assert "has no _SUCCESS" in capsys.readouterr().err

    top_k = tmp_path / "top-k"
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(top_k), *LOCAL]) == 0
    assert train(["--labels", str(top_k), "--out", str(tmp_path / "b")]) == 2
    assert "without --synsets" in capsys.readouterr().err
    assert train(["--labels", str(synsets_run), "--labels", str(top_k), "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.fixture(scope="module")
def trained_head(synsets_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "head"
    assert train(["--labels", str(synsets_run), "--out", str(out), "--held-out", "0.6",
                  "--epochs", "2"]) == 0
    return out


def _heatmap_shapes(output) -> dict:
    return {(row["image_uri"].rsplit("/", 1)[-1], h["synset"]): (h["height"], h["width"])
            for row in iter_labels(str(output), ["image_uri", "heatmaps"])
            for h in row["heatmaps"]}


@pytest.mark.parametrize("head_maps", ["fused", "head"])
def test_the_job_labels_with_a_trained_head(trained_head, synsets_run, train_photos, tmp_path,
                                           capsys, head_maps):
    output = tmp_path / "with-head"
    assert run(["--input", str(train_photos / "*"), "--output", str(output), "--synsets", "bicycle,dog",
                "--head", str(trained_head), "--head-maps", head_maps, *LOCAL]) == 0
    record = json.loads((output / "run.json").read_text())
    assert record["config"]["head"] == str(trained_head)
    assert record["config"]["head_maps"] == head_maps
    assert record["head"]["synsets"] == ["n02084071", "n02121620", "n02834778"]
    assert record["head"]["data"]["fit_images"] == 2
    # The head's maps are the heat: four times finer than the classifier's cells.
    plain, with_head = _heatmap_shapes(synsets_run), _heatmap_shapes(output)
    assert len(with_head) == 6
    for (name, synset), (h, w) in with_head.items():
        assert (h, w) == (4 * plain[name, synset][0], 4 * plain[name, synset][1])
    assert record["counts"]["boxes"] > 0
    # A head learns from the classifier's own maps, not from another head's.
    assert train(["--labels", str(output), "--out", str(tmp_path / "again")]) == 2
    assert "ran with --head" in capsys.readouterr().err


def test_a_head_the_job_cannot_use_fails_fast(trained_head, tmp_path, capsys):
    other_weights = tmp_path / "other-weights"
    shutil.copytree(trained_head, other_weights, ignore=shutil.ignore_patterns("features"))
    manifest = json.loads((other_weights / "manifest.json").read_text())
    manifest["weights_checksum"], manifest["weights"] = "sha256:0000", "retrained.weights.h5"
    (other_weights / "manifest.json").write_text(json.dumps(manifest))
    older = tmp_path / "older"
    shutil.copytree(other_weights, older)
    del manifest["features"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    no_weights = tmp_path / "no-weights"
    shutil.copytree(trained_head, no_weights, ignore=shutil.ignore_patterns("features", "*.h5"))
    dog = str(DATA / "dog.jpg")
    for flags, message in (
            (["--synsets", "dog,n01503061", "--head", str(trained_head)], "not trained on n01503061"),
            (["--head", str(trained_head)], "run with --synsets n02084071,n02121620,n02834778"),
            (["--synsets", "dog", "--head", str(other_weights)], "--weights retrained.weights.h5"),
            (["--synsets", "dog", "--head", str(tmp_path / "nothing")], "no trained head there"),
            (["--synsets", "dog", "--head", str(no_weights)], "head.weights.h5 is missing"),
            (["--synsets", "dog", "--head", str(older)], "lacks features: train the head again"),
            (["--synsets", "dog", "--head", str(trained_head), "--map-mode", "window"],
             "cell-mode"),
            (["--synsets", "dog", "--head", str(trained_head), "--head-maps", "both"],
             "--head-maps")):
        output = tmp_path / "out"
        assert run(["--input", dog, "--output", str(output), *flags, *LOCAL]) == 2, flags
        assert message in capsys.readouterr().err, flags
        assert not output.exists()


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--learning-rate", "-0.001"], "--learning-rate must be above 0, got -0.001"),
    (["--factor", "3"], "--factor must be even and at least 2, got 3"),
    (["--factor", "0"], "--factor must be even and at least 2, got 0"),
    (["--foreground", "0.2", "--background", "0.5"],
     "0 <= background < foreground <= 1, got 0.5 and 0.2"),
])
def test_bad_training_settings_are_usage_errors_before_any_work(tmp_path, capsys, argv, message):
    # Before, found only once every run's rows were read (a traceback for --factor 0
    # and for the heat levels).
    with pytest.raises(SystemExit) as exit_:
        train(["--labels", str(tmp_path / "run"), "--out", str(tmp_path / "head"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_an_older_run_with_float32_heatmaps_trains_a_head(synsets_run, tmp_path):
    old = as_float32_run(synsets_run, tmp_path / "float32")
    assert train(["--labels", str(old), "--out", str(tmp_path / "head"), "--held-out", "0.6",
                  "--epochs", "1"]) == 0
    assert json.loads((tmp_path / "head" / "manifest.json").read_text())["data"]["examples"] == 6
