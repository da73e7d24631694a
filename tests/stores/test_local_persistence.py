"""LocalVectorStore on disk: reopening, caches, read-only opens, corruption and old formats."""

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from ragmem import (
    ConfigurationError,
    CorruptIndexError,
    LocalVectorStore,
    NotFoundError,
    StorageError,
    StoreLockedError,
)
from ragmem.testing.stores import unit_vectors

DATA = Path(__file__).parent / "data"


def _fill(store, n=30, seed=0):
    ids = [f"id-{i}" for i in range(n)]
    vectors = unit_vectors(n, dim=store.dimensions, seed=seed)
    # duplicates force score ties, which must stay broken by insertion order
    vectors[n // 2 :: 5] = vectors[0]
    store.upsert(
        ids,
        vectors,
        texts=[f"text {i}" for i in range(n)],
        metadata=[{"i": i, "tags": [f"t{i % 3}"], "even": i % 2 == 0} for i in range(n)],
    )
    return ids, vectors


def _snapshot(store, queries):
    ids = sorted(h.id for h in store.search(np.ones(store.dimensions, np.float32), k=1000)[0])
    records = store.get(ids)
    return (
        [(r.id, r.text, r.metadata, r.vector.tobytes()) for r in records],
        [[(h.id, h.score) for h in hits] for hits in store.search(queries, k=12)],
        [[h.id for h in hits] for hits in store.search(queries, k=7, where={"even": True})],
        store.count({"tags": {"$contains": "t1"}}),
    )


@pytest.mark.parametrize("compact_after", [1, 64 * 2**20])
@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_reopen_gives_the_same_answers(tmp_path, metric, compact_after):
    queries = unit_vectors(4, seed=7)
    with LocalVectorStore(8, metric=metric, path=tmp_path, compact_after=compact_after) as store:
        _, vectors = _fill(store)
        store.upsert(["id-3", "new"], vectors[:2] * 2, texts=["replaced", None])
        store.delete(["id-5", "id-17", "missing"])
        store.delete(where={"i": {"$gt": 25}})
        before = _snapshot(store, queries)
    with LocalVectorStore(8, metric=metric, path=tmp_path) as reopened:
        assert _snapshot(reopened, queries) == before
        reopened.compact()
        assert _snapshot(reopened, queries) == before
    with LocalVectorStore(8, metric=metric, path=tmp_path) as again:
        assert _snapshot(again, queries) == before
        assert again.get(["id-3"])[0].text == "replaced"


def test_compaction_keeps_relative_order_of_ties(tmp_path):
    with LocalVectorStore(4, path=tmp_path) as store:
        same = np.tile(np.array([[1, 0, 0, 0]], np.float32), (10, 1))
        store.upsert([f"d{i}" for i in range(10)], same)
        store.delete(["d0", "d2", "d4"])
        store.upsert(["d1"], same[:1])  # a replaced id keeps its row
        order = [h.id for h in store.search(same[0], k=10)[0]]
        assert order == ["d1", "d3", "d5", "d6", "d7", "d8", "d9"]
        store.compact()
        assert [h.id for h in store.search(same[0], k=10)[0]] == order
    with LocalVectorStore(4, path=tmp_path) as store:
        assert [h.id for h in store.search(same[0], k=10)[0]] == order
        store.upsert(["d0"], same[:1])
        assert [h.id for h in store.search(same[0], k=10)[0]] == [*order, "d0"]


def test_compaction_writes_the_table_cache(tmp_path):
    with LocalVectorStore(4, path=tmp_path) as store:
        _fill(store)
        assert not (tmp_path / "table.cache").exists()  # written on compact or close
        store.compact()
        assert (tmp_path / "table.cache").exists()
        store.upsert(["late"], unit_vectors(1, dim=4))
    names = {p.name for p in tmp_path.iterdir()}
    assert {"store.sqlite", "table.cache"} <= names
    assert not any(".tmp-" in n for n in names)
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 31


def test_configuration_must_match(tmp_path):
    LocalVectorStore(4, path=tmp_path).close()
    with pytest.raises(ConfigurationError, match="dimensions=4"):
        LocalVectorStore(5, path=tmp_path)
    with pytest.raises(ConfigurationError, match="metric"):
        LocalVectorStore(4, metric="l2", path=tmp_path)
    LocalVectorStore(4, path=tmp_path).close()  # the failed opens released the lock


@pytest.mark.parametrize(
    "options",
    [
        {"read_only": True},
        {"path": "x", "lock_timeout": -1},
        {"path": "x", "compact_after": 0},
        {"path": "x", "metric": "manhattan"},
    ],
)
def test_bad_options(tmp_path, options):
    if "path" in options:
        options = {**options, "path": tmp_path / options["path"]}
    with pytest.raises(ConfigurationError):
        LocalVectorStore(4, **options)


def test_refuses_a_directory_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match=r"notes\.txt"):
        LocalVectorStore(4, path=tmp_path)


