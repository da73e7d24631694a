"""Collection routes: create, list, delete, add documents and files, delete documents, search."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Response, UploadFile
from pydantic_core import to_json

from ragmem.server.errors import ApiError
from ragmem.server.jobs import merge_reports
from ragmem.server.models import (
    AddDocuments,
    CollectionInfo,
    CollectionList,
    CreateCollection,
    DeleteDocuments,
    ErrorBody,
    IngestResult,
    JobInfo,
    SearchRequest,
    SearchResult,
)
from ragmem.server.service import Service, current_service, current_tenant
from ragmem.types import Document

if TYPE_CHECKING:
    from ragmem.ingest import IngestReport
    from ragmem.retrievers.base import Retriever
    from ragmem.server.auth import Tenant
    from ragmem.server.state import Collection
    from ragmem.types import Hit

__all__ = ["hit_json", "router", "run_search"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 422, 503, 504)
}
router = APIRouter(tags=["collections"], responses=_ERRORS)

ServiceDep = Annotated[Service, Depends(current_service)]
TenantDep = Annotated["Tenant", Depends(current_tenant)]


def _info(collection: Collection, created: bool | None = None) -> CollectionInfo:
    pipeline = collection.pipeline
    with collection.lock.read():
        return CollectionInfo(
            name=collection.name,
            documents=len(pipeline.manifest.entries),
            chunks=pipeline.store.count(),
            embedder=pipeline.embedder.name,
            created=created,
        )


@router.get("/collections", response_model=CollectionList)
async def list_collections(service: ServiceDep, tenant: TenantDep) -> CollectionList:
    """The collections this key may use."""
    names = [n for n in await service.work(service.state.names) if tenant.may_use(n)]
    infos = [await service.work(lambda n=n: _info(service.state.get(n))) for n in names]
    return CollectionList(collections=infos)


@router.post("/collections", response_model=CollectionInfo, status_code=201)
async def create_collection(
    body: CreateCollection, service: ServiceDep, tenant: TenantDep, response: Response
) -> CollectionInfo:
    """Create a collection with the server's embedder (200 when it already exists)."""
    if not tenant.may_use(body.name):
        raise ApiError(403, "this API key may not use that collection", kind="permission_error")
    service.check_write(tenant)
    collection, created = await service.work(service.state.create, body.name)
    if not created:
        response.status_code = 200
    return await service.work(_info, collection, created)


@router.get("/collections/{name}", response_model=CollectionInfo)
async def get_collection(name: str, service: ServiceDep, tenant: TenantDep) -> CollectionInfo:
    """One collection's embedder and size."""
    return await service.work(_info, await service.collection(tenant, name))


@router.delete("/collections/{name}", status_code=204)
async def delete_collection(name: str, service: ServiceDep, tenant: TenantDep) -> Response:
    """Delete a collection and everything in it."""
    await service.collection(tenant, name, write=True)
    await service.work(service.state.delete, name)
    return Response(status_code=204)


def _ingest(collection: Collection, documents: list[Document]) -> IngestReport:
    with collection.lock.write():
        return collection.pipeline.ingest(documents)


@router.post(
    "/collections/{name}/documents",
    response_model=IngestResult | JobInfo,
    responses={202: {"model": JobInfo}},
)
async def add_documents(
    name: str, body: AddDocuments, service: ServiceDep, tenant: TenantDep, response: Response
) -> IngestResult | JobInfo:
    """Index documents; answered once they are durable (or at once as a job)."""
    collection = await service.collection(tenant, name, write=True)
    documents = [Document(id=d.id, text=d.text, metadata=d.metadata) for d in body.documents]
    if len({d.id for d in documents}) != len(documents):
        raise ApiError(400, "two documents share an id")
    if body.background:

        async def step(part: list[Document]) -> IngestReport:
            return await service.work(_ingest, collection, part)

        response.status_code = 202
        return service.jobs.start(tenant.name, name, documents, step)
    report = await service.work(_ingest, collection, documents)
    return merge_reports([report])


