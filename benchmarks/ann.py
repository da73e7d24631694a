"""ANN benchmark: ragmem's HNSW and quantized flat indexes against the raw engines, side by side.

Every line is measured in this one run, on this machine, single-threaded (faiss OpenMP,
BLAS, hnswlib and usearch all pinned to one thread), with every engine built with
M=16 and ef_construction=200:

1. HNSW on SIFT-small (10k x 128, L2, published ground truth) and on synthetic clustered
   unit vectors (100k x 384 by default, fixed seed, exact ground truth computed here):
   build time, index memory, recall@10 and single-query QPS over an ef sweep, then QPS at
   recall@10 0.95 and 0.99 for ragmem (``LocalVectorStore(index="hnsw")``, timed both at
   its ``HnswIndex`` and through ``store.search`` returning ``Hit`` objects), raw faiss
   ``IndexHNSWFlat``, hnswlib and usearch. QPS is single queries per CPU second of this
   single-threaded process, best of several rounds with the engines interleaved, so that
   load from other processes on a shared machine distorts it as little as possible.
   The wrapper's cost is printed twice: ``store.search`` against the separately built
   raw faiss index at equal recall (what a user compares), and against raw faiss
   ``search`` on the very graph inside the store at equal ef ("faiss@ragmem graph":
   identical results and memory, so only ragmem's own work differs). Raw faiss returns
   bare labels while ``store.search`` returns ids, scores, texts and copies of the
   metadata, so both raw lines are also run with the caller's own lookups producing
   the same ("+payload": a dict per hit from the caller's id and metadata lists).
   The build is timed as a whole and split into the time spent inside faiss's
   ``add`` and ragmem's own work around it.
2. Filtered recall@10 at selectivities 50%, 10%, 1%, 0.1%: ragmem's ``store.search`` with a
   ``where`` filter (selectivity-driven exact fallback, filter inside the traversal,
   widened ef) against faiss's own id selector at the same ef and against
   post-filtering, plus hnswlib's filter callback.
3. Quantized flat search: binary / int8 / float16 codes with exact rescoring from a
   memory-mapped float32 file, against faiss ``IndexFlatIP``, single query at a time; then
   the same through ``LocalVectorStore(dtype=...)``.

1M x 384 is not run by default: on this shared 2-core machine one single-threaded HNSW
build of it takes well over 10 minutes per engine (``--n 1000000`` runs it).

4. Resident memory: raw faiss ``IndexHNSWFlat`` and ragmem's stores (HNSW, flat float32,
   int8 and binary codes), each built over the same vectors in a fresh process; what the
   build added to the process's resident set, per vector and against the raw vectors.

Run:  PYTHONPATH=. python benchmarks/ann.py            (about 15 minutes on 2 busy cores)
      PYTHONPATH=. python benchmarks/ann.py --skip sift,hnsw,quantized
                                                       (resident memory only)
      PYTHONPATH=. python benchmarks/ann.py --n 20000  (a quick smoke run)
      PYTHONPATH=. python benchmarks/ann.py --engines faiss,ragmem --skip sift,quantized
                                                       (the wrapper lines only)
"""

# ruff: noqa: E402  (thread counts must be set before numpy and faiss are imported)
from __future__ import annotations

import os

# one thread everywhere, set before numpy / faiss load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import ctypes
import gc
import gzip
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from ragmem import LocalVectorStore
from ragmem.stores.local.hnsw import HnswIndex
from ragmem.stores.local.quantized import QuantizedFlatIndex

if TYPE_CHECKING:
    from collections.abc import Callable

faiss.omp_set_num_threads(1)

M, EF_CONSTRUCTION, K = 16, 200, 10
EFS = [10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256]
SELECTIVITIES = [0.5, 0.1, 0.01, 0.001]
ENGINES = ["faiss", "ragmem", "hnswlib", "usearch"]
DEFAULT_ENGINES = ["faiss", "ragmem"] + [
    name for name in ("hnswlib", "usearch") if importlib.util.find_spec(name) is not None
]
SAME_GRAPH = "faiss@ragmem graph"
# raw faiss plus the caller's own lookups, handing back what store.search does
PAYLOAD = "faiss+payload"
SAME_GRAPH_PAYLOAD = "faiss@ragmem graph+payload"


