"""A crash-safe, pickle-free snapshot file: JSON header + raw numpy arrays + checksum.

Layout: ``MAGIC | u64 header length | header JSON | array bytes | sha256 of all before``.
Writes go to a temporary file in the same directory, are fsynced, then renamed over
the target (and the directory fsynced), so a crash leaves either the old or the new
file, never a mix. Loading verifies the checksum and every array's dtype and size,
and raises ``CorruptIndexError`` naming the file otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragmem.errors import CorruptIndexError, StorageError

__all__ = ["fsync_dir", "read_snapshot", "write_snapshot"]

_MAGIC = b"RAGMEM-SNAPSHOT\x01"
_ALLOWED_DTYPES = frozenset({"<i4", "<i8", "<f4", "<f8", "|b1", "<f2", "|i1", "|u1"})
_DIGEST = 32


def write_snapshot(
    path: str | os.PathLike[str], meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]
) -> None:
    """Atomically replace ``path`` with a snapshot of ``meta`` (JSON) and ``arrays``."""
    target = Path(path)
    entries = []
    offset = 0
    blobs = []
    for name, array in arrays.items():
        data = np.ascontiguousarray(array)
        dtype = data.dtype.newbyteorder("<") if data.dtype.byteorder == ">" else data.dtype
        data = data.astype(dtype, copy=False)
        if data.dtype.str not in _ALLOWED_DTYPES:
            raise TypeError(f"array {name!r} has unsupported dtype {data.dtype}")
        raw = data.tobytes()
        entries.append(
            {"name": name, "dtype": data.dtype.str, "shape": list(data.shape), "offset": offset}
        )
        blobs.append(raw)
        offset += len(raw)
    header = json.dumps({"meta": meta, "arrays": entries}, ensure_ascii=False).encode()
    digest = hashlib.sha256()
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for part in (_MAGIC, struct.pack("<Q", len(header)), header, *blobs):
                f.write(part)
                digest.update(part)
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {target}: {exc}") from exc
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    # makes the rename itself durable; not possible on every platform (Windows)
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_snapshot(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """Load and verify a snapshot written by ``write_snapshot``.

    Raises:
        StorageError: the file cannot be read.
        CorruptIndexError: the file is truncated, altered, or not a snapshot.
    """
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {source}: {exc}") from exc
    head = len(_MAGIC) + 8
    if len(data) < head + _DIGEST or not data.startswith(_MAGIC):
        raise CorruptIndexError(source, "not a ragmem snapshot, or truncated")
    body, stored = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != stored:
        raise CorruptIndexError(source, "checksum mismatch (truncated or modified)")
    (header_len,) = struct.unpack("<Q", body[len(_MAGIC) : head])
    try:
        header = json.loads(body[head : head + header_len])
        meta = header["meta"]
        payload = memoryview(body)[head + header_len :]
        arrays = {}
        for entry in header["arrays"]:
            dtype = np.dtype(entry["dtype"])
            if dtype.str not in _ALLOWED_DTYPES:
                raise ValueError(f"dtype {dtype} not allowed")
            shape = tuple(int(n) for n in entry["shape"])
            count = int(np.prod(shape))
            start = int(entry["offset"])
            end = start + count * dtype.itemsize
            if start < 0 or end > len(payload):
                raise ValueError(f"array {entry['name']!r} runs past the end of the file")
            arrays[entry["name"]] = (
                np.frombuffer(payload[start:end], dtype=dtype).reshape(shape).copy()
            )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptIndexError(source, f"bad header: {exc}") from exc
    return meta, arrays
