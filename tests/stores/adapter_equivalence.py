"""Random data and random filters, to compare an adapter's answers with LocalVectorStore's."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from ragmem import LocalVectorStore
from ragmem.filters import matches

DIM = 8
KEYS = ["a", "b", "c.d", "tags", "x y"]
STRINGS = ["x", "y", "z", "1", "true", ""]
# for $prefix and substring $contains, which Qdrant and Chroma cannot evaluate
PATHS = ["guides/backup.md", "guides/", "notes/guides/faq.rst", "notes/", "g", "xy"]
NUMBERS = [-2, 0, 1, 2, 3, 0.5, 1.0, 2.0, -1.5, 2.75]
TIE = 1e-5  # scores this close may come back in either order (float32 rounding)


def random_scalar(rng: random.Random, strings: list[str] = STRINGS) -> Any:
    kind = rng.random()
    if kind < 0.4:
        return rng.choice(strings)
    if kind < 0.85:
        return rng.choice(NUMBERS)
    return rng.random() < 0.5


def random_metadata(rng: random.Random, strings: list[str] = STRINGS) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in KEYS:
        if rng.random() < 0.3:
            continue
        if rng.random() < 0.35:
            # lists: empty, homogeneous or mixed
            meta[key] = [random_scalar(rng, strings) for _ in range(rng.randint(0, 3))]
        else:
            meta[key] = random_scalar(rng, strings)
    return meta


def random_filter(rng: random.Random, depth: int = 0, *, strings: bool = False) -> dict[str, Any]:
    """A random filter; ``strings`` adds ``$prefix`` and substring ``$contains`` on paths."""
    roll = rng.random()
    if depth < 3 and roll < 0.3:
        op = rng.choice(["$and", "$or"])
        subs = [random_filter(rng, depth + 1, strings=strings) for _ in range(rng.randint(0, 3))]
        return {op: subs}
    if depth < 3 and roll < 0.4:
        return {"$not": random_filter(rng, depth + 1, strings=strings)}
    key = rng.choice([*KEYS, "missing"])
    ops = ["$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$contains", "$exists"]
    op = rng.choice([*ops, "$prefix", "$prefix"] if strings else ops)
    if op in ("$prefix", "$contains") and strings:
        value: Any = rng.choice([*PATHS, "guides", "backup", "", "x"])
    elif op == "$contains" and rng.random() < 0.4:
        # equal strings only: substrings of stored strings are for the stores that match them
        value = rng.choice([s for s in STRINGS if s])
    elif op in ("$lt", "$lte", "$gt", "$gte"):
        value = rng.choice(NUMBERS)
    elif op in ("$in", "$nin"):
        value = [random_scalar(rng) for _ in range(rng.randint(0, 3))]
    elif op == "$exists":
        value = rng.random() < 0.5
    else:
        value = random_scalar(rng)
        if op == "$contains" and value == "":
            value = "x"
    return {key: {op: value}}


def dataset(
    seed: int = 0, n: int = 150, *, strings: bool = False
) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    rng = random.Random(seed)
    ids = [f"r{i}" for i in range(n)]
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    pool = STRINGS + PATHS if strings else STRINGS
    return ids, vectors, [random_metadata(rng, pool) for _ in range(n)]


def check_equivalence(store: Any, *, seed: int = 0, filters: int = 150) -> None:
    """Load random data into an empty cosine 8-d ``store``; compare it with the built-in store."""
    ids, vectors, metas = dataset(seed)
    store.upsert(ids, vectors, metadata=metas)
    local = LocalVectorStore(dimensions=DIM)
    local.upsert(ids, vectors, metadata=metas)
    rng = random.Random(seed + 1)
    queries = np.random.default_rng(seed + 1).standard_normal((filters, DIM)).astype(np.float32)
    for i in range(filters):
        where = random_filter(rng)
        expected = {id_ for id_, m in zip(ids, metas) if matches(where, m)}
        assert local.count(where) == len(expected), where
        assert store.count(where) == len(expected), where
        got = store.search(queries[i], k=5, where=where)[0]
        want = local.search(queries[i], k=5, where=where)[0]
        assert {h.id for h in got} <= expected, where
        assert len(got) == len(want), where
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-4)
        # continuous random vectors: the order agrees except where float32 scores tie
        for g, w in zip(got, want):
            assert g.id == w.id or abs(g.score - w.score) <= TIE, (where, got, want)
