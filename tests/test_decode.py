"""Decoding with Pillow: orientation, draft mode, modes, limits, bad bytes."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from transforms.io.decode import DecodeError, decode_image

from conftest import DATA


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def test_exif_orientation_is_applied_and_size_is_display_size():
    pixels = np.zeros((40, 100, 3), np.uint8)
    pixels[:, :50] = (255, 0, 0)  # left half red (stored)
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90° clockwise
    decoded = decode_image(_encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95))
    assert decoded.size == (100, 40) and decoded.pixels.shape == (100, 40, 3)
    # Rotated clockwise, the stored left half is now on top.
    assert decoded.pixels[10, 20, 0] > 200 and decoded.pixels[90, 20, 0] < 50


def test_draft_decodes_large_jpegs_smaller_but_reports_the_full_size():
    big = Image.open(DATA / "dog.jpg").resize((3072, 2304))
    data = _encode(big, "JPEG", quality=90)
    full = decode_image(data)
    assert full.pixels.shape == (2304, 3072, 3)
    drafted = decode_image(data, needed_size=lambda size: (size[0] // 5, size[1] // 5))
    assert drafted.size == (2304, 3072)
    # The smallest DCT scale covering 460x614 is 1/4: 576x768.
    assert drafted.pixels.shape == (576, 768, 3)


def test_formats_without_draft_are_reduced_like_drafted_jpegs():
    big = Image.open(DATA / "dog.jpg").convert("RGB").resize((3072, 2304))
    data = _encode(big, "PNG")
    reduced = decode_image(data, needed_size=lambda size: (size[0] // 5, size[1] // 5))
    assert reduced.size == (2304, 3072)
    # The largest integer factor covering 460x614 is 1/5: 461x615, a box filter.
    assert reduced.pixels.shape == (461, 615, 3)
    assert np.array_equal(reduced.pixels, np.asarray(big.reduce(5)))
    # Never below the size needed, nor beyond 1/8.
    assert decode_image(data, needed_size=lambda size: (500, 700)).pixels.shape == (576, 768, 3)
    assert decode_image(data, needed_size=lambda size: (10, 10)).pixels.shape == (288, 384, 3)


def test_reduction_follows_the_exif_orientation_in_every_mode():
    stored = np.zeros((400, 1600, 4), np.uint8)
    stored[..., 3] = 255
    stored[:, :800, 0] = 255  # left half red (stored)
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90° clockwise: 400 wide, 1600 high
    for mode in ("RGB", "RGBA"):
        data = _encode(Image.fromarray(stored).convert(mode), "PNG", exif=exif)
        decoded = decode_image(data, needed_size=lambda size: (size[0] // 4, size[1] // 4))
        assert decoded.size == (1600, 400)
        assert decoded.pixels.shape == (400, 100, 3)
        # The stored left half is now on top.
        assert decoded.pixels[10, 50, 0] > 200 and decoded.pixels[390, 50, 0] < 50


def test_every_mode_becomes_rgb():
    rgb = np.asarray(Image.open(DATA / "chelsea.png").convert("RGB").resize((64, 48)))
    base = Image.fromarray(rgb)
    palette = base.convert("P")
    palette.info["transparency"] = 0
    sixteen = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)  # mode I;16
    frames = [Image.new("RGB", (64, 48), c) for c in ((255, 0, 0), (0, 0, 255))]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    samples = {
        "L": _encode(base.convert("L"), "PNG"),
        "CMYK": _encode(base.convert("CMYK"), "JPEG"),
        "RGBA": _encode(base.convert("RGBA"), "PNG"),
        "P+transparency": _encode(palette, "PNG"),
        "I;16": _encode(sixteen, "PNG"),
        "GIF": animated.getvalue(),
    }
    for name, data in samples.items():
        decoded = decode_image(data)
        assert decoded.pixels.shape == (48, 64, 3) and decoded.pixels.dtype == np.uint8, name
    # 16-bit values are scaled to 8 bits, not clipped at 255.
    np.testing.assert_allclose(decode_image(samples["I;16"]).pixels[..., 0], rgb[..., 0], atol=1)
    # The first frame of an animation is used.
    assert tuple(decode_image(samples["GIF"]).pixels[0, 0]) == (255, 0, 0)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding():
    with pytest.raises(DecodeError, match="decompression bomb: .*900000000 pixels.* exceeds"):
        decode_image(_png_header_only(30000, 30000))
    # Between our limit and twice Pillow's (where Pillow raises itself): ours says no.
    with pytest.raises(DecodeError, match="decompression bomb: 10000x10000 = 100000000 pixels "
                                          "exceeds the limit of 50000000"):
        decode_image(_png_header_only(10000, 10000), max_pixels=50_000_000)
    small = _encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(DecodeError, match="decompression bomb: .* limit of 5000 pixels"):
        decode_image(small, max_pixels=5000)
    assert decode_image(small, max_pixels=None).size == (100, 100)


@pytest.mark.parametrize("data, message", [
    (b"", r"empty file \(0 bytes\)"),
    (b"<html><body>not an image</body></html>", "unknown image format or corrupt header .* starts with b'<html><body>not"),
    ((DATA / "dog.jpg").read_bytes()[:5000], "cannot decode image: OSError: Truncated File Read"),
], ids=["empty", "html", "truncated-jpeg"])
def test_undecodable_bytes_raise_decode_error(data, message):
    with pytest.raises(DecodeError, match=message):
        decode_image(data)
