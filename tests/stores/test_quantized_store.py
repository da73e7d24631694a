"""LocalVectorStore(dtype=..., coarse_dims=...): the contract suite, agreement with exact search."""

from __future__ import annotations

import numpy as np
import pytest

from ragmem import LocalVectorStore
from ragmem.testing import VectorStoreContract
from ragmem.types import Metadata


class TestFloat16Store(VectorStoreContract):
    @pytest.fixture
    def store(self):
        return LocalVectorStore(dimensions=8, dtype="float16")


class TestInt8Store(VectorStoreContract):
    @pytest.fixture
    def store(self):
        return LocalVectorStore(dimensions=8, dtype="int8")


class TestBinaryStore(VectorStoreContract):
    @pytest.fixture
    def store(self):
        return LocalVectorStore(dimensions=8, dtype="binary")


class TestMatryoshkaStore(VectorStoreContract):
    @pytest.fixture
    def store(self):
        return LocalVectorStore(dimensions=8, coarse_dims=4, rescore=10)


class TestPersistentBinaryStore(VectorStoreContract):
    """Codes are derived, never saved: they are rebuilt from the rows on open and compaction."""

    @pytest.fixture
    def store(self, tmp_path):
        store = LocalVectorStore(
            dimensions=8, path=tmp_path / "store", compact_after=1, dtype="binary"
        )
        yield store
        store.close()


@pytest.mark.parametrize("dtype", ["float16", "int8", "binary"])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_quantized_store_agrees_with_exact_store(dtype, metric, tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((30, 64)).astype(np.float32)
    vectors = centres[rng.integers(0, 30, 3000)] + 0.4 * rng.standard_normal((3000, 64))
    vectors = vectors.astype(np.float32)
    queries = vectors[:20] + 0.1 * rng.standard_normal((20, 64)).astype(np.float32)
    ids = [str(i) for i in range(3000)]
    meta: list[Metadata] = [{"even": i % 2 == 0} for i in range(3000)]
    exact = LocalVectorStore(64, metric=metric)
    codes = LocalVectorStore(64, metric=metric, dtype=dtype, path=tmp_path / "s")
    for store in (exact, codes):
        store.upsert(ids, vectors, metadata=meta)
        store.delete(ids[:100])
    codes.compact()
    for where in (None, {"even": True}):
        want = exact.search(queries, k=10, where=where)
        got = codes.search(queries, k=10, where=where)
        hits = sum(len({h.id for h in a} & {h.id for h in b}) for a, b in zip(got, want))
        assert hits / 200 >= 0.95
        for a, b in zip(got, want):
            # a row found by both has the same exact score
            scores = {h.id: h.score for h in b}
            for hit in a:
                if hit.id in scores:
                    assert hit.score == pytest.approx(scores[hit.id], rel=1e-4, abs=1e-3)
    codes.close()
