"""Where a response map's cells sit in the image it was computed from.

Coordinates are continuous pixel coordinates: pixel k spans [k, k + 1), its centre is
k + 0.5. A map's cells are points on a regular grid in those coordinates: the network
places them (``fcn.ResponseMapper.grid``), and the maps, boxes and pictures resample
between grids and onto the photo's pixels (``transforms.maps.heatmaps.resample``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class MapGrid:
    """A height × width grid of cell centres: cell (i, j) sits at
    (y0 + i * dy, x0 + j * dx)."""

    height: int
    width: int
    y0: float
    dy: float
    x0: float
    dx: float

    @classmethod
    def uniform(cls, height: int, width: int, image_size: tuple[int, int]) -> "MapGrid":
        """height × width cells tiling an image of image_size (H, W) evenly."""
        dy, dx = image_size[0] / height, image_size[1] / width
        return cls(height, width, dy / 2, dy, dx / 2, dx)

    def scaled(self, sy: float, sx: float) -> "MapGrid":
        """The same grid after the image is scaled by (sy, sx), e.g. network input →
        original image coordinates."""
        return replace(self, y0=self.y0 * sy, dy=self.dy * sy, x0=self.x0 * sx, dx=self.dx * sx)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width
