"""What the vendor client holders share: the retrying caller and one async client per loop."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

from ragmem.errors import (
    BackendError,
    BackendHTTPError,
    BackendResponseError,
    ConfigurationError,
    RateLimitError,
)
from ragmem.remote.resilience import LoopLocal, RemoteCaller, RetryPolicy, parse_retry_after
from ragmem.remote.secrets import Secret, register

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

__all__ = ["SdkClients", "status_error"]

S = TypeVar("S")  # the SDK's sync client
A = TypeVar("A")  # the SDK's async client
T = TypeVar("T")


def status_error(
    status: int, text: str, headers: Mapping[str, str] | None, *, backend: str
) -> BackendError:
    """The error for an HTTP error reply: ``RateLimitError`` (with Retry-After) for 429."""
    if status == 429:
        return RateLimitError(text, backend=backend, retry_after=parse_retry_after(headers))
    return BackendHTTPError(status, text, backend=backend)


class SdkClients(ABC, Generic[S, A]):
    """Base of ``OpenAIClients`` and ``CohereClients``: one adapter's SDK clients and calls.

    It holds the key, the clients (built on first use with SDK retries off, or those
    given), the translation of the SDK's errors and the adapter's ``RemoteCaller``
    (retries, timeout, rate and concurrency limits), so an adapter only builds
    requests and reads replies. ``sync_only`` is true when the user passed a sync
    client and no async one: the async twins then run the sync path in a worker thread.
    The key is the one given, else the first of ``key_variables`` set in the
    environment, read when the first client is built.

    Args:
        backend: the adapter's name, for errors and limits.
        api_key, base_url, client, async_client: as the adapter was given them.
        retry, timeout, requests_per_minute, tokens_per_minute, max_concurrency: the
            call policy (see ``RetryPolicy`` and ``RemoteCaller``).
    """

    vendor = "the vendor's"  # for messages: "no OpenAI API key"
    key_variables: tuple[str, ...] = ()  # where the environment may hold the key

    def __init__(
        self,
        backend: str,
        *,
        api_key: str | None,
        base_url: str | None,
        client: S | None,
        async_client: A | None,
        retry: RetryPolicy | None,
        timeout: float,
        requests_per_minute: float | None,
        tokens_per_minute: float | None = None,
        max_concurrency: int,
    ) -> None:
        self.backend = backend
        self._api_key = Secret(api_key)
        self.base_url = base_url
        self._lock = threading.Lock()
        self._client = client
        self._async_client = async_client
        # A sync client alone stays on the sync path (in a thread) for async calls.
        self.sync_only = client is not None and async_client is None
        self._loop_clients: LoopLocal[A] = LoopLocal(self.make_async)
        self.caller = RemoteCaller(
            backend,
            translate=self.translate,
            retry=retry or RetryPolicy(),
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_concurrency=max_concurrency,
        )

    def secret(self) -> str | None:
        """The key as far as it is known, for redaction."""
        found = (os.environ.get(name) for name in self.key_variables)
        key = self._api_key.get() or next((k for k in found if k), None)
        register(key)
        return key

    def key(self) -> str:
        """The API key: the one given, else the environment's, read at this moment."""
        key = self.secret()
        if not key:
            raise ConfigurationError(
                f"no {self.vendor} API key: pass api_key=... or set the "
                f"{self.key_variables[0]} environment variable"
            )
        return key

    def translate(self, exc: BaseException) -> BackendError | None:
        """The ragmem error for an exception the SDK raised (None if not one), key redacted."""
        if isinstance(exc, json.JSONDecodeError):
            return BackendResponseError(
                f"malformed JSON in the response: {exc.msg}", backend=self.backend
            )
        return self._translate(exc, self.secret())

    @abstractmethod
    def _translate(self, exc: BaseException, secret: str | None) -> BackendError | None:
        """``translate`` for this SDK's own exceptions; ``secret`` is redacted from messages."""

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

    def call(self, send: Callable[[S, float], T], *, tokens: int = 0) -> T:
        """``send(client, timeout)`` on the sync client, retried as the policy says.

        ``tokens`` counts against ``tokens_per_minute``.
        """
        return self.caller.call(lambda timeout: send(self.sync(), timeout), tokens=tokens)

    async def call_async(
        self,
        send: Callable[[A, float], Awaitable[T]],
        sync: Callable[[], T],
        *,
        tokens: int = 0,
    ) -> T:
        """Async twin of ``call`` on this loop's client; ``sync`` in a thread if ``sync_only``."""
        if self.sync_only:
            return await asyncio.to_thread(sync)
        client = self.for_loop()
        return await self.caller.call_async(lambda timeout: send(client, timeout), tokens=tokens)
