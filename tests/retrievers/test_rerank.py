import numpy as np
import pytest

from ragmem import ConfigurationError, CorruptIndexError, Hit, InvalidInputError, NotFoundError
from ragmem.retrievers import (
    BM25Retriever,
    LateInteractionReranker,
    RerankRetriever,
    Retriever,
    TokenVectorStore,
)
from tests.retrievers.helpers import HashingTokenEmbedder

TEXTS = {
    "a": "solar panels convert sunlight into electricity",
    "b": "the cat sat on the mat with another cat",
    "c": "electricity from the sun powers homes",
    "d": "wind turbines and solar farms",
}


def naive_maxsim(q, d):
    return sum(max(float(qv @ dv) for dv in d) for qv in q)


def candidates():
    return [
        Hit(id=i, score=float(len(TEXTS) - n), text=t) for n, (i, t) in enumerate(TEXTS.items())
    ]


@pytest.mark.parametrize("encoding", ["float16", "int8", "int4"])
def test_store_round_trip_and_vectorised_maxsim(encoding):
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((n, 16)).astype(np.float32) for n in (3, 1, 7)]
    mats = [m / np.linalg.norm(m, axis=1, keepdims=True) for m in mats]
    store = TokenVectorStore(16, encoding=encoding)
    store.put(["x", "y", "z"], mats)
    tolerance = {"float16": 1e-3, "int8": 2e-2, "int4": 0.25}[encoding]
    for got, want in zip(store.get(["x", "y", "z"]), mats):
        assert got.shape == want.shape
        assert np.abs(got - want).max() < tolerance
    q = mats[2][:4]
    decoded = store.get(["z", "x", "y"])
    expected = [naive_maxsim(q, d) for d in decoded]
    np.testing.assert_allclose(store.maxsim(q, ["z", "x", "y"]), expected, rtol=1e-4, atol=1e-4)
    assert store.nbytes < 16 * 4 * 11


def test_store_sizes_shrink_with_encoding():
    mats = [np.ones((10, 64), np.float32)]
    sizes = {}
    for encoding in ["float16", "int8", "int4"]:
        store = TokenVectorStore(64, encoding=encoding)
        store.put(["d"], mats)
        sizes[encoding] = store.nbytes
    assert sizes == {"float16": 1280, "int8": 680, "int4": 360}


def test_store_replace_delete_persist(tmp_path):
    store = TokenVectorStore(8, encoding="int4")
    store.put(["a", "b"], [np.eye(8, dtype=np.float32)[:2], np.eye(8, dtype=np.float32)[2:5]])
    store.put(["a"], [np.eye(8, dtype=np.float32)[5:6]])
    assert store.delete(["b", "nope"]) == 1
    assert len(store) == 1
    assert store.n_tokens == 1
    store.save(tmp_path / "t")
    loaded = TokenVectorStore.load(tmp_path / "t")
    np.testing.assert_array_equal(loaded.get(["a"])[0], store.get(["a"])[0])
    with pytest.raises(NotFoundError):
        loaded.get(["b"])
    raw = (tmp_path / "t").read_bytes()
    (tmp_path / "t").write_bytes(raw[:-3])
    with pytest.raises(CorruptIndexError):
        TokenVectorStore.load(tmp_path / "t")


def test_store_rejects_bad_input():
    store = TokenVectorStore(4)
    with pytest.raises(InvalidInputError):
        store.put(["a"], [np.ones((2, 3), np.float32)])
    with pytest.raises(InvalidInputError):
        store.put(["a"], [np.full((2, 4), np.nan, np.float32)])
    with pytest.raises(InvalidInputError):
        store.put(["a"], [np.zeros((0, 4), np.float32)])
    with pytest.raises(ConfigurationError):
        TokenVectorStore(5, encoding="int4")


def test_reranker_scores_by_maxsim_and_keeps_the_old_score():
    embedder = HashingTokenEmbedder()
    reranker = LateInteractionReranker(embedder, encoding="float16")
    ranked = reranker.rerank("solar electricity", candidates())
    q = embedder.embed_tokens(["solar electricity"], purpose="query")[0]
    expected = {i: naive_maxsim(q, embedder.embed_tokens([t])[0]) for i, t in TEXTS.items()}
    assert [h.id for h in ranked] == sorted(expected, key=lambda i: -expected[i])
    for hit in ranked:
        assert hit.score == pytest.approx(expected[hit.id], abs=1e-2)
        assert hit.explain["previous_score"] == float(len(TEXTS) - list(TEXTS).index(hit.id))


