"""Background ingests: long additions run as jobs whose progress a client polls."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ragmem.server.errors import ApiError
from ragmem.server.models import IngestResult, JobInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.ingest import IngestReport
    from ragmem.types import Document

__all__ = ["Jobs", "merge_reports"]

Step = Callable[[list["Document"]], Awaitable["IngestReport"]]


@dataclass
class _Job:
    info: JobInfo
    tenant: str
    reports: list[IngestReport] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class Jobs:
    """The ingest jobs of one server, kept in memory (a restart forgets finished jobs;
    what a job had indexed before the restart stays indexed).

    Args:
        batch: documents indexed per step; the job's progress advances per step.
        limit: jobs queued or running at once; past it a new job is refused with 503.
    """

    def __init__(self, *, batch: int, limit: int = 16) -> None:
        self.batch = batch
        self.limit = limit
        self._jobs: dict[str, _Job] = {}

    def start(
        self, tenant: str, collection: str, documents: Sequence[Document], step: Step
    ) -> JobInfo:
        """Queue ``documents`` for indexing in steps of ``batch`` by ``step``."""
        active = [j for j in self._jobs.values() if j.info.status in ("queued", "running")]
        if len(active) >= self.limit:
            raise ApiError(
                503,
                "too many ingest jobs running; retry later",
                kind="server_error",
                headers={"Retry-After": "5"},
            )
        info = JobInfo(
            id=uuid.uuid4().hex,
            collection=collection,
            status="queued",
            done=0,
            total=len(documents),
        )
        job = _Job(info, tenant)
        self._jobs[info.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, list(documents), step))
        return info.model_copy()

    async def _run(self, job: _Job, documents: list[Document], step: Step) -> None:
        job.info.status = "running"
        try:
            for start in range(0, len(documents), self.batch):
                part = documents[start : start + self.batch]
                job.reports.append(await step(part))
                job.info.done += len(part)
            job.info.result = merge_reports(job.reports)
            job.info.status = "done"
        except Exception as exc:  # the job's failure is its result, read through GET /jobs
            job.info.status = "failed"
            job.info.error = " ".join(str(exc).split()) or type(exc).__name__
            job.info.result = merge_reports(job.reports)

    def get(self, tenant: str, job_id: str) -> JobInfo:
        """Job ``job_id`` of ``tenant`` (another tenant's job is answered as unknown)."""
        job = self._jobs.get(job_id)
        if job is None or job.tenant != tenant:
            raise ApiError(404, f"unknown job: {job_id!r}", kind="not_found_error")
        return job.info.model_copy()

    async def drain(self) -> None:
        """Wait for every queued and running job to finish."""
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def merge_reports(reports: Sequence[IngestReport]) -> IngestResult:
    """One result for several ingest steps."""
    out = IngestResult(
        added=[], updated=[], unchanged=[], skipped=[], failed=[], chunks_added=0, chunks_deleted=0
    )
    for report in reports:
        out.added += report.added
        out.updated += report.updated
        out.unchanged += report.unchanged
        out.skipped += [p.model_dump() for p in report.skipped]
        out.failed += [p.model_dump() for p in report.failed]
        out.chunks_added += report.chunks_added
        out.chunks_deleted += report.chunks_deleted
    return out
