"""The shared retry policy, rate limiter and error translation, without a server."""

from __future__ import annotations

import asyncio
import email.utils
import subprocess
import sys
import time

import pytest

from ragmem.errors import (
    BackendHTTPError,
    BackendResponseError,
    BackendUnavailableError,
    ConfigurationError,
    MissingDependencyError,
    RateLimitError,
)
from ragmem.remote import RateLimiter, RetryPolicy
from ragmem.remote.resilience import RemoteCaller, is_retryable, parse_retry_after
from ragmem.remote.secrets import redact


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_rate_limiter_allows_one_seconds_worth_then_spaces_requests():
    clock = FakeClock()
    limiter = RateLimiter(600, clock=clock)  # 10 per second, bucket of 10
    assert [limiter.reserve() for _ in range(10)] == [0.0] * 10
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    clock.now += 10.0  # refilled, but never beyond one bucket
    assert limiter.reserve(10) == 0.0
    assert limiter.reserve(1) == pytest.approx(0.1)


def test_rate_limiter_takes_reservations_larger_than_the_bucket():
    clock = FakeClock()
    limiter = RateLimiter(60_000, clock=clock)  # 1000 tokens per second
    assert limiter.reserve(3000) == pytest.approx(2.0)
    assert limiter.reserve(1000) == pytest.approx(3.0)


def test_retry_policy_backoff_and_validation():
    policy = RetryPolicy(initial_delay=0.5, multiplier=2.0, max_delay=3.0, jitter=0.0)
    assert [policy.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    import random

    jittered = RetryPolicy(initial_delay=1.0, jitter=0.5)
    rng = random.Random(0)
    assert all(0.5 <= jittered.delay(0, rng) <= 1.0 for _ in range(100))
    for bad in ({"max_attempts": 0}, {"initial_delay": -1}, {"multiplier": 0.5}, {"jitter": 2}):
        with pytest.raises(ConfigurationError):
            RetryPolicy(**bad)


def test_parse_retry_after():
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (parse_retry_after({"retry-after": when}) or 0) <= 30
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0


def test_redact_masks_keys():
    text = "Incorrect API key provided: sk-proj-abcdef123456 (key co-xyz12345678)"
    out = redact(text, ["co-xyz12345678"])
    assert "abcdef123456" not in out
    assert "xyz12345678" not in out


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (RateLimitError("x", backend="b"), True),
        (BackendUnavailableError("x", backend="b"), True),
        (BackendHTTPError(500, "x", backend="b"), True),
        (BackendHTTPError(503, "x", backend="b"), True),
        (BackendHTTPError(408, "x", backend="b"), True),
        (BackendHTTPError(501, "x", backend="b"), False),
        (BackendHTTPError(400, "x", backend="b"), False),
        (BackendHTTPError(401, "x", backend="b"), False),
        (BackendResponseError("x", backend="b"), False),
    ],
)
def test_what_is_retried(error, retry):
    assert is_retryable(error) is retry


class VendorError(Exception):
    def __init__(self, status):
        self.status = status


def translate(exc):
    if isinstance(exc, VendorError):
        if exc.status == 429:
            return RateLimitError("slow down", backend="fake", retry_after=0.0)
        return BackendHTTPError(exc.status, "failed", backend="fake")
    return None


def caller(**options):
    options.setdefault("retry", RetryPolicy(max_attempts=3, initial_delay=0.001))
    return RemoteCaller("fake", translate=translate, timeout=5.0, **options)


def test_caller_retries_then_succeeds_and_passes_the_timeout():
    statuses = [429, 503]
    timeouts = []

    def attempt(timeout):
        timeouts.append(timeout)
        if statuses:
            raise VendorError(statuses.pop(0))
        return "ok"

    assert caller().call(attempt) == "ok"
    assert len(timeouts) == 3
    assert all(0 < t <= 5.0 for t in timeouts)


def test_caller_chains_the_vendor_exception_and_stops_on_client_errors():
    calls = []

    def attempt(timeout):
        calls.append(1)
        raise VendorError(404)

    with pytest.raises(BackendHTTPError) as info:
        caller().call(attempt)
    # the cause is a copy of the vendor's exception (type, message, traceback), keys masked
    cause = info.value.__cause__
    assert "VendorError" in str(cause)
    assert cause is not None
    assert cause.__traceback__ is not None
    assert info.value.__context__ is None
    assert len(calls) == 1


def test_caller_lets_foreign_exceptions_through_unchanged():
    def attempt(timeout):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        caller().call(attempt)


def test_caller_gives_up_at_the_deadline():
    policy = RetryPolicy(max_attempts=100, initial_delay=0.05, jitter=0.0, max_elapsed=0.12)
    calls = []

    def attempt(timeout):
        calls.append(timeout)
        raise VendorError(500)

    with pytest.raises(BackendHTTPError):
        caller(retry=policy).call(attempt)
    assert 1 < len(calls) < 5
    assert calls[-1] <= 0.12  # each attempt's timeout is cut to the time left


def test_async_concurrency_is_per_loop_and_bounded():
    c = caller(max_concurrency=3)
    state = {"now": 0, "max": 0}

    async def attempt(timeout):
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.001)
        state["now"] -= 1
        return 1

    async def run():
        return await asyncio.gather(*(c.call_async(attempt) for _ in range(30)))

    assert sum(asyncio.run(run())) == 30
    assert sum(asyncio.run(run())) == 30  # a second loop gets its own semaphore
    assert state["max"] == 3


def test_importing_ragmem_imports_no_sdk():
    code = (
        "import sys, ragmem, ragmem.tokens, ragmem.registry, ragmem.remote;"
        "print([m for m in ('openai', 'cohere', 'tiktoken', 'httpx2', 'tokenizers')"
        " if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "sdk", "extra"),
    [
        ("ragmem.embedders.openai", "openai", "openai"),
        ("ragmem.llms.openai", "openai", "openai"),
        ("ragmem.embedders.cohere", "cohere", "cohere"),
        ("ragmem.retrievers.cohere", "cohere", "cohere"),
    ],
)
def test_missing_sdk_names_the_extra(module, sdk, extra):
    code = (
        f"import sys; sys.modules[{sdk!r}] = None\n"
        "from ragmem.errors import MissingDependencyError\n"
        "try:\n"
        f"    import {module}\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc.extra)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == extra
    assert issubclass(MissingDependencyError, ImportError)


def test_secret_never_shows():
    from ragmem.remote.secrets import Secret

    secret = Secret("sk-live-123456789")
    assert "123456789" not in repr(secret)
    assert "123456789" not in str(secret)
    assert "123456789" not in f"{secret!r} {[secret]}"
    assert secret.get() == "sk-live-123456789"
