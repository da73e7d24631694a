"""One retry, rate-limit and concurrency policy for every remote adapter.

Vendor SDKs retry on their own, each differently; ragmem turns those retries off
(``max_retries=0``) and runs every request through a :class:`RemoteCaller`, so one
policy governs all backends:

* retries with exponential backoff and jitter on 429, 408, 5xx (except 501),
  connection errors and timeouts, waiting at least as long as ``Retry-After``;
* a bounded total time (``RetryPolicy.max_elapsed``): no sleep is started that
  would end past the deadline, and each attempt's timeout is cut to what remains;
* client-side rate limits in requests and tokens per minute, shared by threads and
  tasks;
* a concurrency limit, for threads and for each event loop.

Vendor exceptions are translated into the ``BackendError`` family at one boundary
(the ``translate`` callable of each vendor module), chained to a copy of the vendor
exception with every API key masked (``ragmem.remote.secrets``).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import threading
import time
import weakref
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from ragmem.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailableError,
    ConfigurationError,
    RateLimitError,
)
from ragmem.remote.secrets import scrubbed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator

__all__ = [
    "ConcurrencyLimit",
    "LoopLocal",
    "RateLimiter",
    "RemoteCaller",
    "RetryPolicy",
    "is_retryable",
    "parse_retry_after",
]

T = TypeVar("T")
logger = logging.getLogger("ragmem.remote")


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (number of seconds or HTTP date)."""
    if headers is None:
        return None
    if isinstance(headers, dict):
        headers = {str(k).lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        return max(0.0, seconds)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried.

    The n-th retry waits ``min(max_delay, initial_delay * multiplier**n)`` scaled by a
    random factor in ``[1 - jitter, 1]`` (so concurrent clients spread out), and never
    less than the server's ``Retry-After``. A call gives up when ``max_attempts`` are
    spent, or when the next wait would end after ``max_elapsed`` seconds from its
    start, raising the last error. A ``Retry-After`` longer than ``max_retry_after``
    is not waited for.

    Example:
        >>> RetryPolicy(max_attempts=3, initial_delay=0.1).delay(1)
        0.2
    """

    max_attempts: int = 6
    initial_delay: float = 0.5
    max_delay: float = 20.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_elapsed: float = 120.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("initial_delay", "max_delay", "max_elapsed", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.multiplier < 1:
            raise ConfigurationError(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"jitter must be in [0, 1], got {self.jitter}")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Backoff before retry number ``retry`` (0-based), before any Retry-After."""
        base = min(self.max_delay, self.initial_delay * self.multiplier**retry)
        if rng is None or self.jitter == 0:
            return base
        return base * (1.0 - self.jitter * rng.random())


def is_retryable(error: BackendError) -> bool:
    """Whether a translated error is worth another attempt."""
    if isinstance(error, BackendUnavailableError | RateLimitError):
        return True
    if isinstance(error, BackendHTTPError):
        status = error.status_code
        return status == 408 or (500 <= status < 600 and status != 501)
    return False


class RateLimiter:
    """A thread-safe token bucket refilled at ``per_minute / 60`` units per second.

    The bucket holds one second's worth, so bursts stay small, as the vendors enforce
    per-minute limits over sub-minute windows. Callers reserve units and are told how
    long to wait; the balance may go negative, so later callers queue behind earlier
    ones in order, and a reservation bigger than the bucket still goes through.
    """

    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ConfigurationError(f"rate limit must be positive, got {per_minute}")
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate, 1.0)
        self._clock = clock
        self._level = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self, amount: float = 1.0) -> float:
        """Take ``amount`` units; returns the seconds to wait before using them."""
        with self._lock:
            now = self._clock()
            self._level = min(self.capacity, self._level + (now - self._last) * self.rate)
            self._last = now
            self._level -= amount
            return 0.0 if self._level >= 0 else -self._level / self.rate


class LoopLocal(Generic[T]):
    """One value per running event loop (asyncio primitives and clients are loop-bound)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value for the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            value = self._values.get(loop)
            if value is None:
                value = self._values[loop] = self._factory()
            return value


class ConcurrencyLimit:
    """At most ``limit`` requests in flight: across threads, and within each event loop."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ConfigurationError(f"max_concurrency must be >= 1, got {limit}")
        self.limit = limit
        self.threads = threading.BoundedSemaphore(limit)
        self._loops: LoopLocal[asyncio.Semaphore] = LoopLocal(lambda: asyncio.Semaphore(limit))

    def for_loop(self) -> asyncio.Semaphore:
        """The semaphore of the running event loop."""
        return self._loops.get()