def test_closed_and_read_only_stores_refuse_writes(tmp_path):
    store = LocalVectorStore(4, path=tmp_path)
    _fill(store, n=5)
    store.close()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.search(np.ones(4, np.float32), k=1)
    with LocalVectorStore(4, path=tmp_path, read_only=True) as reader:
        assert reader.count() == 5
        with pytest.raises(StorageError, match="read_only"):
            reader.upsert(["x"], np.ones((1, 4), np.float32))
        with pytest.raises(StorageError, match="read_only"):
            reader.delete(["id-1"])
        # a reader does not hold the write lock
        with LocalVectorStore(4, path=tmp_path) as writer:
            writer.delete(["id-1"])
        assert reader.count() == 5
    with pytest.raises(NotFoundError):
        LocalVectorStore(4, path=tmp_path / "absent", read_only=True)


def test_second_writer_in_the_same_process_is_refused(tmp_path):
    with LocalVectorStore(4, path=tmp_path):
        with pytest.raises(StoreLockedError) as info:
            LocalVectorStore(4, path=tmp_path, lock_timeout=0.05)
        assert str(tmp_path) in str(info.value)
    LocalVectorStore(4, path=tmp_path).close()


def test_leftovers_of_an_interrupted_compaction_are_ignored(tmp_path):
    with LocalVectorStore(4, path=tmp_path) as store:
        _fill(store, n=5)
    (tmp_path / "table.cache.tmp-99").write_bytes(b"half")
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 5
    assert not (tmp_path / "table.cache.tmp-99").exists()


# -- corruption ---------------------------------------------------------------------------------


def _store_with_every_file(path, *, index="flat"):
    """A closed store whose caches hold data and whose database holds writes made since."""
    with LocalVectorStore(4, path=path, index=index) as store:
        _fill(store, n=4)
        store.compact()
    # killed before close: these writes are in the database only
    store = LocalVectorStore(4, path=path, index=index)
    store.upsert(["a", "b"], unit_vectors(2, dim=4, seed=3), metadata=[{"k": 1}, {}])
    store.delete(["id-2"])
    store.upsert(["c"], unit_vectors(1, dim=4, seed=4), texts=["last"])
    expected = _snapshot(store, unit_vectors(3, dim=4, seed=5))
    store._files.close()  # releases the lock without saving the caches, as a crash would
    return expected


def _expect_corrupt(path, file):
    with pytest.raises(CorruptIndexError) as info:
        LocalVectorStore(4, path=path)
    assert info.value.path == str(file)
    assert file.name in str(info.value)


def _expect_whole(path, expected, index="flat"):
    with LocalVectorStore(4, path=path, index=index) as store:
        assert _snapshot(store, unit_vectors(3, dim=4, seed=5)) == expected


def test_caches_are_brought_up_to_date_from_the_database(tmp_path):
    expected = _store_with_every_file(tmp_path)
    _expect_whole(tmp_path, expected)
    _expect_whole(tmp_path, expected)  # now from the caches written on close


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_every_flipped_byte_of_a_cache_only_costs_a_rebuild(tmp_path, index):
    expected = _store_with_every_file(tmp_path, index=index)
    _expect_whole(tmp_path, expected, index)
    for name in ["table.cache", "graph.cache"] if index == "hnsw" else ["table.cache"]:
        file = tmp_path / name
        original = file.read_bytes()
        step = max(1, len(original) // 60)
        for pos in range(0, len(original), step):
            damaged = bytearray(original)
            damaged[pos] ^= 0xFF
            file.write_bytes(bytes(damaged))
            store = LocalVectorStore(4, path=tmp_path, index=index, read_only=True)
            assert _snapshot(store, unit_vectors(3, dim=4, seed=5)) == expected
            store.close()
        for size in (0, 1, len(original) // 2, len(original) - 1):
            file.write_bytes(original[:size])
            _expect_whole(tmp_path, expected, index)


def test_a_database_that_is_empty_or_not_sqlite_is_corrupt(tmp_path):
    _store_with_every_file(tmp_path)
    database = tmp_path / "store.sqlite"
    original = database.read_bytes()
    for damaged in (b"", original[:10], b"x" * len(original)):
        database.write_bytes(damaged)
        _expect_corrupt(tmp_path, database)
        with pytest.raises(CorruptIndexError):
            LocalVectorStore(4, path=tmp_path, read_only=True)


def test_a_truncated_database_is_corrupt(tmp_path):
    with LocalVectorStore(4, path=tmp_path) as store:
        store.upsert([f"{i}" for i in range(3000)], unit_vectors(3000, dim=4))
    database = tmp_path / "store.sqlite"
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 2])
    _expect_corrupt(tmp_path, database)


