"""The RunInference model handler: batches that do not fit in memory are split."""
import pytest
import tensorflow as tf

from transforms.beam import inference as beam_inference
from transforms.model import fcn
from transforms.beam.inference import FcnModelHandler
from transforms.config import LabelConfig
from transforms.maps.multiscale import scale_image
from transforms.maps.scales import parse_scales

from conftest import CountingMapper, load_photo


@pytest.fixture(scope="module")
def batch():
    scales = parse_scales("64")
    return [scale_image(load_photo(name), load_photo(name).shape[:2], scales, 32)
            for name in ("dog.jpg", "chelsea.png", "eagle.jpg")], scales


def test_out_of_memory_batches_are_split_down_to_single_images(batch, lite0_mapper, monkeypatch):
    images, scales = batch
    real = beam_inference.synset_heatmaps_batch
    sizes = []

    def fits_one_at_a_time(mapper, images, *args, **kwargs):
        sizes.append(len(images))
        if len(images) > 1:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
        return real(mapper, images, *args, **kwargs)

    monkeypatch.setattr(beam_inference, "synset_heatmaps_batch", fits_one_at_a_time)
    handler = FcnModelHandler(LabelConfig(scales=scales, top_k=2))
    results = list(handler.run_inference(images, lite0_mapper))
    assert [r.example for r in results] == images  # all of them, in order
    assert sizes == [3, 1, 2, 1, 1]
    assert all(r.inference.fused.shape[-1] == 2 for r in results)


def test_onnx_runtime_allocation_failures_split_batches_too(batch, lite0_mapper, monkeypatch):
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    images, scales = batch
    onnx_mapper = fcn.ResponseMapper(lite0_mapper.backbone, lite0_mapper.model, engine="onnxruntime")
    real = beam_inference.synset_heatmaps_batch
    sizes = []

    def fits_one_at_a_time(mapper, images, *args, **kwargs):
        sizes.append(len(images))
        if len(images) > 1:
            raise RuntimeException("Failed to allocate memory for requested buffer of size 8")
        return real(mapper, images, *args, **kwargs)

    monkeypatch.setattr(beam_inference, "synset_heatmaps_batch", fits_one_at_a_time)
    results = list(FcnModelHandler(LabelConfig(scales=scales)).run_inference(images, onnx_mapper))
    assert [r.example for r in results] == images and sizes == [3, 1, 2, 1, 1]
    # Any other failure is not memory: the batch fails at once.
    assert not onnx_mapper.is_out_of_memory(RuntimeException("Non-zero status code"))
    assert not onnx_mapper.is_out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM"))


@pytest.mark.parametrize("gpus, tensorflow_only, expected", [
    ([], False, "onnxruntime"), (["GPU:0"], False, "tensorflow"), ([], True, "tensorflow")])
def test_auto_is_onnx_runtime_on_cpus_and_tensorflow_on_gpus(monkeypatch, gpus, tensorflow_only,
                                                            expected):
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: gpus if kind == "GPU" else [])
    assert fcn.resolve_engine("auto", tensorflow_only) == expected
    assert fcn.resolve_engine("tensorflow") == "tensorflow"


def test_an_image_that_never_fits_fails_its_batch(batch, lite0_mapper, monkeypatch):
    images, scales = batch

    def never_fits(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(beam_inference, "synset_heatmaps_batch", never_fits)
    handler = FcnModelHandler(LabelConfig(scales=scales))
    with pytest.raises(tf.errors.ResourceExhaustedError):
        handler.run_inference(images[:2], lite0_mapper)


@pytest.mark.parametrize("gpus, expected", [([], fcn.CPU_BATCH_SIZE),
                                            (["GPU:0"], fcn.GPU_BATCH_SIZE)])
def test_the_worker_chooses_the_batch_size_by_device(monkeypatch, gpus, expected):
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: gpus if kind == "GPU" else [])
    assert fcn.default_batch_size() == expected


@pytest.mark.parametrize("batch_size, calls", [(0, [1, 1, 1]), (2, [2, 1]), (8, [3])])
def test_network_calls_take_at_most_batch_size_images(lite0_mapper, batch_size, calls):
    scales = parse_scales("64x96")  # one shape for all three photos
    images = [scale_image(load_photo(name), load_photo(name).shape[:2], scales, 32)
              for name in ("dog.jpg", "chelsea.png", "eagle.jpg")]
    handler = FcnModelHandler(LabelConfig(scales=scales, top_k=2, batch_size=batch_size))
    counting = CountingMapper(lite0_mapper)
    assert len(handler.run_inference(images, counting)) == 3
    if tf.config.list_physical_devices("GPU") and batch_size == 0:
        calls = [3]
    assert counting.calls == calls
    # RunInference's batches: as asked, or a GPU's worth when each worker chooses.
    assert handler.batch_elements_kwargs()["max_batch_size"] == (batch_size or fcn.GPU_BATCH_SIZE)


def test_tf_threads_are_set_before_the_runtime_starts():
    import subprocess
    import sys

    code = ("from transforms.beam.inference import configure_tensorflow\n"
            "configure_tensorflow(1)\n"
            "import tensorflow as tf\n"
            "print(tf.config.threading.get_intra_op_parallelism_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_blas_and_opencv_threads_are_the_engine_threads_where_the_maps_are_made():
    import subprocess
    import sys

    # A process of its own: BLAS and OpenCV thread limits are process-wide.
    code = ("import cv2, numpy as np, threadpoolctl\n"
            "from transforms.beam.inference import FcnModelHandler\n"
            "from transforms.config import LabelConfig\n"
            "from transforms.maps.multiscale import scale_image\n"
            "config = LabelConfig(engine='tensorflow', intra_op_threads=1)\n"
            "handler = FcnModelHandler(config)\n"
            "model = handler.load_model()\n"
            "image = scale_image(np.zeros((64, 64, 3), np.uint8), (64, 64), config.scales, 32)\n"
            "handler.run_inference([image], model)\n"
            "print(sorted({i['num_threads'] for i in threadpoolctl.threadpool_info()\n"
            "              if i['user_api'] == 'blas'}), cv2.getNumThreads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[1] 1"
