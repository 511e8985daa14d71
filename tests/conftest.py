import os
from pathlib import Path

# Before TensorFlow is imported anywhere: keep its C++ start-up chatter out of test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory) -> Path:
    """A fresh weights cache for the session: the Lite0 conversion runs once per run."""
    path = tmp_path_factory.mktemp("weights-cache")
    os.environ["FCN_WEAK_LABELS_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def lite0_mapper(weights_cache):
    from transforms.fcn import ResponseMapper

    return ResponseMapper.load("efficientnet_lite0")


def load_photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / name).convert("RGB"))