def test_a_missing_database_beside_its_caches_is_corrupt(tmp_path):
    _store_with_every_file(tmp_path)
    (tmp_path / "store.sqlite").unlink()
    _expect_corrupt(tmp_path, tmp_path / "store.sqlite")


def test_interrupted_creation_starts_afresh(tmp_path):
    # as if killed while the new database was written beside its final name
    (tmp_path / "store.sqlite.new-123").write_bytes(b"SQLite format 3\x00 half")
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 0
        store.upsert(["a"], unit_vectors(1, dim=4))
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 1
    assert sorted(p.name for p in tmp_path.iterdir() if "sqlite" not in p.name) == ["table.cache"]


def test_pickled_arrays_are_never_loaded(tmp_path):
    expected = _store_with_every_file(tmp_path)
    _expect_whole(tmp_path, expected)
    cache = tmp_path / "table.cache"
    data = cache.read_bytes()
    head = 8 + 12
    (length,) = struct.unpack_from("<Q", data, 8)
    header = json.loads(data[head : head + length])
    header["sections"]["vectors"]["dtype"] = "|O"
    raw = json.dumps(header).encode()
    cache.write_bytes(
        data[:8] + struct.pack("<QI", len(raw), zlib.crc32(raw)) + raw + data[head + length :]
    )
    _expect_whole(tmp_path, expected)


def test_a_store_of_the_old_format_is_refused_with_what_to_do(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(DATA / "store-0.x", old)
    before = sorted(p.name for p in old.iterdir())
    for read_only in (False, True):
        with pytest.raises(ConfigurationError, match=r"MANIFEST\.json.*ragmem index"):
            LocalVectorStore(4, path=old, read_only=read_only)
    assert sorted(p.name for p in old.iterdir()) == before  # nothing was touched


def test_a_store_rebuilt_from_the_database_takes_writes_in_place(tmp_path):
    store = LocalVectorStore(4, path=tmp_path)
    store.upsert(["only"], unit_vectors(1, dim=4))
    store._files.close()  # a crash before any cache was saved: the table comes from SQLite
    with LocalVectorStore(4, path=tmp_path) as reopened:
        reopened.upsert(["only"], unit_vectors(1, dim=4, seed=9))  # replaces its row in place
        assert reopened.count() == 1


def test_rows_replaced_after_the_cache_keep_their_place_on_reopen(tmp_path):
    with LocalVectorStore(4, path=tmp_path) as store:
        _, vectors = _fill(store, n=6)
        store.compact()
    store = LocalVectorStore(4, path=tmp_path)
    # id-4 takes id-1's vector: the tie must still be broken by id-1's earlier place
    store.upsert(["id-4", "id-1", "tail"], np.stack([vectors[1], vectors[1], vectors[1]]))
    store.upsert(["id-4"], vectors[1:2], texts=["twice"])
    expected = _snapshot(store, unit_vectors(3, dim=4, seed=5))
    store._files.close()  # a crash: the cache is two writes behind
    with LocalVectorStore(4, path=tmp_path) as reopened:
        assert _snapshot(reopened, unit_vectors(3, dim=4, seed=5)) == expected
        hits = reopened.search(vectors[1], k=3)[0]
        assert [h.id for h in hits] == ["id-1", "id-4", "tail"]
        assert reopened.get(["id-4"])[0].text == "twice"


def test_a_database_of_an_unknown_schema_is_refused(tmp_path):
    import sqlite3

    with LocalVectorStore(4, path=tmp_path) as store:
        _fill(store, n=3)
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        db.execute("DELETE FROM meta WHERE key = 'schema'")
    with pytest.raises(ConfigurationError, match="delete it and index again"):
        LocalVectorStore(4, path=tmp_path)
