"""A checksummed file format for derived index data (rebuildable from the store's rows).

A derived file is never the source of truth: :func:`read_derived` returns ``None``
(and logs why) when the file is missing, truncated, corrupt, of another format or
covers another generation of the store, and the caller rebuilds from its rows.
Loading never uses pickle: the file holds a JSON header and raw array bytes.

Layout::

    MAGIC (8 bytes) | header length (8 bytes, little endian) | header JSON | payload

The header names each array's dtype, shape and offset in the payload, and the
SHA-256 of the payload, plus caller fields such as the generation it covers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["read_derived", "write_derived"]

logger = logging.getLogger("ragmem.stores.local")

_MAGIC = b"RGMDRV1\n"
_LENGTH = struct.Struct("<Q")


def write_derived(path: Path, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Atomically write ``arrays`` and JSON-able ``fields`` to ``path``.

    The file is written beside the target, flushed to disk, then renamed over it,
    so a crash leaves either the old file or the new one, never a mix.
    """
    sections: dict[str, dict[str, Any]] = {}
    digest = hashlib.sha256()
    offset = 0
    blobs = []
    for name, array in arrays.items():
        blob = np.ascontiguousarray(array)
        sections[name] = {
            "dtype": blob.dtype.str,
            "shape": list(blob.shape),
            "offset": offset,
            "nbytes": blob.nbytes,
        }
        view = blob.reshape(-1).view(np.uint8).data
        digest.update(view)
        blobs.append(view)
        offset += blob.nbytes
    header = json.dumps(
        {"fields": fields, "sections": sections, "sha256": digest.hexdigest()},
        sort_keys=True,
    ).encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(_MAGIC)
        fh.write(_LENGTH.pack(len(header)))
        fh.write(header)
        for view in blobs:
            fh.write(view)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path)


def read_derived(
    path: Path, expect: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Read a file written by :func:`write_derived`, or ``None`` if it cannot be used.

    Args:
        path: the file.
        expect: header fields that must match exactly (format, generation, ...);
            any difference makes the file stale.

    Returns:
        ``(fields, arrays)``, or ``None`` when the file is missing, stale or corrupt.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read derived index %s (%s); rebuilding", path, exc)
        return None
    try:
        fields, arrays = _parse(data)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("derived index %s is corrupt (%s); rebuilding", path, exc)
        return None
    for key, value in expect.items():
        if fields.get(key) != value:
            logger.info(
                "derived index %s is stale (%s=%r, expected %r); rebuilding",
                path,
                key,
                fields.get(key),
                value,
            )
            return None
    return fields, arrays


def _parse(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if data[: len(_MAGIC)] != _MAGIC:
        raise ValueError("bad magic")
    start = len(_MAGIC) + _LENGTH.size
    if len(data) < start:
        raise ValueError("truncated header")
    (length,) = _LENGTH.unpack_from(data, len(_MAGIC))
    if start + length > len(data):
        raise ValueError("truncated header")
    header = json.loads(data[start : start + length])
    payload = memoryview(data)[start + length :]
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise ValueError("checksum mismatch")
    arrays = {}
    for name, sec in header["sections"].items():
        begin, nbytes = int(sec["offset"]), int(sec["nbytes"])
        if begin + nbytes > len(payload):
            raise ValueError(f"section {name!r} out of range")
        dtype = np.dtype(sec["dtype"])
        if dtype.hasobject:
            raise ValueError(f"section {name!r} has an object dtype")
        flat = np.frombuffer(payload[begin : begin + nbytes], dtype=dtype)
        arrays[name] = flat.reshape(sec["shape"]).copy()
    fields = header["fields"]
    if not isinstance(fields, dict):
        raise TypeError("fields is not an object")
    return fields, arrays


def _fsync_dir(path: Path) -> None:
    # the rename is only durable once the directory entry is on disk (POSIX)
    if os.name != "posix":
        return
    fd = os.open(path.parent, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)
