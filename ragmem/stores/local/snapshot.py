"""Snapshots of the built-in store: a manifest naming checksummed .npy and JSON files.

A store directory holds::

    MANIFEST.json            format version, generation, dimensions, metric, and for each
                             file below its name, size and crc32 (plus its own checksum)
    vectors-<gen>.npy        the live vectors, (rows, dims) float32 in Fortran order, which
                             is exactly the store's dimension-major memory layout
    records-<gen>.json       ids, texts and metadata, row by row
    wal-<gen>.log            writes since the snapshot (see ``wal``)
    index-<gen>.derived      optional: a search index derived from the snapshot's rows
                             (the HNSW graph), rebuilt when missing, stale or corrupt
    LOCK                     held by the one process that has the store open for writing

A new generation's files are written and fsync'd first, then the manifest is replaced
by write-new-then-rename; the rename is the commit point, so a crash at any instant
leaves either the old or the new generation whole. Nothing is ever unpickled: .npy
files are read with ``allow_pickle=False`` and everything else is JSON.
"""

from __future__ import annotations

import io
import json
import os
import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.errors import CorruptIndexError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from ragmem.types import Metadata, Vectors

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "Manifest",
    "Snapshot",
    "fsync_dir",
    "is_own_file",
    "read_manifest",
    "read_snapshot",
    "remove_stale_files",
    "write_manifest",
    "write_snapshot",
]

FORMAT = "ragmem-local-store"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
# index-<gen>.derived: files an index derives from the rows (the HNSW graph), rebuildable
_OWN_FILE = re.compile(
    r"^(vectors-\d+\.npy|records-\d+\.json|wal-\d+\.log|MANIFEST\.json\.tmp"
    r"|index-\d+\.derived(\.tmp)?)$"
)
_CHUNK = 1 << 24
LOG_HEADER_SIZE = 20  # bytes of an empty write-ahead log (see ``wal``)


@dataclass
class FileEntry:
    name: str
    size: int
    crc32: int


@dataclass
class Manifest:
    generation: int
    dimensions: int
    metric: str
    rows: int
    vectors: FileEntry
    records: FileEntry

    @property
    def wal(self) -> str:
        return f"wal-{self.generation:010d}.log"


@dataclass
class Snapshot:
    """Rows of a snapshot: ``matrix`` is (dims, rows), the store's layout."""

    matrix: Vectors
    ids: list[str]
    texts: list[str | None]
    metadata: list[Metadata]


