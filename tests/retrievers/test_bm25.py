import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragmem import ConfigurationError, InvalidInputError, LocalVectorStore, NotFoundError
from ragmem.filters import matches
from ragmem.retrievers import BM25Retriever, Retriever, TextAnalyzer
from ragmem.testing.stores import FILTER_CASES, filter_dataset, unit_vectors
from tests.retrievers.helpers import reference_bm25

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]

CORPUS = {
    "d1": "Solar panels convert sunlight into electricity",
    "d2": "Wind turbines convert wind into electricity and power",
    "d3": "The cat sat on the mat",
    "d4": "Cats and dogs are common pets; a cat purrs",
    "d5": "Electricity prices rose as solar power grew",
}


def make(corpus=CORPUS, **options):
    bm25 = BM25Retriever(**options)
    bm25.add(list(corpus), list(corpus.values()))
    return bm25


def assert_matches_reference(bm25, corpus, query, **params):
    expected = reference_bm25(query, corpus, **params)
    hits = bm25.retrieve(query, k=len(corpus) + 5)
    assert {h.id for h in hits} == set(expected)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.id], rel=1e-9)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_is_a_retriever_and_scores_like_lucene():
    bm25 = make()
    assert isinstance(bm25, Retriever)
    for query in ["solar electricity", "cat", "convert wind power power", "nothing here"]:
        assert_matches_reference(bm25, CORPUS, query)


@pytest.mark.parametrize(("k1", "b"), [(0.0, 0.0), (2.0, 1.0), (0.9, 0.4)])
def test_k1_and_b(k1, b):
    assert_matches_reference(make(k1=k1, b=b), CORPUS, "cat solar electricity", k1=k1, b=b)


def test_hits_carry_text_metadata_and_explain():
    bm25 = BM25Retriever()
    bm25.add(["a"], ["red apples"], metadata=[{"lang": "en"}])
    (hit,) = bm25.retrieve("apple")
    assert (hit.text, hit.metadata, hit.explain["bm25"]) == (
        "red apples",
        {"lang": "en"},
        hit.score,
    )


def test_no_match_returns_nothing():
    assert make().retrieve("zebra") == []
    assert make().retrieve("the and of") == []  # only stopwords
    assert BM25Retriever().retrieve("anything") == []


docs_strategy = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(
    first=docs_strategy,
    second=docs_strategy,
    deletes=st.lists(st.integers(0, 60), max_size=10),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
)
def test_incremental_updates_equal_a_fresh_index(first, second, deletes, query):
    incremental = BM25Retriever()
    incremental.add([f"a{i}" for i in range(len(first))], first)
    # second batch overlaps the first: overlapping ids are updates
    second_ids = [f"a{i + len(first) // 2}" for i in range(len(second))]
    incremental.add(second_ids, second)
    live = {f"a{i}": t for i, t in enumerate(first)} | dict(zip(second_ids, second))
    removed = [f"a{i}" for i in deletes]
    assert incremental.delete(removed) == len(set(removed) & set(live))
    for id_ in removed:
        live.pop(id_, None)
    assert len(incremental) == len(live)
    if not live:
        assert incremental.retrieve(query, k=5) == []
        return
    assert_matches_reference(incremental, live, query)
    fresh = make(live)
    # an update re-inserts, so only the order among equal scores may differ
    got = sorted((-round(h.score, 9), h.id) for h in incremental.retrieve(query, k=len(live)))
    want = sorted((-round(h.score, 9), h.id) for h in fresh.retrieve(query, k=len(live)))
    assert got == want


def test_many_small_adds_merge_segments_and_stay_exact():
    bm25 = BM25Retriever()
    corpus = {}
    rng = np.random.default_rng(0)
    for batch in range(30):
        texts = [" ".join(rng.choice(WORDS, size=6)) for _ in range(7)]
        ids = [f"{batch}-{i}" for i in range(7)]
        bm25.add(ids, texts)
        corpus.update(zip(ids, texts))
        if batch % 4 == 0:
            victim = ids[0]
            bm25.delete([victim])
            corpus.pop(victim)
    assert len(bm25._index.segments) < 10
    assert_matches_reference(bm25, corpus, "alpha theta kappa")


def test_delete_by_filter_and_count():
    bm25 = BM25Retriever()
    bm25.add(
        ["a", "b", "c"], ["x one", "x two", "x three"], metadata=[{"n": 1}, {"n": 2}, {"n": 3}]
    )
    assert bm25.count() == 3
    assert bm25.count({"n": {"$gte": 2}}) == 2
    assert bm25.delete(where={"n": {"$gte": 2}}) == 2
    assert [h.id for h in bm25.retrieve("x", k=5)] == ["a"]
    assert bm25.delete(["a", "zzz"]) == 1
    with pytest.raises(InvalidInputError):
        bm25.delete()
    with pytest.raises(InvalidInputError):
        bm25.delete(["a"], where={"n": 1})


