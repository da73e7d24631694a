"""The OpenAI SDK boundary: building clients and translating its exceptions, once.

Shared by ``OpenAIEmbedder`` and ``OpenAIChat``. Works with api.openai.com and with
any OpenAI-compatible server (vLLM, Ollama, LM Studio, TEI) through ``base_url``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ragmem.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailableError,
    ConfigurationError,
    MissingDependencyError,
)
from ragmem.remote.clients import SdkClients, status_error
from ragmem.remote.secrets import redact, register

try:
    import openai
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="openai", extra="openai") from exc

__all__ = ["OpenAIClients", "translate_openai"]

# Compatible servers (vLLM, Ollama, LM Studio) ignore the key but the SDK requires one.
_PLACEHOLDER_KEY = "not-needed"


def _body_text(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        return json.dumps(body)[:1000]
    return str(body)[:1000]


def translate_openai(
    exc: BaseException, *, backend: str, secret: str | None
) -> BackendError | None:
    """The ragmem error for an exception raised by the OpenAI SDK (None if not one)."""
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
    if isinstance(exc, json.JSONDecodeError):
        return BackendResponseError(f"malformed JSON in the response: {exc.msg}", backend=backend)
    if isinstance(exc, openai.OpenAIError):
        return BackendError(redact(str(exc), [secret]), backend=backend)
    return None


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

    def key(self) -> str:
        """The API key: the one given, else the environment's, read at this moment."""
        key = self._api_key.get() or os.environ.get("OPENAI_API_KEY")
        if key:
            register(key)
            return key
        if self.base_url is not None:
            return _PLACEHOLDER_KEY
        raise ConfigurationError(
            "no OpenAI API key: pass api_key=... or set the OPENAI_API_KEY environment variable"
        )

    def translate(self, exc: BaseException, *, backend: str) -> BackendError | None:
        """The ragmem error for an exception this SDK raised (None if not one), key redacted."""
        return translate_openai(exc, backend=backend, secret=self.secret())

    def secret(self) -> str | None:
        """The key as far as it is known, for redaction."""
        key = str(self._client.api_key) if self._client is not None else None
        key = key or self._api_key.get() or os.environ.get("OPENAI_API_KEY")
        register(key)
        return key

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
