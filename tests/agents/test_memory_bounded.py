"""A long-running memory holds what it stores, not what it was told over time."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from ragmem.agents import Memory

from .helpers import TokenHashingEmbedder


def traced_growth(step: Callable[[], object], warm: int, more: int) -> int:
    """Bytes still allocated after ``more`` further calls of ``step``, beyond ``warm`` calls."""
    tracemalloc.start()
    try:
        for _ in range(warm):
            step()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(more):
            step()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_memory_told_the_same_fact_again_and_again_does_not_grow() -> None:
    memory = Memory(embedder=TokenHashingEmbedder(64))
    memory.add("I moved to Lisbon in 2021 and work at the harbour", user_id="u")
    memory.add("My sister lives in Porto", user_id="u")

    def tell_again() -> None:
        memory.add("I moved to Lisbon in 2021 and work at the harbour", user_id="u")

    growth = traced_growth(tell_again, warm=200, more=1_500)
    (hit, *_) = memory.search("where do I live", user_id="u")
    assert hit.text is not None
    assert "Lisbon" in hit.text
    assert len(memory.list(user_id="u")) == 2
    assert growth < 2_000_000