def test_update_replaces_text_and_metadata():
    bm25 = make()
    bm25.add(["d3"], ["quantum computing"], metadata=[{"topic": "physics"}])
    assert "d3" not in {h.id for h in bm25.retrieve("cat", k=10)}
    (hit,) = bm25.retrieve("quantum", k=10)
    assert (hit.id, hit.metadata) == ("d3", {"topic": "physics"})
    assert bm25.count({"topic": "physics"}) == 1


@pytest.mark.parametrize("where", FILTER_CASES, ids=[str(i) for i in range(len(FILTER_CASES))])
def test_filters_hold_exactly_as_on_the_vector_store(where):
    ids, metas = filter_dataset()
    bm25 = BM25Retriever()
    bm25.add(ids, [f"common word{i % 3}" for i in range(len(ids))], metadata=metas)
    store = LocalVectorStore(dimensions=8)
    store.upsert(ids, unit_vectors(len(ids)), metadata=metas)
    expected = {i for i, m in zip(ids, metas) if matches(where, m)}
    assert {h.id for h in bm25.retrieve("common", k=100, where=where)} == expected
    assert {h.id for h in store.search(unit_vectors(1)[0], k=100, where=where)[0]} == expected
    assert bm25.count(where) == len(expected)


metadata_strategy = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.one_of(
        st.integers(-3, 3),
        st.sampled_from(["x", "y"]),
        st.booleans(),
        st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y"])), max_size=3),
    ),
    max_size=3,
)
filter_strategy = st.recursive(
    st.one_of(
        st.builds(
            lambda f, v: {f: v}, st.sampled_from(["a", "b", "c"]), st.sampled_from([1, "x", True])
        ),
        st.builds(
            lambda f, op, v: {f: {op: v}},
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["$gt", "$lte", "$ne"]),
            st.integers(-3, 3),
        ),
        st.builds(
            lambda f, v: {f: {"$in": v}},
            st.sampled_from(["a", "b"]),
            st.lists(st.sampled_from([0, 1, "y"]), max_size=3),
        ),
        st.builds(lambda f, v: {f: {"$exists": v}}, st.sampled_from(["a", "c"]), st.booleans()),
    ),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(
    metas=st.lists(metadata_strategy, min_size=1, max_size=30),
    where=filter_strategy,
    k=st.integers(1, 40),
)
def test_filter_before_top_k_property(metas, where, k):
    ids = [f"m{i}" for i in range(len(metas))]
    texts = ["shared term" if i % 2 else "shared term term" for i in range(len(ids))]
    bm25 = BM25Retriever()
    bm25.add(ids, texts, metadata=metas)
    allowed = [i for i, m in zip(ids, metas) if matches(where, m)]
    hits = bm25.retrieve("term", k=k, where=where)
    # never a document outside the filter, and never fewer than k while matches remain
    assert {h.id for h in hits} <= set(allowed)
    assert len(hits) == min(k, len(allowed))
    store = LocalVectorStore(dimensions=8)
    store.upsert(ids, unit_vectors(len(ids)), metadata=metas)
    assert store.count(where) == bm25.count(where) == len(allowed)


def test_filter_leaves_no_leak_when_k_exceeds_allowed_set():
    bm25 = BM25Retriever()
    bm25.add(
        [str(i) for i in range(50)],
        ["same words"] * 50,
        metadata=[{"ok": i < 3} for i in range(50)],
    )
    assert sorted(h.id for h in bm25.retrieve("words", k=40, where={"ok": True})) == ["0", "1", "2"]


def test_ties_break_by_insertion_order():
    bm25 = BM25Retriever()
    bm25.add(["z", "a", "m"], ["same text"] * 3)
    assert [h.id for h in bm25.retrieve("text", k=3)] == ["z", "a", "m"]


def test_search_many_equals_retrieve():
    bm25 = make()
    queries = ["solar", "cat", "wind electricity", "zebra"]
    assert bm25.search_many(queries, k=3) == [bm25.retrieve(q, k=3) for q in queries]
    where = {"$not": {"x": 1}}
    assert bm25.search_many(queries, k=2, where=where) == [
        bm25.retrieve(q, k=2, where=where) for q in queries
    ]


