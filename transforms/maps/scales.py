"""Input scales: a fixed H×W, or a shorter side with the aspect ratio kept; either may
also be run on the mirrored image (``+flip``)."""
from __future__ import annotations

import re
from dataclasses import dataclass


# Longest network input side of a shorter-side scale, in pixels.
MAX_INPUT_SIDE = 4096


@dataclass(frozen=True)
class Scale:
    """Either ``size`` (height, width) is set — every image is squashed to it — or
    ``shorter_side`` is: the image is scaled so its shorter side has that length, the
    aspect ratio kept, both sides rounded to a multiple of the network stride. With
    ``flip`` the network also sees the mirrored input, and its maps, mirrored back, are
    averaged in (cell for cell when the input's width is a multiple of the stride, as
    shorter-side scales' are)."""

    size: tuple[int, int] | None = None
    shorter_side: int | None = None
    flip: bool = False

    def __post_init__(self):
        if (self.size is None) == (self.shorter_side is None):
            raise ValueError("a Scale has either a size or a shorter_side")
        sides = self.size or (self.shorter_side,)
        if any(n <= 0 for n in sides):
            raise ValueError(f"scale dimensions must be positive, got {self}")
        # Past this a network call asks for more memory than a worker has (a 20000x20000
        # input needs tens of GB for its first layers alone): a mistake, refused at once.
        if any(n > MAX_INPUT_SIDE for n in sides):
            raise ValueError(f"scale {self} is over the network input's limit of "
                             f"{MAX_INPUT_SIDE} pixels a side")

    def __str__(self) -> str:
        text = f"{self.size[0]}x{self.size[1]}" if self.size else str(self.shorter_side)
        return text + ("+flip" if self.flip else "")

    def input_size(self, image_size: tuple[int, int], stride: int,
                   max_side: int = MAX_INPUT_SIDE) -> tuple[int, int]:
        """The network input (H, W) for an image of ``image_size`` (H, W). A shorter-side
        scale keeps the longer side within ``max_side`` (a 20×10000 strip at shorter
        side 288 would be 144000 px long): such images get a shorter side below the
        scale's instead."""
        if self.size:
            return self.size
        factor = min(self.shorter_side / min(image_size), max_side / max(image_size))
        return tuple(max(stride, min(max_side // stride, round(n * factor / stride)) * stride)
                     for n in image_size)

    def padded_size(self, input_size: tuple[int, int], bucket: int) -> tuple[int, int]:
        """The shape an input of ``input_size`` is padded to so that images of similar
        aspect ratios batch together: a fixed size needs no padding; for a shorter-side
        scale the shorter side is shared already, the longer one is rounded up to a
        multiple of ``bucket`` pixels."""
        if self.size:
            return input_size
        h, w = input_size
        return (h, -(-w // bucket) * bucket) if h <= w else (-(-h // bucket) * bucket, w)


_SCALE = re.compile(r"\s*(\d+)\s*(?:[x×]\s*(\d+))?\s*(\+\s*flip)?\s*", re.IGNORECASE)


def parse_scales(text: str) -> tuple[Scale, ...]:
    """``"200x320,400x640"`` (fixed H×W) or ``"224,448,896"`` (shorter side), mixed freely;
    ``+flip`` after a scale (``"288+flip,640"``) also runs it on the mirrored image."""
    scales = []
    for token in text.split(","):
        match = _SCALE.fullmatch(token)
        if not match:
            raise ValueError(f"cannot parse scale {token.strip()!r} in {text!r}: use HxW "
                             "(e.g. 400x640) or a shorter-side length (e.g. 448), either "
                             "optionally followed by +flip, comma-separated")
        h, w, flip = match.groups()
        scales.append(Scale(size=(int(h), int(w)), flip=bool(flip)) if w
                      else Scale(shorter_side=int(h), flip=bool(flip)))
    return tuple(scales)


# Chosen on VOC photos (benchmarks/README.md, "Scale sets"): a scale for the objects'
# extent and one 2.2 times finer for their shape; the coarse scale's maps averaged with
# its mirrored image's (MaxBoxAccV2 +0.7; mirroring the fine scale costs 0.9 instead).
DEFAULT_SCALES = parse_scales("288+flip,640")
