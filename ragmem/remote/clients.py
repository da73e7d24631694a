"""What the vendor client holders share: the retrying caller built around their SDK errors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ragmem.remote.resilience import RemoteCaller, RetryPolicy

if TYPE_CHECKING:
    from ragmem.errors import BackendError

__all__ = ["SdkClients"]


class SdkClients(ABC):
    """Base of ``OpenAIClients`` and ``CohereClients``: one SDK's key and error translation."""

    @abstractmethod
    def secret(self) -> str | None:
        """The key as far as it is known, for redaction."""

    @abstractmethod
    def translate(self, exc: BaseException, *, backend: str) -> BackendError | None:
        """The ragmem error for an exception this SDK raised (None if not one), key redacted."""

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
