"""The Cohere SDK (v2 API) boundary: building clients and translating its exceptions, once.

Shared by ``CohereEmbedder``, ``CohereChat`` and ``CohereReranker``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

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
    import cohere
    from cohere.core.api_error import ApiError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="cohere", extra="cohere") from exc

__all__ = ["CohereClients", "request_options", "translate_cohere"]

DEFAULT_BASE_URL = "https://api.cohere.com"


def request_options(timeout: float) -> Any:
    """Per-request options: ragmem's timeout, and no SDK-level retries."""
    # "timeout_in_seconds" is the older SDKs' name for "timeout"; newer ones read both.
    return {"timeout": timeout, "timeout_in_seconds": timeout, "max_retries": 0}


def _body_text(body: object) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    if isinstance(body, (dict, list)):
        return json.dumps(body)[:1000]
    return str(body)[:1000]


def translate_cohere(
    exc: BaseException, *, backend: str, secret: str | None
) -> BackendError | None:
    """The ragmem error for an exception raised by the Cohere SDK (None if not one)."""
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailableError("request timed out", backend=backend)
    if isinstance(exc, httpx.TransportError):
        return BackendUnavailableError(
            redact(f"connection failed: {type(exc).__name__}: {exc}", [secret]), backend=backend
        )
    if isinstance(exc, ApiError):
        status = exc.status_code or 0
        text = redact(_body_text(exc.body), [secret])
        if 200 <= status < 300:  # the SDK could not parse a success reply
            return BackendResponseError(f"malformed reply: {text[:200]}", backend=backend)
        return status_error(status, text, exc.headers, backend=backend)
    if isinstance(exc, json.JSONDecodeError):
        return BackendResponseError(f"malformed JSON in the response: {exc.msg}", backend=backend)
    return None


class CohereClients(SdkClients["cohere.ClientV2", "cohere.AsyncClientV2"]):
    """Lazily built ``ClientV2``/``AsyncClientV2`` with SDK retries turned off.

    The key comes from ``api_key``, else ``CO_API_KEY`` or ``COHERE_API_KEY``, read
    when the first client is built.
    """

    def key(self) -> str:
        """The API key: the one given, else the environment's, read at this moment."""
        key = self.secret()
        if not key:
            raise ConfigurationError(
                "no Cohere API key: pass api_key=... or set the CO_API_KEY environment variable"
            )
        return key

    def translate(self, exc: BaseException, *, backend: str) -> BackendError | None:
        """The ragmem error for an exception this SDK raised (None if not one), key redacted."""
        return translate_cohere(exc, backend=backend, secret=self.secret())

    def secret(self) -> str | None:
        """The key as far as it is known, for redaction."""
        key = (
            self._api_key.get() or os.environ.get("CO_API_KEY") or os.environ.get("COHERE_API_KEY")
        )
        register(key)
        return key

    def _build_sync(self) -> cohere.ClientV2:
        return cohere.ClientV2(
            api_key=self.key(),
            base_url=self.base_url or DEFAULT_BASE_URL,
            max_retries=0,
            log_warning_experimental_features=False,
        )

    def _build_async(self) -> cohere.AsyncClientV2:
        return cohere.AsyncClientV2(
            api_key=self.key(),
            base_url=self.base_url or DEFAULT_BASE_URL,
            max_retries=0,
            httpx_client=httpx.AsyncClient(follow_redirects=True),
            log_warning_experimental_features=False,
        )
