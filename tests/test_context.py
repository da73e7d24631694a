"""ContextBuilder: merging, ordering, templates, cutting and the token budget."""

from __future__ import annotations

import pytest

from ragmem.context import CUT_MARKER, ContextBuilder
from ragmem.errors import ConfigurationError, InvalidInputError
from ragmem.llms import Message
from ragmem.tokens import CharTokenizer, WhitespaceTokenizer
from ragmem.types import Hit

DOC = "Alpha one. Beta two. Gamma three. Delta four. Epsilon five."


def span_hit(doc_id: str, doc: str, start: int, end: int, score: float) -> Hit:
    return Hit(
        id=f"{doc_id}#{start}",
        score=score,
        text=doc[start:end],
        metadata={"doc_id": doc_id, "start": start, "end": end, "source": f"{doc_id}.md"},
    )


def builder(budget: int = 1000, **kw) -> ContextBuilder:
    return ContextBuilder(budget, tokenizer=WhitespaceTokenizer(), **kw)


def test_overlapping_and_adjacent_chunks_merge_into_one_source():
    hits = [span_hit("d", DOC, 0, 20, 0.5), span_hit("d", DOC, 11, 33, 0.9)]
    hits.append(span_hit("d", DOC, 33, len(DOC), 0.1))  # adjacent to the previous
    ctx = builder().build(hits)
    assert len(ctx.sources) == 1
    src = ctx.sources[0]
    assert src.text == DOC
    assert (src.start, src.end) == (0, len(DOC))
    assert src.chunk_ids == ["d#0", "d#11", "d#33"]
    assert src.score == 0.9
    assert src.id == f"d:0-{len(DOC)}"


def test_gaps_other_documents_and_disagreeing_texts_do_not_merge():
    other = "Something else entirely."
    hits = [
        span_hit("d", DOC, 0, 10, 0.9),
        span_hit("d", DOC, 21, 33, 0.8),  # gap after the first
        span_hit("e", other, 0, len(other), 0.7),
        Hit(id="bad", score=0.6, text="X" * 10, metadata={"doc_id": "d", "start": 5, "end": 15}),
    ]
    ctx = builder().build(hits)
    assert sorted(s.id for s in ctx.sources) == ["d:0-10", "d:21-33", "d:5-15", "e:0-24"]


def test_merge_can_be_disabled():
    hits = [span_hit("d", DOC, 0, 20, 0.5), span_hit("d", DOC, 20, 33, 0.9)]
    assert len(builder(merge=False).build(hits).sources) == 2


def test_hits_without_spans_are_their_own_sources():
    hits = [Hit(id="x", score=1.0, text="Plain text."), Hit(id="x", score=2.0, text="Plain text.")]
    ctx = builder().build(hits)
    assert [(s.doc_id, s.start, s.score) for s in ctx.sources] == [("x", None, 2.0)]


def _scored(n: int) -> list[Hit]:
    return [Hit(id=f"h{i}", score=float(n - i), text=f"text {i}") for i in range(n)]


def test_order_by_score_and_edges_first():
    hits = _scored(5)
    assert [s.doc_id for s in builder().build(hits).sources] == ["h0", "h1", "h2", "h3", "h4"]
    edges = builder(order="edges").build(hits).sources
    assert [s.doc_id for s in edges] == ["h0", "h2", "h4", "h3", "h1"]
    assert [s.number for s in edges] == [1, 2, 3, 4, 5]


def test_order_by_document_position():
    hits = [
        span_hit("b", DOC, 21, 33, 0.9),
        span_hit("a", DOC, 34, 45, 0.8),
        span_hit("b", DOC, 0, 10, 0.7),
        span_hit("a", DOC, 0, 10, 0.1),
    ]
    ctx = builder(order="document").build(hits)
    assert [s.id for s in ctx.sources] == ["b:0-10", "b:21-33", "a:0-10", "a:34-45"]


@pytest.mark.parametrize("template", ["plain", "markdown", "xml"])
def test_templates_number_every_source_and_show_its_text(template):
    hits = [span_hit("d", DOC, 0, 10, 0.9), Hit(id="z", score=0.1, text="a < b & c")]
    ctx = builder(template=template).build(hits)
    assert [s.number for s in ctx.sources] == [1, 2]
    if template == "xml":
        assert ctx.text.startswith("<sources>")
        assert '<source id="1" ref="d.md">\nAlpha one.\n</source>' in ctx.text
        assert "a &lt; b &amp; c" in ctx.text
    else:
        for part in ("[1] d.md", "[2] z", "Alpha one.", "a < b & c"):
            assert part in ctx.text


def test_a_source_that_does_not_fit_is_cut_at_a_sentence_boundary():
    hit = span_hit("d", DOC, 0, len(DOC), 1.0)
    # header "[1] d.md" is 2 tokens, each sentence 2 tokens, the marker 1
    ctx = builder(7).build([hit, Hit(id="late", score=0.1, text="never shown")])
    (src,) = ctx.sources
    assert src.truncated
    assert src.text == "Alpha one. Beta two."
    assert (src.start, src.end) == (0, 20)
    assert ctx.text.endswith("Beta two." + CUT_MARKER)
    assert ctx.tokens == 7
    assert ctx.dropped == ["late"]


def test_a_source_whose_first_sentence_does_not_fit_is_dropped_not_split_midsentence():
    long = Hit(id="long", score=1.0, text="one two three four five six seven eight.")
    short = Hit(id="short", score=0.5, text="tiny.")
    ctx = builder(5).build([long, short])
    assert [s.doc_id for s in ctx.sources] == ["short"]
    assert ctx.dropped == ["long"]


def test_reservations_come_out_of_the_budget():
    b = builder(100, answer_tokens=20, message_overhead=3)
    history = [Message(role="user", content="hi there"), Message(role="assistant", content="yo")]
    reserved = b.reserved_tokens(system="be brief", history=history, question="why?")
    assert reserved == 20 + (2 + 3) + (1 + 3) + (2 + 3) + (1 + 3)
    ctx = b.build(_scored(3), system="be brief", history=history, question="why?")
    assert ctx.available == 100 - reserved
    with pytest.raises(InvalidInputError, match="no room"):
        builder(10, answer_tokens=11).build(_scored(1))


def test_bad_configuration_and_input_raise_typed_errors():
    with pytest.raises(ConfigurationError):
        ContextBuilder(0, tokenizer=CharTokenizer())
    with pytest.raises(ConfigurationError):
        ContextBuilder(10)
    with pytest.raises(ConfigurationError):
        ContextBuilder(10, tokenizer=CharTokenizer(), order="random")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ContextBuilder(10, tokenizer=CharTokenizer(), template="html")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="'empty'"):
        builder().build([Hit(id="empty", score=1.0, text=None)])


def test_empty_hits_give_an_empty_context():
    ctx = builder().build([])
    assert (ctx.text, ctx.sources, ctx.tokens, ctx.dropped) == ("", [], 0, [])
