"""LocalVectorStore.search equals a brute-force reference: same ids, same order, ties by row.

Vectors are small integers (and, for cosine, patterns whose norms are exact), so every
score is computed exactly whatever the summation order, and equal scores are true ties.
"""

import contextlib
import tempfile
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ragmem import LocalVectorStore
from ragmem.filters import matches
from ragmem.stores.local import flat
from ragmem.stores.local.flat import top_k, top_k_rows
from ragmem.types import Metadata

DIM = 6
# signs on 1 or 4 coordinates, times 1, 2 or 3: unit length after an exact division
_NICE = [
    np.array(v, np.float32)
    for v in (
        [1, 0, 0, 0, 0, 0],
        [0, -1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 0, 0],
        [1, -1, 0, 1, 0, -1],
        [0, 0, 1, 1, -1, -1],
        [-1, 0, 1, 0, 1, 1],
        [0, 0, 0, 0, 0, 0],
    )
]
nice_vectors = st.builds(
    lambda i, c: _NICE[i] * c, st.integers(0, len(_NICE) - 1), st.sampled_from([1, 2, 3])
)
int_vectors = st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM).map(
    lambda v: np.array(v, np.float32)
)
metadata = st.fixed_dictionaries(
    {},
    optional={
        "a": st.integers(0, 3),
        "b": st.sampled_from(["x", "y", "z"]),
        "t": st.lists(st.integers(0, 3), max_size=3),
        "f": st.booleans(),
    },
)
leaf = st.one_of(
    st.builds(lambda v: {"a": v}, st.integers(0, 3)),
    st.builds(lambda v: {"a": {"$gte": v}}, st.integers(0, 3)),
    st.builds(lambda v: {"b": {"$ne": v}}, st.sampled_from(["x", "y"])),
    st.builds(lambda v: {"t": {"$contains": v}}, st.integers(0, 3)),
    st.builds(lambda v: {"b": {"$in": v}}, st.lists(st.sampled_from(["x", "y", "z"]))),
    st.builds(lambda v: {"f": {"$exists": v}}, st.booleans()),
)
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
    ),
    max_leaves=5,
)


@st.composite
def scenarios(draw):
    metric = draw(st.sampled_from(["cosine", "dot", "l2"]))
    vecs = nice_vectors if metric == "cosine" else int_vectors
    pool = draw(st.lists(vecs, min_size=1, max_size=6))  # few distinct vectors: many ties
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["upsert", "upsert", "delete", "compact"]))
        if kind == "upsert":
            ids = draw(st.lists(st.integers(0, 40).map(str), min_size=1, max_size=25, unique=True))
            rows = [pool[draw(st.integers(0, len(pool) - 1))] for _ in ids]
            ops.append(("upsert", ids, np.stack(rows), [draw(metadata) for _ in ids]))
        elif kind == "delete":
            ops.append(("delete", draw(st.lists(st.integers(0, 40).map(str), max_size=10))))
        else:
            ops.append(("compact",))
    queries = np.stack(draw(st.lists(vecs, min_size=1, max_size=4)))
    k = draw(st.integers(1, 50))
    where = draw(st.none() | filters)
    return metric, ops, queries, k, where


def _reference(metric, ops, queries, k, where):
    """Brute force: replaying the ops on a dict, sorting every match by (-score, row)."""
    items: dict[str, tuple[int, Any, Metadata]] = {}  # a replaced id keeps its row
    next_row = 0
    for op in ops:
        if op[0] == "upsert":
            for id_, vector, meta in zip(op[1], op[2], op[3]):
                row = items[id_][0] if id_ in items else next_row
                next_row += id_ not in items
                items[id_] = (row, vector.astype(np.float64), meta)
        elif op[0] == "delete":
            for id_ in op[1]:
                items.pop(id_, None)
    results = []
    for q in queries.astype(np.float64):
        scored = []
        for id_, (row, x, meta) in items.items():
            if where is not None and not matches(where, meta):
                continue
            if metric == "cosine":
                nx, nq = np.linalg.norm(x), np.linalg.norm(q)
                score = (x / nx if nx else x) @ (q / nq if nq else q)
            elif metric == "dot":
                score = x @ q
            else:
                score = -((x - q) ** 2).sum()
            scored.append((-score, row, id_))
        results.append([(id_, -neg) for neg, _, id_ in sorted(scored)[:k]])
    return results


