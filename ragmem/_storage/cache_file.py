"""Checksummed cache files: numpy arrays and JSON fields derived from a SQLite database.

A cache file is never the source of truth. :func:`read_cache` returns ``None`` (and logs
why) when the file is missing, truncated, damaged, of another format or tagged with
other fields (another generation of the database it was derived from), and the caller
rebuilds from the database. Loading never uses pickle: the file holds a JSON header and
raw array bytes, each section with its own CRC-32.

Layout::

    MAGIC (8 bytes) | header length (u64 LE) | header CRC-32 (u32 LE) | header JSON | arrays

A file is written beside its target and renamed over it, so a reader sees the old file
or the new one, never a mix. It is not fsync'd: losing a cache costs a rebuild, not data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.errors import ConfigurationError, CorruptIndexError, StorageError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["fsync_dir", "read_cache", "read_cache_strict", "refuse_old_format", "write_cache"]

logger = logging.getLogger("ragmem.storage")

_MAGIC = b"RGMCACH1"
_HEAD = struct.Struct("<QI")
_CHUNK = 1 << 24
# the magic of ragmem 0.x's snapshot files (BM25 indexes, token vectors)
_OLD_SNAPSHOT = b"RAGMEM-SNAPSHOT"


def write_cache(
    path: Path, fields: dict[str, Any], arrays: dict[str, np.ndarray], *, durable: bool = False
) -> None:
    """Atomically replace ``path`` with ``arrays`` and JSON-able ``fields``.

    Args:
        path: the target file.
        fields: values a reader checks (format, generation, ...).
        arrays: the numpy arrays to store (no object dtypes).
        durable: fsync the file and its directory (for files that are not caches).

    Raises:
        StorageError: the file cannot be written (the old file, if any, is intact).
    """
    sections: dict[str, dict[str, Any]] = {}
    blobs = []
    offset = 0
    for name, array in arrays.items():
        blob = np.ascontiguousarray(array)
        if blob.dtype.hasobject:
            raise TypeError(f"array {name!r} has an object dtype")
        view = blob.reshape(-1).view(np.uint8).data
        sections[name] = {
            "dtype": blob.dtype.str,
            "shape": list(blob.shape),
            "offset": offset,
            "crc32": _crc32(view),
        }
        blobs.append(view)
        offset += blob.nbytes
    header = json.dumps({"fields": fields, "sections": sections}, sort_keys=True).encode()
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(_MAGIC + _HEAD.pack(len(header), zlib.crc32(header)) + header)
            for view in blobs:
                fh.write(view)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(f"cannot write {path}: {exc}") from exc
    if durable:
        fsync_dir(path.parent)


def read_cache(
    path: Path, expect: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Read a file written by :func:`write_cache`, or ``None`` if it cannot be used.

    Args:
        path: the file.
        expect: header fields that must match exactly (format, generation, ...).

    Returns:
        ``(fields, arrays)``, or ``None`` when the file is missing, stale or damaged.
    """
    try:
        fields, arrays = _read(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read cache %s (%s); rebuilding", path, exc)
        return None
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("cache %s is corrupt (%s); rebuilding", path, exc)
        return None
    for key, value in expect.items():
        if fields.get(key) != value:
            logger.info("cache %s is stale (%s=%r, expected %r)", path, key, fields.get(key), value)
            return None
    return fields, arrays


def read_cache_strict(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """:func:`read_cache` for a file that is the only copy of its data.

    Raises:
        StorageError: the file cannot be read.
        CorruptIndexError: the file is truncated, damaged or of another format.
    """
    try:
        return _read(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptIndexError(path, str(exc)) from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with open(path, "rb") as fh:
        head = fh.read(len(_MAGIC) + _HEAD.size)
        if head[: len(_MAGIC)] != _MAGIC:
            raise ValueError("not a ragmem cache file (bad magic)")
        if len(head) < len(_MAGIC) + _HEAD.size:
            raise ValueError("truncated header")
        length, crc = _HEAD.unpack_from(head, len(_MAGIC))
        if length > os.fstat(fh.fileno()).st_size:  # a damaged length: never allocate it
            raise ValueError("header length past the end of the file")
        header = fh.read(length)
        if len(header) != length or zlib.crc32(header) != crc:
            raise ValueError("header checksum mismatch")
        parsed = json.loads(header)
        fields, sections = parsed["fields"], parsed["sections"]
        if not isinstance(fields, dict):
            raise TypeError("fields is not an object")
        start = fh.tell()
        arrays = {}
        for name, sec in sections.items():
            dtype = np.dtype(sec["dtype"])
            if dtype.hasobject:
                raise ValueError(f"section {name!r} has an object dtype")
            # read straight into the array: a large table is never held twice
            array = np.empty([int(n) for n in sec["shape"]], dtype)
            fh.seek(start + int(sec["offset"]))
            view = array.reshape(-1).view(np.uint8)
            if fh.readinto(view.data) != view.nbytes:
                raise ValueError(f"section {name!r} is truncated")
            if _crc32(view.data) != sec["crc32"]:
                raise ValueError(f"section {name!r} checksum mismatch")
            arrays[name] = array
    return fields, arrays


def _crc32(data: memoryview) -> int:
    crc = 0
    for start in range(0, len(data), _CHUNK):
        crc = zlib.crc32(data[start : start + _CHUNK], crc)
    return crc


def refuse_old_format(path: Path, what: str, todo: str) -> None:
    """Raise ConfigurationError saying ``todo`` if ``path`` was written by ragmem 0.x."""
    try:
        with open(path, "rb") as fh:
            old = fh.read(len(_OLD_SNAPSHOT)) == _OLD_SNAPSHOT
    except OSError:
        return  # reported by whoever reads the file
    if old:
        raise ConfigurationError(
            f"{path} is {what} in the format of ragmem 0.x, which this version does not "
            f"read: {todo} (see docs/reliability.md)"
        )


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
