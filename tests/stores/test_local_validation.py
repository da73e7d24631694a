"""Hostile input: a write that cannot be stored is refused before anything is written.

Every refused call raises ``InvalidInputError`` naming the field, leaves no trace, and
the store keeps working and reopens with exactly the accepted writes.
"""

import errno
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem import InvalidInputError, LocalVectorStore, StorageError
from ragmem.retrievers import BM25Retriever
from ragmem.types import Metadata

HOSTILE_METADATA = [
    ({"n": 10**400}, "metadata\\[0\\]\\['n'\\]"),
    ({"n": -(2**64)}, "metadata\\[0\\]\\['n'\\]"),
    ({"n": [1, 2**70]}, "metadata\\[0\\]\\['n'\\]"),
    ({"s": "bad \ud800 text"}, "metadata\\[0\\]\\['s'\\]"),
    ({"k\udfff": 1}, "metadata\\[0\\] key"),
    ({"x": float("inf")}, "'x'"),
    ({"x": float("nan")}, "'x'"),
    ({5: "non-string key"}, "keys"),
    ({"deep": {"a": {"b": 1}}}, "'deep'"),
]


def _one(value=1.0):
    return np.full((1, 4), value, np.float32)


@pytest.mark.parametrize(("metadata", "field"), HOSTILE_METADATA)
def test_unstorable_metadata_is_refused_and_leaves_no_trace(tmp_path, metadata, field):
    with LocalVectorStore(4, path=tmp_path) as store:
        store.upsert(["ok"], _one(), metadata=[{"n": 1}])
        with pytest.raises(InvalidInputError, match=field):
            store.upsert(["bad"], _one(), metadata=[metadata])
        assert store.count() == 1
        store.upsert(["later"], _one(2.0), metadata=[{"n": 2**63 - 1}])
        assert store.count({"n": {"$gt": 1}}) == 1
    with LocalVectorStore(4, path=tmp_path) as store:
        assert sorted(r.id for r in store.get(["ok", "later"])) == ["later", "ok"]
        assert store.count() == 2


@pytest.mark.parametrize(
    ("ids", "texts", "field"),
    [
        (["a\ud800"], ["t"], "ids\\[0\\]"),
        (["a", "b"], ["fine", "\udc80"], "texts\\[1\\]"),
    ],
)
def test_ids_and_texts_without_a_utf8_form_are_refused(tmp_path, ids, texts, field):
    with LocalVectorStore(4, path=tmp_path) as store:
        with pytest.raises(InvalidInputError, match=field):
            store.upsert(ids, np.ones((len(ids), 4), np.float32), texts=texts)
        assert store.count() == 0
    bm25 = BM25Retriever()
    with pytest.raises(InvalidInputError, match=field):
        bm25.add(ids, texts)
    assert len(bm25) == 0
    bm25.save(tmp_path / "k.bm25")
    assert len(BM25Retriever.load(tmp_path / "k.bm25")) == 0


def test_ids_none_is_a_typed_error():
    store = LocalVectorStore(4)
    with pytest.raises(InvalidInputError, match="ids"):
        store.upsert(None, _one())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="ids"):
        store.get(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="ids"):
        BM25Retriever().add(None, ["text"])  # type: ignore[arg-type]


def test_cosine_scores_of_extreme_magnitudes_are_right():
    store = LocalVectorStore(2)
    store.upsert(
        ["tiny", "huge", "zero"],
        np.array([[1e-25, 1e-26], [3e19, 3e19], [0, 0]], np.float32),
    )
    hits = {h.id: h.score for h in store.search(np.array([1, 0], np.float32), k=3)[0]}
    assert hits["tiny"] == pytest.approx(1 / math.sqrt(1.01), rel=1e-6)
    assert hits["huge"] == pytest.approx(math.sqrt(0.5), rel=1e-6)
    assert hits["zero"] == 0.0
    extreme = np.array([[3e-39, 0.0], [3e38, 3e38]], np.float32)
    for query in extreme:
        (best, *_) = store.search(query, k=3)[0]
        assert math.isfinite(best.score)
        assert best.score <= 1.0 + 1e-6


def test_disk_full_while_saving_caches_is_a_storage_error(tmp_path, monkeypatch):
    store = LocalVectorStore(4, path=tmp_path)
    store.upsert(["a"], _one())
    real_open = open

    def full(file, mode="r", *args, **kwargs):
        if "w" in mode and ".tmp-" in str(file):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(StorageError, match="No space left"):
        store.compact()
    monkeypatch.undo()
    store.upsert(["b"], _one(2.0))  # the store keeps working, and its writes are durable
    store._files.close()  # a crash: no caches are saved
    with LocalVectorStore(4, path=tmp_path) as reopened:
        assert reopened.count() == 2
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


_scalars = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),  # may hold lone surrogates
    st.booleans(),
    st.none(),
)
_metadata = st.dictionaries(
    st.one_of(st.text(max_size=4), st.integers(0, 3)),
    st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.text(), _scalars)),
    max_size=3,
)
_write = st.tuples(st.sampled_from(["a", "b", "c\ud800", "d"]), st.text(max_size=6), _metadata)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=st.lists(_write, min_size=1, max_size=8))
def test_hostile_writes_leave_exactly_the_accepted_ones(tmp_path_factory, writes):
    path = tmp_path_factory.mktemp("store")
    accepted: dict[str, tuple[str | None, Metadata]] = {}
    bm25 = BM25Retriever()
    with LocalVectorStore(4, path=path) as store:
        for i, (id_, text, metadata) in enumerate(writes):
            try:
                store.upsert([id_], _one(i + 1.0), texts=[text], metadata=[metadata])
            except InvalidInputError:
                with pytest.raises(InvalidInputError):
                    bm25.add([id_], [text], metadata=[metadata])
                continue
            bm25.add([id_], [text], metadata=[metadata])
            accepted[id_] = (text, store.get([id_])[0].metadata)
        bm25.save(path / "keyword.bm25")
    with LocalVectorStore(4, path=path) as store:
        assert store.count() == len(accepted)
        got = {r.id: (r.text, r.metadata) for r in store.get(list(accepted))}
        assert got == accepted
    loaded = BM25Retriever.load(path / "keyword.bm25")
    assert len(loaded) == len(accepted)