class RemoteCaller:
    """Runs requests for one backend under the retry policy and the limits.

    ``translate`` maps a vendor exception to a ``BackendError`` (or ``None`` for
    exceptions that are not the vendor's, which propagate unchanged). The attempt
    callables receive the timeout in seconds left for that attempt.
    """

    def __init__(
        self,
        backend: str,
        *,
        translate: Callable[[BaseException], BackendError | None],
        retry: RetryPolicy,
        timeout: float,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_concurrency: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout}")
        self.backend = backend
        self.retry = retry
        self.timeout = timeout
        self._translate = translate
        self._requests = RateLimiter(requests_per_minute) if requests_per_minute else None
        self._tokens = RateLimiter(tokens_per_minute) if tokens_per_minute else None
        self.concurrency = ConcurrencyLimit(max_concurrency)
        self._clock = clock
        self._rng = random.Random()

    def translate(self, exc: BaseException) -> BaseException:
        """The ragmem error for a vendor exception (the exception itself otherwise)."""
        if isinstance(exc, BackendError):
            return exc
        return self._translate(exc) or exc

    def _rate_wait(self, tokens: int) -> float:
        wait = self._requests.reserve(1) if self._requests else 0.0
        if self._tokens and tokens:
            wait = max(wait, self._tokens.reserve(tokens))
        return wait

    def _next_delay(self, error: BaseException, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with ``error``."""
        if not isinstance(error, BackendError) or not is_retryable(error):
            return None
        if attempt + 1 >= self.retry.max_attempts:
            return None
        delay = self.retry.delay(attempt, self._rng)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.retry.max_retry_after:
                return None
            delay = max(delay, retry_after)
        if self._clock() + delay >= deadline:
            return None
        logger.info(
            "%s: %s; retry %d/%d in %.3gs",
            self.backend,
            type(error).__name__,
            attempt + 1,
            self.retry.max_attempts - 1,
            delay,
        )
        return delay

    def _delay_or_fail(self, failure: Exception, attempt: int, deadline: float) -> float:
        """Seconds to wait before retrying after ``failure``, or raise its translation.

        Called outside the ``except`` block, so the vendor exception is not the raised
        error's context (only its masked copy is the cause).
        """
        error = self.translate(failure)
        delay = self._next_delay(error, attempt, deadline)
        if delay is None:
            self._fail(error, failure)
        return delay

    @staticmethod
    def _fail(error: BaseException, exc: BaseException) -> NoReturn:
        """Raise ``error``, chained to a copy of the vendor's ``exc`` with the keys masked."""
        if error is exc:
            raise exc
        raise error from scrubbed(exc)

    def _attempt_timeout(self, deadline: float) -> float:
        return max(0.001, min(self.timeout, deadline - self._clock()))

    def call(self, attempt: Callable[[float], T], *, tokens: int = 0) -> T:
        """Run ``attempt(timeout)`` until it succeeds or the policy gives up."""
        deadline = self._clock() + self.retry.max_elapsed
        for number in range(self.retry.max_attempts):
            with self.concurrency.threads:
                wait = self._rate_wait(tokens)
                if wait:
                    time.sleep(wait)
                try:
                    return attempt(self._attempt_timeout(deadline))
                except Exception as exc:
                    failure = exc
            time.sleep(self._delay_or_fail(failure, number, deadline))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def call_async(self, attempt: Callable[[float], Awaitable[T]], *, tokens: int = 0) -> T:
        """Async twin of ``call``."""
        deadline = self._clock() + self.retry.max_elapsed
        for number in range(self.retry.max_attempts):
            async with self.concurrency.for_loop():
                wait = self._rate_wait(tokens)
                if wait:
                    await asyncio.sleep(wait)
                try:
                    return await attempt(self._attempt_timeout(deadline))
                except Exception as exc:
                    failure = exc
            await asyncio.sleep(self._delay_or_fail(failure, number, deadline))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def stream(
        self, open_stream: Callable[[float], Iterable[T]], *, tokens: int = 0
    ) -> Iterator[T]:
        """Items of a streamed reply; opening it (up to the first item) is retried.

        Once items have been yielded a failure is raised, translated, not retried:
        the caller has already seen part of the reply.
        """

        def attempt(timeout: float) -> tuple[Iterator[T], list[T]]:
            items = iter(open_stream(timeout))
            for first in items:
                return items, [first]
            return items, []

        items, head = self.call(attempt, tokens=tokens)
        yield from head
        try:
            yield from items
            return
        except Exception as exc:
            failure = exc
        self._fail(self.translate(failure), failure)

    async def stream_async(
        self, open_stream: Callable[[float], Awaitable[AsyncIterator[T]]], *, tokens: int = 0
    ) -> AsyncIterator[T]:
        """Async twin of ``stream``."""

        async def attempt(timeout: float) -> tuple[AsyncIterator[T], list[T]]:
            items = await open_stream(timeout)
            async for first in items:
                return items, [first]
            return items, []

        items, head = await self.call_async(attempt, tokens=tokens)
        for item in head:
            yield item
        try:
            async for item in items:
                yield item
            return
        except Exception as exc:
            failure = exc
        self._fail(self.translate(failure), failure)
