import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragmem import ConfigurationError, HashingEmbedder, Hit, LocalVectorStore
from ragmem.retrievers import BM25Retriever, DenseRetriever, HybridRetriever, Retriever
from ragmem.retrievers.fusion import fuse, normalize


class Fixed(Retriever):
    """Returns a fixed ranking (cut to k), optionally after an async pause."""

    def __init__(self, hits, delay=0.0, log=None, name="fixed"):
        self.hits = hits
        self.delay = delay
        self.log = log if log is not None else []
        self.name = name

    def _retrieve(self, query, k, where):
        return [h.model_copy(deep=True) for h in self.hits[:k]]

    async def _retrieve_async(self, query, k, where):
        self.log.append(("start", self.name))
        await asyncio.sleep(self.delay)
        self.log.append(("end", self.name))
        return self._retrieve(query, k, where)


def hits(*pairs):
    return [Hit(id=i, score=s, text=f"text {i}") for i, s in pairs]


A = hits(("a", 10.0), ("b", 8.0), ("c", 2.0))
B = hits(("c", 0.9), ("d", 0.8), ("a", 0.1))


def test_rrf_hand_computed():
    fused = fuse([A, B], ["x", "y"], fusion="rrf", rrf_k=60)
    scores = {h.id: h.score for h in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["d"] == pytest.approx(1 / 62)
    assert [h.id for h in fused] == ["a", "c", "b", "d"]  # exact ties broken by id
    assert fused[0].explain == {
        "fusion": "rrf",
        "retrievers": {"x": {"rank": 1, "score": 10.0}, "y": {"rank": 3, "score": 0.1}},
    }


def test_weighted_rrf():
    fused = fuse([A, B], ["x", "y"], fusion="rrf", weights=[1.0, 3.0], rrf_k=60)
    assert {h.id: h.score for h in fused}["d"] == pytest.approx(3 / 62)
    assert fused[0].id == "c"


def test_minmax_convex_combination_hand_computed():
    fused = fuse([A, B], ["x", "y"], fusion="minmax", weights=[3, 1])
    scores = {h.id: h.score for h in fused}
    # x: a=1, b=0.75, c=0; y: c=1, d=0.875, a=0; weights rescaled to 0.75/0.25
    assert scores == pytest.approx({"a": 0.75, "b": 0.5625, "c": 0.25, "d": 0.21875})
    assert fused[1].explain["retrievers"]["x"]["normalized"] == pytest.approx(0.75)


def test_zscore_and_dbsf_normalisation():
    assert normalize([1.0, 2.0, 3.0], "zscore") == pytest.approx([-1.2247449, 0.0, 1.2247449])
    assert normalize([5.0, 5.0], "minmax") == [1.0, 1.0]
    values = normalize([0.0, 1.0, 2.0, 3.0, 100.0], "dbsf")
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values)
    fused = fuse([A, B], ["x", "y"], fusion="zscore")
    # "d" is missing from x: it gets x's lowest z-score rather than 0
    x_floor = min(normalize([10.0, 8.0, 2.0], "zscore"))
    d = next(h for h in fused if h.id == "d")
    assert d.score == pytest.approx(0.5 * x_floor + 0.5 * normalize([0.9, 0.8, 0.1], "zscore")[1])
    with pytest.raises(ConfigurationError):
        normalize([1.0], "softmax")


def test_bad_configuration():
    with pytest.raises(ConfigurationError):
        fuse([A], ["x"], fusion="borda")
    with pytest.raises(ConfigurationError):
        fuse([A, B], ["x", "y"], weights=[1.0])
    with pytest.raises(ConfigurationError):
        fuse([A, B], ["x", "y"], fusion="minmax", weights=[0, 0])
    with pytest.raises(ConfigurationError):
        HybridRetriever([])
    with pytest.raises(ConfigurationError):
        HybridRetriever([Fixed(A)], fusion="nope")


ranking = st.lists(
    st.tuples(st.sampled_from("abcdefghij"), st.floats(-5, 5, allow_nan=False)),
    max_size=8,
).map(lambda pairs: hits(*sorted(pairs, key=lambda p: -p[1])))


@settings(max_examples=80, deadline=None)
@given(
    lists=st.lists(ranking, min_size=1, max_size=4),
    fusion=st.sampled_from(["rrf", "minmax", "zscore", "dbsf"]),
)
def test_fusion_is_order_independent_and_dedups_by_id(lists, fusion):
    names = [f"r{i}" for i in range(len(lists))]
    reference = fuse(lists, names, fusion=fusion)
    ids = [h.id for h in reference]
    assert len(ids) == len(set(ids))
    assert set(ids) == {h.id for hs in lists for h in hs}
    for order in itertools.islice(itertools.permutations(range(len(lists))), 6):
        permuted = fuse([lists[i] for i in order], [names[i] for i in order], fusion=fusion)
        assert [(h.id, h.score) for h in permuted] == [(h.id, h.score) for h in reference]
        assert [h.explain for h in permuted] == [h.explain for h in reference]


