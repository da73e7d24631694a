"""ANN benchmark: ragmem's HNSW and quantized flat indexes against the raw engines, side by side.

Every line is measured in this one run, on this machine, single-threaded (faiss OpenMP,
BLAS, hnswlib and usearch all pinned to one thread), with every engine built with
M=16 and ef_construction=200:

1. HNSW on SIFT-small (10k x 128, L2, published ground truth) and on synthetic clustered
   unit vectors (100k x 384 by default, fixed seed, exact ground truth computed here):
   build time, index memory, recall@10 and single-query QPS over an ef sweep, then QPS at
   recall@10 0.95 and 0.99 for ragmem's ``HnswIndex`` (faiss inside), raw faiss
   ``IndexHNSWFlat``, hnswlib and usearch. Raw faiss and ragmem are timed interleaved
   (best of several rounds) so that load from other processes hits both alike.
2. Filtered recall@10 at selectivities 50%, 10%, 1%, 0.1%: ragmem (selectivity-driven
   exact fallback, filter inside the traversal, widened ef) against faiss's own id
   selector at the same ef and against post-filtering, plus hnswlib's filter callback.
3. Quantized flat search: binary / int8 / float16 codes with exact rescoring from a
   memory-mapped float32 file, against faiss ``IndexFlatIP``, single query at a time.

Run:  PYTHONPATH=. python benchmarks/ann.py            (about 15 minutes on 2 busy cores)
      PYTHONPATH=. python benchmarks/ann.py --n 20000  (a quick smoke run)
"""

# ruff: noqa: E402  (thread counts must be set before numpy and faiss are imported)
from __future__ import annotations

import os

# one thread everywhere, set before numpy / faiss load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import gc
import gzip
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import hnswlib
import numpy as np
from usearch.index import Index as USearchIndex

from ragmem.stores.local.hnsw import HnswIndex
from ragmem.stores.local.quantized import QuantizedFlatIndex

if TYPE_CHECKING:
    from collections.abc import Callable

faiss.omp_set_num_threads(1)

M, EF_CONSTRUCTION, K = 16, 200, 10
EFS = [10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256]
SELECTIVITIES = [0.5, 0.1, 0.01, 0.001]


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


