import asyncio
import io
import threading

import pytest

from ragmem import HashingEmbedder, InvalidInputError, LocalVectorStore, NotFoundError
from ragmem.agents import Memory, MemoryInput
from ragmem.llms import LLM


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def memory(clock):
    return Memory(embedder=HashingEmbedder(128), clock=clock)


def texts(hits):
    return [h.text for h in hits]


def test_add_and_search(memory):
    memory.add("Ana lives in Lisbon", user_id="ana")
    memory.add("Ana works as a nurse", user_id="ana")
    hits = memory.search("where does Ana live", user_id="ana", k=1)
    assert texts(hits) == ["Ana lives in Lisbon"]
    assert hits[0].metadata["user_id"] == "ana"
    assert "relevance" in hits[0].explain


def test_search_requires_a_scope(memory):
    with pytest.raises(InvalidInputError):
        memory.search("anything")
    with pytest.raises(InvalidInputError):
        memory.add("a fact")


def test_scopes_never_leak(memory):
    memory.add("secret of ana", user_id="ana")
    memory.add("secret of bob", user_id="bob")
    memory.add("agent note", user_id="ana", agent_id="helper")
    assert texts(memory.search("secret", user_id="bob", k=10)) == ["secret of bob"]
    assert set(texts(memory.search("secret", user_id="ana", k=10))) == {
        "secret of ana",
        "agent note",
    }
    assert texts(memory.search("note", user_id="ana", agent_id="helper", k=10)) == ["agent note"]


def test_adding_the_same_memory_twice_keeps_it(memory):
    first = memory.add("I am allergic to peanuts", user_id="u")[0]
    second = memory.add("I am  allergic to PEANUTS", user_id="u")[0]
    assert second.event == "MERGE"
    assert second.merged_into == first.item.id
    assert second.item.mentions == 2
    assert texts(memory.search("peanuts", user_id="u", k=5)) == ["I am allergic to peanuts"]
    assert [e.event for e in memory.history(first.item.id)] == ["ADD", "MERGE"]


def test_near_duplicates_merge(clock):
    memory = Memory(embedder=HashingEmbedder(128), clock=clock, near_duplicate=0.8)
    memory.add("my favourite colour is deep blue", user_id="u")
    change = memory.add("my favourite colour is deep blue!", user_id="u")[0]
    assert change.event == "MERGE"
    assert len(memory.list(user_id="u")) == 1


def test_duplicates_do_not_merge_across_scopes(memory):
    memory.add("likes tea", user_id="a")
    assert memory.add("likes tea", user_id="b")[0].event == "ADD"
    assert memory.add("likes tea", user_id="a", agent_id="x")[0].event == "ADD"


def test_contradiction_supersedes_but_keeps_both(memory):
    old = memory.add("I live in Porto", user_id="u", key="home_city")[0].item
    change = memory.add("I live in Braga", user_id="u", key="home_city")[0]
    assert change.event == "SUPERSEDE"
    assert change.superseded == old.id
    assert texts(memory.search("where do I live", user_id="u", k=5)) == ["I live in Braga"]
    both = memory.search("where do I live", user_id="u", k=5, include_superseded=True)
    assert set(texts(both)) == {"I live in Porto", "I live in Braga"}
    assert memory.get(old.id).status == "superseded"
    assert memory.get(old.id).superseded_by == change.item.id
    assert [e.event for e in memory.history(old.id)] == ["ADD", "SUPERSEDE"]


def test_update_keeps_previous_version(memory):
    item = memory.add("meeting on monday", user_id="u")[0].item
    updated = memory.update(item.id, "meeting on tuesday")
    assert updated.text == "meeting on tuesday"
    assert texts(memory.search("meeting", user_id="u")) == ["meeting on tuesday"]
    events = memory.history(item.id)
    assert [e.event for e in events] == ["ADD", "UPDATE"]
    assert events[1].text == "meeting on monday"


def test_delete_is_soft(memory):
    item = memory.add("temporary fact", user_id="u")[0].item
    memory.delete(item.id)
    assert memory.search("temporary fact", user_id="u") == []
    assert memory.get(item.id).status == "deleted"
    assert memory.list(user_id="u") == []
    assert [m.id for m in memory.list(user_id="u", status="deleted")] == [item.id]
    assert [e.event for e in memory.history(item.id)] == ["ADD", "DELETE"]


def test_unknown_ids(memory):
    with pytest.raises(NotFoundError):
        memory.get("nope")
    with pytest.raises(NotFoundError):
        memory.update("nope", "x")
    with pytest.raises(NotFoundError):
        memory.history("nope")


