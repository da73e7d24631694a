"""`ragmem serve` under load: search over HTTP against the same searches in-process and a Chroma server.

Builds (or reuses, with ``--index DIR``) a SciFact index (5,183 documents), then measures,
with 1, 8 and 32 concurrent clients, throughput and p50/p95/p99 latency of:

- ``in-process``: threads calling the pipeline directly (``RAGPipeline.search`` for hybrid,
  the dense retriever for dense) - the ceiling a server can approach. BLAS runs one thread
  per search here as in the server (``ragmem serve`` sets that for its process);
- ``ragmem serve``: the same searches as ``POST /collections/scifact/search`` against
  ``ragmem serve`` in its own process on 127.0.0.1 (one process: an event loop, a
  search thread per core, and 8 threads for writes, ``--workers 8``);
- ``chroma run`` (dense only): a real Chroma server (one process, its Rust server on every
  core) holding the same chunk vectors, texts and metadata, queried with the vectors
  ragmem's embedder gives the same queries, the same k, the same concurrency, and the
  same answer content (documents, metadata, distances).

Like with like: both servers are called over plain HTTP with one keep-alive ``httpx.Client``
per client thread (``--chroma-client sdk`` uses chromadb's ``HttpClient`` instead). Chroma
searches its default HNSW graph (approximate; M=16, ef_search=100, cosine); ragmem scans
its flat table (exact). ragmem embeds each query inside the server (the vectors Chroma is
sent are those same embeddings, made beforehand). Each row also gives the server's CPU
time per request (from /proc), a figure that noise from other processes barely moves.

Then a mixed load (90% search, 10% document writes, 8 clients, ``--mixed-seconds``) and a
soak of ``--soak`` search and memory requests (60% collection searches, 20% memory
searches, 20% memory writes that repeat 500 texts, so the data stops growing) that
reports the server's resident memory after warm-up, while it runs, and at the end.

Every part is bounded by a count of requests, the mixed load by its seconds, and the soak
also by ``--soak-minutes`` when given.
Loopback only. With ``--embedder hashing`` (the default) query embedding costs well
under a millisecond; ``--embedder local`` uses the bundled model. The full goals:

    python benchmarks/serve.py --index /tmp/scifact-serve
    # = --clients 1,8,32 --queries 600 --mixed-seconds 60 --soak 50000

A short run while iterating:

    python benchmarks/serve.py --index /tmp/scifact-serve \\
        --queries 200 --mixed-seconds 5 --soak 2000
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import shlex
import shutil
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
from threadpoolctl import threadpool_limits

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
COMMAND = "python benchmarks/serve.py " + shlex.join(sys.argv[1:])
Result = dict[str, float]


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def listening_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:``port`` (from /proc; None when not found)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(proc.name)
    return None


def drive(
    clients: int, total: int, make: Callable[[], Callable[[int], None]], pid: int | None = None
) -> Result:
    """Run ``total`` calls spread over ``clients`` threads; each thread gets its own caller.

    With ``pid``, also the CPU time that process spent per call.
    """
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
    cpu_before = cpu_seconds(pid) if pid else 0.0
    start_gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise failures[0]
    p50, p95, p99 = percentiles(latencies)
    result = {"qps": total / elapsed, "p50": p50, "p95": p95, "p99": p99}
    if pid:
        result["cpu_ms"] = (cpu_seconds(pid) - cpu_before) / total * 1e3
    return result


@contextlib.contextmanager
def ragmem_server(store: Path, embedder: list[str]) -> Iterator[tuple[str, int]]:
    from stores import _free_port

    port = _free_port()
    command = [sys.executable, "-m", "ragmem.cli", "serve", "--store", str(store)]
    command += ["--port", str(port), "--log-level", "warning", "--workers", "8", "--queue", "256"]
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    process = subprocess.Popen(command + embedder, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:  # until it answers (it exits on a failed start)
            if process.poll() is not None:
                raise SystemExit("ragmem serve did not start")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    break
            time.sleep(0.1)
        # the first search opens the collection (reads its files): not part of any figure
        httpx.post(f"{url}/collections/scifact/search", json={"query": "x"}, timeout=600)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(60)


def row(label: str, clients: int, result: Result, base: Result | None = None) -> None:
    ratio = f"{result['qps'] / base['qps']:5.2f}x" if base else "      "
    cpu = f"  server CPU {result['cpu_ms']:5.2f} ms/req" if "cpu_ms" in result else ""
    print(
        f"{label:26} {clients:>3} clients {result['qps']:7.0f} q/s  p50 {result['p50']:7.2f}  "
        f"p95 {result['p95']:7.2f}  p99 {result['p99']:7.2f} ms  {ratio}{cpu}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--index", type=Path, help="keep the built index here and reuse it")
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "local"])
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--modes", default="dense,hybrid", help="retrievers to measure")
    parser.add_argument("--queries", type=int, default=600, help="searches per measurement")
    parser.add_argument("--no-chroma", action="store_true")
    parser.add_argument("--chroma-client", default="http", choices=["http", "sdk"])
    parser.add_argument("--mixed-seconds", type=float, default=60.0, help="0: skip")
    parser.add_argument("--soak", type=int, default=50_000, help="requests in the soak (0: skip)")
    parser.add_argument(
        "--soak-minutes", type=float, help="stop the soak after this long (default: no bound)"
    )
    args = parser.parse_args()
    print(f"command: {COMMAND}", flush=True)
    clients = [int(c) for c in args.clients.split(",")]
    modes = args.modes.split(",")
    options = {"dimensions": 256} if args.embedder == "hashing" else {}
    embedder_args = ["--embedder", args.embedder, "--embedder-options", json.dumps(options)]

    docs, queries = load_scifact(args.data)
    with contextlib.ExitStack() as stack:
        store = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ragmem-serve-")))
        if args.index is None:
            build_index(store / "scifact", docs, args.embedder, options)
        else:
            # the run writes (mixed load, memories) into a copy: the kept index stays pristine
            build_index(args.index, docs, args.embedder, options)
            shutil.copytree(args.index, store / "scifact")
        pipeline = stack.enter_context(RAGPipeline(store / "scifact", read_only=True))
        pick = [queries[i % len(queries)] for i in range(args.queries)]
        summary: list[str] = []
        url, pid = stack.enter_context(ragmem_server(store, embedder_args))
        served = search_rows(url, pid, pipeline, pick, clients, modes, summary)
        if not args.no_chroma and "dense" in modes:
            chroma_rows(pipeline, pick, clients, served, args.chroma_client, summary)
        if args.mixed_seconds:
            mixed(url, pick, args.mixed_seconds, summary)
        if args.soak:
            soak(url, pid, pick, args.soak, args.soak_minutes, summary)
    print(f"\nsummary ({COMMAND}):", flush=True)
    for line in summary:
        print("  " + line, flush=True)


def build_index(folder: Path, docs: list[Document], embedder: str, options: dict[str, Any]) -> None:
    config = folder / "ragmem.json"
    if config.exists():
        made_with = json.loads(config.read_text())["embedder"]
        with RAGPipeline(folder, read_only=True) as rag:
            complete = len(rag.manifest.entries) == len(docs)
        if complete and (made_with["name"], made_with["options"]) == (embedder, options):
            print(f"reusing the index in {folder} ({len(docs)} SciFact documents)")
            return
        shutil.rmtree(folder)
    began = time.perf_counter()
    with RAGPipeline(folder, embedder=embedder, embedder_options=options) as rag:
        rag.ingest(docs)
    print(f"indexed {len(docs)} SciFact documents in {time.perf_counter() - began:.1f} s")


def search_rows(
    url: str,
    pid: int,
    pipeline: RAGPipeline,
    pick: list[str],
    clients: list[int],
    modes: list[str],
    summary: list[str],
) -> dict[tuple[str, int], Result]:
    """In-process and served searches per retriever and client count; the served results."""
    dense = build_retriever(
        "dense", embedder=pipeline.embedder, store=pipeline.store, keyword=pipeline.keyword
    )
    searches: dict[str, Callable[[str], Any]] = {
        "dense": lambda q: dense.retrieve(q, K),
        "hybrid": lambda q: pipeline.search(q, k=K),
    }
    served: dict[tuple[str, int], Result] = {}
    for mode in modes:
        for n in clients:
            with threadpool_limits(limits=1, user_api="blas"):  # as the server runs it
                local = drive(n, len(pick), lambda m=mode: lambda i: searches[m](pick[i]))
            body = {"k": K, "explain": False, "retriever": mode}

            def http_caller(body: dict[str, Any] = body) -> Callable[[int], None]:
                client = httpx.Client(base_url=url, timeout=60)

                def call(i: int) -> None:
                    reply = client.post(
                        "/collections/scifact/search", json={**body, "query": pick[i]}
                    )
                    reply.raise_for_status()

                return call

            result = drive(n, len(pick), http_caller, pid)
            served[(mode, n)] = result
            row(f"{mode} in-process", n, local)
            row(f"{mode} ragmem serve", n, result, local)
            summary.append(
                f"{mode:6} {n:>2} clients: ragmem serve {result['qps']:.0f} q/s = "
                f"{result['qps'] / local['qps']:.2f}x in-process (goal at 8 clients >= 0.85x); "
                f"p95 {result['p95']:.2f} ms"
            )
    return served


def chroma_rows(
    pipeline: RAGPipeline,
    pick: list[str],
    clients: list[int],
    served: dict[tuple[str, int], Result],
    client_kind: str,
    summary: list[str],
) -> None:
    import chromadb
    from stores import chroma_server

    ids = pipeline.manifest.chunk_ids()
    records = pipeline.store.get(ids)
    vectors = np.stack([r.vector for r in records]).astype(np.float32)
    queries = pipeline.embedder.embed(pick, purpose="query")
    with chroma_server() as (host, port):
        pid = listening_pid(port)
        admin = chromadb.HttpClient(host=host, port=port)
        collection = admin.create_collection("scifact", metadata={"hnsw:space": "cosine"})
        for start in range(0, len(ids), 1000):
            part = records[start : start + 1000]
            collection.add(
                ids=ids[start : start + 1000],
                embeddings=vectors[start : start + 1000],
                documents=[r.text or "" for r in part],
                metadatas=[dict(r.metadata) or None for r in part],  # type: ignore[misc]
            )
        path = (
            "/api/v2/tenants/default_tenant/databases/default_database/collections/"
            f"{collection.id}/query"
        )
        include = ["documents", "metadatas", "distances"]

        def http_caller() -> Callable[[int], None]:
            client = httpx.Client(base_url=f"http://{host}:{port}", timeout=60)

            def call(i: int) -> None:
                body = {"query_embeddings": [queries[i].tolist()], "n_results": K}
                reply = client.post(path, json={**body, "include": include})
                reply.raise_for_status()

            return call

        def sdk_caller() -> Callable[[int], None]:
            mine = chromadb.HttpClient(host=host, port=port).get_collection("scifact")

            def call(i: int) -> None:
                mine.query(query_embeddings=queries[i : i + 1], n_results=K, include=include)  # type: ignore[arg-type]

            return call

        for n in clients:
            theirs = drive(n, len(pick), http_caller if client_kind == "http" else sdk_caller, pid)
            ours = served[("dense", n)]
            row("dense chroma run", n, theirs)
            ratio = ours["p95"] / theirs["p95"]
            print(
                f"{'':26} {n:>3} clients p95 ragmem serve / chroma run: {ratio:.2f}x (goal <= 1.00)"
            )
            summary.append(
                f"dense  {n:>2} clients: p95 ragmem serve {ours['p95']:.2f} ms, chroma run "
                f"{theirs['p95']:.2f} ms: {ratio:.2f}x (goal <= 1.00); q/s "
                f"{ours['qps']:.0f} vs {theirs['qps']:.0f}"
            )


def mixed(url: str, pick: list[str], seconds: float, summary: list[str]) -> None:
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
        line = (
            f"mixed 90/10, 8 clients, {seconds:g} s: {kind:6} {len(values):6} requests  "
            f"p50 {p50:.2f}  p95 {p95:.2f}  p99 {p99:.2f} ms"
        )
        print(line, flush=True)
        summary.append(line)
    print(f"mixed: {errors} errors", flush=True)
    summary.append(f"mixed: {errors} errors (goal 0)")


def soak(
    url: str, pid: int, pick: list[str], total: int, minutes: float | None, summary: list[str]
) -> None:
    """``total`` requests (searches, memory searches and memory adds) from 8 clients.

    The RSS figure is the server's after a warm-up of ``max(1000, total // 10)`` requests
    against its RSS at the end; progress and RSS are printed after each fiftieth of the
    run. With ``minutes`` the soak stops after the part running when that time is up
    (warm-up included), and says how many requests it made.
    """
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

    began = time.perf_counter()
    deadline = began + minutes * 60 if minutes else float("inf")
    drive(client_count, warm, call_factory)
    after_warmup = rss_kib(pid)
    print(
        f"soak: warm-up of {warm} requests done in {time.perf_counter() - began:.0f} s, "
        f"RSS {after_warmup / 1024:.1f} MiB",
        flush=True,
    )
    samples = [after_warmup]
    busy = 0.0  # seconds spent in the measured requests
    done = 0
    p99s: list[float] = []
    step = max(1, total // 50)
    for start in range(0, total, step):
        if time.perf_counter() >= deadline:
            print(f"soak: stopped by --soak-minutes {minutes:g} after {done} requests", flush=True)
            break
        count = min(step, total - start)
        result = drive(client_count, count, call_factory)
        done += count
        busy += count / result["qps"]
        p99s.append(result["p99"])
        samples.append(rss_kib(pid))
        print(
            f"soak: {done}/{total} requests, RSS {samples[-1] / 1024:.1f} MiB, "
            f"{result['qps']:.0f} req/s, {time.perf_counter() - began:.0f} s",
            flush=True,
        )
    final = samples[-1]
    growth = (final - after_warmup) / after_warmup * 100
    qps, p99 = done / busy if busy else 0.0, max(p99s, default=0.0)
    line = (
        f"soak: {done} requests after {warm} warm-up (60% search, 20% memory search, 20% "
        f"memory add), 8 clients, {qps:.0f} req/s, worst p99 of a fiftieth {p99:.2f} ms; "
        f"server RSS after warm-up {after_warmup / 1024:.1f} MiB, at the end "
        f"{final / 1024:.1f} MiB: {growth:+.1f}% (goal <= 5%); peak "
        f"{max(samples) / 1024:.1f} MiB"
    )
    print(line, flush=True)
    summary.append(line)


if __name__ == "__main__":
    main()
