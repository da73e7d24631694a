"""The LLM interface: chat completion, streaming, async twins, and the tokens they used."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ragmem._util import to_thread
from ragmem.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LLM", "AsyncReplyStream", "Message", "Reply", "ReplyStream", "Usage"]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(defer_build=True)  # built on first use: import stays fast

    role: Literal["system", "user", "assistant"]
    content: str


class Usage(BaseModel):
    """The tokens one model call used, as the provider reported them.

    ``total_tokens`` defaults to the sum of the other two.

    Example:
        >>> Usage(prompt_tokens=120, completion_tokens=30).total_tokens
        150
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(default=0, ge=0)  # filled with the sum when not given

    @model_validator(mode="before")
    @classmethod
    def _fill_total(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("total_tokens") is None:
            parts = (data.get("prompt_tokens"), data.get("completion_tokens"))
            if all(isinstance(n, int) for n in parts):
                return {**data, "total_tokens": sum(parts)}
        return data


class Reply(BaseModel):
    """A model's reply: its text, and the tokens used when the provider reports them.

    Example:
        >>> Reply(text="Lisbon.").usage is None
        True
    """

    model_config = ConfigDict(defer_build=True)

    text: str
    usage: Usage | None = None


class ReplyStream(Iterator[str]):
    """The pieces of a streamed reply; ``usage`` is set once the stream has ended.

    ``usage`` stays ``None`` while pieces arrive and when the provider reports none.

    Example:
        >>> stream = ReplyStream(iter(["Lis", "bon."]))
        >>> "".join(stream), stream.usage
        ('Lisbon.', None)
    """

    def __init__(self, events: Iterator[str | Usage]) -> None:
        self._events = events
        self._latest: Usage | None = None  # a provider may report usage more than once
        self.usage: Usage | None = None

    def __next__(self) -> str:
        for event in self._events:
            if not isinstance(event, Usage):
                return event
            self._latest = event
        self.usage = self._latest
        raise StopIteration

    def close(self) -> None:
        """Stop the stream early, closing the request to the model."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


class AsyncReplyStream(AsyncIterator[str]):
    """Async twin of ``ReplyStream``."""

    def __init__(self, events: AsyncIterator[str | Usage]) -> None:
        self._events = events
        self._latest: Usage | None = None
        self.usage: Usage | None = None

    async def __anext__(self) -> str:
        async for event in self._events:
            if not isinstance(event, Usage):
                return event
            self._latest = event
        self.usage = self._latest
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the stream early, closing the request to the model."""
        aclose: Any = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


def _check_messages(messages: Sequence[Message]) -> list[Message]:
    out = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages]
    if not out:
        raise InvalidInputError("messages must not be empty")
    return out


class LLM(ABC):
    """A chat model: ``complete`` returns the reply, ``stream`` yields it in pieces.

    ``reply`` is ``complete`` with the token usage the provider reported; a stream
    carries it in its ``usage`` once it has ended. An adapter implements ``_complete``;
    one whose provider reports usage implements ``_reply`` too, and its ``_stream``
    yields a ``Usage`` after the pieces.
    """

    name: str = "llm"

    def complete(self, messages: Sequence[Message]) -> str:
        """The model's reply to ``messages``."""
        return self._complete(_check_messages(messages))

    def reply(self, messages: Sequence[Message]) -> Reply:
        """The model's reply to ``messages``, with the tokens used (when reported)."""
        return self._reply(_check_messages(messages))

    def stream(self, messages: Sequence[Message]) -> ReplyStream:
        """The reply in pieces as the model produces them; ``usage`` once it ends."""
        return ReplyStream(iter(self._stream(_check_messages(messages))))

    async def complete_async(self, messages: Sequence[Message]) -> str:
        """Async twin of ``complete``."""
        return await self._complete_async(_check_messages(messages))

    async def reply_async(self, messages: Sequence[Message]) -> Reply:
        """Async twin of ``reply``."""
        return await self._reply_async(_check_messages(messages))

    def stream_async(self, messages: Sequence[Message]) -> AsyncReplyStream:
        """Async twin of ``stream``."""
        return AsyncReplyStream(aiter(self._stream_async(_check_messages(messages))))

    @abstractmethod
    def _complete(self, messages: list[Message]) -> str: ...

    def _reply(self, messages: list[Message]) -> Reply:
        return Reply(text=self._complete(messages))

    def _stream(self, messages: list[Message]) -> Iterator[str | Usage]:
        reply = self._reply(messages)
        yield reply.text
        if reply.usage is not None:
            yield reply.usage

    async def _complete_async(self, messages: list[Message]) -> str:
        return await to_thread(self._complete, messages)

    async def _reply_async(self, messages: list[Message]) -> Reply:
        return Reply(text=await self._complete_async(messages))

    async def _stream_async(self, messages: list[Message]) -> AsyncIterator[str | Usage]:
        reply = await self._reply_async(messages)
        yield reply.text
        if reply.usage is not None:
            yield reply.usage
