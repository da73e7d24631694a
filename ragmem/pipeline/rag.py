"""RAGPipeline: ingest documents or folders, then retrieve, assemble and answer with citations."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem.context import Context, ContextBuilder
from ragmem.embedders.base import Embedder
from ragmem.errors import ConfigurationError, CorruptIndexError, InvalidInputError
from ragmem.ingest import FileProblem, IngestReport, Manifest, load_file
from ragmem.llms.base import LLM
from ragmem.pipeline.answer import (
    SYSTEM_PROMPT,
    Answer,
    AnswerStream,
    build_messages,
    cited_sources,
    user_prompt,
)
from ragmem.pipeline.defaults import (
    DEFAULT_EMBEDDER,
    RERANK,
    Chunker,
    build_reranker,
    build_retriever,
    default_chunker,
    default_tokenizer,
    new_keyword_index,
)
from ragmem.pipeline.writer import IndexWriter, PendingSource, scan_folder
from ragmem.registry import get_embedder, load_backend
from ragmem.retrievers.base import Reranker, Retriever
from ragmem.stores.base import VectorStore
from ragmem.types import Document

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ragmem.filters import FilterLike
    from ragmem.llms.base import Message
    from ragmem.retrievers.bm25 import BM25Retriever
    from ragmem.types import Hit

__all__ = ["RAGPipeline"]

log = logging.getLogger("ragmem.pipeline")

_CONFIG = "ragmem.json"
_KEYWORD = "keyword.bm25"
_CONFIG_VERSION = 1


class RAGPipeline:
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
        k: sources to retrieve per question.
        candidates: hits fetched for the reranker (at least ``k``); by default the depth the
            late-interaction default was cross-validated at (50), or ``k`` without a reranker.
        system_prompt: the instruction sent with every question.
        read_only: open an existing index for searching only, without taking its write
            lock (any number of readers may open it while one process indexes).

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
    ) -> None:
        if k < 1 or (candidates is not None and candidates < 1):
            raise ConfigurationError("k and candidates must be positive")
        self.path = None if path is None else Path(path)
        self.read_only = read_only
        if read_only and (self.path is None or not (self.path / _CONFIG).exists()):
            raise ConfigurationError(f"read_only needs an existing index; there is none at {path}")
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        self.embedder = self._open_embedder(embedder, embedder_options or {})
        self.store = store if store is not None else self._open_store()
        if self.store.dimensions != self.embedder.dimensions:
            raise ConfigurationError(
                f"the store holds {self.store.dimensions}-dimensional vectors but the embedder "
                f"makes {self.embedder.dimensions}"
            )
        self.chunker = chunker if chunker is not None else default_chunker(self.embedder)
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
        )
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

    # -- construction -------------------------------------------------------------------------

    def _open_embedder(self, embedder: Embedder | str | None, options: dict[str, Any]) -> Embedder:
        saved = self._read_config()
        if embedder is None:
            name = saved["embedder"]["name"] if saved else DEFAULT_EMBEDDER
            options = options or (saved["embedder"]["options"] if saved else {})
            embedder = name
        built: Embedder = (
            get_embedder(embedder, **options) if isinstance(embedder, str) else embedder
        )
        if saved:
            want = saved["embedder"]
            if (want["id"], want["dimensions"]) != (built.name, built.dimensions):
                raise ConfigurationError(
                    f"the index at {self.path} was built with embedder {want['id']!r} "
                    f"({want['dimensions']} dimensions), not {built.name!r} "
                    f"({built.dimensions}); open it with the same embedder"
                )
        elif self.path is not None:
            self._write_config(
                {
                    "version": _CONFIG_VERSION,
                    "embedder": {
                        "name": embedder if isinstance(embedder, str) else None,
                        "options": options if isinstance(embedder, str) else {},
                        "id": built.name,
                        "dimensions": built.dimensions,
                    },
                }
            )
        return built

    def _read_config(self) -> dict[str, Any] | None:
        if self.path is None or not (self.path / _CONFIG).exists():
            return None
        file = self.path / _CONFIG
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
            if config["version"] != _CONFIG_VERSION:
                raise ValueError(f"unknown version {config['version']!r}")
            if not {"name", "id", "options", "dimensions"} <= set(config["embedder"]):
                raise ValueError("the embedder entry is incomplete")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptIndexError(file, f"unreadable pipeline config ({exc})") from exc
        if config["embedder"]["name"] is None:
            config["embedder"]["name"] = config["embedder"]["id"]
        return dict(config)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ConfigurationError("this pipeline was opened read_only; it cannot ingest")

    def _write_config(self, config: dict[str, Any]) -> None:
        assert self.path is not None
        tmp = self.path / f"{_CONFIG}.tmp"
        tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
        tmp.replace(self.path / _CONFIG)

    def _open_store(self) -> VectorStore:
        from ragmem.stores.local import LocalVectorStore

        if self.path is None:
            return LocalVectorStore(self.embedder.dimensions)
        return LocalVectorStore(
            self.embedder.dimensions, path=self.path / "vectors", read_only=self.read_only
        )

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
        self, documents: Iterable[Document | str], *, progress: bool = False
    ) -> IngestReport:
        """Chunk, embed and index documents; a document whose text and metadata are
        unchanged since it was last ingested is skipped, a changed one replaced.

        Plain strings become documents whose id is a hash of their text.
        """
        self._check_writable()
        pending = []
        report = IngestReport()
        seen: set[str] = set()
        for item in documents:
            doc = item if isinstance(item, Document) else _text_document(item)
            if doc.id in seen:
                raise InvalidInputError(f"document id {doc.id!r} appears twice")
            seen.add(doc.id)
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
        progress: bool = False,
    ) -> IngestReport:
        """Index every supported file under ``path``, incrementally.

        Unchanged files (same SHA-256) are skipped without embedding anything; a changed
        file's new chunks are written in one store call before its old chunks are
        deleted, so a search never sees the file missing; files that disappeared from
        ``path`` lose their chunks. Unsupported and unreadable files are listed in the
        report, and an unreadable file keeps its previously indexed chunks.
        """
        self._check_writable()
        report = IngestReport()
        scan = scan_folder(Path(path), self.manifest, report)
        pending = []
        for file in scan.changed:
            try:
                documents = load_file(file.path, doc_id=file.label, text_field=text_field)
            except (InvalidInputError, ImportError) as exc:
                report.failed.append(_problem(file.label, exc))
                continue
            pending.append(PendingSource(file.key, file.sha256, file.label, documents))
        self.writer.write(pending, report, progress=progress)
        self.writer.remove(scan.removed, report)
        return report

    # -- querying -----------------------------------------------------------------------------

    def search(
        self, query: str, *, k: int | None = None, where: FilterLike | None = None
    ) -> list[Hit]:
        """The best ``k`` chunks for ``query``, reranked when a reranker is set."""
        k = k or self.k
        hits = self.retriever.retrieve(query, max(k, self.candidates), where=where)
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits, k)
        return hits[:k]

    def build_context(
        self, question: str, hits: Sequence[Hit], *, history: Sequence[Message] = ()
    ) -> Context:
        """The context ``query`` would send for these hits."""
        return self.context_builder.build(
            hits,
            system=self.system_prompt if self.llm else None,
            history=history,
            question=user_prompt(question, ""),
        )

    def query(
        self,
        question: str,
        *,
        k: int | None = None,
        where: FilterLike | None = None,
        history: Sequence[Message] = (),
    ) -> Answer:
        """Retrieve, assemble and (with an LLM) answer ``question`` with citations."""
        hits = self.search(question, k=k, where=where)
        context = self.build_context(question, hits, history=history)
        if self.llm is None:
            return Answer(question=question, text=None, context=context, hits=hits)
        text = self.llm.complete(self._messages(question, context, history))
        citations = cited_sources(text, context.sources)
        return Answer(question=question, text=text, context=context, hits=hits, citations=citations)

    async def query_async(
        self,
        question: str,
        *,
        k: int | None = None,
        where: FilterLike | None = None,
        history: Sequence[Message] = (),
    ) -> Answer:
        """Async twin of ``query``."""
        k = k or self.k
        hits = await self.retriever.retrieve_async(question, max(k, self.candidates), where=where)
        if self.reranker is not None:
            hits = await self.reranker.rerank_async(question, hits, k)
        hits = hits[:k]
        context = self.build_context(question, hits, history=history)
        if self.llm is None:
            return Answer(question=question, text=None, context=context, hits=hits)
        text = await self.llm.complete_async(self._messages(question, context, history))
        citations = cited_sources(text, context.sources)
        return Answer(question=question, text=text, context=context, hits=hits, citations=citations)

    def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        where: FilterLike | None = None,
        history: Sequence[Message] = (),
    ) -> AnswerStream:
        """Like ``query``, but the answer arrives in pieces as the model writes it.

        Raises:
            ConfigurationError: the pipeline has no LLM.
        """
        if self.llm is None:
            raise ConfigurationError("streaming needs an LLM; pass llm= to RAGPipeline")
        hits = self.search(question, k=k, where=where)
        context = self.build_context(question, hits, history=history)
        pieces = self.llm.stream(self._messages(question, context, history))
        return AnswerStream(question, context, hits, iter(pieces))

    def _messages(
        self, question: str, context: Context, history: Sequence[Message]
    ) -> list[Message]:
        return build_messages(question, context, system=self.system_prompt, history=history)

    def close(self) -> None:
        """Release the store's files and locks (everything ingested is already saved)."""
        self.store.close()

    def __enter__(self) -> RAGPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text_document(text: str) -> Document:
    if not isinstance(text, str):
        raise InvalidInputError(f"documents must be Document or str, got {type(text).__name__}")
    return Document(id=hashlib.sha256(text.encode()).hexdigest()[:16], text=text)


def _problem(label: str, exc: Exception) -> FileProblem:
    return FileProblem(path=label, reason=str(exc))