def data_dir() -> Path:
    env = os.environ.get("RAGMEM_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


# -- data ------------------------------------------------------------------------------------


def read_vecs(path: Path, dtype: Any) -> np.ndarray:
    if path.suffix == ".gz":
        with gzip.open(path) as fh:
            raw = fh.read()
    else:
        raw = path.read_bytes()
    dim = int(np.frombuffer(raw[:4], np.int32)[0])
    rows = np.frombuffer(raw, dtype).reshape(-1, dim + 1)
    return np.ascontiguousarray(rows[:, 1:])


def siftsmall() -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    root = data_dir() / "ann" / "siftsmall"
    if not root.exists():
        return None
    base = read_vecs(root / "siftsmall_base.fvecs.gz", np.float32)
    queries = read_vecs(root / "siftsmall_query.fvecs", np.float32)
    truth = read_vecs(root / "siftsmall_groundtruth.ivecs", np.int32)[:, :K]
    return base, queries, truth


def clustered(n: int, n_queries: int, dim: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 1 centre per 100 points, uneven cluster sizes (fixed seed)."""
    rng = np.random.default_rng(seed)
    n_centres = max(1, n // 100)
    centres = rng.standard_normal((n_centres, dim)).astype(np.float32)
    weights = rng.gamma(1.0, size=n_centres)
    weights /= weights.sum()

    def draw(count: int) -> np.ndarray:
        x = centres[rng.choice(n_centres, count, p=weights)]
        x += 0.8 * rng.standard_normal((count, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return draw(n), draw(n_queries)


def exact_truth(
    base: np.ndarray, queries: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Exact top-K rows by inner product (unit vectors), -1 padded."""
    out = np.full((len(queries), K), -1, np.int64)
    rows = np.arange(len(base)) if mask is None else np.flatnonzero(mask)
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ base[rows].T
        k = min(K, len(rows))
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1)
        out[start : start + 256, :k] = rows[np.take_along_axis(part, order, 1)]
    return out


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    hits = total = 0
    for f, t in zip(found, truth):
        t = t[t >= 0]
        hits += len(set(np.asarray(f).tolist()) & set(t.tolist()))
        total += len(t)
    return hits / max(total, 1)


# -- measuring ---------------------------------------------------------------------------------


def timed_build(build: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds); builds are single-threaded, so CPU time is the work."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    index = build()
    return index, time.perf_counter() - wall, time.process_time() - cpu


def single_queries(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray
) -> tuple[list[np.ndarray], float]:
    """Results of one query at a time, and the CPU seconds they took."""
    rows = [queries[i : i + 1] for i in range(len(queries))]
    start = time.process_time()
    found = [search(q) for q in rows]
    return found, time.process_time() - start


def interleaved(
    searches: dict[str, Callable[[np.ndarray], np.ndarray]], queries: np.ndarray, rounds: int
) -> dict[str, float]:
    """Single-query QPS of each search, robust to load from other processes.

    Time is CPU time of this (single-threaded) process. Queries go in chunks of 50; each
    chunk is timed ``rounds`` times per search, the searches alternating, and a search's
    time is the sum over chunks of its best time.
    """
    total = dict.fromkeys(searches, 0.0)
    for start in range(0, len(queries), 50):
        chunk = queries[start : start + 50]
        best = dict.fromkeys(searches, float("inf"))
        for _ in range(rounds):
            for name, search in searches.items():
                _, seconds = single_queries(search, chunk)
                best[name] = min(best[name], seconds)
        for name in searches:
            total[name] += max(best[name], 1e-9)
    return {name: len(queries) / total[name] for name in searches}


# -- engines -----------------------------------------------------------------------------------


def build_engines(
    base: np.ndarray, metric: str, fraction: np.ndarray, names: list[str]
) -> dict[str, dict[str, Any]]:
    """The engines ``names`` over ``base``; ragmem is a LocalVectorStore(index="hnsw") holding it.

    Besides the built engines, "ragmem store" is ragmem's public ``store.search`` and
    "faiss@ragmem graph" is raw faiss ``search`` called on the very faiss index
    inside ragmem's store: same graph, same memory, same results at equal ef, so the
    two differ only by what ragmem does around the engine.
    """
    dim = len(base[0])
    faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    ids = [str(i) for i in range(len(base))]
    metadata: list[dict[str, Any]] = [{"r": float(r)} for r in fraction]

    def raw_faiss() -> Any:
        index = faiss.IndexHNSWFlat(dim, M, faiss_metric)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(base)
        return index

    def ragmem() -> LocalVectorStore:
        store = LocalVectorStore(
            dim,
            metric="l2" if metric == "l2" else "cosine",
            index="hnsw",
            m=M,
            ef_construction=EF_CONSTRUCTION,
        )
        store.upsert(ids, base, metadata=metadata)
        return store

    def raw_hnswlib() -> Any:
        import hnswlib  # an optional peer: only imported when asked for

        index = hnswlib.Index(space="l2" if metric == "l2" else "ip", dim=dim)
        index.init_index(
            max_elements=len(base), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100
        )
        index.add_items(base, np.arange(len(base)), num_threads=1)
        return index

    def raw_usearch() -> Any:
        from usearch.index import Index as USearchIndex  # an optional peer

        index = USearchIndex(
            ndim=dim,
            metric="l2sq" if metric == "l2" else "ip",
            dtype="f32",
            connectivity=M,
            expansion_add=EF_CONSTRUCTION,
        )
        index.add(np.arange(len(base)), base, threads=1)
        return index

    builders: dict[str, Callable[[], Any]] = {
        "faiss": raw_faiss,
        "ragmem": timed_engine(ragmem),
        "hnswlib": raw_hnswlib,
        "usearch": raw_usearch,
    }
    engines: dict[str, dict[str, Any]] = {}
    for name in ("faiss", "ragmem", *[n for n in names if n not in ("faiss", "ragmem")]):
        index, wall, cpu = timed_build(builders[name])
        engines[name] = {"index": index, "build": wall, "cpu": cpu}
    store, engines["ragmem"]["engine cpu"] = engines["ragmem"]["index"]
    graph = store_graph(store)
    engines["ragmem"]["index"] = graph
    engines["ragmem store"] = {"index": store, "build": None, "cpu": None}
    engines[SAME_GRAPH] = {"index": graph, "build": None, "cpu": None}
    engines[PAYLOAD] = {
        "index": (engines["faiss"]["index"], ids, metadata),
        "build": None,
        "cpu": None,
    }
    engines[SAME_GRAPH_PAYLOAD] = {"index": (graph, ids, metadata), "build": None, "cpu": None}

    engines["faiss"]["bytes"] = int(faiss.serialize_index(engines["faiss"]["index"]).nbytes)
    # the graph (faiss inside) plus node <-> row maps
    engines["ragmem"]["bytes"] = int(faiss.serialize_index(graph._graph).nbytes) + 17 * graph.nodes
    # the store's table (live flags and norms; vectors only when the graph does not keep them)
    engines["ragmem store"]["bytes"] = engines["ragmem"]["bytes"] + store._table.nbytes()
    engines[SAME_GRAPH]["bytes"] = engines["ragmem"]["bytes"]
    engines[PAYLOAD]["bytes"] = engines["faiss"]["bytes"]
    engines[SAME_GRAPH_PAYLOAD]["bytes"] = engines["ragmem"]["bytes"]
    if "hnswlib" in engines:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "h.bin")
            engines["hnswlib"]["index"].save_index(path)
            engines["hnswlib"]["bytes"] = os.path.getsize(path)
    if "usearch" in engines:
        engines["usearch"]["bytes"] = int(engines["usearch"]["index"].memory_usage)
    return engines


