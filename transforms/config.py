"""What a labelling run computes: one picklable value that travels to the workers."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from transforms.maps.boxes import DEFAULT_MIN_SCORE
from transforms.maps.confidence import LogisticConfidence
from transforms.maps.hypotheses import DEFAULT_THRESHOLDS
from transforms.io.decode import DEFAULT_MAX_PIXELS
from transforms.io.records import DEFAULT_HEATMAPS
from transforms.maps.heatmaps import DEFAULT_FUSION, DEFAULT_HEAT
from transforms.maps.refine import DEFAULT_REFINEMENT
from transforms.maps.multiscale import DEFAULT_HEAD_MAPS, DEFAULT_SCORE_CELLS, DEFAULT_TOP_K
from transforms.maps.scales import DEFAULT_SCALES, Scale
from transforms.vocab.synsets import Synset
from transforms.vocab.vocabularies import DEFAULT_TOP_K_VOCABULARY, top_k_vocabulary

DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class LabelConfig:
    """Settings of the model, maps, fusion and boxes.

    ``synsets`` None means: heatmaps and boxes for each image's ``top_k`` synsets of
    the top-k vocabulary: ``vocabulary`` names a built-in one (concepts, imagenet) or a
    file, whose synsets the launcher reads into ``vocabulary_synsets``.
    ``weights`` is "imagenet" (the model's own) or a path on any Beam filesystem.
    ``threshold``: the heat levels box hypotheses come from (``transforms.maps.hypotheses``);
    ``synset_thresholds`` (wnid, threshold) pairs replace them by one level for those
    synsets (a calibration's, see ``transforms.quality.calibration``).
    ``confidence``: the model that gives each box its probability of being right
    (``transforms.maps.confidence``; None: boxes have no confidence) and
    ``confidence_source`` what it came from (file and checksum); boxes under
    ``min_confidence`` are dropped.
    ``refine_boxes`` "grabcut" refines each box by the photo's colours
    (``transforms.maps.refine``), "none" keeps the heat's components as they are.
    ``head`` is the folder of a trained head (python -m pipeline.train) whose maps
    (``head_maps``: alone, or fused with the classifier's) become the heat; None: none.
    """

    model: str = DEFAULT_MODEL
    weights: str = "imagenet"
    map_mode: str = "cell"
    window_stride: int = 1
    scales: tuple[Scale, ...] = DEFAULT_SCALES
    synsets: tuple[Synset, ...] | None = None
    top_k: int = DEFAULT_TOP_K
    vocabulary: str = DEFAULT_TOP_K_VOCABULARY
    vocabulary_synsets: tuple[Synset, ...] = ()
    score_cells: float = DEFAULT_SCORE_CELLS
    fusion: str = DEFAULT_FUSION
    heat: str = DEFAULT_HEAT
    threshold: tuple[float, ...] = DEFAULT_THRESHOLDS
    synset_thresholds: tuple[tuple[str, float], ...] = ()
    relative_threshold: bool = False
    min_box_area: float = 0.0
    min_score: float = DEFAULT_MIN_SCORE
    confidence: LogisticConfidence | None = None
    confidence_source: dict | None = None
    min_confidence: float = 0.0
    refine_boxes: str = DEFAULT_REFINEMENT  # grabcut: boxes refined by the photo; none
    head: str | None = None
    head_maps: str = DEFAULT_HEAD_MAPS
    heatmaps: str = DEFAULT_HEATMAPS  # whose heatmaps the rows keep: all, boxed (synsets with a box), none
    keep_scale_maps: bool = False  # each scale's heatmaps in the labels rows, not just the fused
    batch_size: int = 0  # images per network call; 0: the worker's choice (fcn.default_batch_size)
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    mixed_precision: bool = False
    xla: bool = False
    # What runs the model: tensorflow, onnxruntime, or auto (each worker's choice,
    # transforms.model.fcn.resolve_engine); local runs record the engine resolved.
    engine: str = "auto"
    intra_op_threads: int = 0  # the engine's CPU thread pool; 0: its default (all cores)

    def record(self) -> dict:
        """The settings as JSON values, for run records (and calibrations, which check
        them)."""
        record = dataclasses.asdict(self)
        record["scales"] = [str(s) for s in self.scales]
        record["synsets"] = None if self.synsets is None else [
            {"wnid": s.wnid, "label": s.label, "classes": len(s.class_indices)} for s in self.synsets]
        record["vocabulary_synsets"] = [
            {"wnid": s.wnid, "label": s.label, "classes": len(s.class_indices)}
            for s in self.vocabulary_synsets]
        record["synset_thresholds"] = dict(self.synset_thresholds)
        record["threshold"] = list(self.threshold)
        record["confidence"] = self.confidence_source  # the model's file, not its numbers
        return record

    def top_k_candidates(self) -> tuple[Synset, ...]:
        """What top-k mode picks each image's synsets from."""
        return self.vocabulary_synsets or top_k_vocabulary(self.vocabulary)

    def box_options(self) -> dict:
        """Keyword arguments of ``SynsetHeatmaps.boxes``."""
        return {"thresholds": self.threshold, "synset_thresholds": dict(self.synset_thresholds),
                "relative": self.relative_threshold, "min_area": self.min_box_area,
                "min_score": self.min_score, "confidence": self.confidence,
                "min_confidence": self.min_confidence}

# Namespace of the job's Beam counters (and of RunInference's BeamML metrics).
METRICS_NAMESPACE = "fcn_weak_labels"
