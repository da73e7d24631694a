"""A tiny threaded HTTP server on 127.0.0.1 that records requests and injects faults.

Vendor fakes (``fake_openai.py``, ``fake_cohere.py``) supply an ``app``: a function
from a ``Request`` to a ``Reply``. The server counts requests in flight (to check
client-side concurrency limits) and applies queued faults before the app runs.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    json: Any = None
    arrived: float = 0.0


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes, or an iterable of SSE strings
    headers: dict[str, str] = field(default_factory=dict)
    transform: Callable[[Any], Any] | None = None


@dataclass
class Fault:
    """What the server does instead of (or to) the next answer."""

    kind: str  # status | drop | stall | malformed | mutate
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    mutate: Callable[[Any], Any] | None = None

    @classmethod
    def http(cls, status: int, body: Any = None, headers: dict[str, str] | None = None) -> Fault:
        return cls("status", status=status, body=body, headers=headers or {})

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        return cls("stall", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed")

    @classmethod
    def change(cls, mutate: Callable[[Any], Any]) -> Fault:
        return cls("mutate", mutate=mutate)


class FakeServer:
    def __init__(self, app: Callable[[Request], Reply], *, error_body: Callable[[int], Any]):
        self.app = app
        self.error_body = error_body
        self.requests: list[Request] = []
        self.faults: deque[Fault] = deque()
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                server._handle(self)

            do_GET = do_POST

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.max_in_flight = 0

    def bodies(self, path: str | None = None) -> list[Any]:
        return [r.json for r in self.requests if path is None or r.path == path]

    # request handling -----------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        request = Request(
            handler.command,
            handler.path,
            {k.lower(): v for k, v in handler.headers.items()},
            raw,
            parsed,
            time.monotonic(),
        )
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self.faults.popleft() if self.faults else None
        try:
            if self.delay:
                time.sleep(self.delay)
            self._respond(handler, request, fault)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _respond(
        self, handler: BaseHTTPRequestHandler, request: Request, fault: Fault | None
    ) -> None:
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            body = fault.body if fault.body is not None else self.error_body(fault.status)
            self._send(handler, Reply(fault.status, body, fault.headers))
            return
        if request.json is None and request.raw:
            self._send(handler, Reply(400, self.error_body(400)))
            return
        reply = self.app(request)
        if fault is not None and fault.kind == "malformed" and reply.status == 200:
            reply = Reply(200, b'{"object": "list", "data": [{"embedd')
        if fault is not None and fault.kind == "mutate" and fault.mutate is not None:
            reply.body = fault.mutate(reply.body)
        self._send(handler, reply)

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        body = reply.body
        headers = dict(reply.headers)
        if isinstance(body, bytes):
            data = body
            headers.setdefault("content-type", "application/json")
        elif isinstance(body, (dict, list)) or body is None:
            data = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        else:  # an iterable of server-sent events
            self._send_stream(handler, reply.status, headers, body)
            return
        handler.send_response(reply.status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _send_stream(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        events: Iterable[str],
    ) -> None:
        handler.send_response(status)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.close_connection = True
        for event in events:
            handler.wfile.write(event.encode())
            handler.wfile.flush()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