def timed_engine(build: Callable[[], LocalVectorStore]) -> Callable[[], tuple[Any, float]]:
    """``build`` returning also the CPU seconds spent inside faiss's ``add`` (the engine).

    The rest of the store's build time is ragmem's own work around the engine:
    validation, the store's table, node renumbering, huge-page advice.
    """

    def run() -> tuple[Any, float]:
        engine_add = faiss.IndexHNSWFlat.add
        spent = [0.0]

        def add(index: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return engine_add(index, x, *args, **kwargs)
            finally:
                spent[0] += time.process_time() - start

        faiss.IndexHNSWFlat.add = add
        try:
            return build(), spent[0]
        finally:
            faiss.IndexHNSWFlat.add = engine_add

    return run


def with_payload(
    labels: np.ndarray, scores: np.ndarray, ids: list[str], metadata: list[Any]
) -> list[dict[str, Any]]:
    """What ``store.search`` hands back, built by the caller around a raw engine's labels."""
    return [
        {"id": ids[i], "score": s, "text": None, "metadata": dict(metadata[i])}
        for i, s in zip(labels.tolist(), scores.tolist())
    ]


def store_graph(store: LocalVectorStore) -> HnswIndex:
    """The HnswIndex inside a LocalVectorStore(index="hnsw") (internal, for measuring)."""
    graph: HnswIndex = store._index.graph  # type: ignore[union-attr]
    return graph


def searcher(name: str, index: Any, ef: int) -> Callable[[np.ndarray], np.ndarray]:
    if name == "faiss":
        index.hnsw.efSearch = ef
        return lambda q: index.search(q, K)[1][0]
    if name == SAME_GRAPH:
        # raw faiss on the store's graph; its nodes are renumbered, so labels map to rows
        raw, node_row = index._graph, index._node_row
        raw.hnsw.efSearch = ef
        return lambda q: node_row[raw.search(q, K)[1][0]]
    if name == "ragmem":
        index.ef_search = ef
        return lambda q: index.search(q, K)[0][0]
    if name == PAYLOAD:
        raw, ids, metadata = index
        raw.hnsw.efSearch = ef

        def payload(q: np.ndarray) -> np.ndarray:
            scores, labels = raw.search(q, K)
            return np.array(
                [int(h["id"]) for h in with_payload(labels[0], scores[0], ids, metadata)]
            )

        return payload
    if name == SAME_GRAPH_PAYLOAD:
        graph, ids, metadata = index
        raw, node_row = graph._graph, graph._node_row
        raw.hnsw.efSearch = ef

        def same_payload(q: np.ndarray) -> np.ndarray:
            scores, nodes = raw.search(q, K)
            hits = with_payload(node_row[nodes[0]], scores[0], ids, metadata)
            return np.array([int(h["id"]) for h in hits])

        return same_payload
    if name == "ragmem store":
        store_graph(index).ef_search = ef
        return lambda q: np.array([int(h.id) for h in index.search(q[0], k=K)[0]])
    if name == "hnswlib":
        index.set_ef(ef)
        return lambda q: index.knn_query(q, k=K, num_threads=1)[0][0]
    index.expansion_search = ef
    return lambda q: index.search(q[0], K, threads=1).keys


def sweep(
    engines: dict[str, dict[str, Any]], queries: np.ndarray, truth: np.ndarray, rounds: int
) -> dict[str, list[tuple[int, float, float]]]:
    curves: dict[str, list[tuple[int, float, float]]] = {name: [] for name in engines}
    for ef in EFS:
        searches = {name: searcher(name, e["index"], ef) for name, e in engines.items()}
        qps = interleaved(searches, queries, rounds)
        for name, search in searches.items():
            found, _ = single_queries(search, queries)
            curves[name].append((ef, recall(found, truth), qps[name]))
    return curves


def at_recall(
    curve: list[tuple[int, float, float]], target: float
) -> tuple[int, float, float] | None:
    for ef, r, qps in curve:
        if r >= target:
            return ef, r, qps
    return None


def report_hnsw(
    title: str,
    engines: dict[str, dict[str, Any]],
    curves: dict[str, list[tuple[int, float, float]]],
) -> None:
    print(f"\n## HNSW, {title} (M={M}, ef_construction={EF_CONSTRUCTION}, 1 thread, k={K})")
    print("QPS = single queries per CPU second (best of rounds, engines interleaved)")
    print(
        f"{'engine':<18} {'build s':>8} {'build CPU s':>11} {'memory MB':>10}   ef: recall@10 / QPS"
    )
    for name, e in engines.items():
        points = "  ".join(f"{ef}:{r:.3f}/{q:,.0f}" for ef, r, q in curves[name])
        build = "(same)" if e["build"] is None else f"{e['build']:.1f}"
        cpu = "(same)" if e["cpu"] is None else f"{e['cpu']:.1f}"
        print(f"{name:<18} {build:>8} {cpu:>11} {e['bytes'] / 2**20:>10.1f}   {points}")
    ours = ("ragmem", "ragmem store", SAME_GRAPH, PAYLOAD, SAME_GRAPH_PAYLOAD)
    peers = [n for n in curves if n not in ours]
    for target in (0.95, 0.99):
        row = {name: at_recall(c, target) for name, c in curves.items()}
        cells = "  ".join(
            f"{n}: {v[2]:,.0f} (ef={v[0]}, r={v[1]:.3f})" if v else f"{n}: not reached"
            for n, v in row.items()
        )
        print(f"QPS at recall@10 >= {target}: {cells}")
        store, raw = row["ragmem store"], row["faiss"]
        reached = [n for n in peers if row[n]]
        if not (store and raw and row["ragmem"] and reached):
            continue
        best = max(reached, key=lambda n: row[n][2])  # type: ignore[index]
        payload = row[PAYLOAD]
        print(
            f"  public API: ragmem store.search / raw faiss = {store[2] / raw[2]:.3f}  "
            f"(ragmem HnswIndex / raw faiss = {row['ragmem'][2] / raw[2]:.3f})"
        )
        if payload:
            print(
                "  public API, both handing back ids, scores, texts and metadata copies: "
                f"store.search / (raw faiss + the caller's lookups) = {store[2] / payload[2]:.3f}"
            )
        # the same graph object at the same ef: identical results, so only the wrapper differs
        same = dict((ef, q) for ef, _, q in curves[SAME_GRAPH])
        same_payload = dict((ef, q) for ef, _, q in curves[SAME_GRAPH_PAYLOAD])
        print(
            f"  wrapper on one graph at ef={store[0]}: store.search / faiss search = "
            f"{store[2] / same[store[0]]:.3f}; / (faiss search + the caller's lookups) = "
            f"{store[2] / same_payload[store[0]]:.3f}"
        )
        print(
            f"  ragmem store.search / best engine ({best}) = {store[2] / row[best][2]:.3f}; "
            f"ragmem HnswIndex / best engine = {row['ragmem'][2] / row[best][2]:.3f}"
        )
    f, r = engines["faiss"], engines["ragmem"]
    print(
        f"build ragmem (LocalVectorStore.upsert) / raw faiss: wall {r['build'] / f['build']:.3f}, "
        f"CPU {r['cpu'] / f['cpu']:.3f}"
    )
    own = r["cpu"] - r["engine cpu"]
    print(
        f"  inside the ragmem build: faiss add {r['engine cpu']:.1f} CPU s, ragmem's own work "
        f"{own:.1f} CPU s = {own / r['engine cpu']:.3f} of the engine's time"
    )
    for name in ("ragmem store", "ragmem", SAME_GRAPH_PAYLOAD):
        ratios = [a[2] / b[2] for a, b in zip(curves[name], curves[SAME_GRAPH])]
        print(
            f"QPS {name} / faiss on ragmem's graph at equal ef: median {np.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
        )


# -- filtered search ---------------------------------------------------------------------------


def filtered(
    engines: dict[str, dict[str, Any]],
    base: np.ndarray,
    queries: np.ndarray,
    fraction: np.ndarray,
    ef: int,
) -> None:
    print(
        f"\n## Filtered search, {len(base):,} rows, ef={ef} for every engine (ragmem widens it), "
        "recall@10 / QPS"
    )
    print(
        "ragmem = LocalVectorStore.search(where={'r': {'$lt': s}}); the store keeps the masks of "
        "recent filters until its next write, so 'ragmem' repeats one filter (cached) and "
        "'ragmem uncached' evaluates it for every query"
    )
    store: LocalVectorStore = engines["ragmem store"]["index"]
    store_graph(store).ef_search = ef
    raw = engines["faiss"]["index"]
    hnsw_lib = engines["hnswlib"]["index"] if "hnswlib" in engines else None

    def uncached(q: np.ndarray, where: Any) -> np.ndarray:
        store._masks.clear()  # as after a write: the filter is evaluated again
        return np.array([int(h.id) for h in store.search(q[0], k=K, where=where)[0]])

    for selectivity in SELECTIVITIES:
        mask = fraction < selectivity
        truth = exact_truth(base, queries, mask)
        bits = np.packbits(mask, bitorder="little")
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        # post-filtering fetches twice the expected need, capped as a deployment would
        over = min(len(base), int(np.ceil(K / selectivity)) * 2, 2048)
        post_params = faiss.SearchParametersHNSW()
        post_params.efSearch = max(ef, over)
        where = {"r": {"$lt": selectivity}}

        def post(q: np.ndarray, over: int = over, mask: Any = mask, p: Any = post_params) -> Any:
            _, nodes = raw.search(q, over, params=p)
            nodes = nodes[0][nodes[0] >= 0]
            return nodes[mask[nodes]][:K]

        searches: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "ragmem": lambda q, w=where: np.array(
                [int(h.id) for h in store.search(q[0], k=K, where=w)[0]]
            ),
            "ragmem uncached": lambda q, w=where: uncached(q, w),
            "faiss id-selector": lambda q, p=params: raw.search(q, K, params=p)[1][0],
            "faiss post-filter": post,
        }
        qps = interleaved(searches, queries, 1)
        cells = []
        for name, search in searches.items():
            found, _ = single_queries(search, queries)
            cells.append(f"{name} {recall(found, truth):.3f} / {qps[name]:,.0f}")
        if hnsw_lib is not None:
            # hnswlib's filter is a Python callback per visited node: measured on fewer queries
            hnsw_lib.set_ef(ef)
            allowed = mask.tolist().__getitem__
            k = min(K, int(mask.sum()))

            def lib(q: np.ndarray, allowed: Any = allowed, k: int = k) -> Any:
                try:
                    return hnsw_lib.knn_query(q, k=k, num_threads=1, filter=allowed)[0][0]
                except RuntimeError:  # hnswlib raises when it finds fewer than k matches
                    return np.empty(0, np.int64)

            few = queries[:100]
            found, seconds = single_queries(lib, few)
            cells.append(
                f"hnswlib filter {recall(found, truth[:100]):.3f} / {len(few) / seconds:,.0f}"
            )
        print(f"selectivity {selectivity:>6.1%} ({int(mask.sum()):,} rows): " + " | ".join(cells))


