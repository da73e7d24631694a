"""OpenAIChat: chat completions from OpenAI or an OpenAI-compatible server (``ragmem[openai]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragmem.errors import BackendResponseError
from ragmem.llms.remote import RemoteChat, counted_usage
from ragmem.remote.openai import OpenAIClients
from ragmem.tokens import TiktokenTokenizer, is_openai_model

if TYPE_CHECKING:
    import openai

    from ragmem.llms.base import Message, Usage
    from ragmem.remote.resilience import RetryPolicy

__all__ = ["OpenAIChat"]


class OpenAIChat(RemoteChat[OpenAIClients]):
    """A chat model behind the OpenAI chat completions API.

    Works with api.openai.com and with compatible servers (vLLM, Ollama, LM Studio)
    through ``base_url``. Requests go through ragmem's retry policy and limits; a
    stream is retried only until its first piece arrives. ``api_key=None`` reads
    ``OPENAI_API_KEY`` at the first request.

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
        clients = OpenAIClients(
            f"openai:{model}" + (f"@{base_url}" if base_url else ""),
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            client=client,
            async_client=async_client,
            retry=retry,
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_concurrency=max_concurrency,
        )
        super().__init__(model, clients, temperature=temperature, max_tokens=max_tokens, seed=seed)
        # Prompt tokens feed the tokens/min limit; counted only for OpenAI models.
        self._tokenizer = TiktokenTokenizer.for_model(model) if is_openai_model(model) else None

    _max_tokens_field = "max_completion_tokens"

    def _request(self, messages: list[Message], *, stream: bool) -> dict[str, Any]:
        body = super()._request(messages, stream=stream)
        if stream:  # one endpoint for both: the body asks for a stream, and its usage
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _send(self, client: Any, body: dict[str, Any], timeout: float, *, stream: bool) -> Any:
        return client.chat.completions.create(**body, timeout=timeout)

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

    def _piece(self, event: object) -> str:
        choices = getattr(event, "choices", None) or []
        if not choices:
            return ""  # e.g. the closing usage chunk
        content = getattr(getattr(choices[0], "delta", None), "content", None)
        return content if isinstance(content, str) else ""

    _marks_end = True  # a choice's finish_reason

    def _ends(self, event: object) -> bool:
        choices = getattr(event, "choices", None) or []
        return any(getattr(choice, "finish_reason", None) for choice in choices)

    def _usage(self, reply_or_event: object) -> Usage | None:
        # a reply's usage; in a stream, the last chunk's (the others carry null)
        usage = getattr(reply_or_event, "usage", None)
        return counted_usage(
            getattr(usage, "prompt_tokens", None),
            getattr(usage, "completion_tokens", None),
            getattr(usage, "total_tokens", None),
        )
