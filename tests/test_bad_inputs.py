"""Every kind of awkward input, generated here, through the whole job at once: each file
ends in exactly one of the two tables, with a clear message when it failed, and the job
succeeds."""
import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pipeline.run import run
from transforms.beam import read as beam_read

from conftest import DATA, LOCAL, by_uri, table
from test_real_photos import DOG_BOX, iou


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_header(width: int, height: int, crc: int | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr, crc) + _png_chunk(b"IEND", b"")


def _corrupt_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    noise = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    return data[:middle] + noise + data[middle + 64:]


def _make_inputs(folder):
    dog = Image.open(DATA / "dog.jpg")
    small = Image.open(DATA / "chelsea.png").convert("RGB").resize((120, 80))
    rgb = np.asarray(small)
    palette = small.convert("P")
    palette.info["transparency"] = 0
    frames = [small, small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored turned 90° clockwise
    good = {
        "one pixel.png": _save(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"),
        "strip.png": _save(Image.new("RGB", (10000, 20), (90, 140, 60)), "PNG"),  # 20x10000
        "cmyk.jpg": _save(small.convert("CMYK"), "JPEG"),
        "sixteen-bit.png": _save(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG"),
        "palette-transparent.png": _save(palette, "PNG"),
        "rgba.png": _save(small.convert("RGBA"), "PNG"),
        "grey.png": _save(small.convert("L"), "PNG"),
        "animated.gif": _save(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "animated.webp": _save(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        # Stored turned 90° anticlockwise; shown upright through its EXIF orientation.
        "rotated-exif.jpg": _save(dog.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif,
                                  quality=92),
        "chien été ñ.jpg": (DATA / "dog.jpg").read_bytes(),
        # libjpeg decodes damaged entropy-coded data (with artefacts) without an error.
        "corrupt-middle.jpg": _corrupt_middle((DATA / "dog.jpg").read_bytes()),
    }
    bad = {
        "empty.jpg": (b"", "decode", "empty file"),
        "page.jpg": (b"<!DOCTYPE html><html>404</html>", "decode", "unknown image format"),
        "truncated.jpg": ((DATA / "dog.jpg").read_bytes()[:20000], "decode", "image file is truncated"),
        "bad-crc.png": (_png_header(64, 64, crc=0), "decode", "corrupt header"),
        "bomb.png": (_png_header(30000, 30000), "decode", "decompression bomb"),
        "locked.jpg": ((DATA / "dog.jpg").read_bytes(), "read", "Permission denied"),
    }
    for name, data in good.items():
        (folder / name).write_bytes(data)
    for name, (data, _, _) in bad.items():
        (folder / name).write_bytes(data)
    os.chmod(folder / "locked.jpg", 0)
    (folder / "a folder.jpg").mkdir()  # patterns match files only: never an input
    return good, bad


@pytest.fixture
def unreadable_for_root(monkeypatch):
    """Root reads files whatever their mode: for it, opening locked.jpg fails the way it
    does for everyone else (the FnApiRunner runs in this process)."""
    if os.geteuid() != 0:
        return
    real_open = beam_read.FileSystems.open

    def open_(path, *args, **kwargs):
        if path.endswith("locked.jpg"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(beam_read.FileSystems, "open", open_)


def test_every_awkward_input_ends_in_exactly_one_table(tmp_path, weights_cache, unreadable_for_root):
    folder = tmp_path / "inputs"
    folder.mkdir()
    good, bad = _make_inputs(folder)
    manifest = tmp_path / "more.txt"
    # Listed by hand: a folder, a file deleted after it was listed, and a duplicate.
    manifest.write_text(f"{folder / 'a folder.jpg'}\n{tmp_path / 'deleted.jpg'}\n"
                        f"{folder / 'grey.png'}\n")
    output = tmp_path / "out"
    assert run(["--input", str(folder / "*"), "--manifest", str(manifest), "--output", str(output),
                "--synsets", "dog", *LOCAL]) == 0

    labels = by_uri(table(output, "labels"))
    errors = by_uri(table(output, "errors"))
    assert sorted(labels) == sorted(good)
    assert sorted(errors) == sorted([*bad, "a folder.jpg", "deleted.jpg"])
    for name, (_, stage, message) in bad.items():
        assert errors[name]["stage"] == stage and message in errors[name]["message"], errors[name]
    assert errors["a folder.jpg"]["stage"] == "read" and "directory" in errors["a folder.jpg"]["message"].lower()
    assert errors["deleted.jpg"]["stage"] == "read" and "deleted.jpg" in errors["deleted.jpg"]["message"]

    assert (labels["one pixel.png"]["width"], labels["one pixel.png"]["height"]) == (1, 1)
    assert (labels["strip.png"]["width"], labels["strip.png"]["height"]) == (10000, 20)
    assert labels["chien été ñ.jpg"]["image_uri"] == str(folder / "chien été ñ.jpg")
    # The EXIF-rotated photo is labelled as displayed: upright, boxes on the dog.
    rotated = labels["rotated-exif.jpg"]
    assert (rotated["width"], rotated["height"]) == (768, 576)
    box = rotated["boxes"][0]
    assert iou((box["x0"], box["y0"], box["x1"], box["y1"]), DOG_BOX) >= 0.5

    counts = json.loads((output / "_SUCCESS").read_text())["counts"]
    assert counts["matched"] == len(good) + len(bad) + 2 == counts["labelled"] + counts["failed"]
    assert counts["duplicates"] == 1


def test_an_image_too_small_for_every_scale_is_an_error(tmp_path, weights_cache):
    output = tmp_path / "out"
    # A window map needs a 224-px input; a fixed 100x100 scale gives none.
    assert run(["--input", str(DATA / "dog.jpg"), "--output", str(output), "--map-mode", "window",
                "--scales", "100x100", "--max-error-fraction", "1", *LOCAL]) == 0
    (error,) = table(output, "errors").to_pylist()
    assert error["stage"] == "decode"
    assert "scale 100x100 gives a 100x100 input, too small for a window map" in error["message"]
