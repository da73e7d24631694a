"""Follow-up questions, plain-dict history, min_score, k validation, timings."""

import pytest

from ragmem import ConfigurationError, Document, HashingEmbedder, InvalidInputError, RAGPipeline
from ragmem.llms import LLM, Message

DOCS = [
    Document(id="eu", text="Refunds for EU customers are paid within 14 days."),
    Document(id="us", text="Refunds for US customers are paid within 30 days."),
    Document(id="pets", text="Dogs are allowed in the office on Fridays."),
]


class ScriptedLLM(LLM):
    """Rewrites follow-ups to a fixed query; answers citing source 1; records every call."""

    name = "scripted"

    def __init__(self, rewrite="refund time for EU customers"):
        self.rewrite = rewrite
        self.calls: list[list[Message]] = []

    def _complete(self, messages):
        self.calls.append(messages)
        if "standalone search query" in messages[0].content:
            return f'"{self.rewrite}"\n'
        return "Within 14 days [1]."

    def _stream(self, messages):
        yield self._complete(messages)


def make(**kwargs):
    rag = RAGPipeline(embedder=HashingEmbedder(dimensions=64), **kwargs)
    rag.ingest(DOCS)
    return rag


HISTORY = [
    {"role": "user", "content": "How long do refunds take for US customers?"},
    {"role": "assistant", "content": "Within 30 days [1]."},
]


def test_history_accepts_plain_dicts_and_rewrites_the_follow_up():
    llm = ScriptedLLM()
    rag = make(llm=llm)
    answer = rag.query("and for EU customers?", history=HISTORY)
    assert answer.explain["search_query"] == "refund time for EU customers"
    assert answer.hits[0].metadata["doc_id"] == "eu"
    rewrite_call, answer_call = llm.calls
    assert "How long do refunds take for US customers?" in rewrite_call[1].content
    # the model answers the question as asked, with the history
    assert [m.role for m in answer_call] == ["system", "user", "assistant", "user"]
    assert answer_call[-1].content.endswith("Question: and for EU customers?")
    assert set(answer.timings) == {"rewrite", "retrieve", "assemble", "generate"}


async def test_async_and_stream_rewrite_too():
    rag = make(llm=ScriptedLLM())
    answer = await rag.query_async("and for EU customers?", history=HISTORY)
    assert answer.explain["search_query"] == "refund time for EU customers"
    stream = rag.stream("and for EU customers?", history=HISTORY)
    assert stream.hits[0].metadata["doc_id"] == "eu"


def test_without_history_or_with_rewriting_off_the_question_is_searched():
    llm = ScriptedLLM()
    rag = make(llm=llm)
    assert rag.query("refunds EU").explain["search_query"] == "refunds EU"
    assert len(llm.calls) == 1
    off = make(llm=ScriptedLLM(), rewrite_followups=False)
    assert off.query("and for EU?", history=HISTORY).explain["search_query"] == "and for EU?"


@pytest.mark.parametrize(
    ("history", "named"),
    [
        ([{"role": "user"}], "history[0].content"),
        ([{"role": "robot", "content": "x"}], "history[0].role"),
        (["hello"], "history[0]"),
        ("hello", "history"),
    ],
)
def test_bad_history_names_the_item(history, named):
    with pytest.raises(InvalidInputError, match=named.replace("[", r"\[").replace("]", r"\]")):
        make().query("refunds", history=history)


def test_min_score_drops_weak_hits():
    rag = make(retriever="bm25")
    scores = [h.score for h in rag.search("refunds EU customers", k=3)]
    assert len(scores) == 2
    kept = rag.search("refunds EU customers", k=3, min_score=scores[0])
    assert [h.score for h in kept] == scores[:1]
    assert rag.query("refunds EU customers", min_score=1e9).hits == []
    with pytest.raises(InvalidInputError, match="min_score"):
        rag.search("refunds", min_score=float("nan"))


@pytest.mark.parametrize("k", [0, -1, True, 2.5])
def test_k_must_be_a_positive_integer_everywhere(k):
    rag = make()
    with pytest.raises(InvalidInputError, match="k must be"):
        rag.search("refunds", k=k)
    with pytest.raises(InvalidInputError, match="k must be"):
        rag.query("refunds", k=k)
    with pytest.raises(ConfigurationError, match="k must be"):
        RAGPipeline(embedder=HashingEmbedder(dimensions=8), k=k)
