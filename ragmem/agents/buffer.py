"""ConversationBuffer: the short-term window of a chat, kept within a token budget."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ragmem.errors import InvalidInputError
from ragmem.llms.base import LLM, Message
from ragmem.tokens import Tokenizer, WhitespaceTokenizer

if TYPE_CHECKING:
    from ragmem.agents.memory import Memory

__all__ = ["ConversationBuffer"]

# Chat formats spend a few tokens per message on roles and separators.
MESSAGE_OVERHEAD = 4


class ConversationBuffer:
    """Recent messages within ``max_tokens``; pinned messages always stay.

    When the window overflows, the oldest unpinned messages leave it. With an ``llm``
    they are folded into a running summary (kept as a system message inside the
    budget); with a ``memory`` they are also stored as long-term memories in
    ``scope``. Without either they are dropped from the window only, and
    ``evicted`` keeps them so nothing is lost silently.

    Example:
        >>> buffer = ConversationBuffer(max_tokens=30)
        >>> buffer.pin({"role": "system", "content": "You are terse."})
        >>> for i in range(10):
        ...     buffer.add({"role": "user", "content": f"message number {i}"})
        >>> [m.content for m in buffer.messages()][0]
        'You are terse.'
        >>> buffer.tokens() <= 30
        True
    """

    def __init__(
        self,
        max_tokens: int,
        *,
        tokenizer: Tokenizer | None = None,
        llm: LLM | None = None,
        memory: Memory | None = None,
        scope: Mapping[str, str] | None = None,
    ) -> None:
        if max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be positive, got {max_tokens}")
        if memory is not None and not scope:
            raise InvalidInputError("a buffer that moves messages into memory needs a scope")
        self.max_tokens = max_tokens
        self.tokenizer: Tokenizer = tokenizer or WhitespaceTokenizer()
        self.llm = llm
        self.memory = memory
        self.scope = dict(scope or {})
        self.summary: str | None = None
        self.evicted: list[Message] = []
        self._pinned: list[Message] = []
        self._recent: list[Message] = []
        self._lock = threading.Lock()

    def cost(self, message: Message) -> int:
        """Tokens one message takes in the window."""
        return self.tokenizer.count(message.content) + MESSAGE_OVERHEAD

    def pin(self, message: Message | Mapping[str, str]) -> None:
        """Keep ``message`` in the window for good (system prompts, persona)."""
        msg = _message(message)
        with self._lock:
            if sum(map(self.cost, self._pinned)) + self.cost(msg) > self.max_tokens:
                raise InvalidInputError("pinned messages alone would exceed max_tokens")
            self._pinned.append(msg)
            self._fit()

    def add(self, message: Message | Mapping[str, str]) -> list[Message]:
        """Append a message; returns the messages that left the window because of it."""
        msg = _message(message)
        with self._lock:
            self._recent.append(msg)
            return self._fit()

    def messages(self) -> list[Message]:
        """The window: pinned messages, the summary (if any), then recent messages."""
        with self._lock:
            summary = [] if self.summary is None else [self._summary_message()]
            return [*self._pinned, *summary, *self._recent]

    def tokens(self) -> int:
        """Tokens the window takes now."""
        return sum(self.cost(m) for m in self.messages())

    def _summary_message(self) -> Message:
        return Message(
            role="system", content=f"Summary of the earlier conversation: {self.summary}"
        )

    def _used(self) -> int:
        summary = 0 if self.summary is None else self.cost(self._summary_message())
        return sum(map(self.cost, self._pinned)) + summary + sum(map(self.cost, self._recent))

    def _fit(self) -> list[Message]:
        out: list[Message] = []
        while self._used() > self.max_tokens and self._recent:
            batch = []
            while self._used() > self.max_tokens and self._recent:
                batch.append(self._recent.pop(0))
            self.evicted.extend(batch)
            self._persist(batch)  # a longer summary may evict more: hence the outer loop
            out.extend(batch)
        if self._used() > self.max_tokens:
            # only pinned messages and the summary are left: drop the summary (the
            # messages it covered stay in `evicted` and, with a memory, in long-term memory)
            self.summary = None
        return out

    def _persist(self, messages: list[Message]) -> None:
        if self.memory is not None:
            self.memory.add(
                messages,
                user_id=self.scope.get("user_id"),
                agent_id=self.scope.get("agent_id"),
                session_id=self.scope.get("session_id"),
            )
        if self.llm is not None:
            budget = max(1, self.max_tokens // 4)
            earlier = f"Earlier summary: {self.summary}\n" if self.summary else ""
            prompt = (
                f"{earlier}Summarise the conversation below in at most {budget} words, "
                "keeping names, facts and decisions.\n\n"
                + "\n".join(f"{m.role}: {m.content}" for m in messages)
            )
            self.summary = self.llm.complete([Message(role="user", content=prompt)]).strip()


def _message(message: Message | Mapping[str, str]) -> Message:
    return message if isinstance(message, Message) else Message.model_validate(dict(message))