def timed_build(build: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    start = time.perf_counter()
    index = build()
    return index, time.perf_counter() - start


def single_queries(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray
) -> tuple[list[np.ndarray], float]:
    rows = [queries[i : i + 1] for i in range(len(queries))]
    start = time.perf_counter()
    found = [search(q) for q in rows]
    return found, time.perf_counter() - start


def interleaved(
    searches: dict[str, Callable[[np.ndarray], np.ndarray]], queries: np.ndarray, rounds: int
) -> dict[str, float]:
    """QPS of each search, robust to load from other processes on a shared machine.

    Queries go in chunks of 50; each chunk is timed ``rounds`` times per search, the
    searches alternating, and a search's time is the sum over chunks of its best time.
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
            total[name] += best[name]
    return {name: len(queries) / total[name] for name in searches}


# -- engines -----------------------------------------------------------------------------------


def build_engines(base: np.ndarray, metric: str) -> dict[str, dict[str, Any]]:
    dim = len(base[0])
    engines: dict[str, dict[str, Any]] = {}
    faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT

    def raw_faiss() -> Any:
        index = faiss.IndexHNSWFlat(dim, M, faiss_metric)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(base)
        return index

    def ragmem() -> HnswIndex:
        index = HnswIndex(
            dim, "l2" if metric == "l2" else "cosine", m=M, ef_construction=EF_CONSTRUCTION
        )
        index.add(np.arange(len(base)), base)
        return index

    def raw_hnswlib() -> Any:
        index = hnswlib.Index(space="l2" if metric == "l2" else "ip", dim=dim)
        index.init_index(
            max_elements=len(base), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100
        )
        index.add_items(base, np.arange(len(base)), num_threads=1)
        return index

    def raw_usearch() -> Any:
        index = USearchIndex(
            ndim=dim,
            metric="l2sq" if metric == "l2" else "ip",
            dtype="f32",
            connectivity=M,
            expansion_add=EF_CONSTRUCTION,
        )
        index.add(np.arange(len(base)), base, threads=1)
        return index

    # raw faiss and ragmem are built back to back, twice alternating, best time each
    times: dict[str, list[float]] = {"faiss": [], "ragmem": []}
    for name, build in (("faiss", raw_faiss), ("ragmem", ragmem)):
        index, seconds = timed_build(build)
        engines[name] = {"index": index}
        times[name].append(seconds)
    for name, build in (("ragmem", ragmem), ("faiss", raw_faiss)):
        _, seconds = timed_build(build)
        times[name].append(seconds)
        gc.collect()
    for name in times:
        engines[name]["build"] = min(times[name])
    for name, build in (("hnswlib", raw_hnswlib), ("usearch", raw_usearch)):
        index, seconds = timed_build(build)
        engines[name] = {"index": index, "build": seconds}

    engines["faiss"]["bytes"] = int(faiss.serialize_index(engines["faiss"]["index"]).nbytes)
    graph: HnswIndex = engines["ragmem"]["index"]
    engines["ragmem"]["bytes"] = int(faiss.serialize_index(graph._graph).nbytes) + 17 * graph.nodes
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "h.bin")
        engines["hnswlib"]["index"].save_index(path)
        engines["hnswlib"]["bytes"] = os.path.getsize(path)
    engines["usearch"]["bytes"] = int(engines["usearch"]["index"].memory_usage)
    return engines


def searcher(name: str, index: Any, ef: int) -> Callable[[np.ndarray], np.ndarray]:
    if name == "faiss":
        index.hnsw.efSearch = ef
        return lambda q: index.search(q, K)[1][0]
    if name == "ragmem":
        return lambda q: index.search(q, K, ef=ef)[0][0]
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
    print(f"{'engine':<9} {'build s':>8} {'index MB':>9}   ef: recall@10 / QPS")
    for name, e in engines.items():
        points = "  ".join(f"{ef}:{r:.3f}/{q:,.0f}" for ef, r, q in curves[name])
        print(f"{name:<9} {e['build']:>8.1f} {e['bytes'] / 2**20:>9.1f}   {points}")
    for target in (0.95, 0.99):
        row = {name: at_recall(c, target) for name, c in curves.items()}
        best = max((v[2] for v in row.values() if v), default=0.0)
        cells = "  ".join(
            f"{n}: {v[2]:,.0f} QPS (ef={v[0]}, r={v[1]:.3f})" if v else f"{n}: not reached"
            for n, v in row.items()
        )
        print(f"recall@10 >= {target}: {cells}")
        if row["ragmem"] and row["faiss"]:
            print(
                f"  ragmem / raw faiss QPS = {row['ragmem'][2] / row['faiss'][2]:.3f}; "
                f"ragmem / best engine QPS = {row['ragmem'][2] / best:.3f}"
            )
    print(
        f"build time ragmem / raw faiss = {engines['ragmem']['build'] / engines['faiss']['build']:.3f}"
    )
    same_ef = [
        r["ragmem"] / r["faiss"]
        for r in ({n: q for n, (_, _, q) in zip(curves, pts)} for pts in zip(*curves.values()))
    ]
    print(
        f"QPS ragmem / raw faiss at equal ef: median {np.median(same_ef):.3f} (min {min(same_ef):.3f}, max {max(same_ef):.3f})"
    )


# -- filtered search ---------------------------------------------------------------------------


def filtered(
    engines: dict[str, dict[str, Any]], base: np.ndarray, queries: np.ndarray, ef: int
) -> None:
    print(f"\n## Filtered search, {len(base):,} rows, ef={ef} (ragmem widens it), recall@10 / QPS")
    graph: HnswIndex = engines["ragmem"]["index"]
    raw = engines["faiss"]["index"]
    hnsw_lib = engines["hnswlib"]["index"]
    rng = np.random.default_rng(7)
    for selectivity in SELECTIVITIES:
        mask = rng.random(len(base)) < selectivity
        truth = exact_truth(base, queries, mask)
        bits = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
        params.sel = selector
        raw.hnsw.efSearch = ef
        # post-filtering fetches twice the expected need, capped as a real deployment would
        over = min(len(base), int(np.ceil(K / selectivity)) * 2, 2048)
        post_params = faiss.SearchParametersHNSW()
        post_params.efSearch = max(ef, over)

        def post(
            q: np.ndarray, over: int = over, mask: np.ndarray = mask, p: Any = post_params
        ) -> np.ndarray:
            _, nodes = raw.search(q, over, params=p)
            nodes = nodes[0][nodes[0] >= 0]
            return nodes[mask[nodes]][:K]

        searches: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "ragmem": lambda q, mask=mask: graph.search(q, K, ef=ef, mask=mask, vectors=base)[0][0],
            "faiss id-selector": lambda q, params=params: raw.search(q, K, params=params)[1][0],
            "faiss post-filter": post,
        }
        cells = []
        for name, search in searches.items():
            found, seconds = single_queries(search, queries)
            cells.append(f"{name} {recall(found, truth):.3f} / {len(queries) / seconds:,.0f}")
        # hnswlib's filter is a Python callback per visited node: measured on fewer queries
        hnsw_lib.set_ef(ef)
        few = queries[:100]
        allowed = mask.tolist().__getitem__

        def lib(
            q: np.ndarray, allowed: Any = allowed, k: int = min(K, int(mask.sum()))
        ) -> np.ndarray:
            try:
                return hnsw_lib.knn_query(q, k=k, num_threads=1, filter=allowed)[0][0]
            except RuntimeError:  # hnswlib raises when it finds fewer than k matches
                return np.empty(0, np.int64)

        found, seconds = single_queries(lib, few)
        cells.append(f"hnswlib filter {recall(found, truth[:100]):.3f} / {len(few) / seconds:,.0f}")
        print(f"selectivity {selectivity:>6.1%} ({int(mask.sum()):,} rows): " + " | ".join(cells))


# -- quantized flat search ---------------------------------------------------------------------


def quantized(base: np.ndarray, queries: np.ndarray, truth: np.ndarray, rounds: int) -> None:
    n, dim = base.shape
    print(
        f"\n## Quantized flat search, {n:,} x {dim}, cosine, single query, exact float32 rescoring from a memory map"
    )
    flat = faiss.IndexFlatIP(dim)
    flat.add(base)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.f32"
        base.tofile(path)
        mapped = np.memmap(path, np.float32, mode="r", shape=base.shape)
        indexes = {}
        for dtype in ("binary", "int8", "float16"):
            index = QuantizedFlatIndex(dim, "cosine", dtype=dtype)
            index.add(np.arange(n), base)
            indexes[dtype] = index
        faiss_search = lambda q: flat.search(q, K)[1][0]  # noqa: E731
        few = queries[: max(50, len(queries) // 5)]
        flat_found, _ = single_queries(faiss_search, few)
        print(
            f"float32 (faiss IndexFlatIP): recall {recall(flat_found, truth):.3f}, {base.nbytes / 2**20:.1f} MB"
        )
        binary = indexes["binary"]
        for rescore in (2, 4, 6, 10, 15, 20, 30, 50):
            index = binary
            search = lambda q, rs=rescore: binary.search(q, K, vectors=mapped, rescore=rs)[0][0]  # noqa: E731
            found, _ = single_queries(search, queries)
            timing = interleaved({"binary": search, "faiss": faiss_search}, few, rounds)
            ratio = timing["binary"] / timing["faiss"]
            print(
                f"binary rescore x{rescore:<3} recall {recall(found, truth):.3f}  {timing['binary']:,.0f} QPS vs faiss flat "
                f"{timing['faiss']:,.0f} QPS = {ratio:.2f}x   codes {index.nbytes / 2**20:.1f} MB = 1/{base.nbytes / index.nbytes:.0f} of float32"
            )
        for dtype in ("int8", "float16"):
            index = indexes[dtype]
            search = lambda q, index=index, mapped=mapped: index.search(q, K, vectors=mapped)[0][0]  # noqa: E731
            found, _ = single_queries(search, few)
            timing = interleaved({dtype: search, "faiss": faiss_search}, few[:50], 1)
            print(
                f"{dtype:<7} rescore x{index.rescore:<3} recall {recall(found, truth):.3f}  {timing[dtype]:,.0f} QPS vs faiss flat "
                f"{timing['faiss']:,.0f} QPS   codes {index.nbytes / 2**20:.1f} MB = 1/{base.nbytes / index.nbytes:.1f} of float32"
            )
        batch = indexes["int8"]
        start = time.perf_counter()
        batch.search(queries, K, vectors=mapped)
        print(
            f"int8 batched ({len(queries)} queries per call): {len(queries) / (time.perf_counter() - start):,.0f} QPS"
        )


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="synthetic rows (default 100k)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (best is kept)")
    args = parser.parse_args()
    print(
        f"ann benchmark: faiss {faiss.__version__}, numpy {np.__version__}, {os.cpu_count()} cores (shared), single-threaded"
    )

    sift = siftsmall()
    if sift is None:
        print(f"\nSIFT-small not found under {data_dir()}; skipped")
    else:
        base, queries, truth = sift
        engines = build_engines(base, "l2")
        report_hnsw(
            f"SIFT-small {len(base):,} x {base.shape[1]}, L2",
            engines,
            sweep(engines, queries, truth, args.rounds),
        )
        del engines

    base, queries = clustered(args.n, args.queries, args.dim)
    truth = exact_truth(base, queries)
    engines = build_engines(base, "cosine")
    curves = sweep(engines, queries, truth, args.rounds)
    report_hnsw(
        f"synthetic clustered unit vectors {args.n:,} x {args.dim}, cosine", engines, curves
    )
    target = at_recall(curves["ragmem"], 0.99) or at_recall(curves["ragmem"], 0.95)
    filtered(engines, base, queries[:300], target[0] if target else 64)
    del engines
    gc.collect()
    quantized(base, queries, truth, args.rounds)


if __name__ == "__main__":
    main()
