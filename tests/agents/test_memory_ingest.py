"""Ingestion cost: a batch of memories is embedded in one forward pass for its sentence and
token vectors, and recall is the same as with two separate passes."""

import pytest

from ragmem.agents import Memory, MemoryInput
from tests.agents.helpers import Clock, TokenHashingEmbedder


class JointEmbedder(TokenHashingEmbedder):
    """Counts calls; ``embed_with_tokens`` gives both views as the local model does."""

    def __init__(self, dimensions=32):
        super().__init__(dimensions)
        self.calls = {"embed": 0, "embed_tokens": 0, "embed_with_tokens": 0}
        self.query_calls = 0

    def embed(self, texts, *, purpose="document"):
        self.calls["embed"] += purpose == "document"
        self.query_calls += purpose == "query"
        return super().embed(texts, purpose=purpose)

    def embed_tokens(self, texts, *, purpose="document"):
        self.calls["embed_tokens"] += purpose == "document"
        self.query_calls += purpose == "query"
        return super().embed_tokens(texts, purpose=purpose)

    def embed_with_tokens(self, texts, *, purpose="document"):
        self.calls["embed_with_tokens"] += purpose == "document"
        self.query_calls += purpose == "query"
        return (
            TokenHashingEmbedder.embed(self, texts, purpose=purpose),
            TokenHashingEmbedder.embed_tokens(self, texts, purpose=purpose),
        )


TEXTS = [
    "I adopted a cat named Miso",
    "my sister lives in Lisbon",
    "I play the piano on Sundays",
    "the cat likes tuna",
    "we moved to Rome in 2021",
]


def _inputs():
    return [MemoryInput(text=t, session_id="s1", timestamp=1000.0 + n) for n, t in enumerate(TEXTS)]


def test_a_batch_is_embedded_in_one_pass_for_both_views():
    embedder = JointEmbedder()
    memory = Memory(embedder=embedder, clock=Clock(), deduplicate=False)
    memory.add_many(_inputs(), user_id="ana")
    assert embedder.calls == {"embed": 0, "embed_tokens": 0, "embed_with_tokens": 1}
    item = memory.list(user_id="ana")[0]
    memory.update(item.id, "I adopted a dog named Miso")
    assert embedder.calls == {"embed": 0, "embed_tokens": 0, "embed_with_tokens": 2}


def test_a_search_calls_the_model_once():
    embedder = JointEmbedder()
    memory = Memory(embedder=embedder, clock=Clock(), deduplicate=False)
    memory.add_many(_inputs(), user_id="ana")
    memory.search("where does my sister live", user_id="ana", k=3)
    assert embedder.query_calls == 1


@pytest.mark.parametrize("query", ["cat", "where does my sister live", "piano Sundays"])
def test_one_pass_recalls_exactly_like_two(query):
    one = Memory(embedder=JointEmbedder(), clock=Clock(), deduplicate=False)
    two = Memory(embedder=TokenHashingEmbedder(32), clock=Clock(), deduplicate=False)
    for memory in (one, two):
        memory.add_many(_inputs(), user_id="ana")
    a = one.search(query, user_id="ana", k=5)
    b = two.search(query, user_id="ana", k=5)
    assert [h.text for h in a] == [h.text for h in b]
    assert [h.score for h in a] == [h.score for h in b]
    assert [h.explain for h in a] == [h.explain for h in b]


def test_a_batch_lands_whole_or_not_at_all(tmp_path, monkeypatch):
    memory = Memory(tmp_path / "m", embedder=TokenHashingEmbedder(32), clock=Clock())
    bad = [*_inputs(), MemoryInput(text="the last one", session_id="s1", key="k")]

    def fail(*args, **kwargs):
        raise RuntimeError("disk gone")

    # the last memory's write fails after the others were written
    monkeypatch.setattr(memory, "_same_key", fail)
    with pytest.raises(RuntimeError):
        memory.add_many(bad, user_id="ana")
    assert memory.list(user_id="ana", status=None) == []
    assert memory.search("cat", user_id="ana", k=5) == []
    memory.close()
    reopened = Memory(tmp_path / "m", embedder=TokenHashingEmbedder(32), clock=Clock())
    assert reopened.list(user_id="ana", status=None) == []
    reopened.close()
