"""BEIR-format evaluation: load a dataset folder, run retrievers, report trec_eval metrics.

A BEIR folder holds ``corpus.jsonl`` (or ``corpus.jsonl.gz``) with ``_id``, ``title``,
``text``; ``queries.jsonl`` with ``_id``, ``text``; and ``qrels/<split>.tsv`` with a
header and ``query-id  corpus-id  score`` rows. Documents are indexed as
``title + " " + text``, as BEIR does.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.errors import ConfigurationError, InvalidInputError, StorageError
from ragmem.eval.metrics import evaluate

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ragmem.embedders.base import Embedder
    from ragmem.types import Vectors

__all__ = ["CONFIGURATIONS", "BeirDataset", "cached_embeddings", "load_beir", "run_beir"]

CONFIGURATIONS: tuple[str, ...] = ("bm25", "dense", "rrf", "hybrid", "hybrid-rerank")


@dataclass
class BeirDataset:
    """A loaded BEIR dataset: corpus, the queries that have judgements, and qrels."""

    name: str
    ids: list[str]
    texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_hash(self) -> str:
        """A digest of ids and texts: names caches of anything derived from the corpus."""
        digest = hashlib.sha256()
        for id_, text in zip(self.ids, self.texts):
            digest.update(id_.encode() + b"\x00" + text.encode() + b"\x01")
        return digest.hexdigest()


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: not JSON: {exc}") from exc


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """Read a BEIR folder; only queries judged in ``qrels/<split>.tsv`` are kept.

    Raises:
        StorageError: a required file is missing.
        InvalidInputError: a line is malformed.
    """
    root = Path(path)
    corpus = root / "corpus.jsonl"
    if not corpus.exists():
        corpus = root / "corpus.jsonl.gz"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for required in (corpus, root / "queries.jsonl", qrels_path):
        if not required.exists():
            raise StorageError(f"not a BEIR dataset folder: {required} is missing")
    ids: list[str] = []
    texts: list[str] = []
    for doc in _jsonl(corpus):
        if "_id" not in doc:
            raise InvalidInputError(f"{corpus}: a document has no _id")
        ids.append(str(doc["_id"]))
        texts.append(f"{doc.get('title') or ''} {doc.get('text') or ''}".strip())
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if number == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise InvalidInputError(f"{qrels_path}:{number}: expected 3 columns, got {row}")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {str(r["_id"]): str(r["text"]) for r in _jsonl(root / "queries.jsonl")}
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise InvalidInputError(f"qrels name queries missing from queries.jsonl: {missing[:5]}")
    return BeirDataset(root.name, ids, texts, {q: queries[q] for q in qrels}, qrels)


def cached_embeddings(
    embedder: Embedder, dataset: BeirDataset, cache_dir: Path | None
) -> tuple[Vectors, bool]:
    """Document vectors of the corpus, from ``cache_dir`` when computed before.

    The cache file is keyed by the embedder's name and the corpus digest; returns the
    vectors and whether they came from the cache.
    """
    if cache_dir is None:
        return embedder.embed(dataset.texts, purpose="document"), False
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder.name)
    path = cache_dir / f"{dataset.name}-{model}-{dataset.corpus_hash[:16]}.npy"
    if path.exists():
        try:
            cached = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            cached = None  # unreadable: recompute and overwrite
        if cached is not None and cached.shape == (len(dataset.ids), embedder.dimensions):
            return cached.astype(np.float32, copy=False), True
    vectors = embedder.embed(dataset.texts, purpose="document")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors, False


def run_beir(
    path: str | Path | BeirDataset,
    retrievers: Sequence[str] = ("bm25",),
    *,
    split: str = "test",
    ks: Sequence[int] = (10, 100),
    embedder: Embedder | str = "local",
    cache_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Evaluate each configuration on a BEIR dataset; one result dict per configuration.

    Configurations: ``bm25``, ``dense``, ``rrf`` (plain RRF of the two), ``hybrid`` (the
    default hybrid: see ``ragmem.eval.configs``) and ``hybrid-rerank`` (the default
    hybrid followed by late-interaction reranking).

    Each dict holds ``ndcg@k``, ``recall@k``, ``mrr@k``, ``map@k`` for every k,
    ``timings`` (seconds) and ``config``.
    """
    from ragmem.eval.configs import build_configuration

    unknown = [r for r in retrievers if r not in CONFIGURATIONS]
    if unknown:
        raise ConfigurationError(
            f"unknown retriever {unknown[0]!r}; use {', '.join(CONFIGURATIONS)}"
        )
    dataset = path if isinstance(path, BeirDataset) else load_beir(path, split)
    cache = Path(cache_dir) if cache_dir is not None else None
    depth = max(max(ks), 100)
    results = []
    for name in retrievers:
        built = build_configuration(name, dataset, embedder=embedder, cache_dir=cache)
        qids = list(dataset.queries)
        retriever = built.retriever
        start = time.perf_counter()
        hits = [retriever.retrieve(dataset.queries[q], depth) for q in qids]
        search_s = time.perf_counter() - start
        run = {q: [h.id for h in hs] for q, hs in zip(qids, hits)}
        metrics = evaluate(run, dataset.qrels, ks)
        results.append(
            {
                "dataset": dataset.name,
                "split": split,
                "retriever": name,
                **{key: round(value, 5) for key, value in metrics.items()},
                "n_queries": len(qids),
                "n_docs": len(dataset.ids),
                "timings": {
                    **{k: round(v, 3) for k, v in built.timings.items()},
                    "search_s": round(search_s, 3),
                    "ms_per_query": round(1000 * search_s / max(len(qids), 1), 3),
                },
                "config": built.config,
            }
        )
    return results
