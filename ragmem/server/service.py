"""The running service: state, worker threads, and the request dependencies routes share."""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request

from ragmem.server.auth import ANONYMOUS, Tenant
from ragmem.server.errors import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ragmem.server.gate import Metrics
    from ragmem.server.jobs import Jobs
    from ragmem.server.state import Collection, Settings, State

__all__ = ["Service", "current_service", "current_tenant"]

T = TypeVar("T")


class Service:
    """What every route needs: the state, the worker pools, the metrics and the jobs.

    Blocking work runs in worker threads, so the event loop keeps accepting, streaming
    and answering probes. Searches and embeddings (``read``) run in at most
    ``settings.search_workers`` threads, the rest (writes, ingests, memory changes, which
    may wait on the disk or a model) in at most ``settings.workers`` others, so a long
    write never holds up a search. Work waiting for a thread is the queue whose depth
    ``/metrics`` reports.
    """

    def __init__(self, settings: Settings, state: State, metrics: Metrics, jobs: Jobs) -> None:
        self.settings = settings
        self.state = state
        self.metrics = metrics
        self.jobs = jobs
        self.ready = False
        self._sizes = {"work": settings.workers, "read": settings.search_workers}
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        # submitted and not finished (working or waiting), per pool
        self._outstanding = dict.fromkeys(self._sizes, 0)

    async def work(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in a worker thread; past ``settings.timeout`` answer 504.

        A request that times out or is cancelled stops waiting: work still queued never
        starts, and work already running finishes in its thread. A write is therefore
        either whole or absent, and an unanswered one was never acknowledged.
        """
        return await self._run("work", functools.partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work`` for a short read that computes (a search, an embedding).

        Python threads share one interpreter lock, so more reads at once than cores
        only interleave them: each then takes as long as all of them together, in no
        particular order. With about one thread per core they are served in the order
        they came, and the slowest ones finish much sooner.
        """
        return await self._run("read", functools.partial(fn, *args, **kwargs))

    async def _run(self, kind: str, call: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(kind)
        if pool is None:  # made on first use, so an app started again gets new ones
            pool = self._pools[kind] = ThreadPoolExecutor(self._sizes[kind], f"ragmem-{kind}")
        self._count(kind, +1)
        job = pool.submit(call)
        job.add_done_callback(lambda _: self._count(kind, -1))
        waiting = asyncio.wrap_future(job)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            waiting.cancel()

        timer = loop.call_later(self.settings.timeout, expire)
        try:
            return await waiting
        except asyncio.CancelledError:
            if not expired:  # the request itself was cancelled (client gone, shutdown)
                raise
            raise ApiError(
                504,
                f"the request took longer than {self.settings.timeout:g} s",
                kind="server_error",
                code="timeout",
            ) from None
        finally:
            timer.cancel()

    def _count(self, kind: str, change: int) -> None:
        # called from the event loop on submit and from a worker (or canceller) when done
        with self._lock:
            self._outstanding[kind] += change
            waiting = sum(max(0, n - self._sizes[k]) for k, n in self._outstanding.items())
            self.metrics.queue_depth.set(waiting)

    def close(self) -> None:
        """Stop the worker threads once their work is done; queued work is dropped."""
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()

    async def collection(self, tenant: Tenant, name: str, *, write: bool = False) -> Collection:
        """Collection ``name`` if ``tenant`` may use it (and write to it, when ``write``).

        A collection the tenant may not read is answered exactly like a missing one,
        so its existence cannot be inferred.
        """
        if not tenant.may_use(name):
            raise ApiError(404, f"unknown collection: {name!r}", kind="not_found_error")
        if write:
            self.check_write(tenant)
        # an open collection is returned at once; opening one reads files, in a worker
        found = self.state.opened(name)
        return found if found is not None else await self.work(self.state.get, name)

    @staticmethod
    def check_write(tenant: Tenant) -> None:
        """Refuse a write from a read-only key."""
        if not tenant.can_write:
            raise ApiError(403, "this API key may only read", kind="permission_error")


def _service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


# The dependencies are coroutines so FastAPI runs them on the event loop: a plain
# function would cost each request a round trip through the thread pool.
async def current_service(request: Request) -> Service:
    """FastAPI dependency: the service of the app handling ``request``."""
    return _service_of(request)


async def current_tenant(request: Request) -> Tenant:
    """FastAPI dependency: the tenant of the request's ``Authorization: Bearer`` key.

    Without a keys file every request is the ``default`` tenant. The presented key is
    never logged or repeated in the answer.
    """
    keys = _service_of(request).settings.keys
    if keys is None:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    tenant = keys.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if tenant is None:
        raise ApiError(
            401,
            "missing or unknown API key (send Authorization: Bearer KEY)",
            kind="authentication_error",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return tenant
