"""The retrieval configurations that ``ragmem eval beir`` runs, and their defaults.

The defaults of the hybrid fusion and of late-interaction reranking were chosen by
2-fold cross-validation over SciFact test queries (``benchmarks/beir.py`` prints the
procedure and the per-fold choices), never by picking the best test-split score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragmem.errors import ConfigurationError
from ragmem.eval.beir import cached_embeddings
from ragmem.pipeline.defaults import STOPWORDS, new_keyword_index
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.dense import DenseRetriever
from ragmem.retrievers.hybrid import HybridRetriever
from ragmem.retrievers.rerank import LateInteractionReranker, RerankRetriever
from ragmem.retrievers.tokenvectors import TokenVectorStore
from ragmem.stores.local import LocalVectorStore

if TYPE_CHECKING:
    from pathlib import Path

    from ragmem.embedders.base import Embedder, TokenEmbedder
    from ragmem.eval.beir import BeirDataset
    from ragmem.retrievers.base import Retriever

__all__ = ["BM25_DEFAULTS", "HYBRID_DEFAULTS", "RERANK_DEFAULTS", "Built", "build_configuration"]

BM25_DEFAULTS: dict[str, Any] = {"k1": 1.2, "b": 0.75, "stopwords": STOPWORDS}
# chosen by cross-validation in benchmarks/beir.py (see the module docstring)
HYBRID_DEFAULTS: dict[str, Any] = {"fusion": "minmax", "weights": [0.55, 0.45], "depth": 1000}
RERANK_DEFAULTS: dict[str, Any] = {
    "depth": 50,
    "weight": 0.3,
    "normalization": "zscore",
    "encoding": "int4",
}


@dataclass
class Built:
    """A ready retriever, the configuration it embodies, and how long building took."""

    retriever: Retriever
    config: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def _embedder(embedder: Embedder | str) -> Embedder:
    if isinstance(embedder, str):
        from ragmem.registry import get_embedder

        built: Embedder = get_embedder(embedder)
        return built
    return embedder


def _bm25(dataset: BeirDataset, timings: dict[str, float]) -> BM25Retriever:
    start = time.perf_counter()
    bm25 = new_keyword_index()  # the pipeline's, so eval measures what a pipeline returns
    bm25.add(dataset.ids, dataset.texts)
    timings["bm25_index_s"] = time.perf_counter() - start
    return bm25


def _dense(
    dataset: BeirDataset, embedder: Embedder, cache_dir: Path | None, timings: dict[str, float]
) -> DenseRetriever:
    start = time.perf_counter()
    vectors, cached = cached_embeddings(embedder, dataset, cache_dir)
    timings["embed_s" if not cached else "embed_cached_s"] = time.perf_counter() - start
    store = LocalVectorStore(dimensions=embedder.dimensions)
    store.upsert(dataset.ids, vectors, texts=dataset.texts)
    return DenseRetriever(embedder, store)


def token_store(
    dataset: BeirDataset,
    embedder: TokenEmbedder,
    encoding: str,
    cache_dir: Path | None,
    timings: dict[str, float],
) -> TokenVectorStore:
    """Token vectors of the whole corpus in ``encoding``, cached in ``cache_dir``."""
    path = None
    if cache_dir is not None:
        name = f"{dataset.name}-{embedder.name}-tokens-{encoding}-{dataset.corpus_hash[:16]}.snap"
        path = cache_dir / name.replace("/", "_")
        if path.exists():
            start = time.perf_counter()
            store = TokenVectorStore.load(path)
            timings["tokens_cached_s"] = time.perf_counter() - start
            return store
    start = time.perf_counter()
    store = TokenVectorStore(embedder.dimensions, encoding=encoding)  # type: ignore[arg-type]
    batch = 256
    for i in range(0, len(dataset.ids), batch):
        texts = dataset.texts[i : i + batch]
        store.put(dataset.ids[i : i + batch], embedder.embed_tokens(texts, purpose="document"))
    timings["tokens_s"] = time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.save(path)
    return store


def build_configuration(
    name: str,
    dataset: BeirDataset,
    *,
    embedder: Embedder | str = "local",
    cache_dir: Path | None = None,
) -> Built:
    """Index ``dataset`` for one named configuration (see ``ragmem.eval.beir``)."""
    timings: dict[str, float] = {}
    if name == "bm25":
        return Built(_bm25(dataset, timings), {"bm25": BM25_DEFAULTS}, timings)
    model = _embedder(embedder)
    dense = _dense(dataset, model, cache_dir, timings)
    if name == "dense":
        return Built(dense, {"embedder": model.name}, timings)
    bm25 = _bm25(dataset, timings)
    pair = {"bm25": bm25, "dense": dense}
    if name == "rrf":
        config = {"fusion": "rrf", "rrf_k": 60, "depth": 100}
        hybrid = HybridRetriever(pair, fusion="rrf", rrf_k=60, depth=100)
        return Built(hybrid, {"bm25": BM25_DEFAULTS, "embedder": model.name, **config}, timings)
    hybrid = HybridRetriever(pair, **HYBRID_DEFAULTS)
    config = {"bm25": BM25_DEFAULTS, "embedder": model.name, **HYBRID_DEFAULTS}
    if name == "hybrid":
        return Built(hybrid, config, timings)
    if name != "hybrid-rerank":
        raise ConfigurationError(f"unknown configuration {name!r}")
    from ragmem.embedders.base import TokenEmbedder

    if not isinstance(model, TokenEmbedder):
        raise ConfigurationError(f"{model.name} has no token vectors (not a TokenEmbedder)")
    store = token_store(dataset, model, RERANK_DEFAULTS["encoding"], cache_dir, timings)
    reranker = LateInteractionReranker(
        model,
        store=store,
        weight=RERANK_DEFAULTS["weight"],
        normalization=RERANK_DEFAULTS["normalization"],
    )
    retriever = RerankRetriever(hybrid, reranker, depth=RERANK_DEFAULTS["depth"])
    config["rerank"] = {**RERANK_DEFAULTS, "token_bytes": store.nbytes, "tokens": store.n_tokens}
    return Built(retriever, config, timings)
