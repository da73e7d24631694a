"""ChatSession: one conversation of a chatbot backend, grounded in memory and documents."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from pydantic import BaseModel, Field

from ragmem.agents.buffer import ConversationBuffer
from ragmem.agents.memory import Memory
from ragmem.context import Context, ContextBuilder, Source
from ragmem.llms.base import LLM, Message
from ragmem.retrievers.base import Retriever
from ragmem.tokens import Tokenizer, WhitespaceTokenizer
from ragmem.types import Hit

__all__ = ["ChatReply", "ChatSession"]

DEFAULT_SYSTEM = (
    "You are a helpful assistant. Use the numbered context below when it helps; cite it "
    "as [n]. What you remember about the user is part of the context."
)


class ChatReply(BaseModel):
    """The assistant's reply to one user message, with what grounded it."""

    text: str
    memories: list[Hit] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    context: Context


class ChatSession:
    """Answers a user's messages with recalled memories and retrieved documents.

    For each message: recall the user's memories, retrieve documents (when a
    retriever is given), pack both into the token budget with the short-term history,
    call the LLM, then store the exchange in the buffer and in long-term memory.
    Calls on one session are serialised; many sessions may share one ``Memory``.

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
    ) -> None:
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
        self._lock = threading.Lock()

    def send(self, text: str) -> ChatReply:
        """Answer one user message."""
        with self._lock:
            memories, documents = self._recall(text)
            messages, context = self._prompt(text, memories, documents)
            reply = self.llm.complete(messages)
            self._remember(text, reply)
            return ChatReply(
                text=reply, memories=memories, sources=context.sources, context=context
            )

    async def send_async(self, text: str) -> ChatReply:
        """Async twin of ``send``; the LLM call uses the model's async client."""
        memories, documents = await asyncio.to_thread(self._recall, text)
        messages, context = self._prompt(text, memories, documents)
        reply = await self.llm.complete_async(messages)
        await asyncio.to_thread(self._remember, text, reply)
        return ChatReply(text=reply, memories=memories, sources=context.sources, context=context)

    def _recall(self, text: str) -> tuple[list[Hit], list[Hit]]:
        memories = self.memory.search(text, user_id=self.user_id, k=self.memory_k)
        documents = (
            self.retriever.retrieve(text, self.document_k) if self.retriever is not None else []
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
                metadata={"doc_id": f"memory:{h.id}"},
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
        self.memory.add(exchange, user_id=self.user_id, session_id=self.session_id)
