"""Token vectors replaced or deleted over a long life do not pile up in memory."""

from __future__ import annotations

import numpy as np

from ragmem.retrievers.tokenvectors import TokenVectorStore

from ..agents.test_memory_bounded import traced_growth


def test_replacing_token_vectors_reclaims_the_old_ones() -> None:
    store = TokenVectorStore(64, encoding="int8")
    matrix = np.random.default_rng(0).standard_normal((40, 64)).astype(np.float32)
    store.put(["other"], [matrix])
    growth = traced_growth(lambda: store.put(["doc"], [matrix]), warm=3_000, more=6_000)
    assert len(store) == 2
    assert store.n_tokens == 80
    # 6,000 replacements append 240,000 rows (15 MB of codes) unless space is reclaimed
    assert growth < 1_000_000


def test_reclaiming_keeps_every_live_matrix_and_its_scores() -> None:
    rng = np.random.default_rng(1)
    store = TokenVectorStore(32, encoding="float16")
    kept = {f"d{i}": rng.standard_normal((5 + i % 7, 32)).astype(np.float32) for i in range(50)}
    store.put(list(kept), list(kept.values()))
    query = rng.standard_normal((4, 32)).astype(np.float32)
    before = store.maxsim(query, list(kept))
    for _ in range(400):  # replace and delete far past the reclaim floor
        churn = rng.standard_normal((2, 30, 32)).astype(np.float32)
        store.put(["replaced", "deleted"], list(churn))
        store.delete(["deleted"])
    assert store.n_tokens == sum(len(m) for m in kept.values()) + 30
    np.testing.assert_array_equal(store.maxsim(query, list(kept)), before)
    for (id_, matrix), got in zip(kept.items(), store.get(list(kept))):
        np.testing.assert_allclose(got, matrix.astype(np.float16).astype(np.float32), err_msg=id_)
