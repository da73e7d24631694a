"""The write-ahead log of the built-in store: one fsync'd, checksummed record per write.

File layout (little-endian)::

    file header  8s magic "RGMWAL01" | u64 generation | u32 crc32 of the preceding 16 bytes
    record       4s magic "RGWR" | u32 payload length | u32 crc32 of payload
                 | u32 crc32 of the preceding 12 bytes
    payload      u32 length of a UTF-8 JSON object | the JSON | float32 vectors (rows x dims)

The JSON is ``{"op": "upsert", "ids": [...], "texts": [...], "metadata": [...]}`` (the
vectors follow, one row per id) or ``{"op": "delete", "ids": [...]}``.

A crash in the middle of an append leaves a *torn tail*: a partial record header, or a
valid header whose payload runs past the end of the file (or zero bytes a filesystem
allocated but never wrote). That record was never acknowledged, so it is dropped.
Anything else that fails a check (a bad header checksum, a complete payload with a bad
checksum, undecodable JSON) is corruption and raises CorruptIndexError.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.errors import CorruptIndexError, StorageError

if TYPE_CHECKING:
    from pathlib import Path

    from ragmem.types import Metadata, Vectors

__all__ = ["LogOp", "WriteAheadLog", "read_log"]

_FILE_MAGIC = b"RGMWAL01"
_FILE_HEADER = struct.Struct("<8sQI")
_RECORD_MAGIC = b"RGWR"
_RECORD_HEADER = struct.Struct("<4sIII")
_JSON_LEN = struct.Struct("<I")


@dataclass
class LogOp:
    """One logged write, as replayed on open."""

    op: str
    ids: list[str]
    vectors: Vectors | None = None
    texts: list[str | None] | None = None
    metadata: list[Metadata] | None = None


def _file_header(generation: int) -> bytes:
    head = _FILE_MAGIC + struct.pack("<Q", generation)
    return head + struct.pack("<I", zlib.crc32(head))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def create_log(path: Path, generation: int) -> None:
    """Write a new, empty, fsync'd log file for ``generation``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, _file_header(generation))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_log(path: Path, generation: int, dimensions: int) -> tuple[list[LogOp], int]:
    """Every complete record of the log, and the byte length of that valid prefix.

    Raises:
        CorruptIndexError: the file is missing, belongs to another generation, or is
            corrupt anywhere except a torn final record.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CorruptIndexError(path, "write-ahead log is missing") from exc
    if len(data) < _FILE_HEADER.size:
        raise CorruptIndexError(path, f"file header truncated ({len(data)} bytes)")
    magic, gen, crc = _FILE_HEADER.unpack_from(data)
    if magic != _FILE_MAGIC or crc != zlib.crc32(data[:16]):
        raise CorruptIndexError(path, "bad file header")
    if gen != generation:
        raise CorruptIndexError(path, f"log is generation {gen}, manifest says {generation}")
    ops: list[LogOp] = []
    offset = _FILE_HEADER.size
    size = len(data)
    while offset < size:
        rest = data[offset:]
        if len(rest) < _RECORD_HEADER.size or not any(rest):
            break  # torn tail: partial header or never-written zeros
        magic, length, payload_crc, header_crc = _RECORD_HEADER.unpack_from(data, offset)
        if magic != _RECORD_MAGIC or header_crc != zlib.crc32(data[offset : offset + 12]):
            raise CorruptIndexError(path, f"bad record header at byte {offset}")
        start = offset + _RECORD_HEADER.size
        if start + length > size:
            break  # torn tail: the payload of the last append was cut short
        payload = data[start : start + length]
        if zlib.crc32(payload) != payload_crc:
            raise CorruptIndexError(path, f"record at byte {offset} fails its checksum")
        ops.append(_decode(path, offset, payload, dimensions))
        offset = start + length
    return ops, offset


def _decode(path: Path, offset: int, payload: bytes, dimensions: int) -> LogOp:
    try:
        (json_len,) = _JSON_LEN.unpack_from(payload)
        head: dict[str, Any] = json.loads(payload[4 : 4 + json_len].decode("utf-8"))
        op, ids = head["op"], head["ids"]
        if op == "delete":
            return LogOp("delete", list(ids))
        if op != "upsert":
            raise ValueError(f"unknown op {op!r}")
        raw = payload[4 + json_len :]
        if len(raw) != len(ids) * dimensions * 4:
            raise ValueError(f"{len(raw)} vector bytes for {len(ids)} ids")
        vectors = np.frombuffer(raw, dtype="<f4").reshape(len(ids), dimensions)
        texts, metadata = head["texts"], head["metadata"]
        if len(texts) != len(ids) or len(metadata) != len(ids):
            raise ValueError("texts or metadata do not match ids")
        return LogOp("upsert", list(ids), vectors.astype(np.float32), texts, metadata)
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as exc:
        raise CorruptIndexError(path, f"record at byte {offset} is malformed: {exc}") from exc


def _encode(head: dict[str, Any], vectors: Vectors | None) -> bytes:
    body = json.dumps(head, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    parts = [_JSON_LEN.pack(len(body)), body]
    if vectors is not None:
        parts.append(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
    payload = b"".join(parts)
    header = _RECORD_MAGIC + struct.pack("<II", len(payload), zlib.crc32(payload))
    return header + struct.pack("<I", zlib.crc32(header)) + payload


class WriteAheadLog:
    """An open log that appends records and fsyncs each before the write is acknowledged."""

    def __init__(self, path: Path, valid_bytes: int) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY)
        # drop a torn tail so new records follow the last good one
        os.ftruncate(self._fd, valid_bytes)
        os.fsync(self._fd)
        os.lseek(self._fd, valid_bytes, os.SEEK_SET)
        self.size = valid_bytes

    def append_upsert(
        self,
        ids: list[str],
        vectors: Vectors,
        texts: list[str | None],
        metadata: list[Metadata],
    ) -> None:
        head = {"op": "upsert", "ids": ids, "texts": texts, "metadata": metadata}
        self._append(_encode(head, vectors))

    def append_delete(self, ids: list[str]) -> None:
        self._append(_encode({"op": "delete", "ids": ids}, None))

    def _append(self, record: bytes) -> None:
        try:
            _write_all(self._fd, record)
            os.fsync(self._fd)
        except OSError as exc:
            # leave no partial record behind the next append (e.g. after ENOSPC)
            try:
                os.ftruncate(self._fd, self.size)
                os.lseek(self._fd, self.size, os.SEEK_SET)
            except OSError:
                pass
            raise StorageError(f"cannot append to {self.path}: {exc}") from exc
        self.size += len(record)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
