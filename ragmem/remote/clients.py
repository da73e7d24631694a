"""What the vendor client holders share: the retrying caller and one async client per loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

from ragmem.errors import BackendError, BackendHTTPError, RateLimitError
from ragmem.remote.resilience import LoopLocal, RemoteCaller, RetryPolicy, parse_retry_after

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

    def __init__(self, *, sync_only: bool) -> None:
        self.sync_only = sync_only
        self._loop_clients: LoopLocal[A] = LoopLocal(self.make_async)

    @abstractmethod
    def secret(self) -> str | None:
        """The key as far as it is known, for redaction."""

    @abstractmethod
    def translate(self, exc: BaseException, *, backend: str) -> BackendError | None:
        """The ragmem error for an exception this SDK raised (None if not one), key redacted."""

    @abstractmethod
    def sync(self) -> S:
        """The sync client, built on first use."""

    @abstractmethod
    def make_async(self) -> A:
        """The async client given, or a new one."""

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
