"""The default settings' localization on real PASCAL VOC photos, pinned: a change that
localizes worse fails here; and that run exported in every format and read back. Uses ../shared/voc07-dev beside the repository (500 VOC2007
test photos; research use, read from there and never copied into the repository); the
test skips, saying so, where it is absent."""
import json
from pathlib import Path

import pytest

from pipeline.evaluate import main as evaluate
from pipeline.run import run
from transforms.vocab.vocabularies import load_vocabulary

from conftest import LOCAL
from test_export import check_coco, check_label_studio, check_pascal_voc, check_yolo

VOC = Path(__file__).resolve().parents[2] / "shared" / "voc07-dev"
IMAGES = 200  # the first, by file name: a quarter of a minute of labelling on 2 cores

pytestmark = pytest.mark.skipif(
    not (VOC / "JPEGImages").is_dir(),
    reason=f"no VOC2007 sample at {VOC} (the shared voc07-dev folder beside the repository)")

# Measured with the defaults (EfficientNet-Lite0, blend heat, 288+flip,640, mean, box
# hypotheses at ten thresholds ranked by the shipped confidence, min score 0.05, min
# confidence 0.01, GrabCut, an image alone in its network call unpadded, boxes made from
# the maps at their stored 8 bits) on these images' non-person pairs (2026-12-03; the
# maps, and so MaxBoxAccV2, are unchanged since 2026-12-02); one pair of slack for
# floating-point differences between machines. The confidence was fitted on all of
# voc07-dev, these photos too: CorLoc and mAP are in-sample (held out:
# benchmarks/README.md (g)). Refitted on the maps as stored, it took 124 pairs to 119
# here (6 pairs lost and 1 gained where an image's best boxes changed order, or one its
# shape) while the held-out CorLoc of all 500 photos stayed 53.9; refitted with how many
# ImageNet classes each synset sums (2026-12-03 evening), 120 pairs, mAP 37.19 -> 38.51
# (held out on all 500: CorLoc 53.9 -> 54.4, mAP 37.5 -> 38.2); with each synset's most
# confident component refined where its box could be kept (2026-12-03 night), 127 pairs,
# mAP 38.75, 6.05 -> 6.69 boxes per image (held out: CorLoc 54.8, mAP 38.3).
PINNED = {"pairs": 229, "corloc": 100 * 127 / 229, "max_box_acc_v2": 56.77, "map": 38.75,
          "boxes_per_image": 6.69}


def test_defaults_keep_their_quality_on_voc_photos(tmp_path, weights_cache, capsys):
    images = sorted((VOC / "JPEGImages").glob("*.jpg"))[:IMAGES]
    manifest = tmp_path / "images.txt"
    manifest.write_text("".join(f"{path}\n" for path in images))
    output = tmp_path / "run"
    assert run(["--manifest", str(manifest), "--synsets", "voc", "--output", str(output),
                *LOCAL, "--direct_num_workers=2", "--direct_running_mode=multi_threading"]) == 0
    metrics_path = tmp_path / "metrics.json"
    capsys.readouterr()  # the job's own lines
    assert evaluate(["--labels", str(output), "--ground-truth", str(VOC / "Annotations"),
                     "--classes", "voc", "--json", str(metrics_path)]) == 0
    metrics = json.loads(metrics_path.read_text())
    overall = metrics["overall"]
    assert overall["pairs"] == PINNED["pairs"]
    # Synsets are named by the dataset's classes, so the table stays narrow.
    assert {m["label"] for m in metrics["synsets"].values()} <= set(load_vocabulary("voc"))
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) < 100
    one_pair = 100 / overall["pairs"]
    assert overall["corloc"] >= PINNED["corloc"] - one_pair
    assert overall["max_box_acc_v2"] >= PINNED["max_box_acc_v2"] - one_pair
    # And well clear of a fixed centred box.
    assert overall["corloc"] >= overall["centre_corloc"] + 10
    # Every box: ranked well (a point of AP of slack), few, and their confidence calibrated.
    detection = metrics["detection"]
    assert detection["map"] >= PINNED["map"] - 1.0
    assert detection["boxes_per_image"] <= PINNED["boxes_per_image"] + 0.2
    assert detection["calibration_error"] <= 0.05

    # The run exports in every format, read back as the formats' users read them.
    check_coco(output, tmp_path / "coco")
    check_yolo(output, tmp_path / "yolo")
    check_pascal_voc(output, tmp_path / "voc", load_vocabulary("voc"))
    check_label_studio(output, tmp_path / "labelstudio")
