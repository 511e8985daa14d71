"""Synset heatmaps of images at several input scales, fused on one grid.

Works on batches: for each scale, images whose inputs share a (padded) shape go through
the network in one call. Full class maps stay inside this module: what leaves it is one
heat map, one probability map and one score per requested synset (or per top synset of
a vocabulary) and a score per class.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Callable, Literal, Mapping, Sequence

import numpy as np
from PIL import Image
from scipy import sparse, special

from transforms.maps.boxes import PIXELS_PER_CELL, Box, raster_shape, upsample
from transforms.maps.hypotheses import (DEFAULT_THRESHOLDS, NMS_IOU, ConfidenceModel, kept_boxes,
                                        refine_gate, synset_evidence, synset_hypotheses)
from transforms.maps.refine import resize_photo
from transforms.model.backbones import Backbone
from transforms.model.fcn import ResponseMapper, map_size
from transforms.model.head import TrainedHead, finer_grid
from transforms.maps.heatmaps import (DEFAULT_FUSION, DEFAULT_HEAT, Fusion, Heat, finished_heat,
                                      fuse, resample, synset_logits)
from transforms.model.grid import MapGrid
from transforms.maps.scales import DEFAULT_SCALES, Scale
from transforms.vocab.synsets import Synset, class_matrix, class_synset
from transforms.vocab.vocabularies import concepts

# Longer sides of shorter-side scales are padded to a multiple of this many pixels, so
# that a few shapes cover all aspect ratios (few traces, full batches) when several
# images share a network call; an image alone in its call is not padded.
DEFAULT_BUCKET = 64
DEFAULT_TOP_K = 5
# A synset's image-level score is its probability averaged over this fraction of the
# cells where it is highest: the mean over the whole image (1.0) favours what fills the
# picture (a room, a shore) over the objects in it, the single best cell is noise
# (top-k pooling in between; measured in benchmarks/README.md, (e)).
DEFAULT_SCORE_CELLS = 0.1
# With a trained head: its maps alone, or averaged with the classifier's heat.
HeadMaps = Literal["head", "fused"]
HEAD_MAPS = ("head", "fused")
DEFAULT_HEAD_MAPS = "fused"


@dataclass(frozen=True)
class ScaledImage:
    """One image resized for every scale: ``inputs[i]`` is the (h, w, 3) uint8 network
    input of the i-th scale; ``image_size`` the original (H, W)."""

    image_size: tuple[int, int]
    inputs: tuple[np.ndarray, ...]

    def largest(self) -> np.ndarray:
        """The input with the most pixels: the image as finely as the job has it."""
        return max(self.inputs, key=lambda pixels: pixels.shape[0] * pixels.shape[1])


@dataclass(frozen=True)
class ScaleMaps:
    """The synset maps of one scale on ``grid``, which is in the original image's pixel
    coordinates: ``heat`` (h, w, S) of the kind asked for (probabilities, or logits for
    logit and blend heat, not yet normalised) and ``probabilities`` (h, w, S)."""

    scale: Scale
    input_size: tuple[int, int]
    grid: MapGrid
    heat: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class SynsetHeatmaps:
    """Per-scale and fused synset heatmaps of one image.

    ``fused`` is (h, w, S), one channel per synset in ``synsets`` order, on ``grid``
    (uniform over the image, as fine as the finest scale's map): the ``heat`` asked for,
    fused over the scales and finished (``transforms.maps.heatmaps.finished_heat``: logit and
    blend heat normalised to 0–1 per synset). ``on_grid`` is (scales, h, w, S): each
    scale's heat resampled to ``grid`` and finished alike, what was fused.
    ``probability`` (h, w, S) is each synset's probability per cell, fused alike: what
    box scores are. ``scores`` (S,) is each synset's image-level score
    (``pooled_scores``); ``class_scores`` holds every class's probability averaged over
    the cells, then over the scales.
    """

    synsets: tuple[Synset, ...]
    image_size: tuple[int, int]
    per_scale: tuple[ScaleMaps, ...]
    grid: MapGrid
    on_grid: np.ndarray
    fused: np.ndarray
    probability: np.ndarray
    scores: np.ndarray
    class_scores: np.ndarray

    def boxes(self, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
              synset_thresholds: Mapping[str, float] | None = None, relative: bool = False,
              min_area: float = 0.0, min_score: float = 0.0, photo: np.ndarray | None = None,
              confidence: ConfidenceModel | None = None, min_confidence: float = 0.0,
              pixels_per_cell: int | None = PIXELS_PER_CELL) -> dict[str, list[Box]]:
        """Boxes per synset wnid, best first (``transforms.maps.hypotheses``): the
        components of its heat at each of ``thresholds`` (or at its one threshold in
        ``synset_thresholds``) with at least ``min_area`` of the image and a peak
        probability (the box's score) of at least ``min_score``, refined by GrabCut on
        ``photo`` (the image, any size) when given; with a ``confidence`` model, each with
        its probability of being right, those under ``min_confidence`` dropped; one box
        per object (non-maximum suppression)."""
        synset_thresholds = synset_thresholds or {}
        shape = raster_shape(self.grid, self.image_size, pixels_per_cell)
        if photo is not None:  # once for all synsets: their rasters share a shape
            photo = resize_photo(photo, shape)
        evidence = synset_evidence(self.scores, [len(s.class_indices) for s in self.synsets])
        # A bilinear raster never exceeds its grid's largest value: a synset whose
        # probability stays under min_score everywhere has no box, and is not upsampled.
        boxed = [i for i in range(len(self.synsets))
                 if self.probability[..., i].max(initial=0.0) >= min_score]
        heat = upsample(self.fused[..., boxed], self.grid, self.image_size, pixels_per_cell)
        scores = upsample(self.probability[..., boxed], self.grid, self.image_size, pixels_per_cell)
        result = {s.wnid: [] for s in self.synsets}
        for channel, i in enumerate(boxed):
            wnid = self.synsets[i].wnid
            levels = ((synset_thresholds[wnid],) if wnid in synset_thresholds
                      else tuple(thresholds))
            hypotheses = synset_hypotheses(heat[..., channel], scores[..., channel],
                                           self.image_size, evidence[i], levels, relative,
                                           min_area, min_score, photo, confidence,
                                           refine_gate(min_confidence))
            result[wnid] = kept_boxes(hypotheses, NMS_IOU, min_confidence)
        return result

    def top_classes(self, k: int) -> list[tuple[Synset, float]]:
        """The k best ImageNet classes (each a synset of its own) and their scores, best
        first."""
        best = np.argsort(-self.class_scores, kind="stable")[:k]
        return [(class_synset(int(i)), float(self.class_scores[i])) for i in best]


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB → size (h, w), bilinear (Pillow filters when shrinking, so
    small scales do not alias). Large reductions first shrink by an integer factor with a
    box filter (Pillow's reducing_gap: several times faster, the same to the eye)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR,
                                                    reducing_gap=3.0))


def scale_image(pixels: np.ndarray, image_size: tuple[int, int], scales: Sequence[Scale],
                stride: int) -> ScaledImage:
    """Resize ``pixels`` for every scale. ``image_size`` is the original (H, W), which
    may exceed ``pixels``' own when the decoder drafted a smaller image: input sizes
    and box coordinates follow the original."""
    return ScaledImage(tuple(image_size), tuple(
        resize_image(pixels, scale.input_size(image_size, stride)) for scale in scales))


def largest_input(scales: Sequence[Scale], stride: int) -> Callable[[tuple[int, int]], tuple[int, int]]:
    """(H, W) → the largest height and width any scale resizes that image to: what a
    decoder must deliver at least."""
    def size(image_size: tuple[int, int]) -> tuple[int, int]:
        sizes = [scale.input_size(image_size, stride) for scale in scales]
        return max(h for h, _ in sizes), max(w for _, w in sizes)
    return size


def check_inputs_fit(image: ScaledImage, scales: Sequence[Scale], backbone: Backbone,
                     map_mode: str, window_stride: int) -> None:
    """Raise ValueError if some scale's input is too small to give a response map."""
    for scale, pixels in zip(scales, image.inputs):
        if min(map_size(pixels.shape[:2], backbone, map_mode, window_stride)) < 1:
            raise ValueError(f"scale {scale} gives a {pixels.shape[0]}x{pixels.shape[1]} input, "
                             f"too small for a {map_mode} map of {backbone.name}")


def _logits_per_scale(mapper: ResponseMapper, images: Sequence[ScaledImage],
                      scales: Sequence[Scale], bucket: int,
                      images_per_call: int | None) -> list[list[np.ndarray]]:
    """[image][scale] → (h, w, channels) logits (``ResponseMapper.logits``: the classes'
    and a head's), cropped to each image's content; at a ``flip`` scale, averaged with
    the mirrored image's, mirrored back."""
    result: list[list[np.ndarray]] = [[None] * len(scales) for _ in images]
    for s, scale in enumerate(scales):
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            groups[scale.padded_size(image.inputs[s].shape[:2], bucket)].append(i)
        calls = [(shape, group[start:start + (images_per_call or len(group))])
                 for shape, group in groups.items()
                 for start in range(0, len(group), images_per_call or len(group))]
        for shape, members in calls:  # one network call each
            if len(members) == 1 and not mapper.jit_compile:
                # Alone in its call (every call on a CPU worker, one image each): its
                # own shape. Padding would cost pixels and change the maps near the
                # padded borders (the network's later layers see the zeros): MaxBoxAccV2
                # 55.6 unpadded, 54.9 padded on VOC at scales 320,704
                # (benchmarks/README.md). XLA compiles per shape: it keeps the buckets.
                shape = images[members[0]].inputs[s].shape[:2]
            inputs = [images[i].inputs[s] for i in members]
            logits = _network_call(mapper, inputs, shape)
            if scale.flip:
                mirrored = _network_call(mapper, [pixels[:, ::-1] for pixels in inputs], shape)
                logits = [(plain + back[:, ::-1]) / 2 for plain, back in zip(logits, mirrored)]
            for i, image_logits in zip(members, logits):
                result[i][s] = image_logits
    return result


def _network_call(mapper: ResponseMapper, inputs: Sequence[np.ndarray],
                  shape: tuple[int, int]) -> list[np.ndarray]:
    """One network call on (h, w, 3) ``inputs`` laid top left into a batch of ``shape``:
    each one's logits, cropped to its content."""
    batch = np.zeros((len(inputs), *shape, 3), np.uint8)
    for j, pixels in enumerate(inputs):
        batch[j, :pixels.shape[0], :pixels.shape[1]] = pixels
    sizes = np.array([pixels.shape[:2] for pixels in inputs], np.int32)
    logits = mapper.logits(batch, sizes)
    return [logits[j, :h, :w] for j, (h, w) in enumerate(mapper.map_size(tuple(size))
                                                        for size in sizes)]


@functools.lru_cache(maxsize=4)
def _candidate_matrix(candidates: tuple[Synset, ...], num_classes: int) -> sparse.csr_array:
    """``class_matrix`` of a vocabulary, sparse, made once per vocabulary: a class is in
    one or a few synsets, and the sparse product over an image's 540 cells takes 5 ms for
    the 1000 classes where the dense one took 35 (2–3 ms against 10 for the concepts)."""
    return sparse.csr_array(class_matrix(candidates, num_classes))


def pooled_scores(class_probabilities: Sequence[np.ndarray], matrix: np.ndarray | sparse.csr_array,
                  score_cells: float = DEFAULT_SCORE_CELLS) -> np.ndarray:
    """(S,) image-level scores of the synsets in ``matrix`` (classes, S), dense or sparse:
    per scale, each synset's probability (its classes' summed) averaged over the
    ``score_cells`` fraction of the (h, w, classes) map's cells where it is highest (at
    least one cell), then averaged over the scales."""
    per_scale = []
    for probabilities in class_probabilities:
        cells = np.asarray(probabilities.reshape(-1, probabilities.shape[-1]) @ matrix)
        count = max(1, round(score_cells * len(cells)))
        best = cells if count == len(cells) else np.partition(cells, len(cells) - count, axis=0)[-count:]
        per_scale.append(best.mean(axis=0))
    return np.mean(per_scale, axis=0)


def synset_heatmaps_batch(mapper: ResponseMapper, images: Sequence[ScaledImage],
                          scales: Sequence[Scale], synsets: Sequence[Synset] | None = None,
                          top_k: int = DEFAULT_TOP_K, fusion: Fusion = DEFAULT_FUSION,
                          bucket: int = DEFAULT_BUCKET, images_per_call: int | None = None,
                          heat: Heat = DEFAULT_HEAT, vocabulary: Sequence[Synset] | None = None,
                          score_cells: float = DEFAULT_SCORE_CELLS,
                          head_maps: HeadMaps = DEFAULT_HEAD_MAPS) -> list[SynsetHeatmaps]:
    """Heatmaps of ``synsets`` (or, if None, of each image's ``top_k`` synsets of
    ``vocabulary``, by score; None: the concepts) for a batch of images at every scale,
    fused. Images sharing a padded shape go through the network together, at most
    ``images_per_call`` at a time (None: all). A mapper with a trained head gives the
    head's maps (``with_head_maps``, ``head_maps`` mode) of ``synsets``."""
    for image in images:
        check_inputs_fit(image, scales, mapper.backbone, mapper.map_mode, mapper.window_stride)
    if mapper.head is not None and synsets is None:
        raise ValueError("a trained head gives maps of the synsets it was trained on: give synsets")
    classes = mapper.num_classes
    candidates = tuple(synsets if synsets is not None else vocabulary or concepts())
    candidate_matrix = _candidate_matrix(candidates, classes)
    fixed_matrix = None if synsets is None else candidate_matrix.toarray()
    results = []
    for image, outputs in zip(images, _logits_per_scale(mapper, images, scales, bucket,
                                                         images_per_call)):
        class_logits = [channels[..., :classes] for channels in outputs]
        class_probabilities = [special.softmax(logits, axis=-1) for logits in class_logits]
        class_scores = np.mean([p.mean(axis=(0, 1)) for p in class_probabilities], axis=0)
        scores = pooled_scores(class_probabilities, candidate_matrix, score_cells)
        if synsets is None:
            order = np.argsort(-scores, kind="stable")[:top_k]
            chosen, scores = tuple(candidates[i] for i in order), scores[order]
            matrix = candidate_matrix[:, order].toarray()
        else:
            chosen, matrix = candidates, fixed_matrix
        per_scale = []
        for scale, pixels, logits, probabilities in zip(scales, image.inputs, class_logits,
                                                        class_probabilities):
            input_size = pixels.shape[:2]
            grid = mapper.grid(logits.shape[:2]).scaled(image.image_size[0] / input_size[0],
                                                        image.image_size[1] / input_size[1])
            synset_probabilities = probabilities @ matrix
            synset_heat = synset_probabilities if heat == "probability" else synset_logits(logits, matrix)
            per_scale.append(ScaleMaps(scale, input_size, grid, synset_heat, synset_probabilities))
        grid, on_grid = common_grid([(s.heat, s.grid) for s in per_scale], image.image_size)
        _, probability_on_grid = common_grid([(s.probabilities, s.grid) for s in per_scale],
                                             image.image_size)
        probability = fuse(probability_on_grid, fusion)
        fused = finished_heat(heat, fuse(on_grid, fusion), probability)
        on_grid = np.stack([finished_heat(heat, m, p) for m, p in zip(on_grid, probability_on_grid)])
        maps = SynsetHeatmaps(chosen, image.image_size, tuple(per_scale), grid, on_grid, fused,
                              probability, scores, class_scores)
        if mapper.head is not None:
            head_logits = [channels[..., classes:] for channels in outputs]
            maps = with_head_maps(maps, mapper.head, head_logits, fusion, head_maps)
        results.append(maps)
    return results


def with_head_maps(maps: SynsetHeatmaps, head: TrainedHead, cell_logits: Sequence[np.ndarray],
                   fusion: Fusion = DEFAULT_FUSION,
                   mode: HeadMaps = DEFAULT_HEAD_MAPS) -> SynsetHeatmaps:
    """``maps`` with a trained head's maps as their heat. Per scale, the head's (h, w, S)
    ``cell_logits`` are upsampled by the head and squashed (sigmoid: each point's
    probability of lying on the synset); the scales are fused on a grid as fine as the
    finest scale's head map; ``fused`` mode averages that with the classifier's heat.
    Box scores stay the classifier's probabilities, resampled to the finer grid."""
    if mode not in HEAD_MAPS:
        raise ValueError(f"head maps must be one of {HEAD_MAPS}, got {mode!r}")
    channels = [head.wnids.index(s.wnid) for s in maps.synsets]
    grid, on_grid = common_grid(
        [(special.expit(head.upsample(logits)[..., channels]), finer_grid(scale.grid, head.factor))
         for logits, scale in zip(cell_logits, maps.per_scale)], maps.image_size)
    fused = fuse(on_grid, fusion)
    if mode == "fused":
        fused = (fused + resample(maps.fused, maps.grid, grid)) / 2
        on_grid = (on_grid + np.stack([resample(m, maps.grid, grid) for m in maps.on_grid])) / 2
    return replace(maps, grid=grid, on_grid=on_grid.astype(np.float32), fused=fused,
                   probability=resample(maps.probability, maps.grid, grid))


def common_grid(maps: Sequence[tuple[np.ndarray, MapGrid]],
                image_size: tuple[int, int]) -> tuple[MapGrid, np.ndarray]:
    """One uniform grid over the image, as fine as the finest of the (values, grid) maps,
    and every map resampled to it: (maps, h, w, S)."""
    finest = max((grid for _, grid in maps), key=lambda g: g.height * g.width)
    grid = MapGrid.uniform(finest.height, finest.width, image_size)
    return grid, np.stack([resample(values, source, grid) for values, source in maps])


def synset_heatmaps(mapper: ResponseMapper, image: np.ndarray, synsets: Sequence[Synset] | None,
                    scales: Sequence[Scale] = DEFAULT_SCALES, fusion: Fusion = DEFAULT_FUSION,
                    top_k: int = DEFAULT_TOP_K, heat: Heat = DEFAULT_HEAT,
                    vocabulary: Sequence[Synset] | None = None) -> SynsetHeatmaps:
    """Heatmaps of ``synsets`` (None: the top_k synsets of ``vocabulary``, by default
    the concepts) in one (H, W, 3) uint8 RGB image at ``scales``, fused."""
    scaled = scale_image(image, image.shape[:2], scales, mapper.backbone.stride)
    return synset_heatmaps_batch(mapper, [scaled], scales, synsets, top_k, fusion, heat=heat,
                                 vocabulary=vocabulary)[0]
