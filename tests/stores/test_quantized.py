"""QuantizedFlatIndex: compact codes scanned, exact float32 rescoring, Matryoshka coarse search."""

from __future__ import annotations

import numpy as np
import pytest

from ragmem.errors import ConfigurationError
from ragmem.stores.local import quantized
from ragmem.stores.local.flat import prepare_queries, top_k
from ragmem.stores.local.quantized import CodeDtype, QuantizedFlatIndex

DIM = 96
DTYPES: list[CodeDtype] = ["float32", "float16", "int8", "binary"]


def clustered(n: int, seed: int, dim: int = DIM, positive: bool = False) -> np.ndarray:
    centres = np.random.default_rng(0).standard_normal((20, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 20, n)] + 0.35 * rng.standard_normal((n, dim))
    # Matryoshka-like: leading dimensions carry most of the signal
    x *= np.linspace(1.0, 0.3, dim)
    if positive:  # SIFT-like: all components >= 0, so raw sign bits say nothing
        return np.abs(x * 30).astype(np.float32)
    return prepare_queries(x.astype(np.float32), "cosine")


def scores_for(queries, vectors, sq, metric):
    scores = queries @ vectors.T
    if metric == "l2":
        scores = 2 * scores - sq[None, :] - np.einsum("ij,ij->i", queries, queries)[:, None]
    return scores.astype(np.float32)


def exact(queries, vectors, k, metric, mask=None):
    sq = np.einsum("ij,ij->i", vectors, vectors)
    scores = scores_for(queries, vectors, sq, metric)
    if mask is not None:
        scores[:, ~mask] = -np.inf
    return [top_k(s, k) for s in scores]


def built(dtype, metric="cosine", n=1200, **options):
    vectors = clustered(n, 1, positive=metric == "l2")
    index = QuantizedFlatIndex(DIM, metric, dtype=dtype, **options)
    index.add(np.arange(n), vectors)
    return index, vectors


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_full_rescoring_equals_exact_search(dtype, metric):
    index, vectors = built(dtype, metric)
    queries = clustered(8, 2, positive=metric == "l2")
    sq = np.einsum("ij,ij->i", vectors, vectors)
    # a candidate pool as large as the store makes the result exact by construction
    got = index.search(queries, 10, vectors=vectors, sq_norms=sq, rescore=len(vectors))
    for (rows, scores), (want_rows, want_scores) in zip(got, exact(queries, vectors, 10, metric)):
        assert rows.tolist() == want_rows.tolist()
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("dtype", "metric"), [(d, "cosine") for d in DTYPES] + [("binary", "l2")])
def test_default_rescoring_keeps_recall(dtype, metric):
    index, vectors = built(dtype, metric, coarse_dims=48 if dtype == "float32" else None)
    queries = clustered(30, 3, positive=metric == "l2")
    sq = np.einsum("ij,ij->i", vectors, vectors)
    got = index.search(queries, 10, vectors=vectors, sq_norms=sq)
    truth = exact(queries, vectors, 10, metric)
    hits = sum(len(set(r.tolist()) & set(t.tolist())) for (r, _), (t, _) in zip(got, truth))
    assert hits / 300 >= 0.9


@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_and_gathered_subsets(dtype):
    index, vectors = built(dtype)
    queries = clustered(5, 4)
    rng = np.random.default_rng(5)
    for fraction in (0.6, 0.05):  # scan-and-mask path, then the gathered-rows path
        mask = rng.random(len(vectors)) < fraction
        got = index.search(queries, 7, vectors=vectors, mask=mask, rescore=len(vectors))
        for (rows, _), (want, _) in zip(got, exact(queries, vectors, 7, "cosine", mask)):
            assert mask[rows].all()
            assert rows.tolist() == want.tolist()
    none = index.search(queries[:1], 3, vectors=vectors, mask=np.zeros(len(vectors), bool))
    assert len(none[0][0]) == 0


def test_replacing_a_row_replaces_its_code():
    index, vectors = built("binary")
    store = vectors.copy()
    store[10] = -vectors[0]
    index.add(np.array([10]), store[10:11])
    rows, scores = index.search(-vectors[:1], 1, vectors=store)[0]
    assert rows.tolist() == [10]
    assert scores[0] == pytest.approx(1.0, abs=1e-5)


def test_code_memory():
    n, dim = 1000, 384
    vectors = prepare_queries(
        np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32), "cosine"
    )
    sizes = {}
    for dtype in DTYPES:
        index = QuantizedFlatIndex(dim, "cosine", dtype=dtype)
        index.add(np.arange(n), vectors.astype(np.float32))
        sizes[dtype] = index.nbytes
    float32 = n * dim * 4
    assert sizes["float32"] == float32
    assert sizes["float16"] == float32 // 2
    assert sizes["int8"] <= float32 // 4 + n * 4
    assert sizes["binary"] <= float32 // 32


def test_popcount_without_numpy2(monkeypatch):
    index, vectors = built("binary")
    queries = clustered(4, 6)
    want = index.search(queries, 5, vectors=vectors)
    monkeypatch.setattr(quantized, "_HAS_BITWISE_COUNT", False)
    got = index.search(queries, 5, vectors=vectors)
    for (a, _), (b, _) in zip(got, want):
        assert a.tolist() == b.tolist()


def test_memory_mapped_rescoring_vectors(tmp_path):
    index, vectors = built("int8")
    path = tmp_path / "vectors.f32"
    vectors.tofile(path)
    mapped = np.memmap(path, np.float32, mode="r", shape=vectors.shape)
    queries = clustered(3, 7)
    for (a, sa), (b, sb) in zip(
        index.search(queries, 5, vectors=mapped), index.search(queries, 5, vectors=vectors)
    ):
        assert a.tolist() == b.tolist()
        np.testing.assert_array_equal(sa, sb)


def test_rebuild_and_empty():
    index, vectors = built("binary", "l2")
    index.rebuild(np.arange(10), vectors[:10])
    assert len(index) == 10
    empty = QuantizedFlatIndex(DIM, "cosine", dtype="int8")
    assert len(empty.search(vectors[:1], 3, vectors=vectors[:0])[0][0]) == 0


def test_bad_options():
    with pytest.raises(ConfigurationError, match="dtype"):
        QuantizedFlatIndex(DIM, "cosine", dtype="int4")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="rescore"):
        QuantizedFlatIndex(DIM, "cosine", rescore=0)
    with pytest.raises(ConfigurationError, match="coarse_dims"):
        QuantizedFlatIndex(DIM, "cosine", coarse_dims=DIM + 1)