@router.post("/collections/{name}/files", response_model=IngestResult)
async def add_files(
    name: str,
    service: ServiceDep,
    tenant: TenantDep,
    files: Annotated[list[UploadFile], File(description="files to index")],
) -> IngestResult:
    """Index uploaded files with the folder loaders (text, Markdown, HTML, JSON, PDF)."""
    from ragmem.ingest import SUPPORTED_SUFFIXES

    collection = await service.collection(tenant, name, write=True)
    uploads: list[tuple[str, bytes]] = []
    for upload in files:
        label = PurePath(upload.filename or "").name
        if not label or PurePath(label).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise ApiError(
                400, f"unsupported file {label!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
            )
        uploads.append((label, await upload.read()))
    if len({label for label, _ in uploads}) != len(uploads):
        raise ApiError(400, "two uploaded files share a name")
    return merge_reports([await service.work(_ingest_files, collection, uploads)])


def _ingest_files(collection: Collection, uploads: list[tuple[str, bytes]]) -> IngestReport:
    from ragmem.ingest import load_file

    documents: list[Document] = []
    with tempfile.TemporaryDirectory(prefix="ragmem-upload-") as folder:
        for label, data in uploads:
            path = Path(folder, label)
            path.write_bytes(data)
            documents += load_file(path, doc_id=label)
    return _ingest(collection, documents)


@router.post("/collections/{name}/documents/delete")
async def delete_documents(
    name: str, body: DeleteDocuments, service: ServiceDep, tenant: TenantDep
) -> dict[str, int]:
    """Delete documents by id or by metadata filter (``RAGPipeline.delete``)."""
    collection = await service.collection(tenant, name, write=True)
    if body.ids is None and body.where is None:
        raise ApiError(400, "give ids, where, or both")

    def run() -> IngestReport:
        with collection.lock.write():
            return collection.pipeline.delete(doc_ids=body.ids, where=body.where)

    report = await service.work(run)
    return {"deleted": len(report.removed)}


@router.post("/collections/{name}/search", response_model=SearchResult)
async def search(
    name: str, body: SearchRequest, service: ServiceDep, tenant: TenantDep
) -> Response:
    """The best chunks for a query, each with its document, span, score and ``explain``."""
    collection = await service.collection(tenant, name)

    def run() -> bytes:
        hits = run_search(
            collection,
            body.query,
            k=body.k,
            where=body.where,
            min_score=body.min_score,
            retriever=body.retriever,
        )
        # Serialised in the worker, straight from the hits: a HitOut per hit that FastAPI
        # then validates again is work on the event loop, which every request shares.
        return to_json({"hits": [hit_json(h, explain=body.explain) for h in hits]})

    return Response(await service.read(run), media_type="application/json")


def run_search(
    collection: Collection,
    query: str,
    *,
    k: int,
    where: Any = None,
    min_score: float | None = None,
    retriever: str | None = None,
) -> list[Hit]:
    """Search a collection under its read lock with the pipeline's or a named retriever."""
    with collection.lock.read():
        if retriever in (None, "hybrid"):  # the pipeline's own retriever is hybrid
            return collection.pipeline.search(query, k=k, where=where, min_score=min_score)
        hits = _retriever(collection, retriever).retrieve(query, k, where=where)
    # hits come best first, so a threshold keeps a prefix of them
    return [h for h in hits if min_score is None or h.score >= min_score]


def _retriever(collection: Collection, name: str) -> Retriever:
    from ragmem.pipeline.defaults import build_retriever

    found = collection.retrievers.get(name)
    if found is None:
        pipeline = collection.pipeline
        found = build_retriever(
            name, embedder=pipeline.embedder, store=pipeline.store, keyword=pipeline.keyword
        )
        collection.retrievers[name] = found
    return found


def hit_json(hit: Hit, *, explain: bool = True) -> dict[str, Any]:
    """A hit as the API shows it (the fields of ``HitOut``), ready for JSON."""
    meta = hit.metadata
    doc_id, source, start, end = (meta.get(key) for key in ("doc_id", "source", "start", "end"))
    return {
        "id": hit.id,
        "doc_id": None if doc_id is None else str(doc_id),
        "source": None if source is None else str(source),
        # a span is two integers; anything else under those keys is no span
        "start": start if type(start) is int else None,
        "end": end if type(end) is int else None,
        "score": hit.score,
        "text": hit.text,
        "metadata": meta,
        "explain": hit.explain if explain else None,
    }
