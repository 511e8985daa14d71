"""Training targets for a trained head (transforms/model/head.py) from the job's own
weak labels, without any ground truth: per (image, synset), each map cell is confident
foreground, confident background, or left out of the loss.

The rule, on a labels row's fused heat (0–1, normalised per image) of one synset:
- the synset has no box in the row (its probability never reached the job's
  ``--min-score`` where its heat passed the threshold): every cell is background;
- it has a box: cells with heat ≥ ``foreground`` are foreground, cells with heat ≤
  ``background`` background, the cells between are ignored (the uncertain rim where the
  classifier's maps are known to stop short of the object's extent).
"""
from __future__ import annotations

import numpy as np

FOREGROUND, BACKGROUND, IGNORE = 1, 0, -1
DEFAULT_FOREGROUND = 0.5
DEFAULT_BACKGROUND = 0.1


def pseudo_mask(heat: np.ndarray, has_box: bool, foreground: float = DEFAULT_FOREGROUND,
                background: float = DEFAULT_BACKGROUND) -> np.ndarray:
    """(h, w) heat in [0, 1] → (h, w) int8 of FOREGROUND, BACKGROUND and IGNORE."""
    if not 0 <= background < foreground <= 1:
        raise ValueError(f"need 0 <= background < foreground <= 1, got {background}, {foreground}")
    heat = np.asarray(heat)
    if not has_box:
        return np.full(heat.shape, BACKGROUND, np.int8)
    mask = np.full(heat.shape, IGNORE, np.int8)
    mask[heat >= foreground] = FOREGROUND
    mask[heat <= background] = BACKGROUND
    return mask
