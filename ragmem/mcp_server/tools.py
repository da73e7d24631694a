"""The MCP tools: each translates one call into a ``Toolbox`` method and its result into
compact text plus structured content.

Failures ragmem anticipates (bad arguments, unknown ids, a locked store, a full disk)
come back as tool errors with a message the model can act on; anything else is reported
by the SDK as a tool error without internals, and the server keeps running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Concatenate, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, Field

from ragmem.errors import MissingDependencyError

try:
    import anyio.to_thread
    from mcp.server.auth.provider import TokenVerifier
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import CallToolResult, TextContent, ToolAnnotations
except ImportError as exc:
    raise MissingDependencyError(package="mcp", extra="mcp") from exc

from ragmem.mcp_server.results import (
    AddDocumentResult,
    AddMemoryResult,
    CollectionsResult,
    DeleteResult,
    DocumentSearchResult,
    HistoryResult,
    MemoryListResult,
    MemoryResult,
    MemorySearchResult,
    PurgeResult,
    ToolResult,
)
from ragmem.mcp_server.toolbox import Principal, Toolbox, error_message
from ragmem.types import Metadata

__all__ = ["INSTRUCTIONS", "build_server"]

INSTRUCTIONS = (
    "Long-term memory and document search, stored locally by ragmem. Search memory before "
    "answering questions about the user or earlier conversations; store durable facts, "
    "preferences and decisions with add_memory (give a `key` such as 'home_city' for facts "
    "that can change, so a new value replaces the old). search_documents finds passages in "
    "the indexed document collections. Dates are ISO 8601 (e.g. 2026-05-01T09:30:00Z)."
)

_P = ParamSpec("_P")
_Tool = TypeVar("_Tool", bound=Callable[..., Awaitable[CallToolResult]])

_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
_DESTROY = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

MemoryId = Annotated[str, Field(min_length=1, description="A memory id, as returned by the tools")]
SessionId = Annotated[
    str | None,
    Field(min_length=1, description="A conversation or session id to scope to (optional)"),
]
When = Annotated[
    str | None,
    Field(description="ISO 8601 date or time, e.g. 2026-05-01 or 2026-05-01T09:30:00Z (UTC)"),
]
MetadataArg = Annotated[
    Metadata | None,
    Field(description="Flat metadata: values are strings, numbers, booleans or lists of them"),
]
WhereArg = Annotated[
    dict[str, object] | None,
    Field(
        description='Metadata filter, e.g. {"topic": "work"} or {"year": {"$gte": 2023}}; '
        "operators $eq $ne $lt $lte $gt $gte $in $nin $contains $exists $and $or $not"
    ),
]
K = Annotated[int, Field(ge=1, le=100, description="How many results to return (1-100)")]


class ChatMessage(BaseModel):
    """One chat message to remember."""

    role: Literal["user", "assistant", "system"] = Field(description="Who said it")
    content: str = Field(min_length=1, description="What was said")


def _render(result: ToolResult) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=result.text())],
        structured_content=result.model_dump(mode="json"),
    )


async def _call(work: Callable[[], ToolResult]) -> CallToolResult:
    """Run ``work`` in a worker thread (the event loop stays free) and render its result."""
    try:
        result = await anyio.to_thread.run_sync(work)
    except Exception as exc:
        message = error_message(exc)
        if message is None:
            raise  # the SDK reports it as a tool error without internals and logs it
        raise ToolError(message) from exc
    return _render(result)


def build_server(
    toolbox: Toolbox,
    principal: Callable[[], Principal],
    *,
    name: str = "ragmem",
    auth: AuthSettings | None = None,
    token_verifier: TokenVerifier | None = None,
) -> MCPServer:
    """An MCP server whose tools act on ``toolbox`` for the principal ``principal()`` names.

    ``principal`` is called on the event loop for each tool call: over stdio it returns
    the one scope the server was started for; over HTTP with keys (``auth`` and
    ``token_verifier``), the caller's tenant.

    Example:
        >>> import tempfile
        >>> box = Toolbox(tempfile.mkdtemp(), embedder="hashing")
        >>> server = build_server(box, lambda: Principal(user_id="ana"))
        >>> server.name
        'ragmem'
    """
    server: MCPServer = MCPServer(
        name,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        auth=auth,
        token_verifier=token_verifier,
    )

    def tool(annotations: ToolAnnotations) -> Callable[[_Tool], _Tool]:
        def register(fn: _Tool) -> _Tool:
            # the docstring is the description the model reads: one line, no indentation
            description = " ".join((fn.__doc__ or "").split())
            server.add_tool(fn, description=description, annotations=annotations)
            return fn

        return register

    async def call(
        method: Callable[Concatenate[Principal, _P], ToolResult],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> CallToolResult:
        # the principal is read here, on the event loop, where the request's context is
        who = principal()
        return await _call(lambda: method(who, *args, **kwargs))

    @tool(_WRITE)
    async def add_memory(
        text: Annotated[
            str | None, Field(min_length=1, description="The fact or note to remember")
        ] = None,
        messages: Annotated[
            list[ChatMessage] | None,
            Field(min_length=1, description="Chat messages to remember, instead of text"),
        ] = None,
        key: Annotated[
            str | None,
            Field(
                min_length=1,
                description="What the memory is about, e.g. 'home_city'; a new memory with "
                "the same key replaces the old one (which stays in history)",
            ),
        ] = None,
        session_id: SessionId = None,
        metadata: MetadataArg = None,
        observed_at: When = None,
        infer: Annotated[
            bool,
            Field(description="Let the server's LLM extract facts first (needs --model)"),
        ] = False,
    ) -> Annotated[CallToolResult, AddMemoryResult]:
        """Store something worth remembering about the user or the conversation: a fact,
        preference, decision or plan. Give either `text` or `messages`. Repeating a
        known fact merges it instead of duplicating it. Returns the memory ids."""
        chat = None if messages is None else [m.model_dump() for m in messages]
        return await call(
            toolbox.add_memory,
            text=text,
            messages=chat,
            key=key,
            session_id=session_id,
            metadata=metadata,
            observed_at=observed_at,
            infer=infer,
        )

    @tool(_READ)
    async def search_memory(
        query: Annotated[str, Field(min_length=1, description="What to recall, in words")],
        k: K = 5,
        min_score: Annotated[
            float | None, Field(description="Leave out memories scoring below this")
        ] = None,
        after: When = None,
        before: When = None,
        as_of: Annotated[
            str | None,
            Field(
                description="ISO 8601 time: return what was believed then (replaced facts "
                "that were current at that time included)"
            ),
        ] = None,
        session_id: SessionId = None,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, MemorySearchResult]:
        """Search long-term memory for what is relevant to `query`, best first, with
        scores and dates. `after`/`before` limit when the memory was observed."""
        return await call(
            toolbox.search_memory,
            query,
            k=k,
            min_score=min_score,
            after=after,
            before=before,
            as_of=as_of,
            session_id=session_id,
            where=where,
        )

    @tool(_READ)
    async def get_memory(memory_id: MemoryId) -> Annotated[CallToolResult, MemoryResult]:
        """Read one memory by id, whatever its status (active, superseded or deleted)."""
        return await call(toolbox.get_memory, memory_id)

    @tool(_READ)
    async def list_memories(
        status: Annotated[
            Literal["active", "superseded", "deleted", "all"],
            Field(description="Which memories: active (default), superseded, deleted or all"),
        ] = "active",
        session_id: SessionId = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="At most this many")] = 50,
    ) -> Annotated[CallToolResult, MemoryListResult]:
        """List stored memories, oldest first."""
        return await call(toolbox.list_memories, status=status, session_id=session_id, limit=limit)

    @tool(_WRITE)
    async def update_memory(
        memory_id: MemoryId,
        text: Annotated[str | None, Field(min_length=1, description="The new text")] = None,
        metadata: MetadataArg = None,
        importance: Annotated[
            float | None, Field(ge=0.0, le=1.0, description="Importance from 0 to 1")
        ] = None,
    ) -> Annotated[CallToolResult, MemoryResult]:
        """Correct a memory in place. The previous version stays in its history."""
        return await call(
            toolbox.update_memory, memory_id, text=text, metadata=metadata, importance=importance
        )

    @tool(_WRITE)
    async def delete_memory(memory_id: MemoryId) -> Annotated[CallToolResult, DeleteResult]:
        """Delete a memory that is wrong or unwanted. It disappears from search but stays
        in its history; purge_memories erases for good."""
        return await call(toolbox.delete_memory, memory_id)

    @tool(_READ)
    async def memory_history(memory_id: MemoryId) -> Annotated[CallToolResult, HistoryResult]:
        """Every change to one memory, oldest first: added, merged, updated, replaced,
        deleted."""
        return await call(toolbox.memory_history, memory_id)

    @tool(_DESTROY)
    async def purge_memories(
        ids: Annotated[
            list[Annotated[str, Field(min_length=1)]] | None,
            Field(description="Erase these memory ids"),
        ] = None,
        session_id: Annotated[
            str | None, Field(min_length=1, description="Erase every memory of this session")
        ] = None,
        everything: Annotated[
            bool, Field(description="Erase every memory of this user (true to confirm)")
        ] = False,
    ) -> Annotated[CallToolResult, PurgeResult]:
        """Erase memories for good, with their history (cannot be undone). Give exactly
        one of `ids`, `session_id` or `everything=true`. Only when the user asks."""
        return await call(
            toolbox.purge_memories, ids=ids, session_id=session_id, everything=everything
        )

    @tool(_READ)
    async def search_documents(
        query: Annotated[str, Field(min_length=1, description="What to look for, in words")],
        collection: Annotated[
            str | None, Field(description="Search only this collection (default: all)")
        ] = None,
        k: K = 5,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, DocumentSearchResult]:
        """Search the indexed documents for passages relevant to `query`, best first, each
        with its source and character span. Quote or cite them in answers."""
        return await call(toolbox.documents.search, query, collection=collection, k=k, where=where)

    @tool(_WRITE)
    async def add_document(
        text: Annotated[str, Field(min_length=1, description="The document's text")],
        collection: Annotated[
            str, Field(description="Collection to add it to (created when new)")
        ] = "documents",
        doc_id: Annotated[
            str | None,
            Field(min_length=1, description="Document id; adding the same id replaces it"),
        ] = None,
        metadata: MetadataArg = None,
    ) -> Annotated[CallToolResult, AddDocumentResult]:
        """Index a document so search_documents can find its passages later."""
        return await call(
            toolbox.documents.add, text, collection=collection, doc_id=doc_id, metadata=metadata
        )

    @tool(_READ)
    async def list_collections() -> Annotated[CallToolResult, CollectionsResult]:
        """List the document collections search_documents can search."""
        return await call(toolbox.documents.list)

    return server
