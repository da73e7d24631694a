"""Memory routes: add, search, get, list, update, history, delete and purge, per tenant.

Every route works on the calling tenant's own ``Memory`` (a separate ledger and index
in a folder of its own), so the ``user_id``, ``agent_id`` and ``session_id`` a body
names only choose a scope inside that tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ragmem.agents.memory import MemoryChange
from ragmem.agents.records import HistoryEvent, MemoryItem
from ragmem.server.collections import _ERRORS
from ragmem.server.errors import ApiError
from ragmem.server.service import Service, current_service, current_tenant
from ragmem.types import Metadata

if TYPE_CHECKING:
    from ragmem.agents.memory import Memory
    from ragmem.server.auth import Tenant

__all__ = ["router"]

router = APIRouter(prefix="/memories", tags=["memory"], responses=_ERRORS)

ServiceDep = Annotated[Service, Depends(current_service)]
TenantDep = Annotated["Tenant", Depends(current_tenant)]


class _Scoped(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    agent_id: str | None = Field(default=None, min_length=1, max_length=256)
    session_id: str | None = Field(default=None, min_length=1, max_length=256)

    def scope(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id}


class ChatTurn(BaseModel):
    """One chat message to remember."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class AddMemory(_Scoped):
    """A text or chat messages to remember; ``infer`` extracts facts with the server's LLM."""

    text: str | None = Field(default=None, min_length=1)
    messages: list[ChatTurn] | None = None
    metadata: Metadata = Field(default_factory=dict)
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    key: str | None = Field(default=None, min_length=1)
    ttl_seconds: float | None = Field(default=None, gt=0)
    timestamp: float | None = None
    infer: bool = False


class SearchMemory(_Scoped):
    """A recall query within a scope."""

    query: str = Field(min_length=1)
    k: int = Field(default=5, ge=1, le=100)
    where: dict[str, Any] | None = None
    min_score: float | None = None
    include_superseded: bool = False


class UpdateMemory(BaseModel):
    """New text, metadata or importance for one memory."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, min_length=1)
    metadata: Metadata | None = None
    importance: float | None = Field(default=None, ge=0.0, le=1.0)


class PurgeMemory(_Scoped):
    """Erase memories for good: a scope's, or these ids (``Memory.purge``)."""

    ids: list[str] | None = None


class MemoryHit(BaseModel):
    """A recalled memory with its score and how the score was made."""

    id: str
    text: str | None
    score: float
    metadata: Metadata
    explain: dict[str, Any]


@router.post("", response_model=list[MemoryChange])
async def add_memory(body: AddMemory, service: ServiceDep, tenant: TenantDep) -> Any:
    """Remember a text or messages; returns what happened to each (ADD, MERGE, SUPERSEDE)."""
    service.check_write(tenant)
    if (body.text is None) == (body.messages is None):
        raise ApiError(400, "give exactly one of text or messages")
    content: Any = (
        body.text if body.text is not None else [m.model_dump() for m in body.messages or []]
    )
    memory = await _memory(service, tenant)
    return await service.work(
        memory.add,
        content,
        **body.scope(),
        metadata=body.metadata,
        importance=body.importance,
        key=body.key,
        ttl_seconds=body.ttl_seconds,
        timestamp=body.timestamp,
        infer=body.infer,
    )


@router.post("/search", response_model=list[MemoryHit])
async def search_memory(body: SearchMemory, service: ServiceDep, tenant: TenantDep) -> Any:
    """The memories of a scope most relevant to ``query``, best first."""
    memory = await _memory(service, tenant)
    hits = await service.read(
        memory.search,
        body.query,
        **body.scope(),
        k=body.k,
        where=body.where,
        include_superseded=body.include_superseded,
        min_score=body.min_score,
    )
    return [
        MemoryHit(**h.model_dump(include={"id", "text", "score", "metadata", "explain"}))
        for h in hits
    ]


@router.get("", response_model=list[MemoryItem])
async def list_memories(
    service: ServiceDep,
    tenant: TenantDep,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    status: Literal["active", "superseded", "deleted", "any"] = "active",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    """The memories of a scope (all of the tenant's without one), oldest first."""
    memory = await _memory(service, tenant)
    return await service.work(
        memory.list,
        user_id=user_id or None,
        agent_id=agent_id or None,
        session_id=session_id or None,
        status=None if status == "any" else status,
        limit=limit,
    )


@router.post("/purge")
async def purge_memories(
    body: PurgeMemory, service: ServiceDep, tenant: TenantDep
) -> dict[str, int]:
    """Erase memories and their history for good; returns how many."""
    service.check_write(tenant)
    memory = await _memory(service, tenant)
    if body.ids is None and all(v is None for v in body.scope().values()):
        raise ApiError(400, "give ids or at least one of user_id, agent_id, session_id")
    purged = await service.work(memory.purge, **body.scope(), ids=body.ids)
    return {"purged": int(purged)}


@router.get("/{memory_id}", response_model=MemoryItem)
async def get_memory(memory_id: str, service: ServiceDep, tenant: TenantDep) -> Any:
    """One memory, whatever its status."""
    memory = await _memory(service, tenant)
    return await service.work(memory.get, memory_id)


@router.patch("/{memory_id}", response_model=MemoryItem)
async def update_memory(
    memory_id: str, body: UpdateMemory, service: ServiceDep, tenant: TenantDep
) -> Any:
    """Change a memory; the previous version stays in its history."""
    service.check_write(tenant)
    memory = await _memory(service, tenant)
    return await service.work(
        memory.update, memory_id, body.text, metadata=body.metadata, importance=body.importance
    )


@router.get("/{memory_id}/history", response_model=list[HistoryEvent])
async def memory_history(memory_id: str, service: ServiceDep, tenant: TenantDep) -> Any:
    """Every change to a memory, oldest first."""
    memory = await _memory(service, tenant)
    return await service.work(memory.history, memory_id)


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(memory_id: str, service: ServiceDep, tenant: TenantDep) -> None:
    """Hide a memory from search (it stays in its history)."""
    service.check_write(tenant)
    memory = await _memory(service, tenant)
    await service.work(memory.get, memory_id)  # 404 for an unknown id
    await service.work(memory.delete, memory_id)


async def _memory(service: Service, tenant: Tenant) -> Memory:
    # an open memory is returned at once; opening one reads files, in a worker
    found = service.state.opened_memory(tenant.name)
    return found if found is not None else await service.work(service.state.memory, tenant.name)
