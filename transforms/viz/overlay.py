"""Pictures of labels rows: heatmaps blended over the photo, boxes drawn and labelled,
per-scale maps beside the fused one, and an HTML contact sheet.

numpy, Pillow and matplotlib (its perceptual colormaps) only: nothing here knows about
Beam. ``pipeline/render.py`` reads the tables and the photos and calls these.

Colour scale: heat is mapped on a FIXED [0, 1] scale, not stretched to each map's
maximum. Probability heat (summed class probabilities) so compares across panels and a
weak map looks weak; logit heat is already normalised to its image's range (every map
spans 0 to 1), so each panel's title gives the synset's peak probability as well. The
colour is blended over the photo with an opacity that grows with the heat: where the
heat is ~0 the photo shows unchanged.
"""
from __future__ import annotations

import html
import io
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from transforms.maps.boxes import upsample
from transforms.io.decode import decode_image
from transforms.model.grid import MapGrid
from transforms.io.records import LabelBox, file_name, row_boxes

DEFAULT_MAX_SIDE = 640
DEFAULT_COLORMAP = "inferno"
HEAT_RANGE = (0.0, 1.0)
# Opacity of the colour at heat 1; it falls as the square root of the heat to 0 at heat
# 0: the photo stays visible under the hottest cells and untouched where there is no
# heat, while middling heat (many synsets peak at 0.3-0.7) is still plainly seen.
MAX_ALPHA = 0.75
# Panels per line at most, by default: wider pictures are hard to view.
MAX_COLUMNS = 4
# Cyan is far from every inferno colour (black → purple → orange → yellow) and from
# most photo content; the label's text is drawn black on it.
BOX_COLOUR = (0, 255, 255)
TEXT_COLOUR = (0, 0, 0)
# The frame between panels and the caption strips.
BACKGROUND = (24, 24, 24)
CAPTION_TEXT = (235, 235, 235)
GAP = 4
THUMBNAIL_SIDE = 200


@dataclass(frozen=True)
class HeatPanel:
    """One map to show: ``values`` (h, w) on a grid uniform over the image, captioned
    with ``title``; ``boxes`` are drawn on it."""

    title: str
    values: np.ndarray
    boxes: tuple[LabelBox, ...] = ()


# ---- labels rows (LABELS_SCHEMA dicts) → pictures' inputs ----------------------------


def heat_panels(row: dict) -> list[HeatPanel]:
    """One panel per fused heatmap of the row, in the row's order, with its synset's boxes."""
    boxes = row_boxes(row)
    panels = []
    for heatmap in row.get("heatmaps") or []:
        peak = float(heatmap["probability"].max(initial=0))
        panels.append(HeatPanel(
            f"{heatmap['label']} ({heatmap['synset']}), peak probability {peak:.2f}",
            heatmap["heat"], tuple(b for b in boxes if b.synset == heatmap["synset"])))
    return panels


class NoScaleMaps(ValueError):
    """The row was written without per-scale maps."""


def scale_panels(row: dict, fusion: str | None = None) -> list[list[HeatPanel]]:
    """Per synset (fused heatmaps' order): one panel per input scale, then the fused map
    with the synset's boxes (they were made from it). ``fusion`` names the method in the
    fused panel's title (from run.json; None: not known)."""
    per_scale = row.get("scale_heatmaps") or []
    if not per_scale:
        raise NoScaleMaps(f"{row['image_uri']} has no per-scale maps: the job ran without "
                          "--keep-scale-maps; rerun it with --keep-scale-maps to see them")
    boxes = row_boxes(row)
    rows = []
    for heatmap in row.get("heatmaps") or []:
        label = heatmap["label"]
        panels = [HeatPanel(f"{label}, scale {m['scale']}", m["heat"])
                  for m in per_scale if m["synset"] == heatmap["synset"]]
        fused = f"fused ({fusion})" if fusion else "fused"
        panels.append(HeatPanel(f"{label}, {fused}", heatmap["heat"],
                                tuple(b for b in boxes if b.synset == heatmap["synset"])))
        rows.append(panels)
    return rows


# ---- the photo ------------------------------------------------------------------------

