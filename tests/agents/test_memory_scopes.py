"""A search for one scope never returns another scope's memories, on every store adapter."""

import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem import HashingEmbedder, LocalVectorStore
from ragmem.agents import Memory

WORDS = ["tea", "coffee", "paris", "rome", "cat", "dog", "piano", "chess", "blue", "green"]


def local_store(dims):
    return LocalVectorStore(dimensions=dims)


def qdrant_store(dims):
    pytest.importorskip("qdrant_client")
    from ragmem.stores.qdrant import QdrantVectorStore

    return QdrantVectorStore(
        collection=f"m{uuid.uuid4().hex}", dimensions=dims, location=":memory:"
    )


def chroma_store(dims):
    pytest.importorskip("chromadb")
    from ragmem.stores.chroma import ChromaVectorStore

    return ChromaVectorStore(collection=f"m{uuid.uuid4().hex}", dimensions=dims)


entries = st.lists(
    st.tuples(
        st.sampled_from(["ana", "bob", "cy"]),
        st.sampled_from([None, "agent-1", "agent-2"]),
        st.sampled_from([None, "s1", "s2"]),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize("make_store", [local_store, qdrant_store, chroma_store])
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=entries, query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
def test_searches_stay_in_their_scope(make_store, data, query):
    memory = Memory(embedder=HashingEmbedder(32), store=make_store(32), deduplicate=False)
    for user, agent, session, words in data:
        memory.add(" ".join(words), user_id=user, agent_id=agent, session_id=session)
    scopes = itertools.product(["ana", "bob", "cy", None], [None, "agent-1"], [None, "s1"])
    for user, agent, session in scopes:
        if user is agent is session is None:
            continue
        hits = memory.search(
            " ".join(query), user_id=user, agent_id=agent, session_id=session, k=50
        )
        allowed = {m.id for m in memory.list(user_id=user, agent_id=agent, session_id=session)}
        assert {h.id for h in hits} <= allowed
        for hit in hits:
            for name, value in (("user_id", user), ("agent_id", agent), ("session_id", session)):
                if value is not None:
                    assert hit.metadata[name] == value
