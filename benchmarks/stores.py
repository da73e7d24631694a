"""Adapter overhead: the same upserts and searches through ragmem and through each SDK directly.

Both sides do the same work on the same data in one process, as a user of the SDK would
to get the same result: the SDK side writes the same ids (as UUIDs for Qdrant, with the
string id in the payload), vectors, texts and metadata in batches of the same size into
a fresh collection with the same distance, and searches with the same k and an
equivalent native filter, asking for ids, scores, texts and metadata. Collections are
created before the clock starts on both sides. The ratio ragmem time / SDK time is the
adapter overhead (goal: <= 1.10).

    python benchmarks/stores.py                       # Qdrant :memory: and Chroma in-process
    python benchmarks/stores.py --chroma-server       # + `chroma run` servers (one per side)
    python benchmarks/stores.py --chroma-host 127.0.0.1 --chroma-port 8000   # + your server
    python benchmarks/stores.py --qdrant-url http://localhost:6333           # + a Qdrant server
    python benchmarks/stores.py --breakdown           # + what Chroma's exact filters cost

Each side gets its own Chroma database (in-process: a PersistentClient in its own temporary
directory; --chroma-server: its own server), because in one database, collections whose
metadata share key names slow each other's filtered searches. With --chroma-host all sides
share your server, so use it without --breakdown (ragmem and plain SDK keys differ).

With ``--breakdown``, Chroma rows get three more SDK-direct measurements that split the
overhead by guarantee, each adding one to the one before:

- "sdk+values": the SDK on ragmem's typed value fields ("s:k", "n:k" as floats, ...),
  with the translated filter: exact types (a stored int 2 never equals 2.75, "1" never
  equals 1) and ranges over lists;
- "sdk+layout": plus one int marker per key: ``$exists`` and negated ranges (``$not``,
  which needs "the key is absent or holds no numbers"), and ints that read back as ints;
  this is ragmem's whole metadata layout (see ``ragmem.stores._translate_chroma``);
- "sdk+layout+read" (upsert only): plus the read of the items' current metadata before
  each write, which makes an upsert replace an item whole (Chroma merges metadata).

What remains between the last of these and ragmem is the adapter's own Python work
(validation, encoding, decoding, building Hits).

Timing: every upsert batch and every query is timed on each side back to back, the
first side rotating by round; an operation's time is the sum over its batches (or
queries) of each one's best time in ``--repeat`` rounds. So a load spike on a shared
machine costs a unit one round, not the whole measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

WHERE = {"lang": "de", "year": {"$gte": 2010}}


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


class Side:
    """One way of doing the work: ``open`` (untimed) makes a fresh empty collection,
    ``upsert`` writes one batch, ``search`` runs one query (with or without the filter)."""

    def __init__(
        self,
        open_: Callable[[], None],
        upsert: Callable[[slice], None],
        search: Callable[[np.ndarray, bool], None] | None,
    ) -> None:
        self.open, self.upsert, self.search = open_, upsert, search


class Case:
    """One backend, measured unit by unit: each upsert batch and each query is timed on
    every side back to back (the first side alternating by round), so load changes on a
    shared machine hit the sides alike; a side's time for an operation is the sum over
    units of each unit's best time across rounds."""

    name = ""

    def __init__(self, ids, vectors, texts, metas, queries, k, batch):
        self.ids, self.vectors, self.texts, self.metas = ids, vectors, texts, metas
        self.queries, self.k, self.batch = queries, k, batch

    def sides(self) -> dict[str, Side]:
        raise NotImplementedError

    def measure(self, repeat: int) -> dict[str, dict[str, float]]:
        """{side: {operation: seconds}}."""
        sides = self.sides()
        batches = [slice(s, s + self.batch) for s in range(0, len(self.ids), self.batch)]
        units: dict[str, list[Callable[[Side], Any]]] = {
            "upsert": [lambda side, b=b: side.upsert(b) for b in batches],
            "search": [lambda side, q=q: side.search(q, False) for q in self.queries],
            "search+filter": [lambda side, q=q: side.search(q, True) for q in self.queries],
        }
        best = {name: {op: np.full(len(u), np.inf) for op, u in units.items()} for name in sides}
        order = list(sides)
        for round_ in range(repeat):
            # rotate which side goes first, so no side always runs on a warm cache
            names = order[round_ % len(order) :] + order[: round_ % len(order)]
            for name in names:
                sides[name].open()
            for op, steps in units.items():
                for i, step in enumerate(steps):
                    for name in names:
                        side = sides[name]
                        if op != "upsert" and side.search is None:
                            continue
                        start = time.perf_counter()
                        step(side)
                        elapsed = time.perf_counter() - start
                        best[name][op][i] = min(best[name][op][i], elapsed)
        return {
            name: {op: float(t.sum()) for op, t in ops.items() if np.isfinite(t).all()}
            for name, ops in best.items()
        }


