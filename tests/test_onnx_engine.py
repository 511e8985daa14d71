"""The ONNX Runtime engine: the same maps as TensorFlow's, from a cached exported graph."""
import threading
import time

import numpy as np
import pytest

from transforms.maps.multiscale import resize_image
from transforms.model import onnx_engine
from transforms.model.backbones import write_atomically
from transforms.model.fcn import ResponseMapper

from conftest import load_photo


@pytest.fixture(scope="module")
def onnx_mapper(lite0_mapper):
    return ResponseMapper(lite0_mapper.backbone, lite0_mapper.model, engine="onnxruntime",
                          intra_op_threads=2)


def test_onnx_runtime_gives_tensorflows_logits_on_a_real_photo(lite0_mapper, onnx_mapper):
    image = resize_image(load_photo("dog.jpg"), (288, 384))[None]
    expected = lite0_mapper.class_logits(image)
    got = onnx_mapper.class_logits(image)
    assert got.shape == expected.shape == (1, 9, 12, 1000)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_images_of_many_shapes_in_turn_get_tensorflows_logits(lite0_mapper, onnx_mapper):
    """A CPU worker runs every image at its own shape; the session keeps no memory plan
    per shape (they made the job's memory grow with the collection)."""
    assert not onnx_mapper._onnx._session.get_session_options().enable_mem_pattern
    photo = load_photo("dog.jpg")
    for size in ((288, 384), (320, 352), (288, 416), (288, 384)):
        image = resize_image(photo, size)[None]
        np.testing.assert_allclose(onnx_mapper.class_logits(image),
                                   lite0_mapper.class_logits(image), atol=1e-4)


def test_onnx_runtime_masks_padded_batches_as_tensorflow_does(lite0_mapper, onnx_mapper):
    # Two photos padded into one (320, 448) batch, each with its own content size.
    photos = [resize_image(load_photo("chelsea.png"), (256, 448)),
              resize_image(load_photo("eagle.jpg"), (320, 384))]
    batch = np.zeros((2, 320, 448, 3), np.uint8)
    for i, photo in enumerate(photos):
        batch[i, :photo.shape[0], :photo.shape[1]] = photo
    sizes = np.array([p.shape[:2] for p in photos], np.int32)
    np.testing.assert_allclose(onnx_mapper.class_logits(batch, sizes),
                               lite0_mapper.class_logits(batch, sizes), atol=1e-4)
    # The mask matters: without it the padded image's border cells differ.
    unmasked = onnx_mapper.class_logits(batch)
    assert np.abs(unmasked[1] - onnx_mapper.class_logits(batch, sizes)[1]).max() > 1e-2


def test_the_exported_graph_is_cached_and_reused(lite0_mapper, onnx_mapper, monkeypatch):
    path = onnx_engine.onnx_path(lite0_mapper.model)
    assert path.is_file() and path == onnx_mapper._onnx.path
    assert lite0_mapper.model.name in path.name and "tf2onnx" in path.name

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_engine, "export_onnx", no_export)
    onnx_engine.OnnxRuntimeEngine(lite0_mapper.model)  # loads the cached file


def test_other_weights_get_another_cached_graph(lite0_mapper):
    weights = lite0_mapper.model.get_weights()
    before = onnx_engine.onnx_path(lite0_mapper.model)
    try:
        changed = [w.copy() for w in weights]
        changed[-1][0] += 1.0  # the head's first bias
        lite0_mapper.model.set_weights(changed)
        assert onnx_engine.onnx_path(lite0_mapper.model) != before
    finally:
        lite0_mapper.model.set_weights(weights)
    assert onnx_engine.onnx_path(lite0_mapper.model) == before


def test_a_damaged_cached_graph_is_exported_again(lite0_mapper, onnx_mapper, caplog):
    path = onnx_mapper._onnx.path
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk
    engine = onnx_engine.OnnxRuntimeEngine(lite0_mapper.model)
    assert "cannot be loaded" in caplog.text
    image = resize_image(load_photo("dog.jpg"), (96, 128))[None]
    np.testing.assert_allclose(ResponseMapper(lite0_mapper.backbone, lite0_mapper.model,
                                              engine="onnxruntime").class_logits(image),
                               lite0_mapper.class_logits(image), atol=1e-4)
    assert engine.path.stat().st_size > 1_000_000


def test_writers_racing_for_one_cached_file_leave_one_whole_file(tmp_path):
    """What makes concurrent exports safe: each writes its own temporary file and renames
    it into place, so the file is always one writer's whole output."""
    path = tmp_path / "graph.onnx"

    def slow_writer(content: bytes):
        def write(tmp: str):
            with open(tmp, "wb") as f:
                for i in range(0, len(content), 1000):
                    f.write(content[i:i + 1000])
                    time.sleep(0.001)
        return write

    contents = [bytes([i]) * 20_000 for i in range(4)]
    threads = [threading.Thread(target=write_atomically, args=(path, slow_writer(c)))
               for c in contents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in contents
    assert [p.name for p in tmp_path.iterdir()] == ["graph.onnx"]  # no temporary file left


def test_the_onnxruntime_engine_refuses_tensorflow_only_settings(lite0_mapper):
    with pytest.raises(ValueError, match="use the tensorflow engine for mixed precision or XLA"):
        ResponseMapper(lite0_mapper.backbone, lite0_mapper.model, jit_compile=True,
                       engine="onnxruntime")
    with pytest.raises(ValueError, match="engine must be one of"):
        ResponseMapper(lite0_mapper.backbone, lite0_mapper.model, engine="torch")
