"""The LLM interface: chat completion, streaming, async twins."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from ragmem._util import to_thread
from ragmem.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

__all__ = ["LLM", "Message"]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(defer_build=True)  # built on first use: import stays fast

    role: Literal["system", "user", "assistant"]
    content: str


def _check_messages(messages: Sequence[Message]) -> list[Message]:
    out = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
    if not out:
        raise InvalidInputError("messages must not be empty")
    return out


class LLM(ABC):
    """A chat model: ``complete`` returns the reply, ``stream`` yields it in pieces."""

    name: str = "llm"

    def complete(self, messages: Sequence[Message]) -> str:
        """The model's reply to ``messages``."""
        return self._complete(_check_messages(messages))

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """The reply in pieces as the model produces them."""
        return self._stream(_check_messages(messages))

    async def complete_async(self, messages: Sequence[Message]) -> str:
        """Async twin of ``complete``."""
        return await self._complete_async(_check_messages(messages))

    def stream_async(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        """Async twin of ``stream``."""
        return self._stream_async(_check_messages(messages))

    @abstractmethod
    def _complete(self, messages: list[Message]) -> str: ...

    def _stream(self, messages: list[Message]) -> Iterator[str]:
        yield self._complete(messages)

    async def _complete_async(self, messages: list[Message]) -> str:
        return await to_thread(self._complete, messages)

    async def _stream_async(self, messages: list[Message]) -> AsyncIterator[str]:
        yield await self._complete_async(messages)