def fsync_dir(directory: Path) -> None:
    """Make renames and creations in ``directory`` durable (no-op where unsupported)."""
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checksum(body: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(body, sort_keys=True).encode("utf-8"))


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically (write, fsync, rename, fsync the directory)."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "generation": manifest.generation,
        "dimensions": manifest.dimensions,
        "metric": manifest.metric,
        "rows": manifest.rows,
        "vectors": vars(manifest.vectors),
        "records": vars(manifest.records),
        "wal": manifest.wal,
    }
    body["checksum"] = _checksum(body)
    tmp = directory / (MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MANIFEST)
    fsync_dir(directory)


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest, or None when the directory holds no store yet."""
    path = directory / MANIFEST
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        body = json.loads(text.decode("utf-8"))
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        checksum = body.pop("checksum")
        if body.get("format") != FORMAT:
            raise ValueError(f"not a ragmem store (format {body.get('format')!r})")
        if body.get("version") != FORMAT_VERSION:
            raise ValueError(f"format version {body.get('version')!r} is not supported")
        if checksum != _checksum(body):
            raise ValueError("checksum mismatch")
        manifest = Manifest(
            generation=int(body["generation"]),
            dimensions=int(body["dimensions"]),
            metric=str(body["metric"]),
            rows=int(body["rows"]),
            vectors=FileEntry(**body["vectors"]),
            records=FileEntry(**body["records"]),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptIndexError(path, str(exc)) from exc
    if body.get("wal") != manifest.wal:
        raise CorruptIndexError(path, "write-ahead log name does not match the generation")
    return manifest


def _write_file(path: Path, chunks: Iterable[bytes]) -> FileEntry:
    crc, size = 0, 0
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return FileEntry(path.name, size, crc)


def _npy_chunks(matrix: Vectors) -> Iterator[bytes]:
    dims, rows = matrix.shape
    header = {"descr": "<f4", "fortran_order": True, "shape": (rows, dims)}
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, header)
    yield head.getvalue()
    # Fortran order of (rows, dims) is each dimension's row of the (dims, rows) matrix
    for j in range(dims):
        yield matrix[j].astype("<f4", copy=False).tobytes()


def write_snapshot(
    directory: Path,
    generation: int,
    matrix: Vectors,
    ids: list[str],
    texts: list[str | None],
    metadata: list[Metadata],
) -> tuple[FileEntry, FileEntry]:
    """Write and fsync the vectors and records files of ``generation`` (not yet committed)."""
    vectors = _write_file(directory / f"vectors-{generation:010d}.npy", _npy_chunks(matrix))
    body = json.dumps(
        {"ids": ids, "texts": texts, "metadata": metadata},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    records = _write_file(
        directory / f"records-{generation:010d}.json",
        (body[i : i + _CHUNK] for i in range(0, len(body), _CHUNK)),
    )
    return vectors, records


def _verify(path: Path, entry: FileEntry) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise CorruptIndexError(path, "file is missing") from exc
    if size != entry.size:
        raise CorruptIndexError(path, f"size is {size} bytes, expected {entry.size}")
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    if crc != entry.crc32:
        raise CorruptIndexError(path, "checksum mismatch")


def read_snapshot(directory: Path, manifest: Manifest, matrix_out: Vectors) -> Snapshot:
    """Load a verified snapshot; vectors are copied into ``matrix_out[:, :rows]``.

    Raises:
        CorruptIndexError: a file is missing, truncated, fails its checksum or does not
            match the manifest; the error names the file.
    """
    rows, dims = manifest.rows, manifest.dimensions
    vec_path = directory / manifest.vectors.name
    _verify(vec_path, manifest.vectors)
    try:
        # a zero-row array cannot be memory-mapped
        array = np.load(vec_path, mmap_mode="r" if rows else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CorruptIndexError(vec_path, f"not a readable .npy file: {exc}") from exc
    if array.dtype != np.dtype("<f4") or array.shape != (rows, dims):
        raise CorruptIndexError(
            vec_path, f"holds {array.dtype} {array.shape}, expected float32 {(rows, dims)}"
        )
    matrix_out[:, :rows] = array.T
    del array

    rec_path = directory / manifest.records.name
    _verify(rec_path, manifest.records)
    try:
        body = json.loads(rec_path.read_bytes().decode("utf-8"))
        ids, texts, metadata = body["ids"], body["texts"], body["metadata"]
        if not (len(ids) == len(texts) == len(metadata) == rows):
            raise ValueError(f"record counts do not match the {rows} rows of the manifest")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptIndexError(rec_path, str(exc)) from exc
    return Snapshot(matrix_out[:, :rows], ids, texts, metadata)


def is_own_file(name: str) -> bool:
    """Whether ``name`` is one of the files a store directory may hold (besides LOCK)."""
    return name == MANIFEST or _OWN_FILE.match(name) is not None


def remove_stale_files(directory: Path, manifest: Manifest) -> None:
    """Delete files of other generations (left by a compaction or a crash mid-write)."""
    derived = f"index-{manifest.generation:010d}.derived"
    keep = {manifest.vectors.name, manifest.records.name, manifest.wal, derived}
    for entry in os.scandir(directory):
        if _OWN_FILE.match(entry.name) and entry.name not in keep:
            os.unlink(entry.path)