def test_score_given_ids():
    bm25 = make()
    expected = reference_bm25("solar cat", CORPUS)
    assert bm25.score("solar cat", ["d3", "d2", "d1"]) == pytest.approx(
        [expected.get("d3", 0), expected.get("d2", 0), expected.get("d1", 0)]
    )
    with pytest.raises(NotFoundError, match="nope"):
        bm25.score("solar", ["d1", "nope"])


def test_custom_tokenizer():
    bm25 = BM25Retriever(tokenizer=str.split)
    bm25.add(["a", "b"], ["The Cat", "the dog"])
    assert [h.id for h in bm25.retrieve("Cat")] == ["a"]
    assert bm25.retrieve("cat") == []


def test_invalid_input():
    bm25 = BM25Retriever()
    with pytest.raises(InvalidInputError):
        bm25.add(["a", "a"], ["x", "y"])
    with pytest.raises(InvalidInputError):
        bm25.add(["a"], ["x", "y"])
    with pytest.raises(InvalidInputError):
        bm25.add(["a"], [None])
    with pytest.raises(InvalidInputError):
        bm25.add(["a"], "x")
    with pytest.raises(InvalidInputError):
        bm25.add(["a"], ["x"], metadata=[{"k": None}])
    with pytest.raises(InvalidInputError):
        bm25.retrieve("", k=3)
    with pytest.raises(InvalidInputError):
        bm25.retrieve("x", k=0)
    with pytest.raises(ConfigurationError):
        BM25Retriever(b=2)
    assert len(bm25) == 0  # nothing half-added


def test_empty_text_is_indexed_but_never_matches():
    bm25 = BM25Retriever()
    bm25.add(["e", "f"], ["", "fox"])
    assert len(bm25) == 2
    assert [h.id for h in bm25.retrieve("fox")] == ["f"]


async def test_async_matches_sync():
    bm25 = make()
    assert await bm25.retrieve_async("solar power", k=3) == bm25.retrieve("solar power", k=3)


def test_compatible_with_bm25s_on_the_same_tokens():
    bm25s = pytest.importorskip("bm25s")
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(3, 15))) for _ in range(200)]
    analyzer = TextAnalyzer()
    model = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    model.index([analyzer(t) for t in texts], show_progress=False)
    ours = BM25Retriever()
    ours.add([str(i) for i in range(200)], texts)
    for query in ["alpha beta", "kappa", "theta iota zeta"]:
        _, scores = model.retrieve([analyzer(query)], k=20, show_progress=False)
        hits = ours.retrieve(query, k=20)
        np.testing.assert_allclose([h.score for h in hits], scores[0], rtol=1e-5)


def test_compact_drops_dead_slots_and_keeps_results_and_tie_order():
    rng = np.random.default_rng(1)
    bm25 = BM25Retriever()
    corpus = {}
    for round_ in range(6):
        ids = [f"d{i}" for i in range(40)]
        texts = [" ".join(rng.choice(WORDS, size=5)) for _ in ids]
        metas = [{"round": round_, "even": i % 2 == 0} for i in range(40)]
        bm25.add(ids, texts, metadata=metas)  # every round replaces all 40 documents
        corpus.update(zip(ids, texts))
    bm25.delete(["d0", "d1"])
    for id_ in ("d0", "d1"):
        corpus.pop(id_)
    queries = ["alpha beta", "gamma", "kappa iota eta"]
    before = [bm25.retrieve(q, k=50, where={"even": True}) for q in queries]
    bm25.compact()
    assert bm25.slots == len(corpus)
    assert [bm25.retrieve(q, k=50, where={"even": True}) for q in queries] == before
    assert_matches_reference(bm25, corpus, "alpha theta kappa")
    bm25.add(["new"], ["alpha alpha"], metadata=[{"even": True}])
    assert bm25.retrieve("alpha", k=1)[0].id == "new"


def test_replacing_documents_forever_keeps_the_index_bounded():
    bm25 = BM25Retriever()
    for round_ in range(300):
        bm25.add([f"d{i}" for i in range(10)], [f"alpha round{round_} doc{i}" for i in range(10)])
    assert len(bm25) == 10
    # dead slots are reclaimed automatically once they outnumber the live ones
    assert bm25.slots <= 2 * max(10, 1024)
    assert [h.id for h in bm25.retrieve("doc3 round299", k=1)] == ["d3"]


def test_save_compacts(tmp_path):
    bm25 = make()
    bm25.add(["d1"], ["solar solar"])
    bm25.delete(["d3"])
    expected = bm25.retrieve("solar cat electricity", k=10)
    bm25.save(tmp_path / "bm25.idx")
    loaded = BM25Retriever.load(tmp_path / "bm25.idx")
    assert loaded.slots == len(loaded) == 4
    assert loaded.retrieve("solar cat electricity", k=10) == expected
