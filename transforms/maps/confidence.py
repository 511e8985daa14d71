"""The box confidence: the probability that a box is right, from what the job knows of it.

A box is *right* when its IoU with an object of its synset is at least 0.5 and no more
confident box of the image has claimed that object (PASCAL VOC's rule). The model is a
logistic regression over some of ``hypotheses.FEATURES`` (standardised), fitted on
labelled photos by ``transforms.quality.confidence_fit`` (``python -m pipeline.evaluate
--fit-confidence``; the shipped file by ``python -m benchmarks.confidence`` on voc07-dev),
one per mode of the job: ``synsets`` (the synsets a run names) and ``top_k`` (each
image's best synsets of a vocabulary). What a box's features mean depends on how the
heat and the hypotheses were made, so a calibration holds the settings it was fitted
with (``SETTINGS``) and is refused for others.

The shipped calibration (``DEFAULT_CALIBRATION``) was fitted at the job's defaults on
PASCAL VOC photos: for other photos it is an estimate, to be checked (and refitted) on
some labelled photos of one's own.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import special

from transforms.maps.hypotheses import FEATURES

DEFAULT_CALIBRATION = Path(__file__).parent / "data" / "confidence.json"
FORMAT = "fcn-weak-labels box confidence 1"
MODES = ("synsets", "top_k")
# The label settings (LabelConfig.record() names) that the features' meaning depends on;
# top-k mode's also depends on the vocabulary its synsets are ranked in.
SETTINGS = ("model", "weights", "map_mode", "window_stride", "scales", "fusion", "heat",
            "score_cells", "threshold", "synset_thresholds", "relative_threshold",
            "min_box_area", "min_score", "refine_boxes", "head")
TOP_K_SETTINGS = ("vocabulary",)


class ConfidenceError(ValueError):
    """A calibration that cannot be used, with the reason and what to do."""


def mode_of(synsets) -> str:
    """The job's mode for its ``synsets`` setting (None: top-k)."""
    return "top_k" if synsets is None else "synsets"


@dataclass(frozen=True)
class LogisticConfidence:
    """P(right) = sigmoid(intercept + Σ coefficient · (feature − mean) / scale) over
    ``features`` (names of ``FEATURES``)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def __post_init__(self):
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown:
            raise ConfidenceError(f"unknown feature {unknown[0]!r}: this version computes "
                                  f"{', '.join(FEATURES)}")
        if not (len(self.features) == len(self.mean) == len(self.scale) == len(self.coefficients)):
            raise ConfidenceError("features, mean, scale and coefficients differ in length")
        if not all(np.isfinite([*self.mean, *self.scale, *self.coefficients, self.intercept])) \
                or min(self.scale, default=1.0) <= 0:
            raise ConfidenceError("the model's numbers must be finite, its scales positive")

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n, len(FEATURES)) features → (n,) probabilities."""
        columns = [FEATURES.index(name) for name in self.features]
        standardised = (np.asarray(features, np.float64)[:, columns] - self.mean) / self.scale
        return special.expit(standardised @ np.asarray(self.coefficients) + self.intercept)


@dataclass(frozen=True)
class ConfidenceCalibration:
    """A confidence model per mode, the minimum confidence of the boxes a run of that
    mode keeps by default, the settings they were fitted with, and what they were
    fitted on (``source``: data, held-out reliability)."""

    settings: dict
    models: dict[str, LogisticConfidence]
    minimums: dict[str, float]
    source: dict = field(default_factory=dict)

    def to_json(self) -> str:
        record = {"format": FORMAT, "settings": self.settings,
                  "models": {mode: asdict(model) for mode, model in self.models.items()},
                  "minimums": self.minimums, "source": self.source}
        return json.dumps(record, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ConfidenceCalibration":
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
            models = {mode: LogisticConfidence(tuple(m["features"]), tuple(m["mean"]),
                                               tuple(m["scale"]), tuple(m["coefficients"]),
                                               float(m["intercept"]))
                      for mode, m in data["models"].items()}
            unknown = sorted(set(models) - set(MODES))
            if unknown:
                raise ValueError(f"unknown mode {unknown[0]!r} (modes: {', '.join(MODES)})")
            minimums = {mode: float(data["minimums"][mode]) for mode in models}
            if not all(0 <= m < 1 for m in minimums.values()):
                raise ValueError("minimum confidences must be in [0, 1)")
            return cls(dict(data["settings"]), models, minimums, dict(data.get("source", {})))
        except ConfidenceError as e:
            raise ConfidenceError(f"not a usable confidence calibration: {e}") from None
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ConfidenceError(f"not a confidence calibration of python -m pipeline.evaluate "
                                  f"--fit-confidence ({type(e).__name__}: {e})") from None

    def model(self, mode: str) -> LogisticConfidence:
        if mode not in self.models:
            raise ConfidenceError(f"it has no model for {_MODE_NAMES[mode]} (it has: "
                                  + ", ".join(_MODE_NAMES[m] for m in self.models) + ")")
        return self.models[mode]

    def minimum(self, mode: str) -> float:
        """The minimum confidence of the boxes a run of ``mode`` keeps by default."""
        self.model(mode)
        return self.minimums[mode]

    def differences(self, settings: Mapping, mode: str) -> list[str]:
        """The settings of the run (a LabelConfig record) that differ from the
        calibration's, as 'name calibrated value (this run: value)'."""
        names = SETTINGS + (TOP_K_SETTINGS if mode == "top_k" else ())
        return [f"{name} {self.settings.get(name)!r} (this run: {settings.get(name)!r})"
                for name in names if self.settings.get(name) != settings.get(name)]


_MODE_NAMES = {"synsets": "runs with --synsets", "top_k": "top-k runs (without --synsets)"}


def calibration_settings(settings: Mapping, mode: str) -> dict:
    """The settings a calibration fitted on a run records (``settings``: its LabelConfig
    record)."""
    names = SETTINGS + (TOP_K_SETTINGS if mode == "top_k" else ())
    return {name: settings.get(name) for name in names}


def file_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def shipped_calibration() -> ConfidenceCalibration:
    """The calibration shipped with the package (``DEFAULT_CALIBRATION``)."""
    return ConfidenceCalibration.from_json(DEFAULT_CALIBRATION.read_text())


def merged(calibrations: Sequence[ConfidenceCalibration]) -> ConfidenceCalibration:
    """One calibration holding the models of several (one mode each), whose common
    settings agree."""
    settings: dict = {}
    models: dict = {}
    minimums: dict = {}
    source: dict = {}
    for c in calibrations:
        for name, value in c.settings.items():
            if name in settings and settings[name] != value:
                raise ConfidenceError(f"the calibrations differ in {name}: {settings[name]!r}, {value!r}")
            settings[name] = value
        models.update(c.models)
        minimums.update(c.minimums)
        source.update(c.source)
    return ConfidenceCalibration(settings, models, minimums, source)
