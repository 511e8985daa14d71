"""python -m pipeline.train on a finished run of the sample photos: a head and its
manifest, features cached, and the runs it must refuse."""
import json
import shutil

import numpy as np
import pytest

from pipeline.run import run
from pipeline.train import main as train
from transforms.model.head import build_head

from conftest import DATA, GOOD, LOCAL

SYNSETS = "dog,n02121620,bicycle"


@pytest.fixture(scope="module")
def synsets_run(tmp_path_factory, weights_cache):
    photos = tmp_path_factory.mktemp("train-photos")
    for name in GOOD:
        shutil.copy(DATA / name, photos / name)
    output = tmp_path_factory.mktemp("train-run") / "out"
    assert run(["--input", str(photos / "*"), "--output", str(output), "--synsets", SYNSETS, *LOCAL]) == 0
    return output


def test_a_head_and_its_manifest_from_a_run(synsets_run, tmp_path, capsys):
    out = tmp_path / "head"
    # dog.jpg is held out (by its file name's hash), the cat and the eagle fit.
    argv = ["--labels", str(synsets_run), "--out", str(out), "--held-out", "0.6", "--epochs", "3"]
    assert train(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    run_record = json.loads((synsets_run / "run.json").read_text())
    assert manifest["model"] == "efficientnet_lite0"
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

    # Features are computed once per image and read back on the next run.
    cached = sorted(out.glob("features/*.npy"))
    assert len(cached) == 3
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