def _run(store, ops):
    for op in ops:
        if op[0] == "upsert":
            store.upsert(op[1], op[2], metadata=op[3])
        elif op[0] == "delete":
            store.delete(op[1])
        else:
            store.compact()


def _check(store, metric, ops, queries, k, where):
    expected = _reference(metric, ops, queries, k, where)
    batched = store.search(queries, k=k, where=where)
    assert [[(h.id, h.score) for h in hits] for hits in batched] == expected
    for query, want in zip(queries, expected):
        (single,) = store.search(query, k=k, where=where)
        assert [(h.id, h.score) for h in single] == want


@contextlib.contextmanager
def _tiny_blocks(on):
    """Shrink the kernel's blocks so small stores take the multi-chunk and fallback paths."""
    if not on:
        yield
        return
    with (
        mock.patch.object(flat, "_MIN_CHUNK", 5),
        mock.patch.object(flat, "_BLOCK_FLOATS", 8),
        mock.patch.object(flat, "_QUERY_BLOCK", 3),
        mock.patch.object(flat, "_MAX_CANDIDATES", 4),
        mock.patch.object(flat, "_TIES_PER_RESULT", 0),
    ):
        yield


@settings(max_examples=250, deadline=None)
@given(scenarios(), st.booleans())
def test_search_equals_brute_force(scenario, tiny_blocks):
    metric, ops, queries, k, where = scenario
    store = LocalVectorStore(DIM, metric=metric)
    _run(store, ops)
    with _tiny_blocks(tiny_blocks):
        _check(store, metric, ops, queries, k, where)


@settings(max_examples=25, deadline=None)
@given(scenarios())
def test_persistent_search_equals_brute_force_after_reopen(scenario):
    metric, ops, queries, k, where = scenario
    with tempfile.TemporaryDirectory() as path:
        with LocalVectorStore(DIM, metric=metric, path=path, compact_after=200) as store:
            _run(store, ops)
            _check(store, metric, ops, queries, k, where)
        with LocalVectorStore(DIM, metric=metric, path=path, read_only=True) as store:
            _check(store, metric, ops, queries, k, where)


@st.composite
def score_blocks(draw):
    b = draw(st.integers(1, 5))
    n = draw(st.integers(1, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # few distinct values: heavy ties; -inf marks rows outside the candidate mask
    scores = rng.integers(-draw(st.integers(0, 50)), 3, size=(b, n)).astype(np.float32)
    dropped = rng.random((b, n)) < draw(st.sampled_from([0.0, 0.3, 0.99]))
    scores[dropped] = -np.inf
    k = draw(st.integers(1, 40))
    return scores, k


@settings(max_examples=200, deadline=None)
@given(score_blocks(), st.booleans())
def test_block_top_k_equals_sorting(block, few_candidates):
    scores, k = block
    valid = np.isfinite(scores).sum(axis=1)
    k = int(min(k, valid.min())) if valid.min() else 0
    if k == 0:
        return
    with _tiny_blocks(few_candidates):
        ranked = top_k_rows(scores, k)
    for i, (rows, values) in enumerate(ranked):
        expected = np.lexsort((np.arange(scores.shape[1]), -scores[i]))[:k]
        assert rows.tolist() == expected.tolist()
        assert values.tolist() == scores[i, expected].tolist()
        single_rows, _ = top_k(scores[i], k)
        assert single_rows.tolist() == expected.tolist()
