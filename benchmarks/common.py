"""Shared by the benchmark scripts: the machine they ran on, and tables."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Callable


def machine() -> str:
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    gpus = tf.config.list_physical_devices("GPU")
    device = f"GPU ({tf.config.experimental.get_device_details(gpus[0]).get('device_name', 'GPU')})" if gpus else "CPU"
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"TF {tf.__version__}, device {device}")


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Fastest of ``repeats`` timed calls, after one untimed call (tracing, caches)."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)
