"""OpenAIChat: chat completions from OpenAI or an OpenAI-compatible server (``ragmem[openai]``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ragmem.errors import BackendResponseError, ConfigurationError
from ragmem.llms.base import LLM, Message
from ragmem.remote.openai import OpenAIClients
from ragmem.remote.resilience import LoopLocal, RetryPolicy
from ragmem.tokens import TiktokenTokenizer, is_openai_model

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    import openai

__all__ = ["OpenAIChat"]


class OpenAIChat(LLM):
    """A chat model behind the OpenAI chat completions API.

    Works with api.openai.com and with compatible servers (vLLM, Ollama, LM Studio)
    through ``base_url``. Requests go through ragmem's retry policy and limits; a
    stream is retried only until its first piece arrives.

    Example:
        >>> from ragmem.llms import Message
        >>> llm = OpenAIChat("gpt-4o-mini", temperature=0.0)
        >>> llm.name
        'openai:gpt-4o-mini'
    """

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        client: openai.OpenAI | None = None,
        async_client: openai.AsyncOpenAI | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_concurrency: int = 8,
    ) -> None:
        if max_tokens is not None and max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be positive, got {max_tokens}")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.base_url = base_url
        self.name = f"openai:{model}" + (f"@{base_url}" if base_url else "")
        # Prompt tokens feed the tokens/min limit; counted only for OpenAI models.
        self._tokenizer = TiktokenTokenizer.for_model(model) if is_openai_model(model) else None
        self._clients = OpenAIClients(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            client=client,
            async_client=async_client,
        )
        self._async_clients: LoopLocal[openai.AsyncOpenAI] = LoopLocal(self._clients.make_async)
        self._caller = self._clients.caller(
            self.name,
            retry=retry,
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_concurrency=max_concurrency,
        )

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, base_url={self.base_url!r})"

    def _request(self, messages: list[Message], *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_completion_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        if stream:
            body["stream"] = True
        return body

    def _tokens(self, messages: list[Message]) -> int:
        if self._tokenizer is None:
            return 0
        prompt = sum(self._tokenizer.count(m.content) + 4 for m in messages)
        return prompt + (self.max_tokens or 0)

    def _text(self, response: object) -> str:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise BackendResponseError("reply has no choices", backend=self.name)
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if not isinstance(content, str):
            refusal = getattr(message, "refusal", None)
            reason = f"the model refused: {refusal}" if refusal else "reply has no text content"
            raise BackendResponseError(reason, backend=self.name)
        return content

    @staticmethod
    def _piece(chunk: object) -> str:
        choices = getattr(chunk, "choices", None) or []
        if not choices:
            return ""  # e.g. the closing usage chunk
        content = getattr(getattr(choices[0], "delta", None), "content", None)
        return content if isinstance(content, str) else ""

    def _complete(self, messages: list[Message]) -> str:
        body = self._request(messages, stream=False)

        def attempt(timeout: float) -> str:
            response = self._clients.sync().chat.completions.create(**body, timeout=timeout)
            return self._text(response)

        return self._caller.call(attempt, tokens=self._tokens(messages))

    def _stream(self, messages: list[Message]) -> Iterator[str]:
        body = self._request(messages, stream=True)

        def open_stream(timeout: float) -> Any:
            return self._clients.sync().chat.completions.create(**body, timeout=timeout)

        for chunk in self._caller.stream(open_stream, tokens=self._tokens(messages)):
            piece = self._piece(chunk)
            if piece:
                yield piece

    async def _complete_async(self, messages: list[Message]) -> str:
        if self._clients.sync_only:
            return await asyncio.to_thread(self._complete, messages)
        body = self._request(messages, stream=False)
        client = self._async_clients.get()

        async def attempt(timeout: float) -> str:
            response = await client.chat.completions.create(**body, timeout=timeout)
            return self._text(response)

        return await self._caller.call_async(attempt, tokens=self._tokens(messages))

    async def _stream_async(self, messages: list[Message]) -> AsyncIterator[str]:
        if self._clients.sync_only:
            # run the sync stream in a worker thread, one piece at a time
            pieces = self._stream(messages)
            done = object()
            while (piece := await asyncio.to_thread(next, pieces, done)) is not done:
                yield str(piece)
            return
        body = self._request(messages, stream=True)
        client = self._async_clients.get()

        async def open_stream(timeout: float) -> Any:
            return await client.chat.completions.create(**body, timeout=timeout)

        async for chunk in self._caller.stream_async(open_stream, tokens=self._tokens(messages)):
            piece = self._piece(chunk)
            if piece:
                yield piece