def display_size(image_size: tuple[int, int], max_side: int = DEFAULT_MAX_SIDE) -> tuple[int, int]:
    """(h, w) with the longer side ``max_side``, aspect ratio kept. Small photos are
    enlarged too, so that every picture's panels and labels have the same scale."""
    factor = max_side / max(image_size)
    return tuple(max(1, round(n * factor)) for n in image_size)


def load_photo(data: bytes, image_size: tuple[int, int],
               max_side: int = DEFAULT_MAX_SIDE) -> np.ndarray:
    """The photo at display size, (h, w, 3) uint8, decoded as the pipeline decoded it
    (EXIF orientation applied, so boxes line up); JPEGs draft-decoded near the display
    size, which keeps huge photos cheap. ``image_size`` (H, W) is the labels row's."""
    size = display_size(image_size, max_side)
    # No pixel limit: the job decoded this image already, within its own limit.
    decoded = decode_image(data, needed_size=lambda _: size, max_pixels=None)
    if decoded.size != tuple(image_size):
        raise ValueError(f"the image is {decoded.size[1]}x{decoded.size[0]} now but was "
                         f"labelled at {image_size[1]}x{image_size[0]}: it changed since the run")
    image = Image.fromarray(decoded.pixels)
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(image)


# ---- colour ---------------------------------------------------------------------------