class QdrantCase(Case):
    def __init__(self, *args, url: str | None = None):
        super().__init__(*args)
        from qdrant_client import QdrantClient, models

        self.models = models
        self.client = QdrantClient(url=url) if url else QdrantClient(":memory:")
        self.name = f"qdrant ({url or ':memory:'})"
        self.store: Any = None
        m = models
        self.filter = m.Filter(
            must=[
                m.FieldCondition(key="metadata.lang", match=m.MatchValue(value="de")),
                m.FieldCondition(key="metadata.year", range=m.Range(gte=2010)),
            ]
        )

    def _drop(self, name: str) -> None:
        if self.client.collection_exists(name):
            self.client.delete_collection(name)

    def sides(self) -> dict[str, Side]:
        return {
            "ragmem": Side(self.ragmem_open, self.ragmem_upsert, self.ragmem_search),
            "sdk": Side(self.sdk_open, self.sdk_upsert, self.sdk_search),
        }

    def ragmem_open(self) -> None:
        from ragmem.stores.qdrant import QdrantVectorStore

        self._drop("bench-ragmem")
        self.store = QdrantVectorStore(
            collection="bench-ragmem", dimensions=self.vectors.shape[1], client=self.client,
            batch_size=self.batch,
        )  # fmt: skip

    def ragmem_upsert(self, s: slice) -> None:
        self.store.upsert(self.ids[s], self.vectors[s], texts=self.texts[s], metadata=self.metas[s])

    def ragmem_search(self, q: np.ndarray, filtered: bool) -> None:
        self.store.search(q, k=self.k, where=WHERE if filtered else None)

    def sdk_open(self) -> None:
        m = self.models
        self._drop("bench-sdk")
        self.client.create_collection(
            "bench-sdk",
            vectors_config=m.VectorParams(size=self.vectors.shape[1], distance=m.Distance.COSINE),
        )

    def sdk_upsert(self, s: slice) -> None:
        self.client.upsert(
            "bench-sdk",
            points=self.models.Batch(
                ids=[str(uuid.uuid5(uuid.NAMESPACE_URL, i)) for i in self.ids[s]],
                vectors=self.vectors[s].tolist(),
                payloads=[
                    {"id": i, "text": t, "metadata": md}
                    for i, t, md in zip(self.ids[s], self.texts[s], self.metas[s])
                ],
            ),
            wait=True,
        )

    def sdk_search(self, q: np.ndarray, filtered: bool) -> None:
        self.client.query_points(
            "bench-sdk", query=q.tolist(), limit=self.k,
            query_filter=self.filter if filtered else None, with_payload=True,
        )  # fmt: skip


class ChromaCase(Case):
    """Each side gets its own Chroma database (``connect(side)`` makes its client): in one
    database, collections whose metadata share key names slow each other's filtered
    searches, which would charge one side for another's data."""

    def __init__(self, *args, name: str, connect: Callable[[str], Any], breakdown: bool = False):
        super().__init__(*args)
        self.name, self.connect, self.breakdown = name, connect, breakdown
        self.store: Any = None
        self.clients: dict[str, Any] = {}
        self.collections: dict[str, Any] = {}

    def sides(self) -> dict[str, Side]:
        extra = ["sdk+values", "sdk+layout", "sdk+layout+read"]
        names = ["ragmem", "sdk"] + (extra if self.breakdown else [])
        self.clients = {name: self.connect(name) for name in names}
        sides = {
            "ragmem": Side(self.ragmem_open, self.ragmem_upsert, self.ragmem_search),
            "sdk": self._sdk_side("sdk"),
        }
        if self.breakdown:
            sides["sdk+values"] = self._sdk_side("sdk+values", layout=True, markers=False)
            sides["sdk+layout"] = self._sdk_side("sdk+layout", layout=True)
            sides["sdk+layout+read"] = self._sdk_side("sdk+layout+read", layout=True, read=True)
            sides["sdk+layout+read"].search = None  # its searches are sdk+layout's
        return sides

    def _drop(self, side: str) -> None:
        from chromadb.errors import NotFoundError

        with contextlib.suppress(NotFoundError):  # absent on the first run
            self.clients[side].delete_collection(_collection(side))

    def ragmem_open(self) -> None:
        from ragmem.stores.chroma import ChromaVectorStore

        self._drop("ragmem")
        self.store = ChromaVectorStore(
            collection="bench-ragmem", dimensions=self.vectors.shape[1],
            client=self.clients["ragmem"], batch_size=self.batch,
        )  # fmt: skip

    def ragmem_upsert(self, s: slice) -> None:
        self.store.upsert(self.ids[s], self.vectors[s], texts=self.texts[s], metadata=self.metas[s])

    def ragmem_search(self, q: np.ndarray, filtered: bool) -> None:
        self.store.search(q, k=self.k, where=WHERE if filtered else None)

    def _sdk_side(
        self, side: str, *, layout: bool = False, markers: bool = True, read: bool = False
    ) -> Side:
        """The SDK directly; with ``layout``, on ragmem's exact-filter metadata layout."""
        from ragmem.filters import parse_filter
        from ragmem.stores._translate_chroma import encode_metadata, to_chroma

        if layout:
            metas = [encode_metadata(m) for m in self.metas]
            if not markers:
                metas = [{k: v for k, v in m.items() if k[0] != "="} for m in metas]
            tree = parse_filter(WHERE)
            assert tree is not None
            where = to_chroma(tree)
        else:
            metas = self.metas
            where = {"$and": [{"lang": "de"}, {"year": {"$gte": 2010}}]}

        def open_() -> None:
            self._drop(side)
            self.collections[side] = self.clients[side].create_collection(
                _collection(side),
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )

        def upsert(s: slice) -> None:
            collection = self.collections[side]
            if read:
                collection.get(ids=self.ids[s], include=["metadatas"])
            collection.upsert(
                ids=self.ids[s], embeddings=self.vectors[s], documents=self.texts[s],
                metadatas=metas[s],
            )  # fmt: skip

        def search(q: np.ndarray, filtered: bool) -> None:
            self.collections[side].query(
                query_embeddings=q[None, :], n_results=self.k, where=where if filtered else None,
                include=["documents", "metadatas", "distances"],
            )  # fmt: skip

        return Side(open_, upsert, search)


