"""The OpenAI SDK boundary: building clients and translating its exceptions, once.

Shared by ``OpenAIEmbedder`` and ``OpenAIChat``. Works with api.openai.com and with
any OpenAI-compatible server (vLLM, Ollama, LM Studio, TEI) through ``base_url``.
"""

from __future__ import annotations

import json
from typing import Any

from ragmem.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailableError,
    MissingDependencyError,
)
from ragmem.remote.clients import SdkClients, status_error
from ragmem.remote.secrets import redact, register

try:
    import openai
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="openai", extra="openai") from exc

__all__ = ["OpenAIClients"]

# Compatible servers (vLLM, Ollama, LM Studio) ignore the key but the SDK requires one.
_PLACEHOLDER_KEY = "not-needed"


def _body_text(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        return json.dumps(body)[:1000]
    return str(body)[:1000]


class OpenAIClients(SdkClients["openai.OpenAI", "openai.AsyncOpenAI"]):
    """Lazily built sync and async SDK clients with SDK retries turned off.

    The key is read from ``api_key`` or ``OPENAI_API_KEY`` when the first client is
    built and kept only inside the SDK client. A ``client``/``async_client`` passed in
    is used as given, except that its own retries are disabled (``with_options``).
    ``options`` are ``SdkClients``'s (key, clients, call policy).
    """

    def __init__(self, backend: str, *, organization: str | None, **options: Any) -> None:
        self.organization = organization
        super().__init__(backend, **options)
        # clients passed in are used as given, but without their own retries
        if self._client is not None:
            self._client = self._client.with_options(max_retries=0)
        if self._async_client is not None:
            self._async_client = self._async_client.with_options(max_retries=0)

    vendor = "OpenAI"
    key_variables = ("OPENAI_API_KEY",)

    def key(self) -> str:
        """The API key: the one given, else the environment's, read at this moment."""
        if self.base_url is not None and not self.secret():
            return _PLACEHOLDER_KEY
        return super().key()

    def secret(self) -> str | None:
        """The key as far as it is known, for redaction: a given client's first."""
        if self._client is not None and self._client.api_key:
            register(str(self._client.api_key))
            return str(self._client.api_key)
        return super().secret()

    def _translate(self, exc: BaseException, secret: str | None) -> BackendError | None:
        backend = self.backend
        if isinstance(exc, openai.APITimeoutError):
            return BackendUnavailableError("request timed out", backend=backend)
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailableError(
                redact(f"connection failed: {exc.message}", [secret]), backend=backend
            )
        if isinstance(exc, openai.APIStatusError):
            text = redact(_body_text(exc.body), [secret])
            return status_error(exc.status_code, text, exc.response.headers, backend=backend)
        if isinstance(exc, openai.APIResponseValidationError):
            return BackendResponseError(redact(exc.message, [secret]), backend=backend)
        if isinstance(exc, openai.OpenAIError):
            return BackendError(redact(str(exc), [secret]), backend=backend)
        return None

    def _build_sync(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=self.key(),
            base_url=self.base_url,
            organization=self.organization,
            max_retries=0,
        )

    def _build_async(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self.key(),
            base_url=self.base_url,
            organization=self.organization,
            max_retries=0,
            # A plain pool: the SDK's default one schedules its own closing on whatever
            # loop runs when it is collected, which fails once its loop has closed.
            http_client=openai.DefaultAsyncHttpxClient(),
        )
