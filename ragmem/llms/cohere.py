"""CohereChat: chat on Cohere's v2 chat API (``ragmem[cohere]``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ragmem.errors import BackendResponseError, ConfigurationError
from ragmem.llms.base import LLM, Message
from ragmem.remote.cohere import CohereClients, request_options
from ragmem.remote.resilience import LoopLocal, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    import cohere

__all__ = ["CohereChat"]


class CohereChat(LLM):
    """A Cohere chat model (Command family) on the v2 chat API.

    Requests go through ragmem's retry policy and limits; a stream is retried only
    until its first event arrives. ``api_key=None`` reads ``CO_API_KEY`` (or
    ``COHERE_API_KEY``) at the first request.

    Example:
        >>> CohereChat("command-a-03-2025").name
        'cohere:command-a-03-2025'
    """

    def __init__(
        self,
        model: str = "command-a-03-2025",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: cohere.ClientV2 | None = None,
        async_client: cohere.AsyncClientV2 | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        max_concurrency: int = 8,
    ) -> None:
        if max_tokens is not None and max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be positive, got {max_tokens}")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.base_url = base_url
        self.name = f"cohere:{model}"
        self._clients = CohereClients(
            api_key=api_key, base_url=base_url, client=client, async_client=async_client
        )
        self._async_clients: LoopLocal[cohere.AsyncClientV2] = LoopLocal(self._clients.make_async)
        self._caller = self._clients.caller(
            self.name,
            retry=retry,
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            max_concurrency=max_concurrency,
        )

    def __repr__(self) -> str:
        return f"CohereChat(model={self.model!r}, base_url={self.base_url!r})"

    def _request(self, messages: list[Message]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        return body

    def _text(self, response: object) -> str:
        content = getattr(getattr(response, "message", None), "content", None)
        if not isinstance(content, list):
            raise BackendResponseError("reply has no message content", backend=self.name)
        texts = [
            item.text
            for item in content
            if getattr(item, "type", None) == "text"
            and isinstance(getattr(item, "text", None), str)
        ]
        if not texts:
            raise BackendResponseError("reply has no text content", backend=self.name)
        return "".join(texts)

    @staticmethod
    def _piece(event: object) -> str:
        if getattr(event, "type", None) != "content-delta":
            return ""
        content = getattr(getattr(getattr(event, "delta", None), "message", None), "content", None)
        text = getattr(content, "text", None)
        return text if isinstance(text, str) else ""

    def _complete(self, messages: list[Message]) -> str:
        body = self._request(messages)

        def attempt(timeout: float) -> str:
            response = self._clients.sync().chat(**body, request_options=request_options(timeout))
            return self._text(response)

        return self._caller.call(attempt)

    def _stream(self, messages: list[Message]) -> Iterator[str]:
        body = self._request(messages)

        def open_stream(timeout: float) -> Any:
            return self._clients.sync().chat_stream(
                **body, request_options=request_options(timeout)
            )

        for event in self._caller.stream(open_stream):
            piece = self._piece(event)
            if piece:
                yield piece

    async def _complete_async(self, messages: list[Message]) -> str:
        if self._clients.sync_only:
            return await asyncio.to_thread(self._complete, messages)
        body = self._request(messages)
        client = self._async_clients.get()

        async def attempt(timeout: float) -> str:
            response = await client.chat(**body, request_options=request_options(timeout))
            return self._text(response)

        return await self._caller.call_async(attempt)

    async def _stream_async(self, messages: list[Message]) -> AsyncIterator[str]:
        if self._clients.sync_only:
            pieces = self._stream(messages)
            done = object()
            while (piece := await asyncio.to_thread(next, pieces, done)) is not done:
                yield str(piece)
            return
        body = self._request(messages)
        client = self._async_clients.get()

        async def open_stream(timeout: float) -> Any:
            return client.chat_stream(**body, request_options=request_options(timeout))

        async for event in self._caller.stream_async(open_stream):
            piece = self._piece(event)
            if piece:
                yield piece
