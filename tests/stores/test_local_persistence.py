"""LocalVectorStore on disk: reopening, compaction, read-only opens, corruption and torn logs."""

import json
import zlib

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


def test_compaction_replaces_files(tmp_path):
    with LocalVectorStore(4, path=tmp_path) as store:
        _fill(store)
        first = sorted(p.name for p in tmp_path.iterdir())
        store.compact()
        second = sorted(p.name for p in tmp_path.iterdir())
    assert first != second
    assert len(second) == len(first) == 5  # manifest, vectors, records, log, LOCK
    loaded = np.load(tmp_path / next(n for n in second if n.endswith(".npy")), allow_pickle=False)
    assert loaded.shape == (30, 4)


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
    (tmp_path / "vectors-0000000099.npy").write_bytes(b"half")
    (tmp_path / "MANIFEST.json.tmp").write_text("{")
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 5
    assert not (tmp_path / "vectors-0000000099.npy").exists()


# -- corruption ---------------------------------------------------------------------------------


def _store_with_every_file(path):
    """A closed store whose snapshot and log both hold data."""
    with LocalVectorStore(4, path=path) as store:
        _fill(store, n=4)
        store.compact()
        store.upsert(["a", "b"], unit_vectors(2, dim=4, seed=3), metadata=[{"k": 1}, {}])
        store.delete(["id-2"])
        store.upsert(["c"], unit_vectors(1, dim=4, seed=4), texts=["last"])
    return {p.name.split("-")[0].split(".")[0]: p for p in path.iterdir() if p.name != "LOCK"}


def _expect_corrupt(path, file):
    with pytest.raises(CorruptIndexError) as info:
        LocalVectorStore(4, path=path)
    assert info.value.path == str(file)
    assert file.name in str(info.value)


@pytest.mark.parametrize("kind", ["MANIFEST", "vectors", "records", "wal"])
def test_every_flipped_byte_is_detected(tmp_path, kind):
    file = _store_with_every_file(tmp_path)[kind]
    original = file.read_bytes()
    step = max(1, len(original) // 150)
    for pos in range(0, len(original), step):
        damaged = bytearray(original)
        damaged[pos] ^= 0xFF
        file.write_bytes(bytes(damaged))
        _expect_corrupt(tmp_path, file)
    file.write_bytes(original)
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 6


@pytest.mark.parametrize("kind", ["MANIFEST", "vectors", "records"])
def test_truncated_snapshot_files_are_detected(tmp_path, kind):
    file = _store_with_every_file(tmp_path)[kind]
    original = file.read_bytes()
    for size in (0, 1, len(original) // 2, len(original) - 1):
        file.write_bytes(original[:size])
        _expect_corrupt(tmp_path, file)


@pytest.mark.parametrize("kind", ["MANIFEST", "vectors", "records", "wal"])
def test_missing_files_are_named(tmp_path, kind):
    file = _store_with_every_file(tmp_path)[kind]
    file.unlink()
    _expect_corrupt(tmp_path, file)


def test_interrupted_creation_starts_afresh(tmp_path):
    LocalVectorStore(4, path=tmp_path).close()
    # as if killed while writing the first manifest
    (tmp_path / "MANIFEST.json").rename(tmp_path / "MANIFEST.json.tmp")
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 0
        store.upsert(["a"], unit_vectors(1, dim=4))
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == 1


def test_torn_final_log_record_is_dropped(tmp_path):
    log = _store_with_every_file(tmp_path)["wal"]
    original = log.read_bytes()
    with LocalVectorStore(4, path=tmp_path) as store:
        full = store.count()
    # the last record ("c") cut anywhere: a crash mid-append, never acknowledged
    last_record = original.rindex(b"RGWR")
    for size in (last_record + 1, last_record + 15, last_record + 16, len(original) - 1):
        log.write_bytes(original[:size])
        with LocalVectorStore(4, path=tmp_path) as store:
            assert store.count() == full - 1
            with pytest.raises(NotFoundError):
                store.get(["c"])
            assert store.get(["a"])[0].metadata == {"k": 1}
            store.upsert(["d"], unit_vectors(1, dim=4))  # appends after the good prefix
        with LocalVectorStore(4, path=tmp_path) as store:
            assert store.count() == full
    # zeros a filesystem allocated but never wrote also count as a torn tail
    log.write_bytes(original + bytes(40))
    with LocalVectorStore(4, path=tmp_path) as store:
        assert store.count() == full


def test_log_truncated_into_its_header_is_corrupt(tmp_path):
    log = _store_with_every_file(tmp_path)["wal"]
    log.write_bytes(log.read_bytes()[:10])
    _expect_corrupt(tmp_path, log)


def test_pickled_vectors_are_never_loaded(tmp_path):
    files = _store_with_every_file(tmp_path)
    vectors, manifest_path = files["vectors"], files["MANIFEST"]
    np.save(vectors, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    manifest = json.loads(manifest_path.read_text())
    data = vectors.read_bytes()
    manifest["vectors"].update(size=len(data), crc32=zlib.crc32(data))
    manifest.pop("checksum")
    manifest["checksum"] = zlib.crc32(json.dumps(manifest, sort_keys=True).encode())
    manifest_path.write_text(json.dumps(manifest))
    _expect_corrupt(tmp_path, vectors)
