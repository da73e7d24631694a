"""The Cohere SDK (v2 API) boundary: building clients and translating its exceptions, once.

Shared by ``CohereEmbedder``, ``CohereChat`` and ``CohereReranker``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ragmem.errors import (
    BackendError,
    BackendResponseError,
    BackendUnavailableError,
    MissingDependencyError,
)
from ragmem.remote.clients import SdkClients, status_error
from ragmem.remote.secrets import redact

try:
    import cohere
    from cohere.core.api_error import ApiError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="cohere", extra="cohere") from exc

__all__ = ["CohereClients", "request_options"]

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


class CohereClients(SdkClients["cohere.ClientV2", "cohere.AsyncClientV2"]):
    """Lazily built ``ClientV2``/``AsyncClientV2`` with SDK retries turned off.

    The key comes from ``api_key``, else ``CO_API_KEY`` or ``COHERE_API_KEY``, read
    when the first client is built.
    """

    vendor = "Cohere"
    key_variables = ("CO_API_KEY", "COHERE_API_KEY")

    def _translate(self, exc: BaseException, secret: str | None) -> BackendError | None:
        backend = self.backend
        if isinstance(exc, httpx.TimeoutException):
            return BackendUnavailableError("request timed out", backend=backend)
        if isinstance(exc, httpx.TransportError):
            message = f"connection failed: {type(exc).__name__}: {exc}"
            return BackendUnavailableError(redact(message, [secret]), backend=backend)
        if isinstance(exc, ApiError):
            status = exc.status_code or 0
            text = redact(_body_text(exc.body), [secret])
            if 200 <= status < 300:  # the SDK could not parse a success reply
                return BackendResponseError(f"malformed reply: {text[:200]}", backend=backend)
            return status_error(status, text, exc.headers, backend=backend)
        return None

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
