"""Latency of one ``Memory.search`` at a given size, and where its time goes.

Builds (once, into ``--cache``) a default ``Memory`` holding ``--memories`` distinct short
facts of one user (the fact templates of benchmarks/memory.py, fixed seed), as the
`ragmem mcp` soak grows it, then runs ``--queries`` scoped searches (k=5, each the
question of one stored fact) one after another and reports p50/p95 latency, hit@5, and
per search: the time in each stage (query embedding, dense search, BM25, MaxSim, session
neighbours, ledger reads, vector reads) and how many candidates each stage handled.

The memory is built with the bundled model by default (slow: about half an hour for
20,000 facts on 2 cores); ``--embedder hashing`` builds it in a minute or two with hashed
sentence and word vectors of the model's width and then queries through the bundled model
(the same work per search, but hit@5 is then meaningless). The directory is reused by
later runs with the same size and embedder.

    python benchmarks/memory_search.py [--memories 20000] [--queries 300] [--cache DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from memory import make_workload  # the memory benchmark's fact templates

from ragmem import HashingEmbedder
from ragmem.agents import Memory, MemoryInput
from ragmem.embedders.base import TokenEmbedder, l2_normalize
from ragmem.types import Purpose, Vectors

USER = "soak"  # the user id the mcp soak writes as


class HashedTokens(HashingEmbedder, TokenEmbedder):
    """A quick stand-in for building: hashed sentence vectors and one hashed vector per
    word, of the bundled model's width (what MaxSim costs depends on the token count)."""

    def __init__(self, dimensions: int = 384) -> None:
        super().__init__(dimensions)
        self.name = f"hashed-tokens-{dimensions}"

    def _embed_tokens_batch(self, texts: Sequence[str], purpose: Purpose) -> list[Vectors]:
        return [l2_normalize(self._embed_batch(t.split() or [t], purpose)) for t in texts]


def build(directory: Path, memories: int, embedder: str, seed: int) -> Memory:
    """The memory in ``directory``, filled with ``memories`` facts unless it already is."""
    options: dict[str, Any] = {}
    if embedder == "hashing":
        options["embedder"] = HashedTokens()
    memory = Memory(directory, **options)
    done = directory / "built"  # near-duplicate facts merge, so counting cannot tell
    if not done.exists():
        memory.purge(user_id=USER)  # an interrupted build starts again
        facts, _ = make_workload(memories, 0, 1, seed)
        started = time.perf_counter()
        for start in range(0, len(facts), 1000):
            part = facts[start : start + 1000]
            memory.add_many([MemoryInput(text=f.text) for f in part], user_id=USER)
            print(f"  built {start + len(part)} memories", file=sys.stderr, flush=True)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        done.write_text(str(memories))
    if embedder == "hashing":
        # queries go through the bundled model, as in the soak: same cost, but the
        # hashed memory makes hit@5 meaningless
        from ragmem.embedders.local import LocalEmbedder

        memory.embedder = memory._index.recall.embedder = LocalEmbedder()
    return memory


class Stages:
    """Wraps the calls a search makes, summing their time and the items they handle."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, method: str, stage: str, size: Callable[..., int]) -> None:
        real = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started
                self.calls[stage] += 1
                self.items[stage] += size(*args, **kwargs)

        setattr(owner, method, timed)


def instrument(memory: Memory) -> Stages:
    stages = Stages()
    recall = memory._index.recall
    one = lambda *a, **k: 1  # noqa: E731
    first_len = lambda x, *a, **k: len(x)  # noqa: E731
    second_len = lambda _, x, *a, **k: len(x)  # noqa: E731
    stages.wrap(memory.embedder, "embed_query", "query embedding (dense)", one)
    stages.wrap(memory.embedder, "embed_tokens", "query embedding (tokens)", first_len)
    if hasattr(memory.embedder, "embed_with_tokens"):
        stages.wrap(memory.embedder, "embed_with_tokens", "query embedding (both)", first_len)
    stages.wrap(memory.store, "search", "dense search", one)
    stages.wrap(memory.store, "get", "vector reads", first_len)
    stages.wrap(recall.lexical, "retrieve", "bm25 search", one)
    stages.wrap(recall.lexical, "score", "bm25 rescoring", second_len)
    if recall.tokens is not None:
        stages.wrap(recall.tokens, "maxsim", "maxsim", second_len)
    stages.wrap(memory._index, "neighbors", "session neighbours", first_len)
    stages.wrap(memory._ledger, "find", "ledger reads", first_len)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memories", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--cache", default=None, help="default: /tmp/ragmem-memory-search-N")
    parser.add_argument("--embedder", choices=("local", "hashing"), default="local")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    cache = Path(args.cache or f"/tmp/ragmem-memory-search-{args.memories}-{args.embedder}")
    memory = build(cache, args.memories, args.embedder, args.seed)
    _, asked = make_workload(args.memories, args.queries, 1, args.seed)
    for fact in asked[:20]:  # warm-up: first model runs, caches
        memory.search(fact.question, user_id=USER, k=5)
    stages = instrument(memory)
    latencies, hits = [], 0
    for fact in asked:
        started = time.perf_counter()
        found = memory.search(fact.question, user_id=USER, k=5)
        latencies.append((time.perf_counter() - started) * 1000)
        hits += any(h.text == fact.text for h in found)
    latencies.sort()
    n = len(latencies)
    print(
        f"Memory.search at {memory.store.count()} memories ({args.embedder} embedder), "
        f"{n} queries, k=5"
    )
    print(
        f"p50 {latencies[n // 2]:.1f} ms, p95 {latencies[min(n - 1, int(0.95 * n))]:.1f} ms, "
        f"mean {statistics.fmean(latencies):.1f} ms, hit@5 {hits / n:.3f}"
    )
    print(f"{'stage':28}{'ms/search':>10}{'calls/search':>14}{'items/search':>14}")
    for stage in stages.seconds:
        print(
            f"{stage:28}{1000 * stages.seconds[stage] / n:>10.2f}"
            f"{stages.calls[stage] / n:>14.1f}{stages.items[stage] / n:>14.1f}"
        )
    memory.close()


if __name__ == "__main__":
    main()
