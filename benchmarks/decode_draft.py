"""Large JPEGs: decode at full size then resize, vs Pillow's draft mode (DCT scaling)
to the size the largest scale needs, then resize.

    python -m benchmarks.decode_draft [--size 6000x4000] [--scale 576] [--repeats 5]
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

from benchmarks.common import best_of, machine, table
from transforms.io.decode import decode_image
from transforms.maps.multiscale import largest_input, resize_image
from transforms.maps.scales import parse_scales

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6000x4000", help="JPEG WxH")
    parser.add_argument("--scales", default="288,576")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    buffer = io.BytesIO()
    Image.open(DATA / "dog.jpg").resize((width, height)).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    scales = parse_scales(args.scales)
    needed = largest_input(scales, 32)
    target = needed((height, width))

    def full():
        return resize_image(decode_image(data).pixels, target)

    def draft():
        return resize_image(decode_image(data, needed).pixels, target)

    full_s, draft_s = best_of(args.repeats, full), best_of(args.repeats, draft)
    drafted = decode_image(data, needed).pixels.shape
    print(f"machine: {machine()}")
    print(f"{width}x{height} JPEG ({len(data) / 1e6:.1f} MB) to the largest input {target[1]}x{target[0]} "
          f"(scales {args.scales}); draft decodes {drafted[1]}x{drafted[0]}")
    print(table(["decode", "ms"], [["full size, then resize", f"{full_s * 1000:.0f}"],
                                   ["draft mode, then resize", f"{draft_s * 1000:.0f}"]]))
    print(f"speed-up: {full_s / draft_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
