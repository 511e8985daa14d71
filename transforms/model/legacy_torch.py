"""Read a legacy (non-zip) PyTorch ``state_dict`` file without torch and without
running arbitrary pickle code.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``) is a
sequence of pickles: magic number, protocol version, system info, the main pickle
(an ``OrderedDict`` of tensors whose storages are persistent ids), the sorted list of
storage keys, then for every key an int64 element count followed by the raw
little-endian bytes of that storage.

Pickle can call any importable function. The unpickler below resolves exactly four
globals, to harmless stand-ins of our own; any other global is refused before anything
is called. Tensors are rebuilt with their storage offset, size *and stride*: weights
saved as non-contiguous views load with the wrong values if strides are ignored.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class UnsafePickleError(pickle.UnpicklingError):
    """The file references a global outside the allow-list."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _TensorRef:
    # Stand-in for torch._utils._rebuild_tensor_v2: records the view, builds nothing yet
    # (the storage bytes come after the main pickle).
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch", "FloatStorage"): _StorageType(np.dtype("<f4")),
    ("torch", "LongStorage"): _StorageType(np.dtype("<i8")),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: a weights file may only "
                f"reference {sorted('.'.join(k) for k in _ALLOWED_GLOBALS)}"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if view_metadata is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return _StorageRef(str(key), storage_type.dtype, int(numel))


def _load_pickle(f: BinaryIO):
    return _RestrictedUnpickler(f).load()


def read_legacy_state_dict(path_or_file: str | BinaryIO) -> collections.OrderedDict[str, np.ndarray]:
    """Return the tensors of a legacy PyTorch file as numpy arrays in torch's layout.

    Raises ``UnsafePickleError`` if any pickle in the file references a global other
    than the four a plain state_dict needs, and ``pickle.UnpicklingError`` for files
    that are not legacy PyTorch files.
    """
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
        with open(path_or_file, "rb") as f:
            data = f.read()
    else:
        data = path_or_file.read()
    f = io.BytesIO(data)

    if _load_pickle(f) != LEGACY_MAGIC_NUMBER:
        raise pickle.UnpicklingError("not a legacy PyTorch file (bad magic number)")
    protocol = _load_pickle(f)
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise pickle.UnpicklingError(f"unsupported legacy protocol version {protocol!r}")
    _load_pickle(f)  # system info: endianness and type sizes; the storages are little-endian
    state = _load_pickle(f)
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"expected a state_dict, found {type(state).__name__}")
    storage_keys = _load_pickle(f)

    storages: dict[str, np.ndarray] = {}
    refs = {t.storage.key: t.storage for t in state.values() if isinstance(t, _TensorRef)}
    for key in storage_keys:
        (numel,) = struct.unpack("<q", f.read(8))
        ref = refs.get(key)
        if ref is None:
            raise pickle.UnpicklingError(f"storage {key!r} is not used by any tensor")
        nbytes = numel * ref.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise pickle.UnpicklingError(f"file truncated in storage {key!r}")
        storages[key] = np.frombuffer(raw, dtype=ref.dtype)

    tensors: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise pickle.UnpicklingError(f"entry {name!r} is not a tensor")
        tensors[name] = _materialise(value, storages[value.storage.key])
    return tensors


def _materialise(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    if len(ref.size) != len(ref.stride):
        raise pickle.UnpicklingError("tensor size and stride differ in rank")
    # The furthest element the view touches must lie inside the storage.
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride) if n > 0)
    if ref.offset < 0 or any(s < 0 for s in ref.stride) or (
            all(n > 0 for n in ref.size) and last >= storage.size):
        raise pickle.UnpicklingError("tensor view lies outside its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset:], shape=ref.size, strides=[s * item for s in ref.stride],
        writeable=False)
    return np.array(view, dtype=storage.dtype.newbyteorder("="))
