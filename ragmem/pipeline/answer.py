"""Answers with citations: the prompt sent to the model, and how citations are read back."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ragmem.context import Context, Source
from ragmem.llms.base import Message, Usage
from ragmem.types import Hit

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["SYSTEM_PROMPT", "Answer", "AnswerStream", "build_messages", "cited_sources"]

SYSTEM_PROMPT = (
    "Answer the question using only the numbered sources provided. Cite the sources that "
    "support each statement with their numbers in square brackets, like [1] or [2][3]. "
    "If the sources do not contain the answer, say that you do not know."
)

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


class Answer(BaseModel):
    """The result of ``RAGPipeline.query``.

    Attributes:
        question: the question asked.
        text: the model's answer, or ``None`` when the pipeline has no LLM.
        context: the assembled context (rendered text and numbered sources).
        hits: the retrieved hits the context was built from, best first.
        citations: the sources the answer cites, in order of first citation.
        explain: how the answer was found; ``search_query`` is the text retrieval used
            (the question, or its standalone rewrite for a follow-up).
        timings: seconds spent per stage: ``rewrite``, ``retrieve``, ``rerank``,
            ``assemble``, ``generate`` (those that ran).
        usage: the tokens the answering call used (``prompt_tokens``,
            ``completion_tokens``, ``total_tokens``), or ``None`` when there is no LLM
            or it reported none. A follow-up's rewrite is a separate call, not counted.
    """

    question: str
    text: str | None
    context: Context
    hits: list[Hit] = Field(default_factory=list)
    citations: list[Source] = Field(default_factory=list)
    explain: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    usage: Usage | None = None

    @property
    def sources(self) -> list[Source]:
        """Every source that was sent to the model, numbered as in the context."""
        return self.context.sources


def cited_sources(text: str, sources: Sequence[Source]) -> list[Source]:
    """The sources that ``text`` cites as ``[n]`` or ``[n, m]``, in order of first citation.

    Numbers that match no source (a model may invent them) are ignored.
    """
    by_number = {s.number: s for s in sources}
    cited: dict[int, Source] = {}
    for match in _CITATION.finditer(text):
        for number in (int(n) for n in match.group(1).split(",")):
            if number in by_number and number not in cited:
                cited[number] = by_number[number]
    return list(cited.values())


def user_prompt(question: str, context_text: str) -> str:
    """The user message: the numbered sources, then the question."""
    return f"Sources:\n\n{context_text}\n\nQuestion: {question}"


def build_messages(
    question: str,
    context: Context,
    *,
    system: str = SYSTEM_PROMPT,
    history: Sequence[Message] = (),
) -> list[Message]:
    """The chat messages for one grounded question."""
    return [
        Message(role="system", content=system),
        *history,
        Message(role="user", content=user_prompt(question, context.text)),
    ]


class AnswerStream:
    """An answer arriving in pieces: iterate for the text, then read ``answer``.

    The context and its sources are known before the first piece arrives; ``usage``
    once the stream has ended (when the LLM reports it).

    Example:
        >>> # for piece in pipeline.stream("What is ragmem?"):
        >>> #     print(piece, end="")
        >>> # print(stream.answer.citations)
    """

    def __init__(
        self,
        question: str,
        context: Context,
        hits: list[Hit],
        pieces: Iterator[str],
        explain: dict[str, Any] | None = None,
    ) -> None:
        self.question = question
        self.context = context
        self.hits = hits
        self.explain = explain or {}
        self._pieces = pieces
        self._received: list[str] = []
        self._done = False

    @property
    def sources(self) -> list[Source]:
        """The numbered sources sent to the model."""
        return self.context.sources

    @property
    def usage(self) -> Usage | None:
        """The tokens used, once the stream has ended; ``None`` before, or if not reported."""
        return getattr(self._pieces, "usage", None) if self._done else None

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            self._received.append(piece)
            yield piece
        self._done = True

    @property
    def answer(self) -> Answer:
        """The complete answer; reading it first consumes whatever has not been iterated."""
        if not self._done:
            for _ in self:
                pass
        text = "".join(self._received)
        return Answer(
            question=self.question,
            text=text,
            context=self.context,
            hits=self.hits,
            citations=cited_sources(text, self.context.sources),
            explain=self.explain,
            usage=self.usage,
        )