def test_forget_and_ttl(memory, clock):
    memory.add("old note", user_id="u", timestamp=clock.now - 100 * 86400)
    memory.add("new note", user_id="u")
    memory.add("short lived", user_id="u", ttl_seconds=60)
    memory.add("tagged", user_id="u", metadata={"topic": "x"})
    clock.now += 120
    assert "short lived" not in texts(memory.search("short lived", user_id="u", k=10))
    assert memory.forget(user_id="u", older_than=30 * 86400) == 2  # old note + expired
    assert memory.forget(user_id="u", where={"topic": "x"}) == 1
    assert set(texts(memory.search("note", user_id="u", k=10))) == {"new note"}


def test_time_filters_and_recency(clock):
    memory = Memory(
        embedder=HashingEmbedder(128), clock=clock, recency_weight=0.6, half_life_days=1
    )
    memory.add("project alpha status", user_id="u", timestamp=clock.now - 10 * 86400)
    memory.add("project alpha status update", user_id="u", timestamp=clock.now)
    hits = memory.search("project alpha status", user_id="u", k=2)
    assert hits[0].text == "project alpha status update"
    assert hits[0].explain["recency"] == pytest.approx(1.0)
    since = memory.search("project", user_id="u", since=clock.now - 86400)
    assert texts(since) == ["project alpha status update"]
    until = memory.search("project", user_id="u", until=clock.now - 86400)
    assert texts(until) == ["project alpha status"]


def test_messages_become_memories(memory):
    changes = memory.add(
        [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "I adopted a cat named Miso"},
            {"role": "assistant", "content": "Congratulations on Miso!"},
        ],
        user_id="u",
        session_id="s1",
    )
    assert [c.item.metadata["role"] for c in changes] == ["user", "assistant"]
    assert memory.search("cat", user_id="u", session_id="s1", k=1)[0].text.startswith("I adopted")


def test_reserved_metadata_and_bad_input(memory):
    with pytest.raises(InvalidInputError):
        memory.add("x", user_id="u", metadata={"user_id": "other"})
    with pytest.raises(InvalidInputError):
        memory.add("   ", user_id="u")
    with pytest.raises(InvalidInputError):
        memory.add("x", user_id="")
    with pytest.raises(InvalidInputError):
        memory.add("x", user_id="u", importance=2)


class FactLLM(LLM):
    def _complete(self, messages):
        return 'Here you go: ["Ana lives in Lisbon", "Ana has two cats"]'


def test_fact_extraction_with_llm(clock):
    memory = Memory(embedder=HashingEmbedder(128), clock=clock, llm=FactLLM())
    changes = memory.add(
        "user: I'm Ana, I live in Lisbon with my two cats", user_id="ana", infer=True
    )
    assert [c.item.text for c in changes] == ["Ana lives in Lisbon", "Ana has two cats"]
    with pytest.raises(InvalidInputError):
        Memory(embedder=HashingEmbedder(8)).add("x", user_id="u", infer=True)


def test_export_import_round_trip(memory, clock):
    memory.add("fact one", user_id="u")
    gone = memory.add("fact two", user_id="u")[0].item
    memory.delete(gone.id)
    buffer = io.StringIO()
    assert memory.export(buffer, include_deleted=True) == 2
    other = Memory(embedder=HashingEmbedder(128), clock=clock)
    assert other.import_(buffer.getvalue().splitlines()) == 2
    assert other.import_(buffer.getvalue().splitlines()) == 0
    assert texts(other.search("fact", user_id="u", k=5)) == ["fact one"]
    assert other.get(gone.id).status == "deleted"


