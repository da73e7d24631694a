"""CohereChat: chat on Cohere's v2 chat API (``ragmem[cohere]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragmem.errors import BackendResponseError
from ragmem.llms.remote import RemoteChat, counted_usage
from ragmem.remote.cohere import CohereClients, request_options

if TYPE_CHECKING:
    import cohere

    from ragmem.llms.base import Usage
    from ragmem.remote.resilience import RetryPolicy

__all__ = ["CohereChat"]


class CohereChat(RemoteChat[CohereClients]):
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
        clients = CohereClients(
            f"cohere:{model}",
            api_key=api_key,
            base_url=base_url,
            client=client,
            async_client=async_client,
            retry=retry,
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            max_concurrency=max_concurrency,
        )
        super().__init__(model, clients, temperature=temperature, max_tokens=max_tokens, seed=seed)

    def _send(self, client: Any, body: dict[str, Any], timeout: float, *, stream: bool) -> Any:
        send = client.chat_stream if stream else client.chat
        return send(**body, request_options=request_options(timeout))

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

    def _piece(self, event: object) -> str:
        if getattr(event, "type", None) != "content-delta":
            return ""
        content = getattr(getattr(getattr(event, "delta", None), "message", None), "content", None)
        text = getattr(content, "text", None)
        return text if isinstance(text, str) else ""

    def _usage(self, reply_or_event: object) -> Usage | None:
        # a reply carries ``usage``; a stream carries it in its message-end event
        usage = getattr(reply_or_event, "usage", None)
        if getattr(reply_or_event, "type", None) == "message-end":
            usage = getattr(getattr(reply_or_event, "delta", None), "usage", None)
        # ``tokens`` counts what the model read and wrote (its preamble included), as
        # OpenAI's counts do; ``billed_units``, what is billed, stands in when it is absent.
        for counts in (getattr(usage, "tokens", None), getattr(usage, "billed_units", None)):
            found = counted_usage(
                getattr(counts, "input_tokens", None), getattr(counts, "output_tokens", None)
            )
            if found is not None:
                return found
        return None
