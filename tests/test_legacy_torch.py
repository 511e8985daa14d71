"""The restricted reader of legacy PyTorch files, on crafted files and the real one."""
import collections
import io
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from transforms.model import backbones, efficientnet_lite
from transforms.model.legacy_torch import (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION,
                                           UnsafePickleError, read_legacy_state_dict)


class _FakeTorch:
    """Just enough of a fake ``torch`` module for pickle to write references to
    torch.FloatStorage and torch._utils._rebuild_tensor_v2, as torch.save does."""

    def __enter__(self):
        self.torch = types.ModuleType("torch")
        self.utils = types.ModuleType("torch._utils")
        self.torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch",
                                                            "__qualname__": "FloatStorage"})

        def _rebuild_tensor_v2(*args):
            raise AssertionError("never called when writing")

        _rebuild_tensor_v2.__module__ = "torch._utils"
        _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
        self.utils._rebuild_tensor_v2 = _rebuild_tensor_v2
        self.saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
        sys.modules.update({"torch": self.torch, "torch._utils": self.utils})
        return self

    def __exit__(self, *exc):
        for name, module in self.saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Tensor:
    def __init__(self, fake, storage_key, offset, size, stride):
        self.args = (fake, storage_key, offset, size, stride)

    def __reduce__(self):
        fake, key, offset, size, stride = self.args
        return fake.utils._rebuild_tensor_v2, (_Storage(fake, key), offset, size, stride, False,
                                               collections.OrderedDict())


class _Storage:
    def __init__(self, fake, key):
        self.fake, self.key = fake, key


def write_legacy(state: dict, storages: dict[str, np.ndarray], main_pickle=None) -> bytes:
    """A legacy-format file as torch.save(_use_new_zipfile_serialization=False) writes it."""
    with _FakeTorch() as fake:
        out = io.BytesIO()
        for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION,
                       {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, out, protocol=2)

        def persistent_id(obj):
            if isinstance(obj, _Storage):
                return ("storage", fake.torch.FloatStorage, obj.key, "cpu",
                        storages[obj.key].size, None)
            return None

        pickler = pickle.Pickler(out, protocol=2)
        pickler.persistent_id = persistent_id
        pickler.dump(main_pickle if main_pickle is not None else collections.OrderedDict(
            (name, _Tensor(fake, *spec)) for name, spec in state.items()))
        keys = sorted(storages)
        pickle.dump(keys, out, protocol=2)
        for key in keys:
            out.write(struct.pack("<q", storages[key].size))
            out.write(storages[key].astype("<f4").tobytes())
        return out.getvalue()


def test_strided_views_are_honoured():
    # A (3, 2) tensor stored transposed, as torch does for many conv/fc weights:
    # ignoring strides would read it row-major and scramble it.
    stored = np.arange(6, dtype=np.float32)  # memory order of the (2, 3) transpose
    data = write_legacy({"fc.weight": ("0", 0, (3, 2), (1, 3)),
                         "fc.bias": ("1", 1, (2,), (1,))},
                        {"0": stored, "1": np.array([9, 7, 8], np.float32)})
    state = read_legacy_state_dict(io.BytesIO(data))
    np.testing.assert_array_equal(state["fc.weight"], stored.reshape(2, 3).T)
    np.testing.assert_array_equal(state["fc.bias"], [7, 8])  # offset 1 into its storage
    assert list(state) == ["fc.weight", "fc.bias"]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_refuses_any_other_global(tmp_path):
    marker = tmp_path / "pwned"
    data = write_legacy({}, {}, main_pickle=collections.OrderedDict(x=_Exploit(marker)))
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match="refusing to load global (posix|os).system"):
        read_legacy_state_dict(str(path))
    assert not marker.exists()


def test_refuses_global_in_header_pickle():
    out = io.BytesIO()
    pickle.dump(LEGACY_MAGIC_NUMBER, out, protocol=2)
    pickle.dump(collections.Counter("abc"), out, protocol=2)  # collections.Counter: not allowed
    with pytest.raises(UnsafePickleError, match="collections.Counter"):
        read_legacy_state_dict(io.BytesIO(out.getvalue()))


def test_rejects_non_legacy_and_truncated_files():
    with pytest.raises(pickle.UnpicklingError, match="magic number"):
        read_legacy_state_dict(io.BytesIO(pickle.dumps(12345)))
    with pytest.raises(pickle.UnpicklingError, match="expected a state_dict, found list"):
        read_legacy_state_dict(io.BytesIO(write_legacy({}, {}, main_pickle=[1, 2])))
    data = write_legacy({"w": ("0", 0, (4,), (1,))}, {"0": np.ones(4, np.float32)})
    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        read_legacy_state_dict(io.BytesIO(data[:-3]))


def test_rejects_views_outside_their_storage():
    data = write_legacy({"w": ("0", 2, (4,), (1,))}, {"0": np.ones(4, np.float32)})
    with pytest.raises(pickle.UnpicklingError, match="outside its storage"):
        read_legacy_state_dict(io.BytesIO(data))


@pytest.mark.parametrize("name, tensors, params", [
    ("efficientnet_lite0", 296, 4_694_024),
    ("efficientnet_lite1", 386, 5_470_344),  # 21 blocks: depth 1.1
    ("efficientnet_lite2", 386, 6_150_168),  # and width 1.1
])
def test_reads_the_shipped_lite_files(name, tensors, params):
    variant = efficientnet_lite.VARIANTS[name]
    state = read_legacy_state_dict(backbones._lite_torch_file(variant))
    assert len(state) == tensors
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == params
    # Every tensor fits the Keras model: load_torch_state_dict checks shapes and coverage.
    efficientnet_lite.load_torch_state_dict(efficientnet_lite.EfficientNetLite(variant), state)
