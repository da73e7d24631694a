"""RemoteChat: what the chat adapters of remote APIs share, around a few vendor hooks.

A vendor adapter builds its request body (``_request``), sends it with its SDK on the
sync or the async client (``_send``), and reads the reply and the stream's events
(``_text``, ``_piece``, and ``_usage`` for the tokens used). This base runs every call
through the vendor holder's retry policy and limits, and runs a sync-only client (one
passed as ``client`` without ``async_client``) in a worker thread for the async twins.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ragmem.errors import BackendResponseError, ConfigurationError
from ragmem.llms.base import LLM, Message, Reply, Usage
from ragmem.remote.clients import SdkClients

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


__all__ = ["RemoteChat", "counted_usage"]

C = TypeVar("C", bound=SdkClients[Any, Any])


def counted_usage(prompt: object, completion: object, total: object = None) -> Usage | None:
    """A ``Usage`` from a provider's counts, or None unless both counts are valid.

    SDKs type counts loosely (Cohere's are floats); a reply missing either count
    reports no usage rather than a made-up zero.
    """
    p, c, t = _count(prompt), _count(completion), _count(total)
    if p is None or c is None:
        return None
    return Usage(prompt_tokens=p, completion_tokens=c, total_tokens=p + c if t is None else t)


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)


class RemoteChat(LLM, Generic[C]):
    """Base of ``OpenAIChat`` and ``CohereChat``: a chat model behind a vendor SDK.

    A stream is retried only until its first piece arrives: once the caller has seen
    part of a reply, a failure is raised, not retried.

    Args:
        model: the vendor's model name.
        clients: the vendor's client holder (key, SDK clients, errors, call policy); its
            ``backend`` is the adapter's name (e.g. ``"openai:gpt-4o-mini"``).
        temperature, max_tokens, seed: sampling options, sent only when given.
    """

    def __init__(
        self,
        model: str,
        clients: C,
        *,
        temperature: float | None,
        max_tokens: int | None,
        seed: int | None,
    ) -> None:
        if max_tokens is not None and max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be positive, got {max_tokens}")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.base_url = clients.base_url
        self.name = clients.backend
        self._clients = clients

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    # vendor hooks ---------------------------------------------------------------------

    # the request field that caps the reply's length
    _max_tokens_field = "max_tokens"

    def _request(self, messages: list[Message], *, stream: bool) -> dict[str, Any]:
        """The request body for ``messages``: model, messages and the options that are set."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        options = {
            "temperature": self.temperature,
            self._max_tokens_field: self.max_tokens,
            "seed": self.seed,
        }
        body.update((name, value) for name, value in options.items() if value is not None)
        return body

    @abstractmethod
    def _send(self, client: Any, body: dict[str, Any], timeout: float, *, stream: bool) -> Any:
        """Send ``body`` with ``client``: the reply, or the stream's events.

        On an async client the reply may be a coroutine (it is awaited) and the events
        an async iterator.
        """

    @abstractmethod
    def _text(self, response: object) -> str:
        """The reply's text (a ``BackendResponseError`` if it has none)."""

    @abstractmethod
    def _piece(self, event: object) -> str:
        """The text a stream event adds ("" for events that carry none)."""

    @abstractmethod
    def _usage(self, reply_or_event: object) -> Usage | None:
        """The tokens used, from a reply or a stream event (None where not reported)."""

    def _tokens(self, messages: list[Message]) -> int:
        """Tokens the request counts against ``tokens_per_minute`` (0: not counted)."""
        return 0

    # whether the vendor's streams mark the end of the reply, so that one closing
    # without that mark is known to have been cut off
    _marks_end = False

    def _ends(self, event: object) -> bool:
        """Whether a stream event marks the end of the reply (see ``_marks_end``)."""
        return False

    # LLM ------------------------------------------------------------------------------

    def _complete(self, messages: list[Message]) -> str:
        return self._reply(messages).text

    def _reply(self, messages: list[Message]) -> Reply:
        body = self._request(messages, stream=False)
        return self._clients.call(
            lambda client, timeout: self._read(self._send(client, body, timeout, stream=False)),
            tokens=self._tokens(messages),
        )

    def _stream(self, messages: list[Message]) -> Iterator[str | Usage]:
        body = self._request(messages, stream=True)

        def open_stream(timeout: float) -> Any:
            return self._send(self._clients.sync(), body, timeout, stream=True)

        ended = False
        for event in self._clients.caller.stream(open_stream, tokens=self._tokens(messages)):
            ended = ended or self._ends(event)
            yield from self._events(event)
        self._check_ended(ended)

    async def _complete_async(self, messages: list[Message]) -> str:
        return (await self._reply_async(messages)).text

    async def _reply_async(self, messages: list[Message]) -> Reply:
        body = self._request(messages, stream=False)

        async def send(client: Any, timeout: float) -> Reply:
            return self._read(await self._send(client, body, timeout, stream=False))

        return await self._clients.call_async(
            send, lambda: self._reply(messages), tokens=self._tokens(messages)
        )

    async def _stream_async(self, messages: list[Message]) -> AsyncIterator[str | Usage]:
        if self._clients.sync_only:
            # the sync stream in a worker thread, one event at a time
            events = self._stream(messages)
            while (event := await asyncio.to_thread(next, events, None)) is not None:
                yield event
            return
        body = self._request(messages, stream=True)
        client = self._clients.for_loop()

        async def open_stream(timeout: float) -> Any:
            events = self._send(client, body, timeout, stream=True)
            # OpenAI's async client returns a coroutine; Cohere's, an iterator opened as read
            return await events if inspect.isawaitable(events) else events

        caller = self._clients.caller
        ended = False
        async for event in caller.stream_async(open_stream, tokens=self._tokens(messages)):
            ended = ended or self._ends(event)
            for item in self._events(event):
                yield item
        self._check_ended(ended)

    def _check_ended(self, ended: bool) -> None:
        # a cut-off answer passed on as whole would be a silent truncation
        if self._marks_end and not ended:
            raise BackendResponseError(
                "the stream closed before the reply ended (it was cut off)", backend=self.name
            )

    def _read(self, response: object) -> Reply:
        return Reply(text=self._text(response), usage=self._usage(response))

    def _events(self, event: object) -> list[str | Usage]:
        """What a stream event holds for ``ReplyStream``: its piece of text, its usage."""
        piece, usage = self._piece(event), self._usage(event)
        return [x for x in (piece, usage) if x]
