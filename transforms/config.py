"""What a labelling run computes: one picklable value that travels to the workers."""
from __future__ import annotations

from dataclasses import dataclass

from transforms.boxes import DEFAULT_THRESHOLD
from transforms.decode import DEFAULT_MAX_PIXELS
from transforms.heatmaps import DEFAULT_FUSION
from transforms.scales import DEFAULT_SCALES, Scale
from transforms.synsets import Synset

DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class LabelConfig:
    """Settings of the model, maps, fusion and boxes.

    ``synsets`` None means: heatmaps and boxes for each image's ``top_k`` classes.
    ``weights`` is "imagenet" (the model's own) or a path on any Beam filesystem.
    """

    model: str = DEFAULT_MODEL
    weights: str = "imagenet"
    map_mode: str = "cell"
    window_stride: int = 1
    scales: tuple[Scale, ...] = DEFAULT_SCALES
    synsets: tuple[Synset, ...] | None = None
    top_k: int = 5
    fusion: str = DEFAULT_FUSION
    threshold: float = DEFAULT_THRESHOLD
    relative_threshold: bool = False
    min_box_area: float = 0.0
    keep_scale_maps: bool = False  # each scale's heatmaps in the labels rows, not just the fused
    batch_size: int = 0  # images per network call; 0: the worker's choice (fcn.default_batch_size)
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    mixed_precision: bool = False
    xla: bool = False
    intra_op_threads: int = 0  # TensorFlow's CPU thread pool; 0: its default (all cores)

    def box_options(self) -> dict:
        """Keyword arguments of ``boxes_from_heatmap``."""
        return {"threshold": self.threshold, "relative": self.relative_threshold,
                "min_area": self.min_box_area}

# Namespace of the job's Beam counters (and of RunInference's BeamML metrics).
METRICS_NAMESPACE = "fcn_weak_labels"
