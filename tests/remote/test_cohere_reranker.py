"""CohereReranker against the fake Cohere rerank API."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("cohere")

from ragmem.errors import BackendResponseError, InvalidInputError
from ragmem.retrievers.cohere import CohereReranker
from ragmem.types import Hit
from tests.remote.conftest import FAST_RETRY
from tests.remote.fake_cohere import KEY
from tests.remote.fakeserver import Fault

DOCS = [
    "tax law of 1987 and its amendments",
    "the weather is sunny today",
    "stock markets fell sharply",
    "today the weather is sunny and warm",
]


def hits():
    return [
        Hit(id=f"d{i}", score=1.0 - i / 10, text=t, metadata={"i": i}) for i, t in enumerate(DOCS)
    ]


def make(server, **options):
    options.setdefault("retry", FAST_RETRY)
    return CohereReranker(base_url=server.url, api_key=KEY, **options)


def test_reorders_by_relevance_and_explains(cohere_server):
    ranked = make(cohere_server).rerank("is the weather sunny today", hits())
    assert {h.id for h in ranked[:2]} == {"d1", "d3"}
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)
    for rank, hit in enumerate(ranked):
        info = hit.explain["rerank"]
        assert info["rank"] == rank
        assert info["score"] == hit.score
        assert info["previous_rank"] == int(hit.id[1:])
        assert info["previous_score"] == pytest.approx(1.0 - info["previous_rank"] / 10)
        assert hit.metadata == {"i": info["previous_rank"]}
    body = cohere_server.bodies()[-1]
    assert body == {
        "model": "rerank-v3.5",
        "query": "is the weather sunny today",
        "documents": DOCS,
    }


def test_k_and_async_agree(cohere_server):
    reranker = make(cohere_server)
    sync = reranker.rerank("weather", hits(), k=2)
    got = asyncio.run(reranker.rerank_async("weather", hits(), k=2))
    assert [h.id for h in got] == [h.id for h in sync]
    assert len(sync) == 2


def test_large_candidate_sets_are_split_and_merged(cohere_server):
    many = [
        Hit(id=str(i), score=0.0, text=f"document number {i} weather {i % 3}") for i in range(25)
    ]
    whole = make(cohere_server).rerank("weather 1", many)
    split = make(cohere_server, max_documents_per_request=10).rerank("weather 1", many)
    assert [h.id for h in split] == [h.id for h in whole]
    assert [len(b["documents"]) for b in cohere_server.bodies()[1:]] == [10, 10, 5]


def test_hits_without_text_are_rejected(cohere_server):
    with pytest.raises(InvalidInputError, match="d9"):
        make(cohere_server).rerank("q", [Hit(id="d9", score=1.0)])
    assert cohere_server.requests == []


def test_empty_hits_make_no_request(cohere_server):
    assert make(cohere_server).rerank("q", []) == []
    assert cohere_server.requests == []


def test_missing_results_are_an_error(cohere_server):
    cohere_server.faults.append(Fault.change(lambda b: {**b, "results": b["results"][:-1]}))
    with pytest.raises(BackendResponseError):
        make(cohere_server).rerank("weather", hits())


def test_retried_on_429(cohere_server):
    cohere_server.faults.append(Fault.http(429, headers={"Retry-After": "0"}))
    assert len(make(cohere_server).rerank("weather", hits())) == 4
    assert len(cohere_server.requests) == 2