def test_precomputed_vectors_are_not_re_encoded():
    embedder = HashingTokenEmbedder()
    reranker = LateInteractionReranker(embedder)
    reranker.index(list(TEXTS), list(TEXTS.values()))
    before = embedder.calls
    reranker.rerank("solar", candidates())
    assert embedder.calls == before + 1  # only the query
    on_demand = LateInteractionReranker(HashingTokenEmbedder(), cache=False)
    assert [h.id for h in on_demand.rerank("solar", candidates())] == [
        h.id for h in reranker.rerank("solar", candidates())
    ]


def test_weight_blends_with_first_stage():
    embedder = HashingTokenEmbedder()
    first_stage_only = LateInteractionReranker(embedder, weight=0.0)
    assert [h.id for h in first_stage_only.rerank("cat", candidates())] == list(TEXTS)
    with pytest.raises(ConfigurationError):
        LateInteractionReranker(embedder, weight=1.5)


@pytest.mark.parametrize("normalization", ["minmax", "zscore"])
def test_blend_normalises_maxsim_and_first_stage_scores_per_query(normalization):
    # the first stage has an outlier on top: the case where the two normalisations differ
    hits = [Hit(id=i, score=s, text=TEXTS[i]) for i, s in zip(TEXTS, [10.0, 1.2, 1.1, 1.0])]
    reranker = LateInteractionReranker(
        HashingTokenEmbedder(), weight=0.3, normalization=normalization
    )
    ranked = reranker.rerank("solar electricity sun", hits)
    by_id = {h.id: h for h in ranked}
    sims = np.array([by_id[i].explain["maxsim"] for i in TEXTS])
    prior = np.array([h.score for h in hits])

    def norm(x):
        if normalization == "minmax":
            return (x - x.min()) / (x.max() - x.min())
        return (x - x.mean()) / x.std()

    expected = 0.3 * norm(sims) + 0.7 * norm(prior)
    np.testing.assert_allclose([by_id[i].score for i in TEXTS], expected, rtol=1e-9, atol=1e-12)
    assert [h.id for h in ranked] == [list(TEXTS)[i] for i in np.argsort(-expected, kind="stable")]
    assert [h.explain["previous_score"] for h in ranked] == [
        prior[list(TEXTS).index(h.id)] for h in ranked
    ]


def test_unknown_normalization_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="zscore"):
        LateInteractionReranker(HashingTokenEmbedder(), normalization="softmax")  # type: ignore[arg-type]


def test_hits_without_text_or_vectors_are_an_error():
    reranker = LateInteractionReranker(HashingTokenEmbedder())
    with pytest.raises(InvalidInputError, match="'x'"):
        reranker.rerank("q", [Hit(id="x", score=1.0)])
    assert reranker.rerank("q", []) == []


class Spy(Retriever):
    def __init__(self, base):
        self.base = base
        self.asked = []

    def _retrieve(self, query, k, where):
        self.asked.append(k)
        return self.base.retrieve(query, k, where=where)


async def test_rerank_retriever_depth_filter_and_async():
    bm25 = BM25Retriever()
    bm25.add(list(TEXTS), list(TEXTS.values()), metadata=[{"n": i} for i in range(4)])
    spy = Spy(bm25)
    retriever = RerankRetriever(spy, LateInteractionReranker(HashingTokenEmbedder()), depth=3)
    top = retriever.retrieve("solar electricity sun", k=2)
    assert spy.asked == [3]
    assert len(top) == 2
    assert "maxsim" in top[0].explain
    assert "bm25" in top[0].explain
    assert await retriever.retrieve_async("solar electricity sun", k=2) == top
    filtered = retriever.retrieve("solar electricity", k=5, where={"n": {"$ne": 0}})
    assert "a" not in {h.id for h in filtered}


def test_rerank_depth_below_k_keeps_the_tail_in_base_order():
    bm25 = BM25Retriever()
    bm25.add(list(TEXTS), list(TEXTS.values()))
    base = bm25.retrieve("solar electricity sun cat", k=4)
    retriever = RerankRetriever(bm25, LateInteractionReranker(HashingTokenEmbedder()), depth=2)
    top = retriever.retrieve("solar electricity sun cat", k=4)
    assert {h.id for h in top[:2]} == {h.id for h in base[:2]}
    assert [h.id for h in top[2:]] == [h.id for h in base[2:]]
    assert "maxsim" not in top[3].explain
