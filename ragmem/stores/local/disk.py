"""Where a persistent LocalVectorStore keeps its rows: SQLite, plus a cache of the table.

A store directory holds::

    store.sqlite    the acknowledged rows (ids, float32 vectors, texts, metadata JSON),
                    one transaction per write call (``ragmem._storage.database``)
    table.cache     the vectors in the store's memory layout and the records as JSON,
                    derived from the database and tagged with its generation
    graph.cache     optional: the HNSW graph over the table's rows, likewise derived

A cache that is missing, damaged or of another database is rebuilt from SQLite; one of
an older generation is brought up to date from the rows written since.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem._storage.cache_file import write_cache
from ragmem._storage.values import check_texts, metadata_json
from ragmem.errors import ConfigurationError, CorruptIndexError, NotFoundError

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from ragmem._storage.database import Database, Item
    from ragmem.types import Metadata, Vectors

logger = logging.getLogger("ragmem.stores.local")

__all__ = [
    "DATABASE",
    "Loaded",
    "load_rows",
    "open_database",
    "read_items",
    "stored_items",
    "write_table",
]

DATABASE = "store.sqlite"
TABLE = "table.cache"
_KIND = "ragmem-local-store"
_FORMAT = "ragmem-table/1"
# files of a store written before the SQLite format
_OLD_FORMAT = "MANIFEST.json"


@dataclass
class Loaded:
    """Rows read at open: a whole table (from the cache or the database), then changes."""

    generation: int  # of the table below
    matrix: Vectors | None  # (dimensions, n); None: the graph's file keeps the vectors
    ids: list[str | None]  # None: a deleted row kept in place
    texts: list[str | None]
    metadata: list[Metadata]
    deleted: list[str]  # deleted after ``generation``
    written: list[Item]  # written after ``generation``


def open_database(
    directory: Path, *, dimensions: int, metric: str, read_only: bool, lock_timeout: float
) -> Database:
    """The store's database in ``directory`` (created with the directory unless read-only).

    Raises:
        ConfigurationError: the directory holds a store of the old format, something
            else, or a store of other dimensions or metric.
        NotFoundError: ``read_only`` and there is no store.
    """
    if (directory / _OLD_FORMAT).exists():
        raise ConfigurationError(
            f"{directory} holds a store in the format of ragmem 0.x (MANIFEST.json, "
            "write-ahead log), which this version does not read. Re-create it: re-run "
            "`ragmem index` on the sources, or read every record with the older ragmem "
            "(store.get) and upsert them into a new store; see docs/reliability.md"
        )
    path = directory / DATABASE
    if read_only and not path.exists():
        raise NotFoundError([str(directory)], what="store")
    if not read_only and directory.exists():
        for entry in os.scandir(directory):
            if ".tmp-" in entry.name or ".new-" in entry.name:
                os.unlink(entry.path)  # left by a crash while writing a cache or creating
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        names = sorted(os.listdir(directory))
        if any(n.endswith(".cache") for n in names):
            raise CorruptIndexError(path, "file is missing, but its caches are not")
        if names:
            raise ConfigurationError(
                f"{directory} holds no ragmem store and is not empty ({names[:5]})"
            )
    from ragmem._storage.database import Database  # sqlite3 only for stores on disk

    config = {"dimensions": dimensions, "metric": metric}
    db = Database(
        path,
        kind=_KIND,
        config=config,
        read_only=read_only,
        lock_timeout=lock_timeout,
        hold=not read_only,
    )
    if db.config != config:
        db.close()
        raise ConfigurationError(
            f"store at {directory} has dimensions={db.config.get('dimensions')}, "
            f"metric={db.config.get('metric')!r}; opened with dimensions={dimensions}, "
            f"metric={metric!r}"
        )
    return db


def stored_items(
    ids: list[str], vectors: Vectors, texts: list[str | None], metadata: list[Metadata]
) -> list[Item]:
    """The rows of one upsert in their stored form (raises InvalidInputError first)."""
    check_texts(ids, "ids")
    check_texts(texts, "texts")
    metas = [metadata_json(m, f"metadata[{i}]") for i, m in enumerate(metadata)]
    return [(i, t, m, v.tobytes()) for i, t, m, v in zip(ids, texts, metas, vectors)]


def read_items(
    items: list[Item], dimensions: int
) -> tuple[list[str], Vectors, list[str | None], list[Metadata]]:
    """Stored items back in memory form: ids, ``(n, dimensions)`` vectors, texts, metadata."""
    blob = b"".join(i[3] or b"" for i in items)
    vectors = np.frombuffer(blob, np.float32).reshape(len(items), dimensions)
    metadata = [json.loads(i[2]) for i in items]
    return [i[0] for i in items], vectors, [i[1] for i in items], metadata


def load_rows(
    directory: Path, db: Database, conn: sqlite3.Connection, dimensions: int, *, cache: bool = True
) -> Loaded:
    """The table as of the database's generation: the cache plus the changes since, or
    every row from the database when the cache cannot be used (or ``cache`` is False)."""
    found, deleted, items = db.cached(conn, directory / TABLE if cache else None, _FORMAT)
    if found is not None:
        fields, arrays = found
        matrix = arrays.get("vectors")
        ids, texts, metadata = json.loads(arrays["records"].tobytes())
        lengths = {len(ids), len(texts), len(metadata)}
        if matrix is not None:
            lengths.add(matrix.shape[1])
        if (matrix is None or matrix.shape[0] == dimensions) and len(lengths) == 1:
            generation = fields["generation"]
            return Loaded(generation, matrix, ids, texts, metadata, deleted, items)
        logger.warning("%s does not match %s; rebuilding it", directory / TABLE, db.path)
        items = list(db.items(conn))
    ids, vectors, texts, metadata = read_items(items, dimensions)
    matrix = vectors.T.copy()  # writable, dimension-major
    return Loaded(db.generation, matrix, list(ids), texts, metadata, [], [])


def write_table(
    directory: Path,
    db: Database,
    matrix: Vectors | None,
    ids: list[str | None],
    texts: list[str | None],
    metadata: list[Metadata],
) -> None:
    """Write the table cache of the database's current generation (tombstones included);
    without vectors (``matrix=None``) when the graph's file keeps them."""
    records = json.dumps([ids, texts, metadata], ensure_ascii=False).encode()
    fields: dict[str, Any] = {"format": _FORMAT, "uid": db.uid, "generation": db.generation}
    arrays: dict[str, np.ndarray] = {"records": np.frombuffer(records, np.uint8)}
    if matrix is not None:
        arrays["vectors"] = matrix
    write_cache(directory / TABLE, fields, arrays)