def heat_colours(values: np.ndarray, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """RGB uint8 colours of heat ``values`` on the fixed HEAT_RANGE scale."""
    low, high = HEAT_RANGE
    return matplotlib.colormaps[colormap](np.clip((values - low) / (high - low), 0, 1),
                                          bytes=True)[..., :3]


def heat_raster(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) heatmap, uniform over the image, bilinearly upsampled to a (H, W)
    raster of the image (as the boxes were made from it)."""
    return upsample(values, MapGrid.uniform(*values.shape, size), size)


def blend_heat(photo: np.ndarray, values: np.ndarray, colormap: str = DEFAULT_COLORMAP,
               max_alpha: float = MAX_ALPHA) -> np.ndarray:
    """``photo`` (H, W, 3) uint8 with the heatmap ``values`` (h, w) upsampled over it in
    colour, opaque in proportion to the heat (see the module docstring)."""
    return _blend(photo, heat_raster(values, photo.shape[:2]), colormap, max_alpha)


def _blend(base: np.ndarray, raster: np.ndarray, colormap: str = DEFAULT_COLORMAP,
           max_alpha: float = MAX_ALPHA) -> np.ndarray:
    """``base`` (..., 3) uint8 under the colours of heat ``raster`` (...)."""
    low, high = HEAT_RANGE
    alpha = (max_alpha * np.sqrt(np.clip((raster - low) / (high - low), 0, 1)))[..., None]
    out = base * (1 - alpha) + heat_colours(raster, colormap) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ---- drawing --------------------------------------------------------------------------

@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` px (Pillow ≥ 10.1 with FreeType; older or
    FreeType-less Pillow gives its fixed bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, face) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=face)
    return x1, y1


def draw_boxes(draw: ImageDraw.ImageDraw, boxes: Sequence[LabelBox], image_size: tuple[int, int],
                panel: tuple[int, int, int, int], font_size: int, line: int) -> None:
    """Draw ``boxes`` (original pixels of an image of ``image_size`` (H, W)) into the
    panel ``(x, y, w, h)`` of ``draw``, labelled with label and confidence (where the run
    gave one, else score). The best box is drawn last, over the others and their labels."""
    px, py, pw, ph = panel
    sy, sx = ph / image_size[0], pw / image_size[1]
    face = font(font_size)
    for box in sorted(boxes, key=lambda b: b.rank):
        # x1, y1 are exclusive; Pillow's rectangle includes both corners.
        x0 = px + min(pw - 1, round(box.x0 * sx))
        y0 = py + min(ph - 1, round(box.y0 * sy))
        x1 = px + max(x0 - px, round(box.x1 * sx) - 1)
        y1 = py + max(y0 - py, round(box.y1 * sy) - 1)
        draw.rectangle((x0, y0, x1, y1), outline=BOX_COLOUR, width=line)
        text = f"{box.label} {box.rank:.2f}"
        tw, th = _text_size(draw, text, face)
        pad = max(1, font_size // 6)
        lw, lh = tw + 2 * pad, th + 2 * pad
        # Above the box where there is room, else just inside its top edge; never
        # beyond the panel's right edge.
        ly = y0 - lh if y0 - lh >= py else y0
        lx = max(px, min(x0, px + pw - lw))
        draw.rectangle((lx, ly, lx + lw - 1, ly + lh - 1), fill=BOX_COLOUR)
        draw.text((lx + pad, ly + pad), text, fill=TEXT_COLOUR, font=face)


@dataclass(frozen=True)
class Layout:
    """Where the panels of a picture go: ``count`` panels of ``panel`` (h, w) photo
    pixels, ``columns`` a row, each under a caption strip, all under a title strip,
    ``GAP`` pixels apart and from the edges."""

    panel: tuple[int, int]
    count: int
    columns: int
    font_size: int

    @property
    def caption_height(self) -> int:
        return round(self.font_size * 1.6)

    @property
    def title_height(self) -> int:
        return round(self.font_size * 2.2)

    @property
    def rows(self) -> int:
        return -(-self.count // self.columns)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole picture."""
        h, w = self.panel
        return (self.columns * (w + GAP) + GAP,
                self.title_height + self.rows * (self.caption_height + h + GAP) + GAP)

    def origin(self, k: int) -> tuple[int, int]:
        """(x, y) of the top-left photo pixel of panel ``k`` (row-major)."""
        h, w = self.panel
        row, col = divmod(k, self.columns)
        return (GAP + col * (w + GAP),
                self.title_height + row * (self.caption_height + h + GAP) + self.caption_height)


def layout(panel: tuple[int, int], count: int, columns: int | None = None) -> Layout:
    """The layout of ``count`` panels of display size ``panel``, ``columns`` a line; by
    default as few lines as MAX_COLUMNS allows, filled evenly (6 panels: 2 lines of 3).
    Text scales with the panel (16 px at 640)."""
    if columns is None:
        columns = -(-count // -(-count // MAX_COLUMNS)) if count else 1
    font_size = max(11, round(max(panel) / 40))
    return Layout(panel, count, max(1, min(count, columns)), font_size)


def _colour_bar(draw: ImageDraw.ImageDraw, right: int, top: int, height: int, font_size: int,
                colormap: str) -> None:
    """The heat scale, right-aligned in the title strip: "heat 0 ▇▇▇ 1 (fixed scale)"."""
    face = font(font_size)
    bar_w = 8 * font_size
    tail = "1 (fixed scale)"
    tail_w, _ = _text_size(draw, tail, face)
    head = f"{colormap}, heat 0"
    head_w, _ = _text_size(draw, head, face)
    x = right - tail_w - bar_w - head_w - 2 * font_size // 2
    if x < 0:
        return
    bar_y0, bar_y1 = top + height // 4, top + 3 * height // 4
    draw.text((x, top + height // 2), head, fill=CAPTION_TEXT, font=face, anchor="lm")
    bar_x = x + head_w + font_size // 2
    # As the heat looks in the panels: blended over a neutral grey, fading out towards 0.
    heat = np.linspace(*HEAT_RANGE, bar_w)
    colours = _blend(np.full((bar_w, 3), 150, np.uint8), heat, colormap)
    for i, colour in enumerate(colours):
        draw.line((bar_x + i, bar_y0, bar_x + i, bar_y1), fill=tuple(int(c) for c in colour))
    draw.text((bar_x + bar_w + font_size // 2, top + height // 2), tail, fill=CAPTION_TEXT,
              font=face, anchor="lm")


def compose(photo: np.ndarray, image_size: tuple[int, int], title: str,
            panels: Sequence[HeatPanel | None], columns: int | None = None,
            colormap: str = DEFAULT_COLORMAP) -> Image.Image:
    """A picture of ``panels`` side by side under a title strip: None is the plain
    photo; a HeatPanel is its map blended over the photo, with its boxes. ``photo`` is
    at display size, ``image_size`` (H, W) the original's (the boxes' pixels)."""
    grid = layout(photo.shape[:2], len(panels), columns)
    picture = Image.new("RGB", grid.size, BACKGROUND)
    draw = ImageDraw.Draw(picture)
    face = font(grid.font_size)
    pad = grid.font_size // 2
    draw.text((pad, grid.title_height // 2), title, fill=CAPTION_TEXT, font=face, anchor="lm")
    _colour_bar(draw, grid.size[0] - pad, 0, grid.title_height, grid.font_size, colormap)
    h, w = grid.panel
    for k, panel in enumerate(panels):
        x, y = grid.origin(k)
        caption = f"photo, {image_size[1]}x{image_size[0]}" if panel is None else panel.title
        draw.text((x + 2, y - grid.caption_height // 2), caption, fill=CAPTION_TEXT, font=face,
                  anchor="lm")
        if panel is None:
            picture.paste(Image.fromarray(photo), (x, y))
            continue
        picture.paste(Image.fromarray(blend_heat(photo, panel.values, colormap)), (x, y))
        draw_boxes(draw, panel.boxes, image_size, (x, y, w, h), grid.font_size,
                    line=max(2, round(max(h, w) / 213)))
    return picture


def render_row(row: dict, photo: np.ndarray, columns: int | None = None,
               colormap: str = DEFAULT_COLORMAP) -> Image.Image:
    """The picture of one labels row: the photo beside one panel per heatmap."""
    return compose(photo, (row["height"], row["width"]), file_name(row["image_uri"]),
                   [None, *heat_panels(row)], columns, colormap)


def render_scales(row: dict, photo: np.ndarray, fusion: str | None = None,
                  colormap: str = DEFAULT_COLORMAP) -> Image.Image:
    """The per-scale picture of one labels row: a line per synset, its map at each input
    scale then the fused map. Raises NoScaleMaps if the row has none."""
    lines = scale_panels(row, fusion)
    columns = max((len(line) for line in lines), default=1)
    return compose(photo, (row["height"], row["width"]),
                   f"{file_name(row['image_uri'])}: heat per input scale and fused",
                   [panel for line in lines for panel in line], columns, colormap)


def thumbnail(photo: np.ndarray, image_size: tuple[int, int], best: LabelBox | None,
              side: int = THUMBNAIL_SIDE) -> Image.Image:
    """The photo at ``side`` px on its longer side, with the best box (unlabelled)."""
    h, w = display_size(photo.shape[:2], side)
    image = Image.fromarray(photo).resize((w, h), Image.Resampling.LANCZOS)
    if best is not None:
        sy, sx = h / image_size[0], w / image_size[1]
        draw = ImageDraw.Draw(image)
        draw.rectangle((round(best.x0 * sx), round(best.y0 * sy),
                        max(round(best.x0 * sx), round(best.x1 * sx) - 1),
                        max(round(best.y0 * sy), round(best.y1 * sy) - 1)),
                       outline=BOX_COLOUR, width=2)
    return image


def encode(image: Image.Image, format: str = "PNG") -> bytes:
    """The image file's bytes. PNGs at zlib level 3: 2.5 times faster to write than
    Pillow's default 6 on these pictures, for 5 % more bytes (photos barely compress)."""
    buffer = io.BytesIO()
    image.save(buffer, format=format, **({"compress_level": 3} if format == "PNG" else {}))
    return buffer.getvalue()


# ---- the contact sheet ----------------------------------------------------------------

@dataclass(frozen=True)
class SheetEntry:
    """One image on the contact sheet; ``picture``, ``thumbnail`` and ``scales`` are
    paths relative to the sheet."""

    uri: str
    width: int
    height: int
    picture: str
    thumbnail: str
    best: LabelBox | None
    boxes: int
    top_classes: tuple[tuple[str, float], ...]
    scales: str | None = None

    @classmethod
    def of_row(cls, row: dict, picture: str, thumbnail: str,
               scales: str | None = None) -> "SheetEntry":
        boxes = row_boxes(row)
        return cls(row["image_uri"], row["width"], row["height"], picture, thumbnail,
                   boxes[0] if boxes else None, len(boxes),
                   tuple((c["label"], float(c["score"])) for c in row.get("top_classes") or []),
                   scales)


def _href(path: str) -> str:
    # Relative URL of a local file name: percent-encode (spaces, #, ?, non-ASCII).
    return html.escape(urllib.parse.quote(path), quote=True)


_SHEET_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
p.note { color: #555; margin: 0 0 1em; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { padding: 6px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
th button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer;
            padding: 0; color: #0645ad; }
th button:hover { text-decoration: underline; }
th[aria-sort="none"] button::after { content: " \\21C5"; color: #999; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
td.thumb { width: 1%; }
td.thumb img { display: block; max-width: 200px; max-height: 200px; border: 1px solid #ccc; }
td.score { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name a { font-weight: 600; word-break: break-all; }
.uri { color: #777; font-size: .85em; word-break: break-all; }
.none { color: #999; }
ul.top { margin: 0; padding-left: 1.1em; }
"""

# Sorting, with the rows' data in data-* attributes (never in the script, so nothing
# from the data can end the script element). Images without boxes have an empty
# data-score and stay last whichever way scores are sorted.
_SHEET_JS = """
(function () {
  const body = document.querySelector("#images tbody");
  const headers = { score: document.querySelector("#sort-score"),
                    name: document.querySelector("#sort-name") };
  const byName = (a, b) => a.dataset.name.localeCompare(b.dataset.name) ||
                           a.dataset.uri.localeCompare(b.dataset.uri);
  let key = "score", direction = -1;
  function sort() {
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      if (key === "name") return direction * byName(a, b);
      const sa = a.dataset.score, sb = b.dataset.score;
      if (sa === "" || sb === "") return (sa === "") - (sb === "") || byName(a, b);
      return direction * (Number(sa) - Number(sb)) || byName(a, b);
    });
    rows.forEach((row) => body.appendChild(row));
    for (const [name, th] of Object.entries(headers))
      th.setAttribute("aria-sort", name === key ? (direction < 0 ? "descending" : "ascending") : "none");
  }
  for (const [name, th] of Object.entries(headers)) {
    th.querySelector("button").addEventListener("click", () => {
      // The same column again flips the order; a new one starts with its natural order:
      // best score first, names A to Z.
      if (name === key) direction = -direction;
      else { key = name; direction = name === "score" ? -1 : 1; }
      sort();
    });
  }
  sort();
})();
"""


def contact_sheet_html(entries: Iterable[SheetEntry], title: str, note: str = "") -> str:
    """A self-contained HTML page (no external resources) listing ``entries``: thumbnail
    linking to the picture, file name, best box, top classes; sortable by best score
    (default, descending; images without boxes last) and by name. Everything from the
    data is HTML-escaped."""
    esc = html.escape
    rows = []
    # Pre-sorted as the script sorts on load, so the page reads right even without script.
    ordered = sorted(entries, key=lambda e: (e.best is None, -(e.best.rank if e.best else 0),
                                             file_name(e.uri), e.uri))
    for e in ordered:
        name = file_name(e.uri)
        best = (f"{esc(e.best.label)} <b>{e.best.rank:.2f}</b>"
                f"<div class=\"uri\">{e.boxes} box{'es' if e.boxes != 1 else ''}</div>"
                if e.best else '<span class="none">no box</span>')
        top = "".join(f"<li>{esc(label)} {score:.3f}</li>" for label, score in e.top_classes)
        scales = (f' · <a href="{_href(e.scales)}">per-scale maps</a>' if e.scales else "")
        rows.append(
            f'<tr data-score="{"" if e.best is None else repr(float(e.best.rank))}" '
            f'data-name="{esc(name, quote=True)}" data-uri="{esc(e.uri, quote=True)}">'
            f'<td class="thumb"><a href="{_href(e.picture)}"><img src="{_href(e.thumbnail)}" '
            f'alt="{esc(name, quote=True)}" loading="lazy"></a></td>'
            f'<td class="name"><a href="{_href(e.picture)}">{esc(name)}</a>{scales}'
            f'<div class="uri">{esc(e.uri)}</div><div class="uri">{e.width}x{e.height}</div></td>'
            f'<td class="score">{best}</td>'
            f'<td><ul class="top">{top}</ul></td></tr>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_SHEET_CSS}</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p class="note">{esc(note)}</p>
<table id="images">
<thead><tr><th>picture</th>
<th id="sort-name" aria-sort="none"><button type="button">name</button></th>
<th id="sort-score" aria-sort="descending"><button type="button">best box</button></th>
<th>top classes</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<script>{_SHEET_JS}</script>
</body>
</html>
"""