@settings(max_examples=60, deadline=None)
@given(
    lists=st.lists(ranking, min_size=1, max_size=3),
    fusion=st.sampled_from(["rrf", "minmax", "zscore", "dbsf"]),
    limit=st.integers(min_value=0, max_value=8),
)
def test_limit_keeps_the_head_of_the_full_fusion(lists, fusion, limit):
    names = [f"r{i}" for i in range(len(lists))]
    full = fuse(lists, names, fusion=fusion, floors=[0.0] * len(lists))
    head = fuse(lists, names, fusion=fusion, floors=[0.0] * len(lists), limit=limit)
    assert [h.model_dump() for h in head] == [h.model_dump() for h in full[:limit]]


def test_bad_limit():
    with pytest.raises(ConfigurationError, match="limit"):
        fuse([A], ["a"], limit=-1)


def test_dedup_by_id_never_by_text():
    same_text = [Hit(id="p", score=1.0, text="dup"), Hit(id="q", score=0.5, text="dup")]
    again = [Hit(id="p", score=3.0, text="dup")]
    fused = fuse([same_text, again], ["x", "y"])
    assert sorted(h.id for h in fused) == ["p", "q"]


def test_hybrid_over_real_retrievers_explains_each():
    texts = {
        "a": "solar panels make electricity",
        "b": "wind turbines make electricity",
        "c": "the cat sat",
    }
    bm25 = BM25Retriever()
    bm25.add(list(texts), list(texts.values()), metadata=[{"n": i} for i in range(3)])
    dense = DenseRetriever(HashingEmbedder(64), LocalVectorStore(dimensions=64))
    dense.add(list(texts), list(texts.values()), metadata=[{"n": i} for i in range(3)])
    hybrid = HybridRetriever([bm25, dense], fusion="rrf")
    top = hybrid.retrieve("solar electricity", k=2)
    assert top[0].id == "a"
    assert set(top[0].explain["retrievers"]) == {"bm25", "dense"}
    assert top[0].explain["retrievers"]["bm25"]["rank"] == 1
    assert top[0].text == texts["a"]
    filtered = hybrid.retrieve("solar electricity", k=3, where={"n": {"$gte": 1}})
    assert {h.id for h in filtered} <= {"b", "c"}


async def test_sync_and_async_identical_and_concurrent():
    log = []
    x = Fixed(A, delay=0.05, log=log, name="x")
    y = Fixed(B, delay=0.05, log=log, name="y")
    for fusion in ["rrf", "minmax", "zscore", "dbsf"]:
        log.clear()
        hybrid = HybridRetriever({"x": x, "y": y}, fusion=fusion, weights=[0.3, 0.7])
        assert await hybrid.retrieve_async("q", k=3) == hybrid.retrieve("q", k=3)
        # both sub-retrievers started before either finished
        assert [event for event, _ in log[:2]] == ["start", "start"]


def test_depth_and_k():
    hybrid = HybridRetriever({"x": Fixed(A), "y": Fixed(B)}, depth=1)
    # depth 1: "a" and "c" both rank first once; the tie goes to the smaller id
    assert [h.id for h in hybrid.retrieve("q", k=1)] == ["a"]
    assert len(hybrid.retrieve("q", k=10)) == 4


def test_minmax_keeps_the_proportions_of_a_short_bm25_list():
    from ragmem.retrievers.fusion import normalize

    assert normalize([10.0, 9.0], "minmax") == [1.0, 0.0]
    assert normalize([10.0, 9.0], "minmax", 0.0) == [1.0, 0.9]
    # two BM25 hits, the second nearly as good: the dense retriever's preference decides
    bm25 = [Hit(id="faq", score=10.0), Hit(id="backup", score=9.0)]
    dense = [Hit(id="backup", score=0.62), Hit(id="faq", score=0.40), Hit(id="x", score=0.1)]
    fused = fuse([bm25, dense], ["bm25", "dense"], fusion="minmax", floors=[0.0, None])
    assert fused[0].id == "backup"
    assert fuse([bm25, dense], ["bm25", "dense"], fusion="minmax")[0].id == "faq"


def test_hybrid_passes_the_bm25_floor_to_minmax():
    from ragmem.retrievers import BM25Retriever

    assert BM25Retriever.score_floor == 0.0
    bm25 = BM25Retriever()
    bm25.add(["a", "b"], ["backup restore console", "backup request"])
    hybrid = HybridRetriever([bm25], fusion="minmax")
    scores = [h.explain["retrievers"]["bm25"]["normalized"] for h in hybrid.retrieve("backup", 2)]
    assert min(scores) > 0.0
