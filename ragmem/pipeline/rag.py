"""RAGPipeline: ingest documents or folders, then retrieve, assemble and answer with citations."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem._storage.values import check_text, metadata_json
from ragmem.context import ContextBuilder
from ragmem.embedders.base import Embedder
from ragmem.errors import ConfigurationError, InvalidInputError
from ragmem.filters import matches, parse_filter
from ragmem.ingest import IngestReport, Manifest, iter_documents
from ragmem.llms.base import LLM
from ragmem.pipeline.answer import (
    SYSTEM_PROMPT,
)
from ragmem.pipeline.ask import Asking, check_count
from ragmem.pipeline.config import (
    CONFIG_FILE,
    check_embedder,
    embedder_entry,
    read_config,
    saved_embedder,
    write_config,
)
from ragmem.pipeline.defaults import (
    DEFAULT_EMBEDDER,
    RERANK,
    Chunker,
    build_reranker,
    build_retriever,
    chunker_for,
    default_chunker,
    default_tokenizer,
    new_keyword_index,
)
from ragmem.pipeline.writer import IndexWriter, PendingSource, scan_folder
from ragmem.registry import get_embedder, load_backend
from ragmem.retrievers.base import Reranker, Retriever
from ragmem.stores.base import VectorStore
from ragmem.types import Document, validate_metadata

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from ragmem.filters import FilterLike
    from ragmem.pipeline.progress import ProgressLike
    from ragmem.retrievers.bm25 import BM25Retriever
    from ragmem.types import Metadata

__all__ = ["RAGPipeline"]

log = logging.getLogger("ragmem.pipeline")

_KEYWORD = "keyword.bm25"


class RAGPipeline(Asking):
    """Retrieval-augmented generation over your documents, offline by default.

    ``ingest`` / ``ingest_folder`` chunk, embed and index; ``query`` retrieves, reranks,
    assembles a token-budgeted context and, when an LLM is configured, answers with
    citations (``stream`` yields the answer as it arrives). Without an LLM, ``query``
    returns the context and sources it would send. Every part can be replaced, by
    registry name or by instance.

    Args:
        path: a folder for a persistent index (created if missing); ``None`` keeps
            everything in memory.
        embedder: an ``Embedder`` or a registered name; a persistent index remembers it.
        embedder_options: options for an embedder given by name.
        store: a ``VectorStore``; by default the built-in store (persistent under ``path``).
        chunker: any object with ``chunk(document) -> list[Chunk]``.
        retriever: a ``Retriever`` or a name: ``"hybrid"`` (BM25 and dense, fused with
            the cross-validated defaults), ``"rrf"`` (reciprocal rank fusion), ``"dense"``
            or ``"bm25"``.
        keyword: keep a BM25 keyword index beside the vector store (needed by the
            ``hybrid``, ``rrf`` and ``bm25`` retrievers).
        reranker: an optional ``Reranker`` (or ``"late-interaction"``, ``"cohere"``)
            that reorders the ``candidates`` retrieved before the best ``k`` are kept.
        llm: an ``LLM`` or a registered name; ``None`` returns the context without answering.
        context: the ``ContextBuilder``; by default 3,000 tokens with 512 kept for the answer.
        k: sources to retrieve per question (a positive integer).
        candidates: hits fetched for the reranker (at least ``k``); by default the depth the
            late-interaction default was cross-validated at (50), or ``k`` without a reranker.
        system_prompt: the instruction sent with every question.
        read_only: open an existing index for searching only, without taking its write
            lock (any number of readers may open it while one process indexes).
        rewrite_followups: with an LLM and a chat history, search with the question
            rewritten to stand alone ("and in 2023?" -> "revenue of Acme in 2023");
            ``Answer.explain["search_query"]`` shows what was searched.

    Example:
        >>> from ragmem import Document, HashingEmbedder, RAGPipeline
        >>> rag = RAGPipeline(embedder=HashingEmbedder(dimensions=64))
        >>> rag.ingest([Document(id="a", text="ragmem runs offline by default.")]).summary()
        '1 added, 0 updated, 0 removed, 0 unchanged, 0 skipped, 0 unreadable; 1 chunks written, 0 deleted, 1 texts embedded'
        >>> rag.query("Does ragmem need the network?").sources[0].doc_id
        'a'
    """  # noqa: E501

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: Embedder | str | None = None,
        embedder_options: dict[str, Any] | None = None,
        store: VectorStore | None = None,
        chunker: Chunker | None = None,
        retriever: Retriever | str = "hybrid",
        keyword: bool = True,
        reranker: Reranker | str | None = None,
        llm: LLM | str | None = None,
        context: ContextBuilder | None = None,
        k: int = 5,
        candidates: int | None = None,
        system_prompt: str = SYSTEM_PROMPT,
        read_only: bool = False,
        rewrite_followups: bool = True,
    ) -> None:
        check_count(k, "k", ConfigurationError)
        if candidates is not None:
            check_count(candidates, "candidates", ConfigurationError)
        self.path = None if path is None else Path(path)
        self.read_only = read_only
        if read_only and (self.path is None or not (self.path / CONFIG_FILE).exists()):
            raise ConfigurationError(f"read_only needs an existing index; there is none at {path}")
        if self.path is not None:
            if self.path.exists() and not self.path.is_dir():
                raise ConfigurationError(f"path {self.path} is a file; an index is a folder")
            self.path.mkdir(parents=True, exist_ok=True)
        self._config = read_config(self.path)
        self.embedder = self._open_embedder(embedder, embedder_options or {})
        self.store = store if store is not None else self._open_store()
        if self.store.dimensions != self.embedder.dimensions:
            raise ConfigurationError(
                f"the store holds {self.store.dimensions}-dimensional vectors but the embedder "
                f"makes {self.embedder.dimensions}"
            )
        self.chunker = chunker if chunker is not None else default_chunker(self.embedder)
        # per file type (Markdown, code) only when the chunker is ours to choose
        self._typed_chunkers: dict[str, Chunker] | None = None if chunker is not None else {}
        self.manifest = Manifest(None if self.path is None else self.path / "manifest.json")
        keyword_path = None if self.path is None else self.path / _KEYWORD
        self.keyword = self._open_keyword(keyword_path) if keyword else None
        self.writer = IndexWriter(
            self.embedder,
            self.store,
            self.chunker,
            self.manifest,
            keyword=self.keyword,
            keyword_path=None if read_only else keyword_path,
            on_commit=self._pin_embedder,
        )
        if not read_only:
            self.writer.finish_deletes()
        self.retriever = (
            build_retriever(
                retriever, embedder=self.embedder, store=self.store, keyword=self.keyword
            )
            if isinstance(retriever, str)
            else retriever
        )
        self.reranker = (
            build_reranker(reranker, embedder=self.embedder)
            if isinstance(reranker, str)
            else reranker
        )
        self._share_forward_pass()
        self.llm: LLM | None = load_backend("llms", llm)() if isinstance(llm, str) else llm
        model = getattr(self.llm, "model", None)
        self.context_builder = context or ContextBuilder(
            3000,
            tokenizer=default_tokenizer(model if isinstance(model, str) else None),
            answer_tokens=512 if self.llm else 0,
        )
        self.k = k
        if candidates is None:
            candidates = RERANK["depth"] if self.reranker is not None else k
        self.candidates = max(candidates, k)
        self.system_prompt = system_prompt
        self.rewrite_followups = rewrite_followups

    # -- construction -------------------------------------------------------------------------

    def _open_embedder(self, embedder: Embedder | str | None, options: dict[str, Any]) -> Embedder:
        saved = self._config
        name = embedder if isinstance(embedder, str) else None
        if embedder is None:
            name, saved_options = (
                saved_embedder(saved, self.path)
                if saved is not None and self.path is not None
                else (DEFAULT_EMBEDDER, {})
            )
            options = options or saved_options
        built: Embedder = (
            get_embedder(name, **options) if name is not None else embedder  # type: ignore[assignment]
        )
        if saved is not None and self.path is not None:
            check_embedder(saved, built, self.path)
        self._embedder_entry = embedder_entry(built, name, options if name else {})
        return built

    def _pin_embedder(self) -> None:
        """Record the embedder once something is committed (see ``ragmem.pipeline.config``)."""
        if self._config is None and self.path is not None and not self.read_only:
            if not self.manifest.entries and self.store.count() == 0:
                return  # a run that stored nothing pins nothing
            write_config(self.path, self._embedder_entry)
            self._config = read_config(self.path)

    def _share_forward_pass(self) -> None:
        """Give a late-interaction reranker the token vectors of what is ingested, made in
        the same forward pass as the sentence vectors, instead of a second one when reranking.
        """
        from ragmem.retrievers.rerank import LateInteractionReranker

        reranker = self.reranker
        if not isinstance(reranker, LateInteractionReranker):
            return
        token_embedder: object = reranker.token_embedder
        if (
            reranker.cache
            and token_embedder is self.embedder
            and hasattr(self.embedder, "embed_with_tokens")
        ):
            self.writer.tokens = reranker.store.put

    def _check_writable(self) -> None:
        if self.read_only:
            raise ConfigurationError("this pipeline was opened read_only; it cannot change it")

    def _open_store(self) -> VectorStore:
        from ragmem.stores.local import LocalVectorStore

        if self.path is None:
            return LocalVectorStore(self.embedder.dimensions)
        try:
            return LocalVectorStore(
                self.embedder.dimensions, path=self.path / "vectors", read_only=self.read_only
            )
        except ConfigurationError as exc:
            if self._config is not None:
                raise
            # no config: the store was left by a run that committed nothing
            raise ConfigurationError(
                f"{self.path / 'vectors'} was started with another embedder by a run that "
                f"committed nothing; delete that folder to index with {self.embedder.name}"
            ) from exc

    def _open_keyword(self, path: Path | None) -> BM25Retriever:
        from ragmem.retrievers.bm25 import BM25Retriever

        if path is not None and path.exists():
            return BM25Retriever.load(path)
        keyword = new_keyword_index()
        ids = self.manifest.chunk_ids()
        if ids:
            # the keyword index is derived data: rebuild it from the store when missing
            log.warning("rebuilding the keyword index of %s from %d chunks", self.path, len(ids))
            for start in range(0, len(ids), 1024):
                records = self.store.get(ids[start : start + 1024])
                keyword.add(
                    [r.id for r in records],
                    [r.text or "" for r in records],
                    [r.metadata for r in records],
                )
            if path is not None and not self.read_only:
                keyword.save(path)
        return keyword

    # -- ingestion ----------------------------------------------------------------------------

    def ingest(
        self,
        documents: Iterable[Document | str],
        *,
        metadata: Metadata | None = None,
        progress: ProgressLike = False,
    ) -> IngestReport:
        """Chunk, embed and index documents; a document whose text and metadata are
        unchanged since it was last ingested is skipped, a changed one replaced.

        Plain strings become documents whose id is a hash of their text. ``metadata``
        (a tenant, an ACL, ...) is added to every chunk; a document's own keys win.
        ``progress``: ``True`` for a bar on stderr, or a callable (see ``Progress``).
        """
        self._check_writable()
        extra = _check_metadata(metadata)
        pending: list[PendingSource] = []
        report = IngestReport()
        seen: set[str] = set()
        for item in documents:
            doc = item if isinstance(item, Document) else _text_document(item)
            if extra:
                doc = doc.model_copy(update={"metadata": {**extra, **doc.metadata}})
            if doc.id in seen:
                raise InvalidInputError(f"document id {doc.id!r} appears twice")
            seen.add(doc.id)
            _check_stored(doc, len(pending))  # refuse the whole call before writing any of it
            digest = hashlib.sha256(
                json.dumps([doc.text, doc.metadata], sort_keys=True).encode()
            ).hexdigest()
            pending.append(PendingSource(f"doc:{doc.id}", digest, doc.id, [doc]))
        self.writer.write(pending, report, progress=progress)
        return report

    def ingest_folder(
        self,
        path: str | Path,
        *,
        text_field: str = "text",
        metadata: Metadata | None = None,
        follow_symlinks: bool = False,
        progress: ProgressLike = False,
    ) -> IngestReport:
        """Index every supported file under ``path``, incrementally.

        Each file type gets its chunker (``ragmem.ingest.chunker_for``): Markdown by
        headings, source code by definitions, the rest by paragraphs. Unchanged files
        (same SHA-256) are skipped without embedding anything; a changed file's new
        chunks are written in one store call before its old chunks are deleted, so a
        search never sees the file missing; files that disappeared from ``path`` lose
        their chunks. ``metadata`` is added to every chunk of the run (and is part of
        what makes a file "changed"). Unsupported, unreadable and special files (FIFOs,
        devices, symlinks leading outside ``path`` unless ``follow_symlinks``) are
        listed in the report, and an unreadable file keeps its previously indexed chunks.
        """
        self._check_writable()
        extra = _check_metadata(metadata)
        report = IngestReport()
        root = Path(path)
        scan = scan_folder(root, self.manifest, report, follow_symlinks=follow_symlinks)
        salt = json.dumps(extra, sort_keys=True) if extra else ""
        pending = []
        for file in scan.changed:
            digest = file.sha256
            if salt:
                digest = hashlib.sha256((file.sha256 + salt).encode()).hexdigest()
            chunker = self._chunker_for(file.path.suffix)
            source = PendingSource(file.key, digest, file.label, [], chunker)
            # read in the writer's reading thread, part by part for a large text file
            source.documents = _file_documents(file.path, file.label, text_field, extra, source)
            pending.append(source)
        self.writer.write(pending, report, progress=progress)
        self.writer.delete_sources(scan.removed, report)
        return report

    def _chunker_for(self, suffix: str) -> Chunker | None:
        if self._typed_chunkers is None:
            return None
        suffix = suffix.lower()
        if suffix not in self._typed_chunkers:
            self._typed_chunkers[suffix] = chunker_for(suffix, self.embedder, self.chunker)
        return self._typed_chunkers[suffix]

    def delete(
        self, doc_ids: str | Sequence[str] | None = None, *, where: FilterLike | None = None
    ) -> IngestReport:
        """Remove documents whole, from the store, the keyword index and the manifest.

        ``doc_ids`` names documents as ingested (``Document.id``, or a file's path as
        indexed); ``where`` removes every document one of whose chunks matches the filter.
        Give exactly one. Unknown ids are ignored. The delete is crash-safe: once
        reopened, a document is either wholly present or wholly gone.

        Returns:
            an ``IngestReport`` whose ``removed`` lists the documents deleted.
        """
        self._check_writable()
        if (doc_ids is None) == (where is None):
            raise InvalidInputError("delete takes exactly one of doc_ids= or where=")
        report = IngestReport()
        if doc_ids is not None:
            wanted = {doc_ids} if isinstance(doc_ids, str) else set(doc_ids)
            if not all(isinstance(d, str) and d for d in wanted):
                raise InvalidInputError("doc_ids must be non-empty strings")
            keys = [
                key
                for key, entry in self.manifest.entries.items()
                if entry["label"] in wanted or key.removeprefix("doc:") in wanted
            ]
        else:
            keys = self._keys_matching(where)
        self.writer.delete_sources(keys, report)
        return report

    def _keys_matching(self, where: FilterLike | None) -> list[str]:
        tree = parse_filter(where)
        keys = []
        for key, entry in self.manifest.entries.items():
            records = self.store.get(entry["chunks"]) if entry["chunks"] else []
            if any(matches(tree, r.metadata) for r in records):
                keys.append(key)
        return keys

    def close(self) -> None:
        """Release the store's files and locks (everything ingested is already saved)."""
        self.store.close()

    def __enter__(self) -> RAGPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_metadata(metadata: Metadata | None) -> Metadata:
    if metadata is None:
        return {}
    try:
        return validate_metadata(metadata)
    except InvalidInputError as exc:
        raise InvalidInputError(f"metadata: {exc}") from None


def _check_stored(doc: Document, position: int) -> None:
    check_text(doc.id, f"documents[{position}].id")
    check_text(doc.text, f"documents[{position}].text")
    try:
        metadata = validate_metadata(doc.metadata)
    except InvalidInputError as exc:
        raise InvalidInputError(f"documents[{position}].metadata: {exc}") from None
    metadata_json(metadata, f"documents[{position}].metadata")


def _text_document(text: str) -> Document:
    if not isinstance(text, str):
        raise InvalidInputError(f"documents must be Document or str, got {type(text).__name__}")
    return Document(id=hashlib.sha256(text.encode()).hexdigest()[:16], text=text)


def _file_documents(
    path: Path, label: str, text_field: str, extra: Metadata, source: PendingSource
) -> Iterator[Document]:
    for document in iter_documents(
        path, doc_id=label, text_field=text_field, problems=source.problems
    ):
        if extra:
            document = document.model_copy(update={"metadata": {**extra, **document.metadata}})
        yield document
