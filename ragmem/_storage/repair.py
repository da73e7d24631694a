"""Repair a damaged database: keep every row that reads back intact, report the rest.

``ragmem repair PATH`` (and :func:`repair`) accepts a store directory (``store.sqlite``),
a saved BM25 index file, a RAG pipeline index directory (``ragmem.json``), or the damaged
database file itself, as a ``CorruptIndexError`` names it. For each database it:

1. takes the write lock (another process using the index makes it fail, changing nothing)
   and copies the file, with its WAL, to ``NAME.damaged-YYYYmmddTHHMMSS``;
2. runs ``PRAGMA integrity_check`` and reads every row it can reach (forward and backward
   through the table both ways and through its id index, then each row on its own), checking each
   row's CRC-32, its text encoding, its metadata JSON and its vector's length;
3. writes the intact rows, in their order, to a fresh database and renames it over the
   damaged one (the caches derived from it are deleted, so they are rebuilt on open);
4. reports each dropped row (its id when any index still names it) and why.

A pipeline's BM25 index is derived from its vector store: when the store lost rows, or the
BM25 file is damaged, the BM25 file is set aside and rebuilt on the next open, and every
source that lost chunks is dropped from the manifest (with its surviving chunks), so the
next ``ragmem index`` indexes it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem._storage.cache_file import fsync_dir
from ragmem._storage.database import Database, Item
from ragmem._storage.database import _crc as item_checksum
from ragmem.errors import ConfigurationError, CorruptIndexError, StorageError, StoreLockedError

if TYPE_CHECKING:
    import argparse

__all__ = ["Dropped", "Repaired", "add_command", "repair", "repair_database"]

STORE_DATABASE = "store.sqlite"
_STORE_CACHES = ("table.cache", "graph.cache")
_PIPELINE_CONFIG = "ragmem.json"
_PIPELINE_KEYWORD = "keyword.bm25"
_MANIFEST = "manifest.json"
_MEMORY_LEDGER = "memory.sqlite"
_STORE_KIND = "ragmem-local-store"
# every way to reach a row: a damaged page stops one scan, not the others
_SCANS = (
    "SELECT seq, id FROM items ORDER BY seq",
    "SELECT seq, id FROM items ORDER BY seq DESC",
    "SELECT seq, id FROM items INDEXED BY sqlite_autoindex_items_1",
)


@dataclass
class Dropped:
    """A row that could not be kept: its id (None when no index names it), its position
    in insertion order (1 for the first row found), and why."""

    id: str | None
    position: int
    reason: str


@dataclass
class Repaired:
    """What :func:`repair_database` found and did for one database file.

    ``damaged`` is False when the check found nothing: then nothing was changed and
    ``backup`` is None. ``removed`` lists the caches and derived files deleted.
    """

    path: Path
    kept: int
    dropped: list[Dropped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    backup: Path | None = None
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        return bool(self.dropped or self.problems)


def repair(target: str | os.PathLike[str]) -> list[Repaired]:
    """Check and repair the databases of a store, a BM25 index or a pipeline index.

    Args:
        target: a store directory, a pipeline index directory, a BM25 index file, or a
            database file inside one of them.

    Returns:
        One report per database checked.

    Raises:
        StorageError: ``target`` holds no ragmem database.
        ConfigurationError: ``target`` is (inside) an agent memory directory.
        StoreLockedError: another process has the index open for writing.
        CorruptIndexError: a database is damaged beyond salvage (nothing was changed).

    Example:
        >>> from ragmem._storage.repair import repair
        >>> for report in repair("my-index"):  # doctest: +SKIP
        ...     print(report.path, report.kept, [d.id for d in report.dropped])
    """
    path = Path(target).absolute()
    for place in (path, path.parent, path.parent.parent):
        if (place / _MEMORY_LEDGER).exists():
            raise ConfigurationError(
                f"{place} is an agent memory: its vector store is derived from the ledger "
                f"{_MEMORY_LEDGER}, which `ragmem repair` does not handle; see "
                "docs/reliability.md"
            )
    if path.is_file():
        parent = path.parent
        if path.name == STORE_DATABASE:
            pipeline = parent.parent if parent.name == "vectors" else None
            if pipeline is not None and (pipeline / _PIPELINE_CONFIG).exists():
                return _repair_pipeline(pipeline)
            return [_repair_store(parent)]
        if path.name == _PIPELINE_KEYWORD and (parent / _PIPELINE_CONFIG).exists():
            return _repair_pipeline(parent)
        return [repair_database(path, caches=[path.with_name(path.name + ".postings")])]
    if (path / _PIPELINE_CONFIG).exists():
        return _repair_pipeline(path)
    if (path / STORE_DATABASE).exists():
        return [_repair_store(path)]
    raise StorageError(
        f"{path} holds no ragmem database (a store directory with {STORE_DATABASE}, "
        "a BM25 index file, or an index directory made by `ragmem index`)"
    )


def _repair_store(directory: Path) -> Repaired:
    return repair_database(
        directory / STORE_DATABASE, caches=[directory / name for name in _STORE_CACHES]
    )


def _repair_pipeline(directory: Path) -> list[Repaired]:
    from ragmem.ingest import Manifest

    vectors = directory / "vectors"
    store = _repair_store(vectors)
    reports = [store]
    keyword = directory / _PIPELINE_KEYWORD
    if keyword.exists():
        reports.append(repair_database(keyword, caches=[], check_only=True))
    if not any(r.damaged for r in reports):
        return reports
    # the keyword index is derived from the store: set it aside, the pipeline rebuilds it
    if keyword.exists():
        reports[-1].backup = _backup_name(keyword)
        os.replace(keyword, reports[-1].backup)
    postings = keyword.with_name(keyword.name + ".postings")
    if postings.exists():
        postings.unlink()
        reports[-1].removed.append(postings)
    reports[-1].notes.append(f"{keyword.name} is rebuilt from the store on the next open")
    if store.damaged:
        manifest = Manifest(directory / _MANIFEST)
        lost = set(manifest.chunk_ids()) - set(_store_ids(vectors / STORE_DATABASE))
        hurt = sorted(key for key, e in manifest.entries.items() if lost & set(e["chunks"]))
        orphans = [c for key in hurt for c in manifest.entries[key]["chunks"] if c not in lost]
        for key in hurt:
            del manifest.entries[key]
        manifest.save()
        if orphans:  # the surviving chunks of a source that is indexed again
            _delete_rows(vectors / STORE_DATABASE, orphans)
        if hurt:
            store.notes.append(
                f"{len(hurt)} source(s) lost chunks and were dropped from the manifest, "
                f"with their other chunks; run `ragmem index` on them again: {', '.join(hurt)}"
            )
    return reports


def _store_ids(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT id FROM items")]


def _delete_rows(path: Path, ids: list[str]) -> None:
    """Delete rows from a repaired database, as the store would (one transaction)."""
    db = Database(path, kind=_STORE_KIND, config={})
    try:
        with db.write() as conn:
            db.delete(conn, ids)
    finally:
        db.close()


def repair_database(path: Path, *, caches: list[Path], check_only: bool = False) -> Repaired:
    """Check one ragmem database file and, if it is damaged, replace it by its intact rows.

    Args:
        path: the database (``store.sqlite`` or a BM25 index file).
        caches: files derived from it, deleted when it is repaired.
        check_only: only check and report; change nothing.

    Raises:
        StoreLockedError: another process holds the write lock.
        CorruptIndexError: nothing could be salvaged (the file is left as it was).
    """
    path = Path(path).absolute()
    if not path.is_file():
        raise StorageError(f"no ragmem database at {path}")
    lock = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        lock.execute("BEGIN IMMEDIATE")  # keeps writers out while the rows are copied
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            lock.close()
            raise StoreLockedError(path) from exc
        # else too damaged to lock, and so to be used by anyone: go on
    try:
        # read a file cut short too (SQLite otherwise refuses one shorter than its header
        # says); this connection never writes
        lock.execute("PRAGMA writable_schema = ON")
        lock.text_factory = bytes  # decode each row on its own: one bad text drops one row
        meta, items, report = _salvage(lock, path)
        if check_only or not report.damaged:
            return report
        if meta is None or not items:
            why = "; ".join(report.problems[:3]) or "no row reads back intact"
            raise CorruptIndexError(
                path,
                f"nothing could be salvaged ({why}); the file was left as it was. Restore "
                "it from a backup, or delete the index and build it again",
            )
        report.backup = _backup(path)
        fresh = _write_fresh(path, meta, items)
    finally:
        lock.close()
    for suffix in ("-wal", "-shm"):  # they belong to the damaged file
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(fresh, path)
    fsync_dir(path.parent)
    for cache in caches:
        if cache.exists():
            cache.unlink()
            report.removed.append(cache)
    return report


def _salvage(
    db: sqlite3.Connection, path: Path
) -> tuple[dict[str, str] | None, list[Item], Repaired]:
    report = Repaired(path, kept=0)
    try:
        problems = [_text(r[0]) for r in db.execute("PRAGMA integrity_check(100)")]
        report.problems = [p for p in problems if p != "ok"]
    except sqlite3.DatabaseError as exc:
        report.problems = [f"integrity_check failed: {exc}"]
    try:
        meta = {_text(k): _text(v) for k, v in db.execute("SELECT key, value FROM meta")}
        config = json.loads(meta["config"])
    except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
        report.problems.append(f"the settings (meta table) cannot be read: {exc}")
        return None, [], report
    seqs: dict[int, bytes | None] = {}  # the id as an index holds it, if any does
    stopped = 0
    for scan in _SCANS:
        try:
            for seq, id_ in db.execute(scan):
                if isinstance(seq, int) and (isinstance(id_, bytes) or seq not in seqs):
                    seqs[seq] = id_
        except sqlite3.DatabaseError:
            stopped += 1
    if stopped == len(_SCANS):
        report.notes.append(
            "parts of the table and of its id index cannot be read: rows stored there are "
            "lost without a trace and are not listed above"
        )
    items: list[Item] = []
    seen: set[str] = set()
    width = 4 * int(config["dimensions"]) if meta.get("kind") == _STORE_KIND else None
    for position, seq in enumerate(sorted(seqs), 1):
        try:
            item = _row(db, seq, width)
        except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
            raw = seqs[seq]
            id_ = None if raw is None else raw.decode("utf-8", "replace")
            report.dropped.append(Dropped(id_, position, str(exc) or type(exc).__name__))
            continue
        if item[0] in seen:
            report.dropped.append(Dropped(item[0], position, "a second row with this id"))
            continue
        seen.add(item[0])
        items.append(item)
    report.kept = len(items)
    return meta, items, report


def _row(db: sqlite3.Connection, seq: int, width: int | None) -> Item:
    """The row ``seq`` in its stored form, or ValueError saying why it cannot be kept."""
    query = "SELECT id, text, metadata, vector, crc FROM items WHERE seq = ?"
    found = db.execute(query, (seq,)).fetchone()
    if found is None:
        raise ValueError("an index names it, but the table has no such row")
    raw_id, raw_text, raw_metadata, vector, crc = found
    try:
        item: Item = (_text(raw_id), _maybe_text(raw_text), _text(raw_metadata), vector)
    except UnicodeDecodeError as exc:
        raise ValueError(f"a text is not valid UTF-8 ({exc.reason})") from None
    if vector is not None and not isinstance(vector, bytes):
        raise ValueError("its vector is not a blob")
    if item_checksum(item) != crc:
        raise ValueError("fails its checksum")
    if not isinstance(json.loads(item[2]), dict):
        raise ValueError("its metadata is not a JSON object")
    if width is not None and len(vector or b"") != width:
        raise ValueError(f"its vector has {len(vector or b'')} bytes, not {width}")
    return item


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _maybe_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _backup_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    backup = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    return backup


def _backup(path: Path) -> Path:
    """Copy the damaged file, and its WAL, to ``NAME.damaged-TIME`` (and ``...-wal``)."""
    backup = _backup_name(path)
    shutil.copyfile(path, backup)
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        shutil.copyfile(wal, f"{backup}-wal")
    fsync_dir(path.parent)
    return backup


def _write_fresh(path: Path, meta: dict[str, str], items: list[Item]) -> Path:
    """A new database beside ``path`` with the same settings and ``items`` (one transaction)."""
    fresh = path.with_name(f"{path.name}.repaired-{os.getpid()}")
    for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        leftover.unlink(missing_ok=True)
    db = Database(fresh, kind=meta["kind"], config=json.loads(meta["config"]))
    try:
        with db.write() as conn:
            db.upsert(conn, items)
    finally:
        db.close()
    # fold the WAL in, so the single file renamed into place holds everything
    with contextlib.closing(sqlite3.connect(fresh, isolation_level=None)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{fresh}{suffix}").unlink(missing_ok=True)
    with open(fresh, "rb+") as fh:
        os.fsync(fh.fileno())
    return fresh


# -- the command line ------------------------------------------------------------------------


def add_command(commands: Any) -> None:
    """Register ``ragmem repair PATH`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "repair",
        help="keep every intact row of a damaged index, and report the rows dropped",
        description="Check the databases of an index and replace a damaged one by the rows "
        "that read back intact; the damaged file is kept beside it as NAME.damaged-TIME. "
        "Close every process using the index first.",
    )
    parser.add_argument(
        "path", help="index folder, store folder, BM25 index file, or the damaged file"
    )
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    for report in repair(args.path):
        if report.damaged:
            print(f"{report.path}: kept {report.kept} rows, dropped {len(report.dropped)}")
        else:
            print(f"{report.path}: no damage found ({report.kept} rows)")
        for problem in report.problems[:20]:
            print(f"  found: {problem}")
        for dropped in report.dropped:
            name = "(id unknown)" if dropped.id is None else repr(dropped.id)
            print(f"  dropped row {dropped.position} {name}: {dropped.reason}")
        if report.backup is not None:
            print(f"  the file as it was is kept as {report.backup}")
        for removed in report.removed:
            print(f"  removed {removed.name} (rebuilt on the next open)")
        for note in report.notes:
            print(f"  {note}")
    return 0