def test_concurrent_writers_threads_and_asyncio(clock):
    # near_duplicate=1.0: hashing vectors of "fact 5" and "fact 15" are close enough to merge
    memory = Memory(embedder=HashingEmbedder(128), clock=clock, near_duplicate=1.0)

    def writer(n):
        for i in range(20):
            memory.add(f"thread {n} fact {i}", user_id=f"user{n}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def async_writers():
        await asyncio.gather(
            *(memory.add_async(f"async fact {i}", user_id="async") for i in range(20))
        )

    asyncio.run(async_writers())
    for n in range(4):
        assert len(memory.list(user_id=f"user{n}")) == 20
        assert memory.store.count({"user_id": f"user{n}"}) == 20
    assert len(memory.list(user_id="async")) == 20


def test_custom_store_instance(clock):
    store = LocalVectorStore(dimensions=64, metric="dot")
    memory = Memory(embedder=HashingEmbedder(64), store=store, clock=clock)
    memory.add("hello there", user_id="u")
    assert store.count() == 1


def test_facts_that_differ_only_in_a_date_are_both_kept(clock):
    # their embeddings are near-identical, but they are two facts: merging would hide one
    memory = Memory(embedder=HashingEmbedder(128), clock=clock, near_duplicate=0.5)
    memory.add("Olga moved to Nairobi in September 2020.", user_id="u")
    change = memory.add("Olga moved to Nairobi in April 2024.", user_id="u")[0]
    assert change.event == "ADD"
    assert len(memory.list(user_id="u")) == 2
    assert memory.add("Olga moved to Nairobi in April 2024!", user_id="u")[0].event == "MERGE"


def test_duplicates_inside_one_batch_merge_and_the_batch_is_indexed_once(clock):
    class CountingEmbedder(HashingEmbedder):
        calls = 0

        def embed(self, texts, *, purpose="document"):
            CountingEmbedder.calls += 1
            return super().embed(texts, purpose=purpose)

    memory = Memory(embedder=CountingEmbedder(128), clock=clock, near_duplicate=0.9)
    inputs = [MemoryInput(text=t) for t in ["likes green tea", "Likes green tea", "owns a bike"]]
    changes = memory.add_many(inputs, user_id="u")
    assert [c.event for c in changes] == ["ADD", "MERGE", "ADD"]
    assert changes[1].merged_into == changes[0].item.id
    assert CountingEmbedder.calls == 1  # one embedding pass; the index reuses the vectors
    assert memory.store.count() == 2


def test_forget_with_only_a_scope_forgets_that_scope(memory):
    memory.add("bob likes tea", user_id="bob")
    memory.add("bob has a dog", user_id="bob", session_id="s1")
    memory.add("ana likes tea", user_id="ana")
    assert memory.forget(user_id="bob") == 2
    assert memory.list(user_id="bob") == []
    assert len(memory.list(user_id="ana")) == 1
    gone = memory.list(user_id="bob", status="deleted")[0]
    assert [e.event for e in memory.history(gone.id)] == ["ADD", "FORGET"]


def test_bools_are_not_numbers_of_results(memory):
    memory.add("x y", user_id="u")
    for k in (True, False, 0, 2.0, "3"):
        with pytest.raises(InvalidInputError):
            memory.search("x", user_id="u", k=k)


def test_time_travel_and_validity(memory, clock):
    from datetime import datetime, timezone

    day = 86400.0
    porto = memory.add("I live in Porto", user_id="u", key="home", timestamp=clock.now - 30 * day)
    braga = memory.add("I live in Braga", user_id="u", key="home", timestamp=clock.now - 10 * day)
    old, new = porto[0].item, braga[0].item
    assert memory.get(old.id).valid_to == new.timestamp
    assert memory.get(new.id).valid_to is None
    hits = memory.search("where do I live", user_id="u", k=5)
    assert texts(hits) == ["I live in Braga"]
    assert hits[0].metadata["observed_at"] == new.timestamp
    assert "valid_to" not in hits[0].metadata
    then = memory.search("where do I live", user_id="u", as_of=clock.now - 20 * day)
    assert texts(then) == ["I live in Porto"]
    assert then[0].metadata["valid_to"] == new.timestamp
    as_date = datetime.fromtimestamp(clock.now - 20 * day, tz=timezone.utc)
    assert texts(memory.search("live", user_id="u", as_of=as_date)) == ["I live in Porto"]
    assert memory.search("live", user_id="u", as_of=clock.now - 40 * day) == []
    both = memory.search("live", user_id="u", include_superseded=True, after=clock.now - 20 * day)
    assert texts(both) == ["I live in Braga"]
    before = memory.search("live", user_id="u", include_superseded=True, before=new.timestamp)
    assert texts(before) == ["I live in Porto"]
    memory.delete(new.id)
    assert memory.get(new.id).valid_to == clock.now
    with pytest.raises(InvalidInputError):
        memory.search("live", user_id="u", as_of=float("nan"))


def test_min_score_drops_weak_hits(memory):
    memory.add("the quarterly budget review is on monday", user_id="u")
    strong = memory.search("quarterly budget review", user_id="u", k=3)
    assert strong
    assert memory.search("quarterly budget review", user_id="u", min_score=2.0) == []
    kept = memory.search("quarterly budget review", user_id="u", min_score=strong[0].score)
    assert [h.id for h in kept] == [strong[0].id]


def test_scores_compare_across_queries(memory):
    for text in ["the quarterly budget review is on monday", "Ana adopted a cat named Miso"]:
        memory.add(text, user_id="u")
    good = memory.search("quarterly budget review", user_id="u", k=2)
    noise = memory.search("zzzz qqqq", user_id="u", k=2)
    assert good[0].score > 0.3
    assert noise == [] or noise[0].score < 0.5 * good[0].score
    assert all(0.0 <= h.score <= 1.0 for h in good + noise)
