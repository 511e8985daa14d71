"""Heatmaps stored as 8-bit PNGs: the codes, what a reader without the project gets, and
the tables' encodings (this version's, the float32 lists of older runs, unknown ones)."""
import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from transforms.io import heatmap_png
from transforms.io.heatmap_png import FLOAT32, PNG8, HeatmapEncodingError
from transforms.io.records import HEATMAP, LABELS_SCHEMA, decoded_row, table_heatmap_encoding


def _smooth_map(shape=(20, 27), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:shape[0], :shape[1]]
    return (np.exp(-((y - 8) ** 2 + (x - 15) ** 2) / 30) + 0.05 * rng.random(shape)).astype(np.float32)


@pytest.mark.parametrize("top", [1.0, 0.37, 12.5])
def test_a_map_comes_back_within_half_a_step_of_its_eight_bits(top):
    values = _smooth_map() / _smooth_map().max() * top
    back = heatmap_png.decode(heatmap_png.encode(values, top), values.shape, top)
    assert back.dtype == np.float32 and back.shape == values.shape
    assert np.abs(back - values).max() <= top / 510 * (1 + 1e-5)
    assert back.max() == pytest.approx(top)  # the top is a code of its own: exact


def test_values_past_the_top_are_clipped_and_a_map_without_heat_is_zero():
    values = np.array([[-0.5, 0.0], [0.5, 2.0]], np.float32)
    np.testing.assert_allclose(heatmap_png.decode(heatmap_png.encode(values, 1.0), (2, 2), 1.0),
                               [[0, 0], [128 / 255, 1]])
    assert not heatmap_png.decode(heatmap_png.encode(values, 0.0), (2, 2), 0.0).any()


def test_a_reader_without_the_project_decodes_it_with_pillow_in_one_line():
    values = _smooth_map()
    entry = {"heat_png": heatmap_png.encode(values, float(values.max())), "heat_max": float(values.max())}
    # The README's line.
    heat = np.asarray(Image.open(io.BytesIO(entry["heat_png"]))) / 255 * entry["heat_max"]
    np.testing.assert_allclose(heat, heatmap_png.decode(entry["heat_png"], values.shape,
                                                        entry["heat_max"]), rtol=1e-6)


def test_the_maps_the_job_boxes_are_those_a_reader_decodes_to_the_bit():
    # The job makes its boxes from as_stored's maps: a threshold must fall on the same
    # side of every cell for the stored heatmap, or the stored maps give other boxes.
    maps = np.stack([_smooth_map(seed=s) * top for s, top in ((0, 1.0), (1, 0.37), (2, 0.0))], -1)
    tops = maps.max(axis=(0, 1))
    stored = heatmap_png.as_stored(maps, tops)
    assert stored.dtype == np.float32 and stored.shape == maps.shape
    for c, top in enumerate(tops):
        decoded = heatmap_png.decode(heatmap_png.encode(maps[..., c], float(top)), maps.shape[:2],
                                     float(top))
        assert np.array_equal(stored[..., c], decoded)
    assert not stored[..., 2].any()
    # One top for every channel: probabilities on 0-1.
    assert np.array_equal(heatmap_png.as_stored(maps[..., :1], 1.0)[..., 0],
                          heatmap_png.decode(heatmap_png.encode(maps[..., 0], 1.0), maps.shape[:2], 1.0))


def _rgb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (27, 20)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("png, message", [
    (b"", "not an 8-bit grayscale PNG"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an 8-bit grayscale PNG"),
    (None, "not an 8-bit grayscale PNG"),
    ("rgb", "not an 8-bit grayscale PNG"),
    ("short", "a 19×27 PNG for a 20×27 map"),
])
def test_bytes_that_are_not_the_map_are_refused(png, message):
    if png == "rgb":
        png = _rgb_png()
    elif png == "short":
        png = heatmap_png.encode(np.zeros((19, 27), np.float32), 1.0)
    with pytest.raises(HeatmapEncodingError, match=message):
        heatmap_png.decode(png, (20, 27), 1.0)


def _legacy_schema(metadata=None) -> pa.Schema:
    heatmap = pa.struct([("synset", pa.string()), ("height", pa.int32()), ("width", pa.int32()),
                         ("values", pa.list_(pa.float32())), ("probabilities", pa.list_(pa.float32()))])
    return pa.schema([("image_uri", pa.string()), ("heatmaps", pa.list_(heatmap))], metadata=metadata)


def test_a_table_says_how_its_heatmaps_are_stored():
    assert table_heatmap_encoding(LABELS_SCHEMA) == PNG8
    # Older runs: no metadata, float lists.
    assert table_heatmap_encoding(_legacy_schema()) == FLOAT32
    # Metadata lost by a tool that rewrote the table: the fields tell.
    assert table_heatmap_encoding(LABELS_SCHEMA.remove_metadata()) == PNG8
    with pytest.raises(HeatmapEncodingError, match="heatmap encoding 'webp12' is unknown to this "
                                                   "version, which reads png8, float32"):
        table_heatmap_encoding(LABELS_SCHEMA.with_metadata({b"heatmap_encoding": b"webp12"}))


def _png_row(values: np.ndarray) -> dict:
    return {"image_uri": "gs://b/a.jpg", "heatmaps": [{
        "synset": "n02084071", "label": "dog", "score": 0.5, "height": values.shape[0],
        "width": values.shape[1], "heat_png": heatmap_png.encode(values, 1.0), "heat_max": 1.0,
        "probability_png": heatmap_png.encode(values / 2, 1.0)}], "scale_heatmaps": []}


def test_rows_of_either_encoding_read_back_as_the_same_arrays():
    values = _smooth_map() / _smooth_map().max()
    row = pa.Table.from_pylist([_png_row(values)], pa.schema([
        ("image_uri", pa.string()), ("heatmaps", pa.list_(HEATMAP)),
        ("scale_heatmaps", LABELS_SCHEMA.field("scale_heatmaps").type)])).to_pylist()[0]
    (png,) = decoded_row(row, PNG8)["heatmaps"]
    quantized = np.rint(values * 255) / 255
    legacy = {"image_uri": "a.jpg", "heatmaps": [{
        "synset": "n02084071", "height": 20, "width": 27, "values": quantized.ravel().tolist(),
        "probabilities": (np.rint(values * 127.5) / 255).ravel().tolist()}]}
    (old,) = decoded_row(legacy, FLOAT32)["heatmaps"]
    assert set(png) == {"synset", "label", "score", "height", "width", "heat", "probability"}
    assert set(old) == {"synset", "height", "width", "heat", "probability"}
    np.testing.assert_allclose(png["heat"], old["heat"], atol=1e-6)
    np.testing.assert_allclose(png["probability"], old["probability"], atol=1e-6)


def test_a_corrupt_heatmap_is_an_error_naming_the_image_and_synset():
    row = _png_row(_smooth_map())
    row["heatmaps"][0]["probability_png"] = row["heatmaps"][0]["probability_png"][:30]
    with pytest.raises(HeatmapEncodingError, match="gs://b/a.jpg: .*synset n02084071: not an "
                                                   "8-bit grayscale PNG"):
        decoded_row(row, PNG8)
    with pytest.raises(HeatmapEncodingError, match="gs://b/a.jpg: heatmaps in float32 expected"):
        decoded_row(_png_row(_smooth_map()), FLOAT32)
