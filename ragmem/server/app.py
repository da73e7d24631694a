"""The application: routes, error handlers, the gate, probes and the playground page."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ragmem.server import collections, memory, openai
from ragmem.server.errors import install_handlers
from ragmem.server.gate import Gate, Metrics
from ragmem.server.jobs import Jobs
from ragmem.server.models import JobInfo
from ragmem.server.service import Service, current_service, current_tenant
from ragmem.server.state import Settings, State

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ragmem.server.auth import Tenant

__all__ = ["create_app"]

ServiceDep = Annotated[Service, Depends(current_service)]
TenantDep = Annotated["Tenant", Depends(current_tenant)]


def create_app(settings: Settings) -> FastAPI:
    """The ASGI application serving ``settings.store``.

    Args:
        settings: where the collections live, keys, embedder, LLM and limits.

    Example:
        >>> from pathlib import Path; import tempfile
        >>> app = create_app(Settings(store=Path(tempfile.mkdtemp()), embedder="hashing"))
        >>> app.title
        'ragmem'
    """
    metrics = Metrics()
    service = Service(settings, State(settings), metrics, Jobs(batch=settings.job_batch))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.ready = True
        try:
            yield
        finally:
            # uvicorn has already drained in-flight requests; let jobs finish, then close
            service.ready = False
            await service.jobs.drain()
            await service.work(service.state.close)
            service.close()

    app = FastAPI(
        title="ragmem",
        summary="Retrieval, answers with citations and agent memory over HTTP",
        lifespan=lifespan,
    )
    app.state.service = service
    install_handlers(app)
    app.include_router(collections.router)
    app.include_router(openai.router)
    app.include_router(memory.router)
    _add_probes(app)
    app.add_middleware(
        Gate,
        metrics=metrics,
        capacity=settings.workers + settings.search_workers + settings.queue,
        max_body_bytes=settings.max_body_bytes,
    )
    return app


def _add_probes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(service: ServiceDep) -> JSONResponse:
        """The server accepts work (503 while starting or draining)."""
        ready = service.ready
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(service: ServiceDep) -> Response:
        """Prometheus text: requests, latency histograms, errors, queue depth."""
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/jobs/{job_id}", tags=["collections"], response_model=JobInfo)
    async def job(job_id: str, service: ServiceDep, tenant: TenantDep) -> JobInfo:
        """A background ingest's state and progress."""
        return service.jobs.get(tenant.name, job_id)

    @app.get("/", include_in_schema=False)
    async def playground() -> HTMLResponse:
        page = resources.files("ragmem.server").joinpath("playground.html").read_text("utf-8")
        return HTMLResponse(page)
