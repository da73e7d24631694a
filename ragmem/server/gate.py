"""The door of the service: admission (bounded queue), body limits and metrics.

A plain ASGI middleware, so it sees every request before any routing or body parsing:
past ``workers + queue`` requests in flight a new one is answered ``503`` with
``Retry-After`` at once, and a body larger than the limit is refused with ``413``
before it is read into memory.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ragmem.server.errors import error_payload

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["Gate", "Metrics"]

# probes and metrics are answered even when the queue is full
_UNGATED = frozenset({"/healthz", "/readyz", "/metrics"})


class Metrics:
    """The Prometheus series the service exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ragmem_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ragmem_http_request_seconds",
            "Time to answer (to the last byte)",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.errors = Counter(
            "ragmem_http_errors", "Answers with status >= 500", ["route"], registry=self.registry
        )
        self.rejected = Counter(
            "ragmem_http_rejected", "Requests refused with 503 (queue full)", registry=self.registry
        )
        self.in_flight = Gauge(
            "ragmem_http_in_flight", "Requests being handled or queued", registry=self.registry
        )
        self.queue_depth = Gauge(
            "ragmem_queue_depth", "Requests waiting for a worker", registry=self.registry
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)


class Gate:
    """ASGI middleware: admission control, body limit and request metrics.

    Args:
        app: the application behind the gate.
        metrics: where to count.
        capacity: requests in flight (working or queued) before new ones get 503.
        max_body_bytes: largest request body; larger ones get 413.
    """

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, capacity: int, max_body_bytes: int
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.capacity = capacity
        self.max_body_bytes = max_body_bytes
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in _UNGATED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.capacity:
            self.metrics.rejected.inc()
            await _reply(send, 503, "the server is busy; retry shortly", {"retry-after": "1"})
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await _reply(send, 413, f"the request body exceeds {self.max_body_bytes} bytes")
            return
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)
        started = time.perf_counter()
        status = 500
        received = 0
        too_large = replied = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # the app may catch an exception raised here (as a parse error), so
                    # the body is cut short instead and its answer replaced by a 413
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, replied
            if too_large:
                if not replied:
                    status, replied = 413, True
                    await _reply(send, 413, f"the request body exceeds {self.max_body_bytes} bytes")
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            try:
                await self.app(scope, limited_receive, counting_send)
            except Exception:
                if not too_large:  # a cut-short body may end the app with ClientDisconnect
                    raise
            if too_large and not replied:
                await counting_send({"type": "http.response.start", "status": 413})
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.set(self.in_flight)
            route = _route_name(scope)
            self.metrics.requests.labels(scope.get("method", ""), route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status >= 500:
                self.metrics.errors.labels(route).inc()


def _route_name(scope: Scope) -> str:
    # the route template (/collections/{name}/search), never the raw path: bounded labels
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reply(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = json.dumps(error_payload(message, kind)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
