"""Every hit of a memory search passes the scope, ``where``, status and TTL test, however it
became a candidate (dense, BM25, MaxSim or a session neighbour)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem import HashingEmbedder
from ragmem.agents import Memory
from ragmem.filters import matches, parse_filter
from tests.agents.helpers import Clock, TokenHashingEmbedder

WORDS = ["budget", "meeting", "diary", "city", "porto", "braga", "tea", "plan", "home", "work"]

memories = st.lists(
    st.fixed_dictionaries(
        {
            "user": st.sampled_from(["ana", "bob"]),
            "session": st.sampled_from(["s1", "s2"]),
            "words": st.lists(st.sampled_from(WORDS), min_size=1, max_size=5),
            "topic": st.sampled_from(["work", "private"]),
            "key": st.sampled_from([None, None, "home_city", "plan"]),
            "ttl": st.sampled_from([None, None, 50.0, 500.0]),
            "age": st.integers(0, 1000),
        }
    ),
    min_size=1,
    max_size=14,
)


def test_neighbours_of_a_hit_do_not_bring_excluded_memories():
    clock = Clock()
    memory = Memory(embedder=HashingEmbedder(64), clock=clock)
    texts = [
        ("we planned the budget meeting", "work"),
        ("dear diary, today I felt tired", "private"),
        ("the budget meeting moved to friday", "work"),
        ("diary: lunch with my sister", "private"),
    ]
    for n, (text, topic) in enumerate(texts):
        memory.add(text, user_id="u", session_id="s", metadata={"topic": topic}, timestamp=n)
    hits = memory.search("budget meeting", user_id="u", k=10, where={"topic": "work"})
    assert {h.metadata["topic"] for h in hits} == {"work"}
    memory.add("home city is Porto", user_id="u", session_id="s", key="home_city", timestamp=9)
    memory.add("home city is Braga", user_id="u", session_id="s", key="home_city", timestamp=10)
    hits = memory.search("home city", user_id="u", k=10)
    assert "home city is Porto" not in [h.text for h in hits]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=memories,
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    topic=st.sampled_from([None, "work", "private"]),
    later=st.sampled_from([0.0, 100.0, 1000.0]),
    superseded=st.booleans(),
    late=st.booleans(),
)
def test_every_hit_passes_every_constraint(entries, query, topic, later, superseded, late):
    clock = Clock()
    embedder = TokenHashingEmbedder(32) if late else HashingEmbedder(32)
    memory = Memory(embedder=embedder, clock=clock, deduplicate=False)
    for entry in entries:
        memory.add(
            " ".join(entry["words"]),
            user_id=entry["user"],
            session_id=entry["session"],
            metadata={"topic": entry["topic"]},
            key=entry["key"],
            ttl_seconds=entry["ttl"],
            timestamp=clock.now - entry["age"],
        )
    clock.now += later
    where = None if topic is None else {"topic": topic}
    tree = parse_filter(where)
    hits = memory.search(
        " ".join(query), user_id="ana", k=20, where=where, include_superseded=superseded
    )
    for hit in hits:
        item = memory.get(hit.id)
        assert item.user_id == "ana"
        assert tree is None or matches(tree, item.metadata)
        assert item.status == "active" or (superseded and item.status == "superseded")
        assert item.expires_at is None or item.expires_at > clock.now
