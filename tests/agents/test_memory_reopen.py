"""A persisted Memory, closed and reopened at random points, recalls exactly like an in-memory
Memory fed the same operations: the same hits, scores and ``explain``."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem import LocalVectorStore
from ragmem.agents import Memory
from tests.agents.helpers import Clock, TokenHashingEmbedder

WORDS = ["tea", "coffee", "paris", "rome", "cat", "dog", "piano", "chess", "blue", "green"]
DIMS = 32
_names = itertools.count()

op = st.one_of(
    st.tuples(
        st.just("add"),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
        st.sampled_from(["ana", "bob"]),
        st.sampled_from(["s1", "s2"]),
        st.sampled_from([None, "city"]),
    ),
    st.tuples(st.just("update"), st.integers(0, 50), st.lists(st.sampled_from(WORDS), min_size=1)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("forget"), st.sampled_from(["tea", "cat"])),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("search"), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)),
)


def local(path):
    if path is None:
        return LocalVectorStore(DIMS)
    return LocalVectorStore(DIMS, path=path / "vectors")


def qdrant(path):
    pytest.importorskip("qdrant_client")
    from ragmem.stores.qdrant import QdrantVectorStore

    if path is None:
        return QdrantVectorStore(collection="m", dimensions=DIMS, location=":memory:")
    return QdrantVectorStore(collection="m", dimensions=DIMS, path=str(path / "qdrant"))


def _open(path, clock, make_store):
    return Memory(path, embedder=TokenHashingEmbedder(DIMS), store=make_store(path), clock=clock)


def _same(persisted_hits, memory_hits, ids):
    assert [ids[h.id] for h in persisted_hits] == [h.id for h in memory_hits]
    for a, b in zip(persisted_hits, memory_hits):
        assert a.text == b.text
        assert a.score == pytest.approx(b.score, rel=1e-5, abs=1e-9)
        assert a.explain.keys() == b.explain.keys()
        for name in a.explain:
            if name == "ranked_above":  # an id: the two memories' ids differ
                assert ids[a.explain[name]] == b.explain[name]
            else:
                assert a.explain[name] == pytest.approx(b.explain[name], rel=1e-5, abs=1e-6)
        newer = a.metadata.get("possibly_superseded_by")
        assert (newer and ids[newer]) == b.metadata.get("possibly_superseded_by")


def test_maxsim_survives_a_reopen(tmp_path):
    clock = Clock()
    memory = _open(tmp_path, clock, local)
    memory.add("Ana plays the piano every evening", user_id="ana")
    memory.add("The weather in Rome was sunny", user_id="ana")
    before = memory.search("piano evening", user_id="ana", k=2)
    memory.close()
    memory = _open(tmp_path, clock, local)
    after = memory.search("piano evening", user_id="ana", k=2)
    memory.close()
    assert before[0].explain["maxsim"] > 0
    assert [(h.id, h.explain["maxsim"]) for h in after] == pytest.approx(
        [(h.id, h.explain["maxsim"]) for h in before]
    )


@pytest.mark.parametrize("make_store", [local, qdrant], ids=["local", "qdrant"])
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_reopened_memory_recalls_like_an_in_memory_one(tmp_path_factory, make_store, ops):
    path = tmp_path_factory.mktemp(f"m{next(_names)}")
    clock = Clock()
    persisted = _open(path, clock, make_store)
    reference = _open(None, clock, make_store)
    ids: dict[str, str] = {}  # persisted id -> in-memory id
    order: list[str] = []
    try:
        for step in ops:
            clock.now += 1
            kind = step[0]
            if kind == "add":
                _, words, user, session, key = step
                text = " ".join(words)
                options = {"user_id": user, "session_id": session, "key": key}
                a = persisted.add(text, metadata={"w": words[0]}, **options)
                b = reference.add(text, metadata={"w": words[0]}, **options)
                assert [c.event for c in a] == [c.event for c in b]
                if a[0].event != "MERGE":
                    ids[a[0].item.id] = b[0].item.id
                    order.append(a[0].item.id)
            elif kind in ("update", "delete") and order:
                target = order[step[1] % len(order)]
                if persisted.get(target).status == "deleted":
                    continue
                if kind == "update":
                    persisted.update(target, " ".join(step[2]))
                    reference.update(ids[target], " ".join(step[2]))
                else:
                    persisted.delete(target)
                    reference.delete(ids[target])
            elif kind == "forget":
                assert persisted.forget(user_id="ana", where={"w": step[1]}) == reference.forget(
                    user_id="ana", where={"w": step[1]}
                )
            elif kind == "reopen":
                persisted.close()
                persisted = _open(path, clock, make_store)
            elif kind == "search":
                query = " ".join(step[1])
                for user in ("ana", "bob"):
                    _same(
                        persisted.search(query, user_id=user, k=5),
                        reference.search(query, user_id=user, k=5),
                        ids,
                    )
        persisted.close()
        persisted = _open(path, clock, make_store)
        for user in ("ana", "bob"):
            _same(
                persisted.search("tea cat piano", user_id=user, k=8),
                reference.search("tea cat piano", user_id=user, k=8),
                ids,
            )
    finally:
        persisted.close()
        reference.close()
