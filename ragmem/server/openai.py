"""OpenAI-compatible routes: /v1/models, /v1/chat/completions (with citations), /v1/embeddings.

The ``model`` of a chat completion names the collection to answer from. The answer
carries the numbered sources it was given (``sources``) and those it cites
(``citations``) as extra fields, which OpenAI clients ignore; a stream sends ``sources``
in its first chunk and ``citations`` in its last.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ragmem.llms.base import Message, Usage
from ragmem.pipeline.answer import build_messages, cited_sources
from ragmem.server.collections import _ERRORS, run_search
from ragmem.server.errors import ApiError, error_payload, status_of
from ragmem.server.service import Service, current_service, current_tenant

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ragmem.context import Context, Source
    from ragmem.server.auth import Tenant
    from ragmem.server.state import Collection

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"], responses=_ERRORS)

ServiceDep = Annotated[Service, Depends(current_service)]
TenantDep = Annotated["Tenant", Depends(current_tenant)]

NO_LLM_NOTE = (
    "No language model is configured on this server, so this answer quotes the most "
    "relevant passages instead of writing one:"
)


class ModelCard(BaseModel):
    """One collection, presented as a model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragmem"


class ModelList(BaseModel):
    """Every collection the key may use."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class TextPart(BaseModel):
    """A text part of a message's content."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """A chat completion request; ``k`` and ``where`` steer retrieval (ragmem extras)."""

    model_config = ConfigDict(extra="allow")  # temperature, top_p, ... are accepted
    model: str = Field(examples=["docs"])
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    k: int | None = Field(default=None, ge=1, le=100)
    where: dict[str, Any] | None = None


class SourceOut(BaseModel):
    """A numbered source: which document, where in it, and its score."""

    number: int
    doc_id: str
    source: str | None
    start: int | None
    end: int | None
    score: float
    text: str


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    """A chat completion with the sources it was given and the ones it cites."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    sources: list[SourceOut]
    citations: list[SourceOut]
    usage: Usage | None = None  # the model's, when it reported them


class EmbeddingRequest(BaseModel):
    """Texts to embed with the server's embedder."""

    model_config = ConfigDict(extra="allow")
    input: str | list[str]
    model: str = "default"
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingList(BaseModel):
    """The vectors, in input order."""

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage = Field(default_factory=EmbeddingUsage)


@router.get("/models", response_model=ModelList)
async def models(service: ServiceDep, tenant: TenantDep) -> ModelList:
    """The collections this key may use, as models."""
    names = [n for n in await service.work(service.state.names) if tenant.may_use(n)]
    root = service.state.root
    cards = [ModelCard(id=n, created=int((root / n).stat().st_mtime)) for n in names]
    return ModelList(data=cards)


def _source(s: Source) -> SourceOut:
    origin = s.metadata.get("source")
    return SourceOut(
        number=s.number,
        doc_id=s.doc_id,
        source=None if origin is None else str(origin),
        start=s.start,
        end=s.end,
        score=s.score,
        text=s.text,
    )


def _extractive(context: Context) -> str:
    if not context.sources:
        return "No language model is configured on this server, and no passage matched."
    quotes = "\n\n".join(f"[{s.number}] {' '.join(s.text.split())}" for s in context.sources)
    return f"{NO_LLM_NOTE}\n\n{quotes}"


