"""The model artifact's byte layout: a JSON header and flat, aligned, named arrays.

Why not ``np.savez``: an ``.npz`` is a zip, so every array is copied out of it on load,
in every process. Here each array is a run of raw bytes at a 64-byte aligned offset
that the header names, so ``unpack`` over an ``mmap`` of the file returns read-only
views into the mapping, without copying: every web worker on a machine that maps the
same file shares its pages. ``unpack`` over ``bytes`` works the same way (views into
the bytes), which is what tests and the database path use.

Layout::

    MAGIC (8 bytes) | header length (uint64, little endian) | header (UTF-8 JSON)
    | zero padding | array bytes at the offsets the header gives (each 64-aligned)

The header is ``{"meta": {...}, "arrays": {name: {"dtype", "shape", "offset"}}}``.
Adding a field is one more key in ``meta``; adding an array one more entry in
``arrays``: nothing here changes. Object arrays are refused (no pickle, ever).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["MAGIC", "TextList", "chunks", "is_artifact", "pack", "pieces", "text_arrays",
           "unpack"]

MAGIC = b"XOREC\x00a1"
_ALIGN = 64
_LENGTH = struct.Struct("<Q")


def is_artifact(buffer: Any) -> bool:
    """Whether ``buffer`` (bytes, memoryview or mmap) starts like an artifact."""
    return bytes(memoryview(buffer)[: len(MAGIC)]) == MAGIC


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def pack(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise ``meta`` (JSON-able) and named arrays into one artifact."""
    return b"".join(pieces(meta, arrays))


def pieces(meta: Mapping[str, Any],
           arrays: Mapping[str, np.ndarray]) -> Iterator[bytes | memoryview]:
    """The artifact's bytes in order, as the header and views of the arrays' own memory.

    Joined they are ``pack``'s output; consumed one by one (``chunks``) nothing holds a
    second copy of the whole artifact, which at 200k businesses is hundreds of MiB.
    """
    table: dict[str, dict[str, Any]] = {}
    blobs: list[np.ndarray] = []
    offset = 0
    for name, value in arrays.items():
        arr = np.ascontiguousarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"array {name!r} has object dtype; artifacts hold raw arrays only")
        table[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "offset": offset}
        blobs.append(arr)
        offset = _aligned(offset + arr.nbytes)
    header = json.dumps({"meta": dict(meta), "arrays": table}).encode()
    head = MAGIC + _LENGTH.pack(len(header)) + header
    yield head + bytes(_aligned(len(head)) - len(head))
    for arr in blobs:
        if arr.nbytes:
            yield memoryview(arr.reshape(-1).view(np.uint8))
        if _aligned(arr.nbytes) > arr.nbytes:
            yield bytes(_aligned(arr.nbytes) - arr.nbytes)


def chunks(parts: Iterable[bytes | memoryview], size: int) -> Iterator[bytearray]:
    """``parts`` regrouped into buffers of exactly ``size`` bytes (the last one shorter).

    Each buffer is new, so a consumer may keep it; one that drops it before asking for
    the next holds one chunk at a time. Buffers grow as they fill: a small artifact
    costs its own size, not ``size``.
    """
    if size < 1:
        raise ValueError("chunk size must be positive")
    buffer = bytearray()
    for part in parts:
        view = memoryview(part).cast("B")
        while view.nbytes:
            take = min(size - len(buffer), view.nbytes)
            buffer += view[:take]
            view = view[take:]
            if len(buffer) == size:
                yield buffer
                buffer = bytearray()
    if buffer:
        yield buffer


def unpack(buffer: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of an artifact; the arrays are read-only views into ``buffer``."""
    view = memoryview(buffer)
    if not is_artifact(view):
        raise ValueError("not a model artifact (bad magic)")
    (length,) = _LENGTH.unpack(view[len(MAGIC) : len(MAGIC) + _LENGTH.size])
    head_end = len(MAGIC) + _LENGTH.size + length
    if head_end > len(view):
        raise ValueError("truncated model artifact header")
    header = json.loads(bytes(view[len(MAGIC) + _LENGTH.size : head_end]))
    start = _aligned(head_end)
    arrays: dict[str, np.ndarray] = {}
    for name, spec in header["arrays"].items():
        dtype = np.dtype(spec["dtype"])
        if dtype.hasobject:
            raise ValueError(f"array {name!r} has object dtype")
        shape = tuple(int(s) for s in spec["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        pos = start + int(spec["offset"])
        if count == 0:
            arr = np.empty(shape, dtype=dtype)
        elif pos + count * dtype.itemsize > len(view):
            raise ValueError(f"truncated model artifact: array {name!r}")
        else:
            arr = np.frombuffer(view, dtype=dtype, count=count, offset=pos).reshape(shape)
        arr.flags.writeable = False
        arrays[name] = arr
    return header["meta"], arrays


def text_arrays(name: str, values: Sequence[str]) -> dict[str, np.ndarray]:
    """A list of strings as two arrays: UTF-8 bytes and ``len + 1`` offsets into them."""
    encoded = [str(v).encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return {name: np.frombuffer(b"".join(encoded), dtype=np.uint8),
            f"{name}.offsets": offsets}


class TextList(Sequence[str]):
    """Read-only list of strings over ``text_arrays`` output, decoded on access.

    A list of 50,000 ``str`` objects costs each process a few MiB of its own; this
    keeps the bytes in the (shared) mapping and decodes the few a page shows.
    """

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self._data, self._offsets = data, offsets

    def __len__(self) -> int:
        return int(self._offsets.shape[0]) - 1

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(index)
        return self._data[self._offsets[i] : self._offsets[i + 1]].tobytes().decode()
