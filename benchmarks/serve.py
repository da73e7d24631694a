"""`ragmem serve` under load: search over HTTP against the same searches in-process and a Chroma server.

Builds a SciFact index (5,183 documents) once, then measures, with 1, 8 and 32 concurrent
clients, throughput and p50/p95/p99 latency of:

- ``in-process``: threads calling the pipeline directly (``RAGPipeline.search`` for hybrid,
  the dense retriever for dense) - the ceiling a server can approach;
- ``ragmem serve``: the same searches as ``POST /collections/scifact/search`` against
  ``ragmem serve`` running in its own process on 127.0.0.1;
- ``chroma run`` (dense only): a real Chroma server holding the same chunk vectors,
  queried with the same query vectors, k and concurrency (its HttpClient, one per thread).

Then a mixed load (90% search, 10% document writes) and a soak of search and memory
requests that reports the server's resident memory after warm-up and at the end.

Every run is bounded by a count of requests, never by a clock, except ``--mixed-seconds``.
Loopback only. The query embedding runs inside ragmem on both ragmem sides; Chroma is
given the vectors. With ``--embedder hashing`` (the default, for short runs on small
machines) that embedding costs microseconds; ``--embedder local`` uses the bundled model.

    flock /work/wt/bench.lock python benchmarks/serve.py
    flock /work/wt/bench.lock python benchmarks/serve.py --clients 1,8 --mixed-seconds 20 --soak 50000
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for stores.chroma_server

from ragmem import Document, RAGPipeline
from ragmem.pipeline.defaults import build_retriever

# ../shared/data beside the repository (or beside the folder of worktrees it sits in)
_ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (
        p / "shared/data/beir/scifact"
        for p in (_ROOT.parent, _ROOT.parent.parent)
        if (p / "shared/data/beir/scifact").exists()
    ),
    _ROOT.parent / "shared/data/beir/scifact",
)
K = 10


def load_scifact(folder: Path) -> tuple[list[Document], list[str]]:
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    docs = [
        Document(id=str(r["_id"]), text=(r.get("title", "") + "\n" + r["text"]).strip())
        for r in rows
    ]
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for line in fh]
    return docs, queries


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.array(latencies) * 1e3, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def drive(clients: int, total: int, make: Callable[[], Callable[[int], None]]) -> dict[str, float]:
    """Run ``total`` calls spread over ``clients`` threads; each thread gets its own caller."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))
    callers = [make() for _ in range(clients)]
    start_gate = threading.Barrier(clients + 1)

    failures: list[BaseException] = []

    def worker(call: Callable[[int], None]) -> None:
        mine = []
        start_gate.wait()
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                t = time.perf_counter()
                call(i)
                mine.append(time.perf_counter() - t)
        except Exception as exc:  # reported by the caller of drive
            failures.append(exc)
        with lock:
            latencies.extend(mine)

    for call in callers[:1]:  # warm caches and connections before the clock starts
        for i in range(min(20, total)):
            call(i)
    threads = [threading.Thread(target=worker, args=(c,)) for c in callers]
    for t in threads:
        t.start()
    start_gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise failures[0]
    p50, p95, p99 = percentiles(latencies)
    return {"qps": total / elapsed, "p50": p50, "p95": p95, "p99": p99}


