import os

import pytest

from ragmem import ConfigurationError, CorruptIndexError, StorageError
from ragmem.retrievers import BM25Retriever, TextAnalyzer


def build():
    bm25 = BM25Retriever(k1=1.5, b=0.6, tokenizer=TextAnalyzer(stopwords=None))
    bm25.add(
        ["a", "b", "c"],
        ["red fox", "lazy dog", "quick red dog"],
        metadata=[{"n": 1}, {"n": 2}, {"n": 3}],
    )
    bm25.add(["d"], ["red panda"])
    bm25.delete(["b"])
    return bm25


def test_round_trip_gives_identical_results(tmp_path):
    bm25 = build()
    path = tmp_path / "index.bm25"
    bm25.save(path)
    loaded = BM25Retriever.load(path)
    assert (loaded.k1, loaded.b, len(loaded)) == (1.5, 0.6, 3)
    for query in ["red", "dog", "the red dog"]:
        assert loaded.retrieve(query, k=5) == bm25.retrieve(query, k=5)
    assert loaded.retrieve("red", where={"n": {"$gt": 1}}) == bm25.retrieve(
        "red", where={"n": {"$gt": 1}}
    )
    # the loaded index keeps working incrementally
    loaded.add(["e"], ["red red red"])
    loaded.delete(["a"])
    assert loaded.retrieve("red", k=5)[0].id == "e"


def test_empty_index_round_trip(tmp_path):
    BM25Retriever().save(tmp_path / "empty")
    assert len(BM25Retriever.load(tmp_path / "empty")) == 0


def test_corruption_is_detected(tmp_path):
    path = tmp_path / "index.bm25"
    build().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptIndexError, match=r"index\.bm25"):
        BM25Retriever.load(path)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptIndexError):
        BM25Retriever.load(path)
    path.write_bytes(b"not an index at all, just some bytes" * 3)
    with pytest.raises(CorruptIndexError):
        BM25Retriever.load(path)
    with pytest.raises(StorageError):
        BM25Retriever.load(tmp_path / "missing")


def test_crash_during_save_keeps_the_last_good_file(tmp_path, monkeypatch):
    path = tmp_path / "index.bm25"
    good = build()
    good.save(path)
    changed = build()
    changed.add(["z"], ["zebra"])

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="power cut"):
        changed.save(path)
    monkeypatch.undo()
    assert BM25Retriever.load(path).retrieve("red") == good.retrieve("red")
    assert [p.name for p in tmp_path.iterdir()] == ["index.bm25"]  # no temp file left


def test_custom_tokenizer_must_be_given_back(tmp_path):
    bm25 = BM25Retriever(tokenizer=str.split)
    bm25.add(["a"], ["Hello World"])
    bm25.save(tmp_path / "i")
    with pytest.raises(ConfigurationError, match="tokenizer"):
        BM25Retriever.load(tmp_path / "i")
    assert [
        h.id for h in BM25Retriever.load(tmp_path / "i", tokenizer=str.split).retrieve("World")
    ] == ["a"]


def log_of(path):
    return path.with_name(path.name + ".log")


def all_hits(bm25, where=None):
    return [bm25.retrieve(q, k=10, where=where) for q in ["red", "dog", "panda zebra", "fox"]]


def test_saving_again_appends_only_the_new_writes(tmp_path):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    snapshot = path.stat()
    bm25.add(["e", "a"], ["red zebra", "grey fox"], metadata=[{"n": 5}, {"n": 9}])
    bm25.delete(where={"n": 3})
    bm25.save(path)
    bm25.add(["f"], ["panda"])
    bm25.save(path)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (snapshot.st_ino, snapshot.st_mtime_ns)
    assert log_of(path).stat().st_size > 0
    loaded = BM25Retriever.load(path)
    assert len(loaded) == len(bm25) == 4
    assert all_hits(loaded) == all_hits(bm25)
    assert all_hits(loaded, where={"n": {"$gte": 5}}) == all_hits(bm25, where={"n": {"$gte": 5}})
    # the loaded index carries on appending to the same log
    loaded.delete(["e"])
    loaded.save(path)
    assert path.stat().st_ino == snapshot.st_ino
    bm25.delete(["e"])
    assert all_hits(BM25Retriever.load(path)) == all_hits(bm25)


def test_a_torn_log_append_loses_only_that_unacknowledged_save(tmp_path):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    bm25.add(["e"], ["red zebra"])
    bm25.save(path)
    expected = all_hits(bm25)
    before = log_of(path).stat().st_size
    bm25.add(["f"], ["zebra zebra zebra"])
    bm25.save(path)
    log = log_of(path)
    log.write_bytes(log.read_bytes()[: before + (log.stat().st_size - before) // 2])
    loaded = BM25Retriever.load(path)
    assert all_hits(loaded) == expected
    loaded.add(["g"], ["panda"])  # the torn tail is cut off by the next save
    loaded.save(path)
    assert [h.id for h in BM25Retriever.load(path).retrieve("panda")] == ["g", "d"]


def test_a_damaged_log_record_is_reported_with_the_log_path(tmp_path):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    bm25.add(["e"], ["red zebra"])
    bm25.save(path)
    bm25.add(["f"], ["blue whale"])
    bm25.save(path)
    log = log_of(path)
    data = bytearray(log.read_bytes())
    data[40] ^= 0xFF  # inside the first record
    log.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match=r"index\.bm25\.log"):
        BM25Retriever.load(path)


def test_a_log_older_than_its_snapshot_is_ignored(tmp_path, monkeypatch):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    bm25.add(["e"], ["red zebra"])
    bm25.save(path)
    stale = log_of(path).read_bytes()
    other = build()
    other.add(["z"], ["zebra"])
    other.save(path)  # a full save, as after a crash before the old log was removed
    log_of(path).write_bytes(stale)
    loaded = BM25Retriever.load(path)
    assert all_hits(loaded) == all_hits(other)
    loaded.add(["y"], ["panda"])
    loaded.save(path)  # rewrites the snapshot: the stale log is not appended to
    other.add(["y"], ["panda"])
    assert all_hits(BM25Retriever.load(path)) == all_hits(other)


def test_another_writer_makes_the_next_save_a_full_one(tmp_path):
    path = tmp_path / "index.bm25"
    build().save(path)
    first, second = BM25Retriever.load(path), BM25Retriever.load(path)
    first.add(["e"], ["red zebra"])
    first.save(path)
    second.add(["f"], ["blue whale"])
    second.save(path)  # the files changed under it: it writes its own state whole
    assert all_hits(BM25Retriever.load(path)) == all_hits(second)


def test_a_growing_log_is_folded_into_a_new_snapshot(tmp_path):
    path = tmp_path / "index.bm25"
    bm25 = build()
    bm25.save(path)
    first_inode = path.stat().st_ino
    for i in range(60):  # 25 kB of text per save: the log passes 1 MiB
        bm25.add([f"big{i}"], ["word " * 5000 + f"tail{i}"])
        bm25.save(path)
    assert path.stat().st_ino != first_inode
    assert log_of(path).stat().st_size < 1_100_000
    assert all_hits(BM25Retriever.load(path)) == all_hits(bm25)
    assert len(BM25Retriever.load(path)) == len(bm25) == 63
