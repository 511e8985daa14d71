"""Synset heatmaps of one image at several input scales, fused on one grid."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from transforms.boxes import Box, boxes_from_heatmap
from transforms.fcn import ResponseMapper
from transforms.heatmaps import Fusion, MapGrid, fuse, resample
from transforms.scales import DEFAULT_SCALES, Scale
from transforms.synsets import Synset, class_matrix


@dataclass(frozen=True)
class ScaleMaps:
    """The synset maps of one scale: ``maps`` is (h, w, S) on ``grid``, which is in the
    original image's pixel coordinates."""

    scale: Scale
    input_size: tuple[int, int]
    grid: MapGrid
    maps: np.ndarray


@dataclass(frozen=True)
class SynsetHeatmaps:
    """Per-scale and fused synset heatmaps of one image.

    ``fused`` is (h, w, S), one channel per synset in ``synsets`` order, on ``grid``
    (uniform over the image, as fine as the finest scale's map).
    """

    synsets: tuple[Synset, ...]
    image_size: tuple[int, int]
    per_scale: tuple[ScaleMaps, ...]
    grid: MapGrid
    fused: np.ndarray

    def boxes(self, **kwargs) -> dict[str, list[Box]]:
        """Boxes per synset wnid; keyword arguments as ``boxes_from_heatmap``."""
        return {s.wnid: boxes_from_heatmap(self.fused[..., i], self.grid, self.image_size, **kwargs)
                for i, s in enumerate(self.synsets)}


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB → size (h, w), bilinear (Pillow filters when shrinking, so
    small scales do not alias)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def scale_maps(mapper: ResponseMapper, image: np.ndarray, scales: Sequence[Scale],
               matrix: np.ndarray) -> list[ScaleMaps]:
    """Synset maps of ``image`` (H, W, 3 uint8) at every scale; ``matrix`` as
    ``synsets.class_matrix``."""
    image_size = image.shape[:2]
    result = []
    for scale in scales:
        input_size = scale.input_size(image_size, mapper.backbone.stride)
        if min(mapper.map_size(input_size)) < 1:
            raise ValueError(f"scale {scale} gives a {input_size[0]}x{input_size[1]} input, too "
                             f"small for a {mapper.map_mode} map")
        maps = mapper.synset_maps(resize_image(image, input_size)[None], matrix)[0]
        grid = mapper.grid(maps.shape[:2]).scaled(
            image_size[0] / input_size[0], image_size[1] / input_size[1])
        result.append(ScaleMaps(scale, input_size, grid, maps))
    return result


def fuse_scales(per_scale: Sequence[ScaleMaps], image_size: tuple[int, int],
                method: Fusion = "mean") -> tuple[MapGrid, np.ndarray]:
    """Resample every scale's maps to one uniform grid (the finest scale's shape) and
    fuse them."""
    finest = max(per_scale, key=lambda s: s.grid.height * s.grid.width)
    grid = MapGrid.uniform(finest.grid.height, finest.grid.width, image_size)
    return grid, fuse([resample(s.maps, s.grid, grid) for s in per_scale], method)


def synset_heatmaps(mapper: ResponseMapper, image: np.ndarray, synsets: Sequence[Synset],
                    scales: Sequence[Scale] = DEFAULT_SCALES,
                    fusion: Fusion = "mean") -> SynsetHeatmaps:
    """Heatmaps of ``synsets`` in ``image`` (H, W, 3 uint8 RGB) at ``scales``, fused."""
    per_scale = scale_maps(mapper, image, scales, class_matrix(synsets, mapper.num_classes))
    grid, fused = fuse_scales(per_scale, image.shape[:2], fusion)
    return SynsetHeatmaps(tuple(synsets), image.shape[:2], tuple(per_scale), grid, fused)
