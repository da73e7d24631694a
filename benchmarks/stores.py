"""Adapter overhead: the same upserts and searches through ragmem and through each SDK directly.

Both sides do the same work on the same data in one process: the SDK side writes the
same ids (as UUIDs for Qdrant), vectors, texts and metadata in batches of the same size,
and searches with the same k and an equivalent native filter. The ratio
ragmem time / SDK time is the adapter overhead (goal: <= 1.10).

    python benchmarks/stores.py                       # Qdrant :memory: and Chroma in-process
    python benchmarks/stores.py --chroma-host 127.0.0.1 --chroma-port 8000   # + a Chroma server
    python benchmarks/stores.py --qdrant-url http://localhost:6333           # + a Qdrant server

Each measurement is the best of ``--repeat`` runs; ragmem and SDK runs alternate.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragmem.stores.qdrant import point_id

if TYPE_CHECKING:
    from collections.abc import Callable


def make_data(
    n: int, dim: int, seed: int = 0
) -> tuple[list[str], np.ndarray, list[str], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(n)]
    texts = [f"text of document {i}" for i in range(n)]
    langs = ["en", "de", "fr", "es"]
    metas = [{"lang": langs[i % 4], "year": 2000 + i % 25} for i in range(n)]
    return ids, vectors, texts, metas


def best(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class Case:
    """One backend: fresh ragmem and SDK collections per upsert run, shared data."""

    name = ""

    def __init__(self, ids, vectors, texts, metas, queries, k, batch):
        self.ids, self.vectors, self.texts, self.metas = ids, vectors, texts, metas
        self.queries, self.k, self.batch = queries, k, batch

    def measure(self, repeat: int) -> list[tuple[str, float, float]]:
        pairs = [
            ("upsert", self.ragmem_upsert, self.sdk_upsert),
            ("search", self.ragmem_search, self.sdk_search),
            ("search+filter", self.ragmem_filtered, self.sdk_filtered),
        ]
        times: dict[str, tuple[list[float], list[float]]] = {op: ([], []) for op, _, _ in pairs}
        for _ in range(repeat):
            # alternate the two sides on every round, so drift on a shared machine hits both
            for op, ours, theirs in pairs:
                times[op][0].append(best(ours, 1))
                times[op][1].append(best(theirs, 1))
        return [(op, min(times[op][0]), min(times[op][1])) for op, _, _ in pairs]


class QdrantCase(Case):
    def __init__(self, *args, url: str | None = None):
        super().__init__(*args)
        from qdrant_client import QdrantClient, models

        self.models = models
        self.client = QdrantClient(url=url) if url else QdrantClient(":memory:")
        self.name = f"qdrant ({url or ':memory:'})"
        self.store = None

    def _fresh(self, name: str) -> None:
        if self.client.collection_exists(name):
            self.client.delete_collection(name)

    def ragmem_upsert(self) -> None:
        from ragmem.stores.qdrant import QdrantVectorStore

        self._fresh("bench-ragmem")
        self.store = QdrantVectorStore(
            collection="bench-ragmem", dimensions=self.vectors.shape[1], client=self.client,
            batch_size=self.batch,
        )  # fmt: skip
        self.store.upsert(self.ids, self.vectors, texts=self.texts, metadata=self.metas)

    def sdk_upsert(self) -> None:
        m = self.models
        self._fresh("bench-sdk")
        self.client.create_collection(
            "bench-sdk",
            vectors_config=m.VectorParams(size=self.vectors.shape[1], distance=m.Distance.COSINE),
        )
        for s in range(0, len(self.ids), self.batch):
            e = s + self.batch
            self.client.upsert(
                "bench-sdk",
                points=m.Batch(
                    ids=[str(uuid.uuid5(uuid.NAMESPACE_URL, i)) for i in self.ids[s:e]],
                    vectors=self.vectors[s:e].tolist(),
                    payloads=[
                        {"id": i, "text": t, "metadata": md}
                        for i, t, md in zip(self.ids[s:e], self.texts[s:e], self.metas[s:e])
                    ],
                ),
                wait=True,
            )

    def ragmem_search(self) -> None:
        for q in self.queries:
            self.store.search(q, k=self.k)

    def sdk_search(self) -> None:
        for q in self.queries:
            self.client.query_points("bench-sdk", query=q.tolist(), limit=self.k, with_payload=True)

    def ragmem_filtered(self) -> None:
        for q in self.queries:
            self.store.search(q, k=self.k, where={"lang": "de", "year": {"$gte": 2010}})

    def sdk_filtered(self) -> None:
        m = self.models
        flt = m.Filter(
            must=[
                m.FieldCondition(key="metadata.lang", match=m.MatchValue(value="de")),
                m.FieldCondition(key="metadata.year", range=m.Range(gte=2010)),
            ]
        )
        for q in self.queries:
            self.client.query_points(
                "bench-sdk", query=q.tolist(), limit=self.k, query_filter=flt, with_payload=True
            )


class ChromaCase(Case):
    def __init__(self, *args, host: str | None = None, port: int | None = None):
        super().__init__(*args)
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if host:
            self.client = chromadb.HttpClient(host=host, port=port or 8000, settings=settings)
            self.name = f"chroma (server {host}:{port or 8000})"
        else:
            self.client = chromadb.EphemeralClient(settings=settings)
            self.name = "chroma (in-process)"
        self.store = None
        self.collection = None

    def _fresh(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        with contextlib.suppress(NotFoundError):  # absent on the first run
            self.client.delete_collection(name)

    def ragmem_upsert(self) -> None:
        from ragmem.stores.chroma import ChromaVectorStore

        self._fresh("bench-ragmem")
        self.store = ChromaVectorStore(
            collection="bench-ragmem", dimensions=self.vectors.shape[1], client=self.client,
            batch_size=self.batch,
        )  # fmt: skip
        self.store.upsert(self.ids, self.vectors, texts=self.texts, metadata=self.metas)

    def sdk_upsert(self) -> None:
        self._fresh("bench-sdk")
        self.collection = self.client.create_collection(
            "bench-sdk", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        for s in range(0, len(self.ids), self.batch):
            e = s + self.batch
            self.collection.upsert(
                ids=self.ids[s:e], embeddings=self.vectors[s:e], documents=self.texts[s:e],
                metadatas=self.metas[s:e],
            )  # fmt: skip

    def ragmem_search(self) -> None:
        for q in self.queries:
            self.store.search(q, k=self.k)

    def sdk_search(self) -> None:
        for q in self.queries:
            self.collection.query(
                query_embeddings=q[None, :], n_results=self.k,
                include=["documents", "metadatas", "distances"],
            )  # fmt: skip

    def ragmem_filtered(self) -> None:
        for q in self.queries:
            self.store.search(q, k=self.k, where={"lang": "de", "year": {"$gte": 2010}})

    def sdk_filtered(self) -> None:
        where = {"$and": [{"lang": "de"}, {"year": {"$gte": 2010}}]}
        for q in self.queries:
            self.collection.query(
                query_embeddings=q[None, :], n_results=self.k, where=where,
                include=["documents", "metadatas", "distances"],
            )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="items to upsert")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256, help="items per write request")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--qdrant-url", default=None)
    parser.add_argument("--chroma-host", default=None)
    parser.add_argument("--chroma-port", type=int, default=None)
    args = parser.parse_args()

    ids, vectors, texts, metas = make_data(args.n, args.dim)
    queries = np.random.default_rng(1).standard_normal((args.queries, args.dim)).astype(np.float32)
    common = (ids, vectors, texts, metas, queries, args.k, args.batch)
    cases: list[Case] = [QdrantCase(*common), ChromaCase(*common)]
    if args.qdrant_url:
        cases.append(QdrantCase(*common, url=args.qdrant_url))
    if args.chroma_host:
        cases.append(ChromaCase(*common, host=args.chroma_host, port=args.chroma_port))

    print(f"n={args.n} dim={args.dim} queries={args.queries} k={args.k} batch={args.batch} "
          f"best of {args.repeat}")  # fmt: skip
    print(f"{'backend':32} {'operation':14} {'ragmem':>12} {'sdk':>12} {'ratio':>7}")
    for case in cases:
        for op, ours, theirs in case.measure(args.repeat):
            count = args.n if op == "upsert" else args.queries
            unit = "items/s" if op == "upsert" else "q/s"
            print(
                f"{case.name:32} {op:14} {count / ours:>8.0f} {unit:<3} "
                f"{count / theirs:>8.0f} {unit:<3} {ours / theirs:>6.2f}x"
            )


if __name__ == "__main__":
    assert point_id("x") == point_id("x")  # the adapter's id mapping is importable and stable
    main()