@contextlib.contextmanager
def ragmem_server(store: Path, embedder: list[str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    from stores import _free_port

    port = _free_port()
    command = [sys.executable, "-m", "ragmem.cli", "serve", "--store", str(store)]
    command += ["--port", str(port), "--log-level", "warning", "--workers", "8", "--queue", "256"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(command + embedder, env=env)
    url = f"http://127.0.0.1:{port}"
    while True:  # until it answers (it exits on a failed start)
        if process.poll() is not None:
            raise SystemExit("ragmem serve did not start")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                break
        time.sleep(0.1)
    try:
        yield url, process
    finally:
        process.terminate()
        process.wait(60)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def row(label: str, clients: int, result: dict[str, float], base: dict[str, float] | None) -> None:
    ratio = f"{result['qps'] / base['qps']:6.2f}x" if base else "      "
    print(
        f"{label:34} {clients:>3} clients {result['qps']:9.0f} q/s  p50 {result['p50']:7.2f}  "
        f"p95 {result['p95']:7.2f}  p99 {result['p99']:7.2f} ms  {ratio}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "local"])
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--queries", type=int, default=600, help="searches per measurement")
    parser.add_argument("--no-chroma", action="store_true")
    parser.add_argument("--mixed-seconds", type=float, default=60.0)
    parser.add_argument("--soak", type=int, default=50_000, help="requests in the soak (0: skip)")
    args = parser.parse_args()
    print("command: python benchmarks/serve.py " + " ".join(sys.argv[1:]), flush=True)
    clients = [int(c) for c in args.clients.split(",")]
    options = {"dimensions": 256} if args.embedder == "hashing" else {}
    embedder_args = ["--embedder", args.embedder, "--embedder-options", json.dumps(options)]

    docs, queries = load_scifact(args.data)
    with tempfile.TemporaryDirectory(prefix="ragmem-serve-bench-") as tmp:
        store = Path(tmp)
        began = time.perf_counter()
        with RAGPipeline(
            store / "scifact", embedder=args.embedder, embedder_options=options
        ) as rag:
            rag.ingest(docs)
        print(f"indexed {len(docs)} SciFact documents in {time.perf_counter() - began:.1f} s")

        pipeline = RAGPipeline(store / "scifact", read_only=True)
        dense = build_retriever(
            "dense", embedder=pipeline.embedder, store=pipeline.store, keyword=pipeline.keyword
        )
        searches: dict[str, Callable[[str], Any]] = {
            "dense": lambda q: dense.retrieve(q, K),
            "hybrid": lambda q: pipeline.search(q, k=K),
        }
        pick = [queries[i % len(queries)] for i in range(args.queries)]
        results: dict[tuple[str, str, int], dict[str, float]] = {}
        with ragmem_server(store, embedder_args) as (url, process):
            for mode in ("dense", "hybrid"):
                for n in clients:
                    local = drive(n, args.queries, lambda m=mode: lambda i: searches[m](pick[i]))
                    results[("in-process", mode, n)] = local
                    body = {"k": K, "explain": False, "retriever": mode}

                    def http_caller(body: dict[str, Any] = body) -> Callable[[int], None]:
                        client = httpx.Client(base_url=url, timeout=60)

                        def call(i: int) -> None:
                            reply = client.post(
                                "/collections/scifact/search", json={**body, "query": pick[i]}
                            )
                            reply.raise_for_status()

                        return call

                    served = drive(n, args.queries, http_caller)
                    results[("serve", mode, n)] = served
                    row(f"{mode} in-process", n, local, None)
                    row(f"{mode} ragmem serve (vs in-process)", n, served, local)
            if not args.no_chroma:
                chroma_rows(store, pipeline, pick, clients, args.queries, results)
            mixed(url, pick, args.mixed_seconds)
            if args.soak:
                soak(url, process.pid, pick, args.soak)
        pipeline.close()


def chroma_rows(
    store: Path,
    pipeline: RAGPipeline,
    pick: list[str],
    clients: list[int],
    total: int,
    results: dict[tuple[str, str, int], dict[str, float]],
) -> None:
    import chromadb
    from stores import chroma_server

    ids = pipeline.manifest.chunk_ids()
    records = pipeline.store.get(ids)
    vectors = np.stack([r.vector for r in records]).astype(np.float32)
    queries = pipeline.embedder.embed(pick, purpose="query")
    with chroma_server() as (host, port):
        admin = chromadb.HttpClient(host=host, port=port)
        collection = admin.create_collection("scifact", metadata={"hnsw:space": "cosine"})
        for start in range(0, len(ids), 1000):
            collection.add(
                ids=ids[start : start + 1000],
                embeddings=vectors[start : start + 1000],
                documents=[r.text or "" for r in records[start : start + 1000]],
            )

        def caller() -> Callable[[int], None]:
            mine = chromadb.HttpClient(host=host, port=port).get_collection("scifact")

            def call(i: int) -> None:
                mine.query(
                    query_embeddings=queries[i : i + 1],
                    n_results=K,
                    include=["documents", "metadatas", "distances"],
                )

            return call

        for n in clients:
            theirs = drive(n, total, caller)
            ours = results[("serve", "dense", n)]
            row("dense chroma run", n, theirs, None)
            print(
                f"{'':34} {n:>3} clients  p95 ragmem serve / chroma run: "
                f"{ours['p95'] / theirs['p95']:.2f}x (goal <= 1.00)",
                flush=True,
            )


def mixed(url: str, pick: list[str], seconds: float) -> None:
    """90% searches, 10% single-document writes, from 8 clients, for ``seconds``."""
    latencies: dict[str, list[float]] = {"search": [], "write": []}
    errors = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        client = httpx.Client(base_url=url, timeout=60)
        n = 0
        while time.perf_counter() < stop:
            n += 1
            t = time.perf_counter()
            if rng.random() < 0.1:
                kind = "write"
                doc = {"id": f"mixed-{seed}-{n}", "text": rng.choice(pick) + f" note {seed}-{n}"}
                reply = client.post("/collections/scifact/documents", json={"documents": [doc]})
            else:
                kind = "search"
                reply = client.post(
                    "/collections/scifact/search",
                    json={"query": rng.choice(pick), "k": K, "explain": False},
                )
            elapsed = time.perf_counter() - t
            with lock:
                latencies[kind].append(elapsed)
                errors += reply.status_code >= 400

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for kind, values in latencies.items():
        p50, p95, p99 = percentiles(values)
        print(
            f"mixed 90/10, 8 clients, {seconds:g} s: {kind:6} {len(values):6} requests  "
            f"p50 {p50:.2f}  p95 {p95:.2f}  p99 {p99:.2f} ms",
            flush=True,
        )
    print(f"mixed: {errors} errors", flush=True)


def soak(url: str, pid: int, pick: list[str], total: int) -> None:
    """``total`` requests (searches, memory adds and memory searches) from 8 clients."""
    warm = max(1000, total // 10)
    client_count = 8

    def call_factory() -> Callable[[int], None]:
        client = httpx.Client(base_url=url, timeout=60)

        def call(i: int) -> None:
            kind = i % 10
            if kind < 6:
                body = {"query": pick[i % len(pick)], "k": K, "explain": False}
                reply = client.post("/collections/scifact/search", json=body)
            elif kind < 8:
                body = {"query": pick[i % len(pick)], "user_id": f"u{i % 50}", "k": 5}
                reply = client.post("/memories/search", json=body)
            else:
                # 500 distinct memories: after warm-up they merge, so the data stops growing
                # and what RSS does is the server's own
                body = {"text": pick[i % min(500, len(pick))][:80], "user_id": f"u{i % 50}"}
                reply = client.post("/memories", json=body)
            reply.raise_for_status()

        return call

    drive(client_count, warm, call_factory)
    after_warmup = rss_kib(pid)
    result = drive(client_count, total, call_factory)
    final = rss_kib(pid)
    done = warm + total
    growth = (final - after_warmup) / after_warmup * 100
    print(
        f"soak: {done} requests ({warm} warm-up), {result['qps']:.0f} req/s, p99 "
        f"{result['p99']:.2f} ms; RSS after warm-up {after_warmup / 1024:.0f} MiB, at the end "
        f"{final / 1024:.0f} MiB: {growth:+.1f}% (goal <= 5%)",
        flush=True,
    )


if __name__ == "__main__":
    main()
