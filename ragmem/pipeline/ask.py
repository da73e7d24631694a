"""The querying half of ``RAGPipeline``: search, query, stream, and their async twins.

Kept apart from construction and ingestion; ``RAGPipeline`` inherits it. Every answer
records what was searched (``explain["search_query"]``) and how long each stage took.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from ragmem.errors import ConfigurationError, InvalidInputError
from ragmem.pipeline.answer import Answer, AnswerStream, build_messages, cited_sources, user_prompt
from ragmem.pipeline.conversation import (
    HistoryLike,
    as_messages,
    standalone_question,
    standalone_question_async,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.context import Context, ContextBuilder
    from ragmem.filters import FilterLike
    from ragmem.llms.base import LLM, Message, Reply
    from ragmem.retrievers.base import Reranker, Retriever
    from ragmem.types import Hit

__all__ = ["Asking", "check_count"]


class Asking:
    """Search and answer over a pipeline's retriever, reranker, context builder and LLM."""

    k: int
    candidates: int
    retriever: Retriever
    reranker: Reranker | None
    llm: LLM | None
    context_builder: ContextBuilder
    system_prompt: str
    rewrite_followups: bool

    # -- querying -----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        where: FilterLike | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The best ``k`` chunks for ``query``, reranked when a reranker is set.

        ``min_score`` drops hits scoring below it (on the final retriever's or
        reranker's scale), so a question with no good match can return nothing.
        """
        return self._search(query, k, where, min_score, {})

    def _search(
        self,
        query: str,
        k: int | None,
        where: FilterLike | None,
        min_score: float | None,
        timings: dict[str, float],
    ) -> list[Hit]:
        k = self._k(k)
        _check_min_score(min_score)
        started = time.perf_counter()
        hits = self.retriever.retrieve(query, max(k, self.candidates), where=where)
        timings["retrieve"] = time.perf_counter() - started
        if self.reranker is not None:
            started = time.perf_counter()
            hits = self.reranker.rerank(query, hits, k)
            timings["rerank"] = time.perf_counter() - started
        return _cut(hits, k, min_score)

    def _k(self, k: int | None) -> int:
        if k is None:
            return self.k
        check_count(k, "k", InvalidInputError)
        return k

    def build_context(
        self, question: str, hits: Sequence[Hit], *, history: HistoryLike = ()
    ) -> Context:
        """The context ``query`` would send for these hits."""
        return self.context_builder.build(
            hits,
            system=self.system_prompt if self.llm else None,
            history=as_messages(history),
            question=user_prompt(question, ""),
        )

    def _search_query(self, question: str, history: list[Message]) -> str:
        if self.llm is None or not self.rewrite_followups or not history:
            return question
        return standalone_question(self.llm, question, history)

    def query(
        self,
        question: str,
        *,
        k: int | None = None,
        where: FilterLike | None = None,
        history: HistoryLike = (),
        min_score: float | None = None,
    ) -> Answer:
        """Retrieve, assemble and (with an LLM) answer ``question`` with citations.

        ``history`` holds the earlier turns (``Message`` objects or plain
        ``{"role", "content"}`` dicts); with an LLM, a follow-up question is rewritten
        to stand alone before retrieval (see ``rewrite_followups``).
        """
        messages = as_messages(history)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        search_query = self._search_query(question, messages)
        if search_query is not question:
            timings["rewrite"] = time.perf_counter() - started
        hits = self._search(search_query, k, where, min_score, timings)
        context = self._assemble(question, hits, messages, timings)
        if self.llm is None:
            return _answer(question, None, context, hits, search_query, timings)
        started = time.perf_counter()
        reply = self.llm.reply(self._messages(question, context, messages))
        timings["generate"] = time.perf_counter() - started
        return _answer(question, reply, context, hits, search_query, timings)

    async def query_async(
        self,
        question: str,
        *,
        k: int | None = None,
        where: FilterLike | None = None,
        history: HistoryLike = (),
        min_score: float | None = None,
    ) -> Answer:
        """Async twin of ``query``."""
        messages = as_messages(history)
        k = self._k(k)
        _check_min_score(min_score)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        search_query = question
        if self.llm is not None and self.rewrite_followups and messages:
            search_query = await standalone_question_async(self.llm, question, messages)
            timings["rewrite"] = time.perf_counter() - started
        started = time.perf_counter()
        hits = await self.retriever.retrieve_async(
            search_query, max(k, self.candidates), where=where
        )
        timings["retrieve"] = time.perf_counter() - started
        if self.reranker is not None:
            started = time.perf_counter()
            hits = await self.reranker.rerank_async(search_query, hits, k)
            timings["rerank"] = time.perf_counter() - started
        hits = _cut(hits, k, min_score)
        context = self._assemble(question, hits, messages, timings)
        if self.llm is None:
            return _answer(question, None, context, hits, search_query, timings)
        started = time.perf_counter()
        reply = await self.llm.reply_async(self._messages(question, context, messages))
        timings["generate"] = time.perf_counter() - started
        return _answer(question, reply, context, hits, search_query, timings)

    def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        where: FilterLike | None = None,
        history: HistoryLike = (),
        min_score: float | None = None,
    ) -> AnswerStream:
        """Like ``query``, but the answer arrives in pieces as the model writes it.

        Raises:
            ConfigurationError: the pipeline has no LLM.
        """
        if self.llm is None:
            raise ConfigurationError("streaming needs an LLM; pass llm= to RAGPipeline")
        messages = as_messages(history)
        search_query = self._search_query(question, messages)
        hits = self._search(search_query, k, where, min_score, {})
        context = self.build_context(question, hits, history=messages)
        pieces = self.llm.stream(self._messages(question, context, messages))
        return AnswerStream(question, context, hits, pieces, explain={"search_query": search_query})

    def _assemble(
        self, question: str, hits: list[Hit], history: list[Message], timings: dict[str, float]
    ) -> Context:
        started = time.perf_counter()
        context = self.build_context(question, hits, history=history)
        timings["assemble"] = time.perf_counter() - started
        return context

    def _messages(
        self, question: str, context: Context, history: Sequence[Message]
    ) -> list[Message]:
        return build_messages(question, context, system=self.system_prompt, history=history)


def check_count(value: object, name: str, error: type[Exception]) -> None:
    """Refuse anything but a positive int (bools too) for ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise error(f"{name} must be a positive integer, got {value!r}")


def _check_min_score(min_score: object) -> None:
    if min_score is None:
        return
    if (
        not isinstance(min_score, (int, float))
        or isinstance(min_score, bool)
        or not math.isfinite(min_score)
    ):
        raise InvalidInputError(f"min_score must be a finite number, got {min_score!r}")


def _cut(hits: list[Hit], k: int, min_score: float | None) -> list[Hit]:
    if min_score is not None:
        hits = [h for h in hits if h.score >= min_score]
    return hits[:k]


def _answer(
    question: str,
    reply: Reply | None,
    context: Context,
    hits: list[Hit],
    search_query: str,
    timings: dict[str, float],
) -> Answer:
    return Answer(
        question=question,
        text=None if reply is None else reply.text,
        context=context,
        hits=hits,
        citations=[] if reply is None else cited_sources(reply.text, context.sources),
        explain={"search_query": search_query},
        timings=timings,
        usage=None if reply is None else reply.usage,
    )
