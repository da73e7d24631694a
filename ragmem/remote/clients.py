"""What the vendor client holders share: the retrying caller and one async client per loop."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

from ragmem.errors import BackendError, BackendHTTPError, RateLimitError
from ragmem.remote.resilience import LoopLocal, RemoteCaller, RetryPolicy, parse_retry_after
from ragmem.remote.secrets import Secret

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SdkClients", "status_error"]

S = TypeVar("S")  # the SDK's sync client
A = TypeVar("A")  # the SDK's async client


def status_error(
    status: int, text: str, headers: Mapping[str, str] | None, *, backend: str
) -> BackendError:
    """The error for an HTTP error reply: ``RateLimitError`` (with Retry-After) for 429."""
    if status == 429:
        return RateLimitError(text, backend=backend, retry_after=parse_retry_after(headers))
    return BackendHTTPError(status, text, backend=backend)


class SdkClients(ABC, Generic[S, A]):
    """Base of ``OpenAIClients`` and ``CohereClients``: one SDK's key, clients and errors.

    ``sync_only`` is true when the user passed a sync client and no async one: the
    async twins then run the sync path in a worker thread.
    """

    def __init__(
        self, *, api_key: str | None, base_url: str | None, client: S | None, async_client: A | None
    ) -> None:
        self._api_key = Secret(api_key)
        self.base_url = base_url
        self._lock = threading.Lock()
        self._client = client
        self._async_client = async_client
        # A sync client alone stays on the sync path (in a thread) for async calls.
        self.sync_only = client is not None and async_client is None
        self._loop_clients: LoopLocal[A] = LoopLocal(self.make_async)

    @abstractmethod
    def secret(self) -> str | None:
        """The key as far as it is known, for redaction."""

    @abstractmethod
    def translate(self, exc: BaseException, *, backend: str) -> BackendError | None:
        """The ragmem error for an exception this SDK raised (None if not one), key redacted."""

    @abstractmethod
    def _build_sync(self) -> S:
        """A new sync client with SDK retries off."""

    @abstractmethod
    def _build_async(self) -> A:
        """A new async client with SDK retries off."""

    def sync(self) -> S:
        """The sync client given, or one built on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._build_sync()
        return self._client

    def make_async(self) -> A:
        """The async client given, or a new one (``for_loop`` keeps one per event loop)."""
        return self._async_client if self._async_client is not None else self._build_async()

    def for_loop(self) -> A:
        """The async client of the running event loop (SDK async clients are loop-bound)."""
        return self._loop_clients.get()

    def caller(
        self,
        backend: str,
        *,
        retry: RetryPolicy | None,
        timeout: float,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_concurrency: int = 16,
    ) -> RemoteCaller:
        """The retrying caller for one adapter, translating this SDK's errors (key redacted)."""
        return RemoteCaller(
            backend,
            translate=lambda exc: self.translate(exc, backend=backend),
            retry=retry or RetryPolicy(),
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_concurrency=max_concurrency,
        )
