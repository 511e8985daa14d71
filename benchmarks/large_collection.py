"""A few hundred generated photos of mixed sizes, some broken, through the whole job:
checks the accounting and reports wall time, throughput and peak memory.

    python -m benchmarks.large_collection [--images 300] [--bad-fraction 0.05] [--workdir DIR]

The job runs in a child process (FnApiRunner, as run_local.sh runs it); its peak
resident memory is the child's maximum RSS.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import machine, table

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# Realistic photo sizes (W, H): phone, camera, web, portrait, panorama, thumbnail.
SIZES = [(4032, 3024), (3000, 2000), (1600, 1200), (1080, 1350), (2400, 800), (640, 480),
         (320, 240)]


def make_collection(folder: Path, images: int, bad_fraction: float, seed: int = 0) -> tuple[int, int]:
    """Write ``images`` files into ``folder``: resized, cropped, flipped copies of the test
    photos as JPEG or PNG, and about ``bad_fraction`` of them broken (truncated or not
    images). Returns (good, bad) counts."""
    rng = np.random.default_rng(seed)
    photos = [Image.open(DATA / name).convert("RGB") for name in ("dog.jpg", "chelsea.png", "eagle.jpg")]
    folder.mkdir(parents=True, exist_ok=True)
    bad = 0
    for i in range(images):
        if rng.random() < bad_fraction:
            path = folder / f"broken-{i:05d}.jpg"
            data = (DATA / "dog.jpg").read_bytes()
            path.write_bytes(data[: len(data) // 3] if i % 2 else b"<html>gone</html>")
            bad += 1
            continue
        photo = photos[i % len(photos)]
        w, h = photo.size
        left, top = int(rng.integers(0, w // 5)), int(rng.integers(0, h // 5))
        crop = photo.crop((left, top, w - int(rng.integers(0, w // 5)), h - int(rng.integers(0, h // 5))))
        image = crop.resize(SIZES[i % len(SIZES)], Image.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if i % 4 == 3:
            image.save(folder / f"photo-{i:05d}.png")
        else:
            image.save(folder / f"photo-{i:05d}.jpg", quality=90)
    return images - bad, bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--bad-fraction", type=float, default=0.05)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("pipeline_args", nargs="*", help="more options for python -m pipeline")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="large-collection-"))
    photos = workdir / "photos"
    if photos.is_dir() and len(list(photos.iterdir())) == args.images:  # made by an earlier run
        bad = len(list(photos.glob("broken-*")))
        good = args.images - bad
    else:
        good, bad = make_collection(photos, args.images, args.bad_fraction)
    output = workdir / "out"
    started = time.time()
    subprocess.run([sys.executable, "-m", "pipeline", "--input", str(workdir / "photos" / "*"),
                    "--output", str(output), "--overwrite", "--runner", "FnApiRunner",
                    *args.pipeline_args], check=True)
    wall = time.time() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    counts = json.loads((output / "_SUCCESS").read_text())["counts"]
    assert counts["matched"] == good + bad == counts["labelled"] + counts["failed"], counts
    assert (counts["labelled"], counts["failed"]) == (good, bad), counts
    print(f"machine: {machine()}")
    print(table(["images", "labelled", "failed", "wall s", "images/s", "peak RSS MiB"],
                [[args.images, counts["labelled"], counts["failed"], f"{wall:.1f}",
                  f"{args.images / wall:.2f}", f"{peak_mib:.0f}"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
