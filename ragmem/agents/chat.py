"""ChatSession: one conversation of a chatbot backend, grounded in memory and documents."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from ragmem.agents.buffer import ConversationBuffer
from ragmem.agents.memory import Memory
from ragmem.context import Context, ContextBuilder, Source
from ragmem.errors import InvalidInputError
from ragmem.llms.base import LLM, Message, Reply, Usage
from ragmem.retrievers.base import Retriever
from ragmem.tokens import Tokenizer, WhitespaceTokenizer
from ragmem.types import Hit

__all__ = ["ChatReply", "ChatSession", "Remember"]

Remember = Literal["user", "both", "none"]

DEFAULT_SYSTEM = (
    "You are a helpful assistant. Use the numbered context below when it helps; cite it "
    "as [n]. What you remember about the user is part of the context."
)
REWRITE_PROMPT = (
    "Rewrite the user's last message as one standalone search query that can be understood "
    "without the conversation (resolve pronouns and ellipsis from the history). Answer with "
    "the query only.\n\nConversation:\n{history}\n\nLast message: {message}"
)


class ChatReply(BaseModel):
    """The assistant's reply to one user message, with what grounded it.

    ``explain`` holds ``query``: what recall searched for (the message, or its
    standalone rewrite when a follow-up was rewritten), and ``rewritten``. ``usage``
    holds the tokens the reply used, when the LLM reports them.
    """

    text: str
    memories: list[Hit] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    context: Context
    explain: dict[str, Any] = Field(default_factory=dict)
    usage: Usage | None = None


class ChatSession:
    """Answers a user's messages with recalled memories and retrieved documents.

    For each message: rewrite a follow-up into a standalone query (when there is
    history and ``rewrite_followups``), recall the user's memories (leaving out those
    already in the conversation window), retrieve documents (when a retriever is
    given), pack both into the token budget with the short-term history, call the
    LLM, then keep the exchange in the buffer and, as ``remember`` says, in long-term
    memory. Calls on one session are serialised; many sessions may share one ``Memory``.

    Args:
        llm: the chat model.
        memory: long-term memory (its scope for this session is ``user_id`` and
            ``session_id``).
        user_id: whose conversation this is.
        session_id: this conversation's id (memories keep it).
        retriever: optional document retriever for RAG.
        budget_tokens: the whole request budget (context, history, message, answer).
        answer_tokens: tokens kept for the reply.
        history_tokens: size of the short-term window.
        tokenizer: counts tokens (use the model's tokenizer, e.g. from ``ragmem.tokens``).
        memory_k: memories recalled per message.
        document_k: documents retrieved per message.
        system: the system prompt.
        remember: what becomes long-term memory: the user's messages (default), both
            sides, or nothing.
        rewrite_followups: ask the LLM to make a follow-up standalone before recall.

    Example:
        >>> from ragmem import HashingEmbedder
        >>> from ragmem.llms import LLM
        >>> class Echo(LLM):
        ...     def _complete(self, messages):
        ...         return "noted"
        >>> memory = Memory(embedder=HashingEmbedder(64))
        >>> chat = ChatSession(Echo(), memory, user_id="ana")
        >>> chat.send("I live in Lisbon").text
        'noted'
    """

    def __init__(
        self,
        llm: LLM,
        memory: Memory,
        *,
        user_id: str,
        session_id: str | None = None,
        retriever: Retriever | None = None,
        budget_tokens: int = 4000,
        answer_tokens: int = 512,
        history_tokens: int = 1000,
        tokenizer: Tokenizer | None = None,
        memory_k: int = 5,
        document_k: int = 5,
        system: str = DEFAULT_SYSTEM,
        remember: Remember = "user",
        rewrite_followups: bool = True,
    ) -> None:
        if remember not in ("user", "both", "none"):
            raise InvalidInputError(f"remember must be 'user', 'both' or 'none', got {remember!r}")
        self.llm = llm
        self.memory = memory
        self.user_id = user_id
        self.session_id = session_id
        self.retriever = retriever
        self.tokenizer = tokenizer or WhitespaceTokenizer()
        self.builder = ContextBuilder(
            budget_tokens, tokenizer=self.tokenizer, answer_tokens=answer_tokens
        )
        self.buffer = ConversationBuffer(history_tokens, tokenizer=self.tokenizer)
        self.memory_k = memory_k
        self.document_k = document_k
        self.system = system
        self.remember = remember
        self.rewrite_followups = rewrite_followups
        self._lock = threading.Lock()
        self._async_lock = asyncio.Lock()

    # -- one reply ------------------------------------------------------------------------------

    def send(self, text: str) -> ChatReply:
        """Answer one user message."""
        with self._lock:
            query, explain = self._query(text, self.llm.complete)
            memories, documents = self._recall(query)
            messages, context = self._prompt(text, memories, documents)
            reply = self.llm.reply(messages)
            self._remember(text, reply.text)
            return self._reply(reply, memories, context, explain)

    async def send_async(self, text: str) -> ChatReply:
        """Async twin of ``send``; the LLM calls use the model's async client."""
        async with self._async_lock:
            query, explain = await self._query_async(text)
            memories, documents = await asyncio.to_thread(self._recall, query)
            messages, context = self._prompt(text, memories, documents)
            reply = await self.llm.reply_async(messages)
            await asyncio.to_thread(self._remember, text, reply.text)
            return self._reply(reply, memories, context, explain)

    def stream(self, text: str) -> Iterator[str]:
        """Answer one user message piece by piece; the exchange is remembered at the end."""
        with self._lock:
            query, _ = self._query(text, self.llm.complete)
            memories, documents = self._recall(query)
            messages, _ = self._prompt(text, memories, documents)
            parts = []
            for part in self.llm.stream(messages):
                parts.append(part)
                yield part
            self._remember(text, "".join(parts))

    async def stream_async(self, text: str) -> AsyncIterator[str]:
        """Async twin of ``stream``."""
        async with self._async_lock:
            query, _ = await self._query_async(text)
            memories, documents = await asyncio.to_thread(self._recall, query)
            messages, _ = self._prompt(text, memories, documents)
            parts = []
            async for part in self.llm.stream_async(messages):
                parts.append(part)
                yield part
            await asyncio.to_thread(self._remember, text, "".join(parts))

    # -- steps ----------------------------------------------------------------------------------

    def _rewrite_prompt(self, text: str) -> list[Message] | None:
        history = self.buffer.messages()
        if not self.rewrite_followups or not history:
            return None
        lines = "\n".join(f"{m.role}: {m.content}" for m in history)
        return [Message(role="user", content=REWRITE_PROMPT.format(history=lines, message=text))]

    @staticmethod
    def _explain(text: str, rewritten: str | None) -> tuple[str, dict[str, Any]]:
        query = (rewritten or "").strip().strip('"').strip() or text
        return query, {"query": query, "rewritten": query != text}

    def _query(self, text: str, complete: Any) -> tuple[str, dict[str, Any]]:
        prompt = self._rewrite_prompt(text)
        return self._explain(text, None if prompt is None else complete(prompt))

    async def _query_async(self, text: str) -> tuple[str, dict[str, Any]]:
        prompt = self._rewrite_prompt(text)
        rewritten = None if prompt is None else await self.llm.complete_async(prompt)
        return self._explain(text, rewritten)

    def _recall(self, query: str) -> tuple[list[Hit], list[Hit]]:
        # the window already shows these turns: recalling them again wastes the budget
        shown = {" ".join(m.content.split()) for m in self.buffer.messages()}
        memories = [
            hit
            for hit in self.memory.search(query, user_id=self.user_id, k=self.memory_k + len(shown))
            if " ".join((hit.text or "").split()) not in shown
        ][: self.memory_k]
        documents = (
            self.retriever.retrieve(query, self.document_k) if self.retriever is not None else []
        )
        return memories, documents

    def _prompt(
        self, text: str, memories: Sequence[Hit], documents: Sequence[Hit]
    ) -> tuple[list[Message], Context]:
        history = self.buffer.messages()
        recalled = [
            Hit(
                id=f"memory:{h.id}",
                score=h.score,
                text=h.text,
                metadata={"doc_id": f"memory:{h.id}", "title": _label(h)},
            )
            for h in memories
        ]
        context = self.builder.build(
            [*recalled, *documents], system=self.system, history=history, question=text
        )
        system = self.system if not context.text else f"{self.system}\n\n{context.text}"
        messages = [Message(role="system", content=system), *history]
        messages.append(Message(role="user", content=text))
        return messages, context

    def _remember(self, text: str, reply: str) -> None:
        exchange = [Message(role="user", content=text), Message(role="assistant", content=reply)]
        for message in exchange:
            self.buffer.add(message)
        keep = {"user": exchange[:1], "both": exchange, "none": []}[self.remember]
        if keep:
            self.memory.add(keep, user_id=self.user_id, session_id=self.session_id)

    @staticmethod
    def _reply(
        reply: Reply, memories: list[Hit], context: Context, explain: dict[str, Any]
    ) -> ChatReply:
        return ChatReply(
            text=reply.text,
            memories=memories,
            sources=context.sources,
            context=context,
            explain=explain,
            usage=reply.usage,
        )


def _label(hit: Hit) -> str:
    """How a recalled memory is shown to the model: its date and scope."""
    meta = hit.metadata
    observed = meta.get("observed_at")
    when = (
        datetime.fromtimestamp(float(observed), tz=timezone.utc).strftime("%Y-%m-%d")
        if isinstance(observed, (int, float))
        else "undated"
    )
    scope = ", ".join(
        f"{name.removesuffix('_id')} {meta[name]}"
        for name in ("user_id", "agent_id", "session_id")
        if name in meta
    )
    return f"memory from {when} ({scope})"