def _collection(side: str) -> str:
    return "bench-" + side.replace("+", "-")  # Chroma names allow [a-zA-Z0-9._-]


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def chroma_server() -> Iterator[tuple[str, int]]:
    """A throwaway ``chroma run`` on a free local port (the CLI ships with chromadb)."""
    import httpx

    cli = shutil.which("chroma")
    if cli is None:
        raise SystemExit("--chroma-server needs the `chroma` command (pip install chromadb)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = open(Path(tmp) / "chroma.log", "wb")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [cli, "run", "--path", str(Path(tmp) / "data"), "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"chroma run did not start: {(Path(tmp) / 'chroma.log')}")
                with contextlib.suppress(httpx.TransportError):
                    url = f"http://127.0.0.1:{port}/api/v2/heartbeat"
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        break
                time.sleep(0.1)
            yield "127.0.0.1", port
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()


def report(case: Case, best: dict[str, dict[str, float]], n: int, queries: int) -> None:
    ours = best["ragmem"]
    for side, times in best.items():
        if side == "ragmem":
            continue
        for op, theirs in times.items():
            count = n if op == "upsert" else queries
            unit = "items/s" if op == "upsert" else "q/s"
            label = "sdk" if side == "sdk" else f"({side})"
            print(
                f"{case.name:32} {op:14} {label:16} {ours[op] * 1e3:9.1f} {theirs * 1e3:9.1f}"
                f" {count / ours[op]:9.0f} {count / theirs:9.0f} {unit:8}"
                f" {ours[op] / theirs:6.2f}x"
            )


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
    parser.add_argument(
        "--chroma-server",
        action="store_true",
        help="start a local `chroma run` and measure through HttpClient too",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="split Chroma's overhead by guarantee (see the module doc)",
    )
    parser.add_argument("--only", choices=["qdrant", "chroma"], default=None)
    args = parser.parse_args()  # fmt: skip

    ids, vectors, texts, metas = make_data(args.n, args.dim)
    queries = np.random.default_rng(1).standard_normal((args.queries, args.dim)).astype(np.float32)
    common = (ids, vectors, texts, metas, queries, args.k, args.batch)

    with contextlib.ExitStack() as stack:
        cases: list[Case] = []
        if args.only != "chroma":
            cases.append(QdrantCase(*common))
            if args.qdrant_url:
                cases.append(QdrantCase(*common, url=args.qdrant_url))
        if args.only != "qdrant":
            import chromadb
            from chromadb.config import Settings

            def settings() -> Any:
                # one per client: HttpClient writes its host and port into the settings
                return Settings(anonymized_telemetry=False)

            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))

            def local(side: str) -> Any:
                return chromadb.PersistentClient(path=str(tmp / side), settings=settings())

            def server(side: str) -> Any:
                host, port = stack.enter_context(chroma_server())
                return chromadb.HttpClient(host=host, port=port, settings=settings())

            def given(side: str) -> Any:
                port = args.chroma_port or 8000
                return chromadb.HttpClient(host=args.chroma_host, port=port, settings=settings())

            chroma = [("chroma (in-process, disk)", local)]
            if args.chroma_server:
                chroma.append(("chroma (chroma run)", server))
            if args.chroma_host:
                chroma.append((f"chroma ({args.chroma_host}:{args.chroma_port or 8000})", given))
            for name, connect in chroma:
                cases.append(
                    ChromaCase(*common, name=name, connect=connect, breakdown=args.breakdown)
                )

        print(f"n={args.n} dim={args.dim} queries={args.queries} k={args.k} "
              f"batch={args.batch} best of {args.repeat}")  # fmt: skip
        print(f"{'backend':32} {'operation':14} {'vs':16} {'ragmem ms':>9} {'sdk ms':>9}"
              f" {'ragmem':>9} {'sdk':>9} {'':8} {'ratio':>7}")  # fmt: skip
        for case in cases:
            report(case, case.measure(args.repeat), args.n, args.queries)


if __name__ == "__main__":
    main()