# -- quantized flat search ---------------------------------------------------------------------


def quantized(base: np.ndarray, queries: np.ndarray, truth: np.ndarray, rounds: int) -> None:
    n, dim = base.shape
    print(f"\n## Quantized flat search, {n:,} x {dim}, cosine, single query, QPS per CPU second")
    flat = faiss.IndexFlatIP(dim)
    flat.add(base)
    faiss_search = lambda q: flat.search(q, K)[1][0]  # noqa: E731
    few = queries[: max(50, len(queries) // 5)]
    flat_found, _ = single_queries(faiss_search, few)
    print(
        f"faiss IndexFlatIP (float32): recall {recall(flat_found, truth):.3f}, {base.nbytes / 2**20:.1f} MB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.f32"
        base.tofile(path)
        # the float32 rows read for rescoring stay on disk, memory-mapped
        mapped = np.memmap(path, np.float32, mode="r", shape=base.shape)
        indexes = {}
        for dtype in ("binary", "int8", "float16"):
            index = QuantizedFlatIndex(dim, "cosine", dtype=dtype)
            index.add(np.arange(n), base)
            indexes[dtype] = index
        binary = indexes["binary"]
        print("QuantizedFlatIndex, exact rescoring from the memory map:")
        for rescore in (2, 4, 6, 10, 15, 20, 30, 50):
            search = lambda q, rs=rescore: binary.search(q, K, vectors=mapped, rescore=rs)[0][0]  # noqa: E731
            found, _ = single_queries(search, queries)
            timing = interleaved({"binary": search, "faiss": faiss_search}, few, rounds)
            print(
                f"  binary  rescore x{rescore:<3} recall {recall(found, truth):.3f}  {timing['binary']:,.0f} QPS "
                f"vs faiss flat {timing['faiss']:,.0f} QPS = {timing['binary'] / timing['faiss']:.2f}x   "
                f"codes {binary.nbytes / 2**20:.1f} MB = 1/{base.nbytes / binary.nbytes:.0f} of float32"
            )
        for dtype in ("int8", "float16"):
            index = indexes[dtype]
            search = lambda q, index=index, mapped=mapped: index.search(q, K, vectors=mapped)[0][0]  # noqa: E731
            found, _ = single_queries(search, few)
            timing = interleaved({dtype: search, "faiss": faiss_search}, few[:50], 1)
            print(
                f"  {dtype:<7} rescore x{index.rescore:<3} recall {recall(found, truth):.3f}  {timing[dtype]:,.0f} QPS "
                f"vs faiss flat {timing['faiss']:,.0f} QPS   codes {index.nbytes / 2**20:.1f} MB = "
                f"1/{base.nbytes / index.nbytes:.1f} of float32"
            )
    print("LocalVectorStore (rescoring gathers from the store's dimension-major float32 table):")
    ids = [str(i) for i in range(n)]
    for dtype in ("float32", "binary"):
        store = LocalVectorStore(dim, dtype=dtype)  # type: ignore[arg-type]
        store.upsert(ids, base)
        search = lambda q, store=store: np.array([int(h.id) for h in store.search(q[0], k=K)[0]])  # noqa: E731
        found, _ = single_queries(search, few)
        timing = interleaved({dtype: search, "faiss": faiss_search}, few[:100], rounds)
        print(
            f"  store dtype={dtype:<8} recall {recall(found, truth):.3f}  {timing[dtype]:,.0f} QPS "
            f"vs faiss flat {timing['faiss']:,.0f} QPS = {timing[dtype] / timing['faiss']:.2f}x"
        )
        del store


# -- resident memory ---------------------------------------------------------------------------

MEMORY_ENGINES = ["faiss", "hnsw", "float32", "int8", "binary"]


def _resident() -> int:
    """Resident bytes of this process now (Linux), after the C heap returned its free
    memory: temporary copies freed during a build are not the index's memory."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(engine: str, n: int, dim: int) -> None:
    """Build one engine over the clustered vectors; print the resident bytes it added."""
    base, _ = clustered(n, 0, dim)

    def build(vectors: np.ndarray) -> Any:
        if engine == "faiss":
            index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = EF_CONSTRUCTION
            index.add(vectors)
            return index
        options: dict[str, Any] = (
            {"index": "hnsw", "m": M, "ef_construction": EF_CONSTRUCTION}
            if engine == "hnsw"
            else {"dtype": engine}
        )
        store = LocalVectorStore(dim, **options)
        store.upsert([str(i) for i in range(len(vectors))], vectors)
        return store

    build(base[:100])  # loads every module the build uses: not the index's memory
    gc.collect()
    before = _resident()
    index = build(base)
    gc.collect()
    print(_resident() - before)
    del index


def memory(n: int, dim: int, engines: list[str]) -> None:
    """Resident memory of raw faiss and of ragmem's stores, each built in a fresh process."""
    print(f"\n## Resident memory, {n:,} x {dim} (each engine in a fresh process, M={M})")
    added = {}
    for engine in engines:
        out = subprocess.run(
            [sys.executable, __file__, "--n", str(n), "--dim", str(dim), "--memory-child", engine],
            check=True,
            capture_output=True,
            text=True,
        )
        added[engine] = int(out.stdout.split()[-1])
    raw = n * dim * 4
    code_bytes = {"float32": dim * 4, "int8": dim, "binary": (dim + 7) // 8}
    names = {
        "faiss": "raw faiss IndexHNSWFlat",
        "hnsw": 'LocalVectorStore(index="hnsw")',
        "float32": "LocalVectorStore() (flat)",
        "int8": 'LocalVectorStore(dtype="int8")',
        "binary": 'LocalVectorStore(dtype="binary")',
    }
    for engine, value in added.items():
        line = f"  {names[engine]:<34} {value / 2**20:9.1f} MiB  {value / n:8.1f} B/vector"
        line += f"  {value / raw:5.2f}x the float32 vectors"
        if engine in code_bytes and engine != "float32":
            line += f" (codes {code_bytes[engine]} B + float32 rows {dim * 4} B for rescoring)"
        print(line)
    if "faiss" in added and "hnsw" in added:
        print(f"  HNSW store / raw faiss: {added['hnsw'] / added['faiss']:.2f}x resident")


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="synthetic rows (default 100k)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (best is kept)")
    parser.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help="engines to build (faiss and ragmem always are); default: all installed",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to leave out: sift, hnsw, filtered, quantized, memory",
    )
    parser.add_argument(
        "--memory-engines",
        default=",".join(MEMORY_ENGINES),
        help=f"engines whose resident memory is measured (of {MEMORY_ENGINES})",
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.n, args.dim)
        return
    names = [n for n in args.engines.split(",") if n]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}; choose from {ENGINES}")
    skip = set(filter(None, args.skip.split(",")))
    print(
        f"ann benchmark: faiss {faiss.__version__}, numpy {np.__version__}, {os.cpu_count()} cores (shared), single-threaded"
    )

    sift = None if "sift" in skip else siftsmall()
    if sift is None:
        print(
            f"\nSIFT-small skipped ({'--skip' if 'sift' in skip else 'not found under ' + str(data_dir())})"
        )
    else:
        base, queries, truth = sift
        fraction = np.random.default_rng(7).random(len(base))
        engines = build_engines(base, "l2", fraction, names)
        report_hnsw(
            f"SIFT-small {len(base):,} x {base.shape[1]}, L2",
            engines,
            sweep(engines, queries, truth, args.rounds),
        )
        del engines

    if "memory" not in skip:
        memory(args.n, args.dim, [e for e in args.memory_engines.split(",") if e])
    if skip >= {"hnsw", "quantized"}:
        return
    base, queries = clustered(args.n, args.queries, args.dim)
    truth = exact_truth(base, queries)
    fraction = np.random.default_rng(7).random(len(base))  # row i matches "r < s" with odds s
    if "hnsw" not in skip:
        engines = build_engines(base, "cosine", fraction, names)
        curves = sweep(engines, queries, truth, args.rounds)
        report_hnsw(
            f"synthetic clustered unit vectors {args.n:,} x {args.dim}, cosine", engines, curves
        )
        if "filtered" not in skip:
            target = at_recall(curves["ragmem"], 0.99) or at_recall(curves["ragmem"], 0.95)
            filtered(engines, base, queries[:300], fraction, target[0] if target else 64)
        del engines
        gc.collect()
    if "quantized" not in skip:
        quantized(base, queries, truth, args.rounds)


if __name__ == "__main__":
    main()
