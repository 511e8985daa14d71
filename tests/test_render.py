"""Pictures of a run's labels (``python -m pipeline.render``): the real job on the test
photos with --keep-scale-maps, then the pictures checked pixel by pixel, and the contact
sheet in a real headless Chromium (Debian's, driven by Playwright)."""
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline import render
from pipeline.run import run
from transforms.io import records
from transforms.viz import overlay
from transforms.maps.heatmaps import fuse

from conftest import DATA, GOOD, LOCAL, as_float32_run, labels_by_name, table

# Named rather than left to the defaults, which are tuned elsewhere: at these the dog
# and the bicycle of dog.jpg each get a box, the cat gets one, the eagle none, and the
# heat is a probability, comparable across panels on the fixed scale.
SYNSETS = "dog,n02121620,bicycle"
SCALES = ("288+flip", "576")  # as given, "+flip" too, in the rows and titles
BOX_OPTIONS = ["--heat", "probability", "--fusion", "mean", "--threshold", "0.4"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, weights_cache) -> Path:
    """One real run of the job over the three test photos, keeping each scale's maps."""
    photos = tmp_path_factory.mktemp("render-photos")
    for name in GOOD:
        shutil.copy(DATA / name, photos / name)
    output = tmp_path_factory.mktemp("render-run") / "out"
    assert run(["--input", str(photos / "*"), "--output", str(output), "--synsets", SYNSETS,
                "--scales", ",".join(SCALES), *BOX_OPTIONS, "--keep-scale-maps", *LOCAL]) == 0
    return output


@pytest.fixture(scope="module")
def rows(labelled) -> dict:
    return labels_by_name(labelled)


