"""Decode image bytes with Pillow: EXIF orientation applied, any mode to RGB, JPEGs
decoded in draft mode (DCT scaling) when the largest scale needs fewer pixels, other
formats reduced by the same integer factors right after decoding."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

# Pillow's own default (89.5 Mpixel): beyond it an image is treated as a decompression bomb.
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS

# EXIF orientations that swap width and height (transpose, 90°, transverse, 270°).
_SWAPS_AXES = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112
# The largest reduction, as JPEG's smallest DCT scale (1/8).
_MAX_REDUCTION = 8


class DecodeError(ValueError):
    """The bytes are not an image Pillow can decode within the limits."""


@dataclass(frozen=True)
class DecodedImage:
    """``pixels`` (h, w, 3) uint8 RGB in display orientation. ``size`` (H, W) is the
    full image's size in display orientation: draft decoding may give fewer pixels than
    that, and boxes are reported in ``size``'s coordinates."""

    pixels: np.ndarray
    size: tuple[int, int]


def decode_image(data: bytes,
                 needed_size: Callable[[tuple[int, int]], tuple[int, int]] | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode ``data``.

    Args:
        needed_size: a function (H, W) → (h, w) giving the largest input size the image
            will be resized to, from its display size; JPEGs are then decoded at the
            smallest DCT scale (1/2, 1/4, 1/8) that still covers it. None: full size.
        max_pixels: refuse images with more pixels than this (decompression bombs)
            before decoding them; None: no limit.
    """
    if not data:
        raise DecodeError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # We check the size ourselves; Pillow's own guard only warns below 2x its limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise DecodeError(f"decompression bomb: {width}x{height} = {width * height} pixels "
                              f"exceeds the limit of {max_pixels} pixels")
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
        swapped = orientation in _SWAPS_AXES
        size = (width, height) if swapped else (height, width)
        if needed_size is not None and image.format == "JPEG":
            h, w = needed_size(size)
            # draft() takes (width, height) in stored orientation.
            image.draft("RGB", (h, w) if swapped else (w, h))
        if orientation != 1:  # exif_transpose copies the image even when nothing turns
            image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
        if needed_size is not None:
            image = _reduced(image, needed_size(size))
        pixels = np.asarray(image)
    except DecodeError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's guard at twice its own limit
        raise DecodeError(f"decompression bomb: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise DecodeError("unknown image format or corrupt header (Pillow cannot open it); "
                          f"the file starts with {data[:16]!r}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise DecodeError(f"cannot decode image: {type(e).__name__}: {e}") from e
    return DecodedImage(pixels, size)


def _reduced(image: Image.Image, needed: tuple[int, int]) -> Image.Image:
    """``image`` shrunk by the largest integer factor, up to 1/8, that still covers the
    ``needed`` (h, w): a box filter, as draft mode's DCT scaling is for JPEGs. Formats
    without draft mode (PNG, WebP, TIFF…) are decoded whole; without this, copying a
    12-Mpixel photo to numpy and back for each scale cost more than decoding it
    (benchmarks/README.md, (a))."""
    factor = min(image.height // max(1, needed[0]), image.width // max(1, needed[1]),
                 _MAX_REDUCTION)
    return image.reduce(factor) if factor >= 2 else image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparency composited on white rather than dropped to black."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale (mode "I" when Pillow widens it): convert("RGB") would clip
        # at 255, so scale to 8 bits instead.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    # convert() copies even an RGB image: a 12-Mpixel PNG's 48 MB, for nothing.
    return image if image.mode == "RGB" else image.convert("RGB")
