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