@pytest.fixture(scope="module")
def viz(labelled, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("viz")
    assert render.run(["--labels", str(labelled), "--out", str(out), "--scales-of", "dog.jpg"]) == 0
    return out


def _picture(viz: Path, name: str, suffix: str = "") -> np.ndarray:
    return np.asarray(Image.open(viz / f"{Path(name).stem}{suffix}.png").convert("RGB"))


def _photo(row: dict) -> np.ndarray:
    return overlay.load_photo(Path(row["image_uri"]).read_bytes(), (row["height"], row["width"]))


def _panel(picture: np.ndarray, grid: overlay.Layout, k: int) -> np.ndarray:
    x, y = grid.origin(k)
    h, w = grid.panel
    return picture[y:y + h, x:x + w].astype(int)


def _display_box(box: dict, row: dict, panel: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box's outline in panel pixels: x0, y0 and x1, y1 inclusive."""
    sy, sx = panel[0] / row["height"], panel[1] / row["width"]
    return (round(box["x0"] * sx), round(box["y0"] * sy),
            round(box["x1"] * sx) - 1, round(box["y1"] * sy) - 1)


def test_one_picture_per_image_photo_beside_a_panel_per_synset(viz, rows):
    pictures = sorted(p.name for p in viz.glob("*.png") if not p.name.endswith(".scales.png"))
    assert pictures == sorted(f"{Path(name).stem}.png" for name in GOOD)
    assert sorted(p.name for p in (viz / "thumbs").iterdir()) == sorted(
        f"{Path(name).stem}.jpg" for name in GOOD)
    for name, row in rows.items():
        picture = _picture(viz, name)
        panel = overlay.display_size((row["height"], row["width"]))
        assert max(panel) == 640 and abs(panel[0] / panel[1] - row["height"] / row["width"]) < 0.01
        # The photo and one panel per synset (dog, cat, bicycle), side by side.
        assert len(row["heatmaps"]) == 3
        grid = overlay.layout(panel, 4)
        assert (grid.rows, grid.columns) == (1, 4)
        assert picture.shape[1] == 4 * 640 + 5 * overlay.GAP
        assert picture.shape[1::-1] == grid.size
        # The first panel is the photo itself, decoded as the job did, at display size.
        assert np.array_equal(_panel(picture, grid, 0), _photo(row))


def test_heat_shows_where_the_heat_is_and_nowhere_else(viz, rows):
    row = rows["dog.jpg"]
    picture, photo = _picture(viz, "dog.jpg"), _photo(row).astype(int)
    grid = overlay.layout(photo.shape[:2], 4)
    font = grid.font_size
    cold_seen = 0
    for k, heatmap in enumerate(row["heatmaps"], start=1):
        raster = overlay.heat_raster(heatmap["heat"], photo.shape[:2])
        change = np.abs(_panel(picture, grid, k) - photo)
        # Away from the box outlines and labels.
        away = np.ones(raster.shape, bool)
        for box in row["boxes"]:
            if box["synset"] == heatmap["synset"]:
                x0, y0, x1, y1 = _display_box(box, row, grid.panel)
                for x in (x0, x1):
                    away[max(0, y0 - 5):y1 + 6, max(0, x - 5):x + 6] = False
                for y in (y0, y1):
                    away[max(0, y - 5):y + 6, max(0, x0 - 5):x1 + 6] = False
                away[max(0, y0 - 2 * font):y0 + 2 * font, max(0, x0 - font):x0 + 20 * font] = False
        hot, cold = (raster > 0.8) & away, (raster < 0.002) & away
        if heatmap["label"] in ("dog", "bicycle"):
            assert hot.sum() > 1000, heatmap["label"]
            # Plainly recoloured: on average over 50 levels a channel.
            assert change[hot].sum(axis=-1).mean() > 150, heatmap["label"]
        else:
            assert not hot.any()  # no cat in dog.jpg
        # Where the heat is ~0 the photo shows through, within a few levels.
        if cold.any():
            assert change[cold].max() <= 12, heatmap["label"]
        cold_seen += cold.sum()
    assert cold_seen > 50_000  # the cat and bicycle maps are ~0 over much of the photo


def test_boxes_are_drawn_where_they_are_on_their_synsets_panel(viz, rows):
    for name, row in rows.items():
        picture = _picture(viz, name)
        grid = overlay.layout(overlay.display_size((row["height"], row["width"])), 4)
        for k, heatmap in enumerate(row["heatmaps"], start=1):
            panel = _panel(picture, grid, k)
            cyan = (panel == overlay.BOX_COLOUR).all(axis=2)
            boxes = [b for b in row["boxes"] if b["synset"] == heatmap["synset"]]
            if not boxes:
                assert not cyan.any(), (name, heatmap["label"])  # inferno has no cyan
                continue
            # The best box is drawn last, over the others: its outline is all there.
            x0, y0, x1, y1 = _display_box(boxes[0], row, grid.panel)
            assert cyan[y0:y1 + 1, x0].all() and cyan[y0:y1 + 1, x1].all(), (name, heatmap["label"])
            assert cyan[y1, x0:x1 + 1].all(), (name, heatmap["label"])
            # An outline, not a filled box.
            assert not cyan[(y0 + y1) // 2, x0 + 8:x1 - 8].any()
            # Its label above it where there is room: a cyan strip just over the box.
            if y0 > 3 * grid.font_size:
                assert cyan[y0 - 1, x0:x0 + 2 * grid.font_size].all(), (name, heatmap["label"])
                assert not cyan[y0 - 3 * grid.font_size, x0:x0 + 2 * grid.font_size].all()
    assert {b["label"] for b in rows["dog.jpg"]["boxes"]} == {"dog", "bicycle"}
    assert rows["chelsea.png"]["boxes"][0]["label"] == "cat"


def test_per_scale_picture_has_each_scale_and_the_fused_map(viz, rows, labelled):
    row = rows["dog.jpg"]
    fusion = json.loads((labelled / "run.json").read_text())["config"]["fusion"]
    picture = _picture(viz, "dog.jpg", ".scales")
    photo = _photo(row)
    grid = overlay.layout(photo.shape[:2], 3 * (len(SCALES) + 1), columns=len(SCALES) + 1)
    assert (grid.rows, grid.columns) == (3, 3)  # a line per synset: each scale, then fused
    assert picture.shape[1::-1] == grid.size
    scale_maps = {(m["synset"], m["scale"]): m for m in row["scale_heatmaps"]}
    assert sorted({s for _, s in scale_maps}) == sorted(SCALES)
    for line, heatmap in enumerate(row["heatmaps"]):
        for column, scale in enumerate(SCALES):
            m = scale_maps[heatmap["synset"], scale]
            expected = overlay.blend_heat(photo, m["heat"])
            assert np.array_equal(_panel(picture, grid, 3 * line + column), expected)
        # The maps of the two scales differ, and fused they give the fused map.
        a, b = (scale_maps[heatmap["synset"], s]["heat"] for s in SCALES)
        if heatmap["label"] != "cat":  # ~0 at both scales in dog.jpg
            assert np.abs(a - b).max() > 0.1
        # (the fused heat as stored: to half a step of its 8 bits)
        np.testing.assert_allclose(fuse([a, b], fusion), heatmap["heat"], atol=0.5 / 255 + 1e-5)
    # The dog's fused panel carries its box; per-scale panels carry none.
    cyan = lambda k: (_panel(picture, grid, k) == overlay.BOX_COLOUR).all(axis=2).any()
    assert cyan(2) and not cyan(0) and not cyan(1)


def test_photos_shown_upright_as_labelled_and_large_ones_draft_decoded(monkeypatch):
    upright = Image.open(DATA / "dog.jpg")
    # Stored turned a quarter left, with EXIF orientation 6 ("turn right to display"):
    # the job labels it as displayed, 768 wide and 576 high, and so must the picture.
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(stored, "JPEG", quality=95, exif=exif.tobytes())
    shown = overlay.load_photo(stored.getvalue(), (576, 768)).astype(int)
    expected = overlay.load_photo((DATA / "dog.jpg").read_bytes(), (576, 768)).astype(int)
    assert shown.shape == (480, 640, 3)
    assert np.abs(shown - expected).mean() < 4
    with pytest.raises(ValueError, match="changed since the run"):
        overlay.load_photo(stored.getvalue(), (768, 576))  # as if labelled unturned
    # A 6144x4608 photo is decoded at 1/8 scale by libjpeg (768x576), not in full, then
    # resized to 640x480.
    big = io.BytesIO()
    upright.resize((6144, 4608)).save(big, "JPEG")
    decoded = []
    decode = overlay.decode_image
    monkeypatch.setattr(overlay, "decode_image",
                        lambda *a, **k: decoded.append(decode(*a, **k)) or decoded[-1])
    assert overlay.load_photo(big.getvalue(), (4608, 6144)).shape == (480, 640, 3)
    assert decoded[0].pixels.shape == (576, 768, 3) and decoded[0].size == (4608, 6144)


def test_missing_scale_maps_say_to_rerun_with_keep_scale_maps(labelled, tmp_path, capsys):
    # The same table as a run without --keep-scale-maps writes: empty scale_heatmaps.
    plain = tmp_path / "plain"
    plain.mkdir()
    labels = table(labelled, "labels")
    empty = pa.array([[]] * labels.num_rows, labels.schema.field("scale_heatmaps").type)
    labels = labels.set_column(labels.schema.get_field_index("scale_heatmaps"), "scale_heatmaps", empty)
    pq.write_table(labels, plain / "labels-00000-of-00001.parquet")
    out = tmp_path / "viz"
    assert render.run(["--labels", str(plain), "--out", str(out), "--scales-of", "dog.jpg"]) == 2
    err = capsys.readouterr().err
    assert "--scales-of dog.jpg" in err and "rerun the job with --keep-scale-maps" in err
    assert not out.exists()  # nothing rendered
    # Without --scales-of the same table renders (and warns that _SUCCESS is missing).
    assert render.run(["--labels", str(plain), "--out", str(out)]) == 0
    assert "no _SUCCESS marker" in capsys.readouterr().err
    assert len(list(out.glob("*.png"))) == 3


def test_an_image_gone_since_the_run_is_reported_and_the_others_rendered(labelled, tmp_path,
                                                                        capsys):
    moved = tmp_path / "moved"
    moved.mkdir()
    labels = table(labelled, "labels")
    uris = [u.replace("eagle.jpg", "gone/eagle.jpg") for u in labels.column("image_uri").to_pylist()]
    labels = labels.set_column(0, "image_uri", pa.array(uris, pa.string()))
    pq.write_table(labels, moved / "labels-00000-of-00001.parquet")
    out = tmp_path / "viz"
    assert render.run(["--labels", str(moved), "--out", str(out)]) == 1
    assert "gone/eagle.jpg: cannot render" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["chelsea.png", "dog.png"]
    assert (out / "index.html").read_text().count("<tr data-score") == 2


def test_limit_renders_the_first_images_only(labelled, tmp_path):
    out = tmp_path / "viz"
    assert render.run(["--labels", str(labelled), "--out", str(out), "--limit", "1"]) == 0
    first = pq.read_table(next(labelled.glob("labels-*.parquet"))).column("image_uri")[0].as_py()
    assert [p.name for p in out.glob("*.png")] == [f"{Path(first).stem}.png"]
    assert (out / "index.html").read_text().count("<tr data-score") == 1


def test_mistakes_exit_2_with_a_clear_message_and_write_nothing(labelled, tmp_path, capsys):
    out = tmp_path / "viz"
    assert render.run(["--labels", str(labelled), "--out", str(out), "--scales-of", "nowhere.jpg"]) == 2
    assert "--scales-of nowhere.jpg: no such image in the labels tables" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert render.run(["--labels", str(empty), "--out", str(out)]) == 2
    assert f"no labels tables (labels-*.parquet) in {empty}" in capsys.readouterr().err
    assert not out.exists()
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert render.run(["--labels", str(labelled), "--out", str(notes / "viz")]) == 2
    assert f"--out {notes / 'viz'}: {notes} is a file, not a folder" in capsys.readouterr().err
    assert notes.read_text() == "mine"


def test_bad_arguments_and_missing_matplotlib(labelled, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        render.run(["--labels", str(labelled), "--out", str(tmp_path), "--limit", "-1"])
    assert exit_.value.code == 2 and "must be 0 or more" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert render.run(["--labels", str(labelled), "--out", str(tmp_path / "viz")]) == 2
    assert "pip install 'fcn-weak-labels[viz]'" in capsys.readouterr().err


def test_runs_as_a_module(labelled, tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline.render", "--labels", str(labelled),
                             "--out", str(tmp_path / "viz"), "--limit", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "contact sheet: " in result.stdout and (tmp_path / "viz" / "index.html").exists()


def test_contact_sheet_escapes_the_data():
    nasty = 'gs://b/<script>alert("x")</script>&"q".jpg'
    best = records.LabelBox("n1", "<b>dog</b>", 0.5, 0, 0, 1, 1)
    page = overlay.contact_sheet_html(
        [overlay.SheetEntry(nasty, 1, 1, "a b#c.png", "thumbs/a b#c.jpg", best, 1,
                            (("<i>cat</i>", 0.1),))], "<title>", "note & <note>")
    assert "<script>alert" not in page and "<b>dog</b>" not in page and "<i>cat" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;q&quot;.jpg" in page
    assert 'href="a%20b%23c.png"' in page and "note &amp; &lt;note&gt;" in page
    assert page.count("<script>") == 1  # the sorting script, nothing else


def _chromium_page(playwright):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    return browser, browser.new_page(viewport={"width": 1200, "height": 900})


def test_contact_sheet_in_a_browser(viz, rows, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium` "
                    "(tests/run.sh does when run as root)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright missing: pip install -e '.[test]'")
    best = {name: max((b["score"] for b in row["boxes"]), default=None) for name, row in rows.items()}
    with_boxes = sorted((n for n in best if best[n] is not None), key=lambda n: -best[n])
    no_boxes = sorted(n for n in best if best[n] is None)
    assert no_boxes == ["eagle.jpg"] and len(with_boxes) == 2

    with sync_api.sync_playwright() as playwright:
        browser, page = _chromium_page(playwright)
        errors = []
        page.on("pageerror", lambda error: errors.append(error))
        try:
            page.goto((viz / "index.html").as_uri())
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            widths = page.eval_on_selector_all("#images img", "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == 3 and all(w > 0 for w in widths)
            order = lambda: page.eval_on_selector_all(
                "#images tbody tr", "rows => rows.map(r => r.querySelector('td.name a').textContent)")
            # Default: best score first; images without boxes last.
            assert order() == with_boxes + no_boxes
            assert page.get_attribute("#sort-score", "aria-sort") == "descending"
            page.click("#sort-score button")  # the same column again: ascending
            assert order() == with_boxes[::-1] + no_boxes
            assert page.get_attribute("#sort-score", "aria-sort") == "ascending"
            page.click("#sort-name button")
            assert order() == sorted(GOOD)
            page.click("#sort-name button")
            assert order() == sorted(GOOD, reverse=True)
            page.click("#sort-score button")  # back to best score first
            assert order() == with_boxes + no_boxes
            # Every link leads to a picture that exists.
            hrefs = page.eval_on_selector_all("#images a", "links => links.map(a => a.href)")
            assert hrefs and all(Path(unquote(href.removeprefix("file://"))).is_file()
                                 for href in hrefs)
            assert any(href.endswith("/dog.scales.png") for href in hrefs)
            page.screenshot(path=str(tmp_path / "contact-sheet.png"), full_page=True)
            assert errors == []  # the script ran without a JavaScript error
        finally:
            browser.close()
    shot = Image.open(tmp_path / "contact-sheet.png")
    assert shot.width == 1200 and shot.height > 3 * overlay.THUMBNAIL_SIDE


def test_an_older_run_with_float32_heatmaps_renders_as_its_png_twin(labelled, viz, tmp_path):
    old = as_float32_run(labelled, tmp_path / "float32")
    out = tmp_path / "viz"
    assert render.run(["--labels", str(old), "--out", str(out), "--scales-of", "dog.jpg"]) == 0
    pictures = sorted(p.name for p in viz.glob("*.png"))
    assert pictures == sorted(p.name for p in out.glob("*.png")) and "dog.scales.png" in pictures
    for name in pictures:  # the same maps, so the same pixels
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(viz / name)))
