"""Hostile input never bricks a RAG pipeline index: each ``ingest`` is refused with
InvalidInputError before anything is written, or lands whole; the pipeline keeps working
and reopens with exactly the accepted documents, in the store, BM25 and the manifest."""

from __future__ import annotations

import itertools
import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ragmem import Document, HashingEmbedder, InvalidInputError
from ragmem.pipeline import RAGPipeline

_names = itertools.count()

numbers = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, 10**400, -(2**63) - 1, 2**64, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
)
texts = st.one_of(
    st.text(min_size=0, max_size=20),
    st.sampled_from(["\ud800", "ok \udfff", "", "   ", "\x00", "x" * 300]),
)
scalars = st.one_of(numbers, texts, st.booleans(), st.none())
metadata = st.one_of(
    st.dictionaries(st.one_of(texts, st.integers()), scalars, max_size=3),
    st.dictionaries(texts, st.lists(scalars, max_size=2), max_size=2),
    st.sampled_from([{"deep": {"a": {"b": 1}}}, {"$x": 1}, {"": 1}, {"path": None}]),
)
documents = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.one_of(texts, st.sampled_from(["doc", "doc"])),
            "text": st.one_of(texts, st.just("plain words about rivers")),
            "metadata": metadata,
        }
    ),
    min_size=1,
    max_size=3,
)
calls = st.lists(
    st.tuples(documents, st.one_of(st.none(), metadata)),
    min_size=1,
    max_size=5,
)


def _open(path, **options):
    return RAGPipeline(path, embedder=HashingEmbedder(16), **options)


def _documents(rag) -> set[str]:
    return {key.removeprefix("doc:") for key in rag.manifest.entries}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls=calls)
# a refused document after an acceptable one in the same call: neither may land
@example(
    calls=[
        (
            [
                {"id": "fine", "text": "plain words", "metadata": {}},
                {"id": "bad", "text": "more words", "metadata": {"n": 10**400}},
            ],
            None,
        ),
        ([{"id": "ok", "text": "plain"}, {"id": "x", "text": "\ud800", "metadata": {}}], None),
    ]
)
def test_refused_ingests_leave_no_trace(tmp_path_factory, calls):
    path = tmp_path_factory.mktemp(f"p{next(_names)}")
    accepted: set[str] = set()
    rag = _open(path)
    try:
        for n, (docs, extra) in enumerate(calls):
            try:
                batch = [Document(**d) for d in docs]
                rag.ingest(batch, metadata=extra)
            except InvalidInputError:
                pass
            else:
                accepted.update(d.id for d in batch)
            control = Document(id=f"control{n}", text=f"control sentence number {n}")
            rag.ingest([control])
            accepted.add(control.id)
            assert _documents(rag) == accepted
            assert rag.search(f"control sentence number {n}", k=1)[0].text
    finally:
        rag.close()
    for retriever in ("dense", "bm25"):
        with _open(path, retriever=retriever, read_only=True) as reopened:
            assert _documents(reopened) == accepted
            chunks = reopened.manifest.chunk_ids()
            assert reopened.store.count() == len(chunks)
            hits = reopened.search("control sentence number", k=len(chunks))
            found = {h.metadata["doc_id"] for h in hits}
            assert found >= {f"control{n}" for n in range(len(calls))}
