"""Where a saved BM25 index lives: its documents in SQLite, its postings in a cache beside.

``BM25Retriever.save(PATH)`` writes the documents (ids, texts, metadata) to the SQLite
database ``PATH`` in one transaction: only the writes made since the last save when
``PATH`` is the file this index was last saved to or loaded from and nobody else wrote
it since, else the whole index. Saves from several processes queue on SQLite's write
lock, and each lands whole. The postings (vocabulary, term and document arrays) are a
cache derived from the documents, ``PATH.postings``, tagged with the database generation
it reflects: rewritten when many documents changed since, loaded when current, brought
up to date (the changed documents analysed again) when older, rebuilt when damaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem._storage.cache_file import refuse_old_format, write_cache
from ragmem._storage.database import Database, Item
from ragmem.errors import StorageError

if TYPE_CHECKING:
    import os

    import numpy as np

    from ragmem.types import Metadata

__all__ = [
    "Change",
    "Loaded",
    "Saved",
    "load_documents",
    "parse_items",
    "save_documents",
    "write_postings",
]

KIND = "ragmem-bm25"
_FORMAT = "ragmem-bm25-postings/1"

Change = tuple[str, list[Item]]
"""One write since the last save: ``("add", items)`` or ``("delete", [(id, ...)])``."""


@dataclass
class Saved:
    """The database this index was last saved to or loaded from, as it was then."""

    path: Path  # absolute
    uid: str
    generation: int
    uncached: int  # documents written since the postings cache


@dataclass
class Loaded:
    """A saved index: its configuration, the cached postings (if usable), and documents."""

    config: dict[str, Any]
    saved: Saved
    postings: tuple[dict[str, Any], dict[str, np.ndarray]] | None
    deleted: list[str]  # after the postings' generation (everything when no postings)
    written: list[Item]
    count: int  # documents in the database


def _postings_path(path: Path) -> Path:
    return path.with_name(path.name + ".postings")


def _check_format(path: Path) -> None:
    todo = "delete it and save the index again (the RAG pipeline rebuilds it by itself)"
    refuse_old_format(path, "a BM25 index", todo)


def save_documents(
    path: str | os.PathLike[str],
    saved: Saved | None,
    changes: list[Change],
    everything: Any,
    config: dict[str, Any],
) -> Saved:
    """Write the documents to ``path`` in one transaction; returns what was saved.

    Args:
        path: the database (created when missing).
        saved: the last save or load of this index.
        changes: the writes since then, applied when ``saved`` is ``path`` as it was.
        everything: a callable giving every document as items (for a whole save).
        config: the index's settings.

    Raises:
        StorageError: the database cannot be written (what it held before is intact).
    """
    target = Path(path).absolute()
    _check_format(target)
    db = Database(target, kind=KIND, config=config, lock_timeout=30.0)
    try:
        with db.write() as conn:
            same = saved is not None and saved.path == target and saved.uid == db.uid
            if same and saved is not None and saved.generation == db.generation:
                for kind, items in changes:
                    if kind == "add":
                        db.upsert(conn, items, keep_place=False)
                    else:
                        db.delete(conn, [item[0] for item in items])
                uncached = saved.uncached + sum(len(items) for _, items in changes)
            else:
                db.replace_all(conn, everything(), config)
                uncached = -1  # no cache of this database's contents yet
        return Saved(target, db.uid, db.generation, uncached)
    finally:
        db.close()


def write_postings(saved: Saved, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write the postings cache of ``saved``'s generation."""
    fields = {**fields, "format": _FORMAT, "uid": saved.uid, "generation": saved.generation}
    write_cache(_postings_path(saved.path), fields, arrays)
    saved.uncached = 0


def load_documents(path: str | os.PathLike[str], *, cache: bool = True) -> Loaded:
    """Read a saved index: the postings cache if usable, and the documents it lacks.

    Raises:
        ConfigurationError: the file is a BM25 index of the old format.
        CorruptIndexError: the file is empty, damaged or not a BM25 index.
        StorageError: the file is missing or cannot be read.
    """
    target = Path(path).absolute()
    _check_format(target)
    if not target.exists():
        raise StorageError(f"no BM25 index at {target}")
    db = Database(target, kind=KIND, config={}, read_only=True)
    try:
        with db.read() as conn:
            cache_path = _postings_path(target) if cache else None
            postings, deleted, written = db.cached(conn, cache_path, _FORMAT)
            saved = Saved(target, db.uid, db.generation, len(written) + len(deleted))
            return Loaded(db.config, saved, postings, deleted, written, db.count(conn))
    finally:
        db.close()


def parse_items(items: list[Item]) -> tuple[list[str], list[str], list[Metadata]]:
    """Ids, texts and metadata of stored items."""
    return (
        [i[0] for i in items],
        [i[1] or "" for i in items],
        [json.loads(i[2]) for i in items],
    )