def _prepare(collection: Collection, request: ChatRequest) -> tuple[Context, list[Message]]:
    """Retrieve for the last user message and build the messages for the model."""
    turns = [m for m in request.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise ApiError(400, "the last message must be a non-empty user message")
    question = turns[-1].text()
    history = [Message(role=m.role, content=m.text()) for m in turns[:-1]]
    pipeline = collection.pipeline
    hits = run_search(collection, question, k=request.k or pipeline.k, where=request.where)
    context = pipeline.build_context(question, hits, history=history)
    messages = build_messages(question, context, system=pipeline.system_prompt, history=history)
    return context, messages


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    request: ChatRequest, service: ServiceDep, tenant: TenantDep
) -> ChatCompletion | StreamingResponse:
    """Answer the last user message from the collection named by ``model``, with citations."""
    collection = await service.collection(tenant, request.model)
    context, messages = await service.read(_prepare, collection, request)
    llm = collection.pipeline.llm
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    sources = [_source(s) for s in context.sources]
    if request.stream:
        pieces = llm.stream_async(messages) if llm is not None else _once(_extractive(context))
        # the first piece is awaited here, so a model that fails at once (429, 5xx, timeout)
        # is answered with an HTTP error status rather than a stream holding an error event
        first = await anext(pieces, None)
        events = _events(
            completion_id,
            created,
            request.model,
            sources,
            context,
            first,
            pieces,
            cite_all=llm is None,
            include_usage=bool((request.stream_options or {}).get("include_usage")),
        )
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    reply = await llm.reply_async(messages) if llm is not None else None
    text = reply.text if reply is not None else _extractive(context)
    cited = cited_sources(text, context.sources) if llm is not None else context.sources
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=request.model,
        choices=[Choice(message=AssistantMessage(content=text))],
        sources=sources,
        citations=[_source(s) for s in cited],
        usage=reply.usage if reply is not None else None,
    )


async def _once(text: str) -> AsyncIterator[str]:
    yield text


def _chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, str],
    finish: str | None,
    **extra: Any,
) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


async def _events(
    completion_id: str,
    created: int,
    model: str,
    sources: list[SourceOut],
    context: Context,
    first: str | None,
    pieces: AsyncIterator[str],
    *,
    cite_all: bool,
    include_usage: bool,
) -> AsyncIterator[str]:
    """The server-sent events of a streamed answer.

    When the client goes away, the server stops iterating this generator, which closes
    ``pieces`` and with it the request to the model: generation stops.
    """
    head = [s.model_dump() for s in sources]
    yield _chunk(
        completion_id, created, model, {"role": "assistant", "content": ""}, None, sources=head
    )
    received: list[str] = []
    try:
        if first is not None:
            received.append(first)
            yield _chunk(completion_id, created, model, {"content": first}, None)
        async for piece in pieces:
            received.append(piece)
            yield _chunk(completion_id, created, model, {"content": piece}, None)
    except Exception as exc:
        _, kind, code = status_of(exc)
        message = " ".join(str(exc).split()) or type(exc).__name__
        yield f"data: {json.dumps(error_payload(message, kind, code))}\n\n"
        return
    finally:
        aclose = getattr(pieces, "aclose", None)
        if aclose is not None:
            await aclose()
    text = "".join(received)
    cited = context.sources if cite_all else cited_sources(text, context.sources)
    yield _chunk(
        completion_id,
        created,
        model,
        {},
        "stop",
        citations=[_source(s).model_dump() for s in cited],
    )
    usage = getattr(pieces, "usage", None)  # known once the model's stream has ended
    if include_usage and usage is not None:  # as OpenAI: a last chunk with no choices
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created}
        body |= {"model": model, "choices": [], "usage": usage.model_dump()}
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


@router.post("/embeddings", response_model=EmbeddingList)
async def embeddings(
    request: EmbeddingRequest, service: ServiceDep, tenant: TenantDep
) -> EmbeddingList:
    """Embed texts with the server's embedder (as documents)."""
    texts = [request.input] if isinstance(request.input, str) else request.input
    if not texts or any(not isinstance(t, str) or not t for t in texts):
        raise ApiError(400, "input must be a non-empty string or list of non-empty strings")
    embedder = await service.work(lambda: service.state.embedder)
    if request.dimensions is not None and request.dimensions != embedder.dimensions:
        raise ApiError(400, f"this server's embedder makes {embedder.dimensions} dimensions")
    vectors = await service.read(embedder.embed, texts)
    data = [
        EmbeddingItem(
            index=i,
            embedding=base64.b64encode(row.astype("<f4").tobytes()).decode()
            if request.encoding_format == "base64"
            else row.tolist(),
        )
        for i, row in enumerate(vectors)
    ]
    return EmbeddingList(data=data, model=embedder.name)
