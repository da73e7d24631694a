"""Hostile input never bricks a Memory: each call is refused with InvalidInputError before
anything is written, or lands whole; the memory keeps working and reopens with exactly the
accepted writes."""

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem import HashingEmbedder, InvalidInputError
from ragmem.agents import Memory
from tests.agents.helpers import Clock

_names = itertools.count()

numbers = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 10**400, -(10**30), 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
texts = st.one_of(
    st.text(min_size=0, max_size=20),
    st.sampled_from(["\ud800", "ok \udfff", "", "   ", "x" * 300]),
)
scalars = st.one_of(numbers, texts, st.booleans(), st.none())
metadata = st.one_of(
    st.dictionaries(st.one_of(texts, st.integers()), scalars, max_size=3),
    st.dictionaries(texts, st.lists(scalars, max_size=2), max_size=2),
    st.sampled_from([{"deep": {"a": {"b": 1}}}, {"user_id": "x"}, {"$x": 1}]),
)
calls = st.lists(
    st.fixed_dictionaries(
        {
            "content": st.one_of(texts, st.sampled_from([5, None, b"bytes", 3.5])),
            "user_id": st.one_of(st.sampled_from(["ana", "bob"]), texts, st.integers()),
            "metadata": st.one_of(st.none(), metadata),
            "timestamp": st.one_of(st.none(), numbers),
            "ttl_seconds": st.one_of(st.none(), numbers),
            "importance": st.one_of(st.just(0.5), numbers),
            "key": st.one_of(st.none(), texts),
        }
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls=calls)
def test_refused_writes_leave_no_trace(tmp_path_factory, calls):
    path = tmp_path_factory.mktemp(f"h{next(_names)}")
    clock = Clock()
    memory = Memory(path, embedder=HashingEmbedder(16), clock=clock, deduplicate=False)
    accepted = set()
    try:
        for n, call in enumerate(calls):
            clock.now += 1
            try:
                changes = memory.add(**call)
            except InvalidInputError:
                pass
            else:
                accepted.update(c.item.id for c in changes)
            # still works for everyone
            fine = memory.add(f"control fact {n}", user_id="control")
            accepted.add(fine[0].item.id)
            assert memory.search("control fact", user_id="control", k=1)
    finally:
        memory.close()
    with Memory(path, embedder=HashingEmbedder(16), clock=clock) as reopened:
        assert {m.id for m in reopened.list(status=None)} == accepted
        for m in reopened.list(status=None):
            reopened.search("anything at all", user_id=m.user_id or "control", k=3)


@pytest.mark.parametrize(
    "options",
    [
        {"timestamp": math.inf},
        {"timestamp": math.nan},
        {"timestamp": 1e308},
        {"ttl_seconds": math.nan},
        {"ttl_seconds": 1e308},
        {"ttl_seconds": -5},
        {"metadata": {"n": 10**400}},
        {"metadata": {"s": "\ud800"}},
        {"user_id": "\ud800"},
        {"key": "\udfff"},
    ],
)
def test_unstorable_values_are_refused_by_name(tmp_path, options):
    memory = Memory(tmp_path, embedder=HashingEmbedder(16))
    call = {"user_id": "ana", **options}
    with pytest.raises(InvalidInputError):
        memory.add("a fact", **call)
    memory.add("another fact", user_id="bob")
    memory.close()
    with Memory(tmp_path, embedder=HashingEmbedder(16)) as reopened:
        assert [m.text for m in reopened.list(status=None)] == ["another fact"]


def test_content_of_the_wrong_type_is_a_typed_error():
    memory = Memory(embedder=HashingEmbedder(16))
    for content in (5, None, b"bytes", 2.5):
        with pytest.raises(InvalidInputError):
            memory.add(content, user_id="u")
