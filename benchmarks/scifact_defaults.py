"""SciFact nDCG@10 and CPU time of the pipeline's default retrieval, and of its alternatives.

Usage:
    python benchmarks/scifact_defaults.py [--data ../shared/data/beir/scifact]
        [--cache-dir ~/.cache/ragmem] [--depths 100,200,500,1000]

Prints nDCG@10 on the test queries for: dense (the local model); BM25 with Lucene's 33
stopwords (``"english"``) and with the pipeline's ``"english-full"`` list, and for each
list the pipeline's fusion (``HYBRID``) with BM25 normalised down to the lowest score
retrieved and down to its floor of 0 (what ``HybridRetriever`` does). Then the pipeline's
own hybrid retriever (``build_retriever("hybrid")``) at each candidate depth: nDCG@10
and CPU milliseconds per query (query embedding, both searches and the fusion; CPU time,
so other load on the machine does not count), and the fusion step alone at the default
depth, building every fused hit and cutting to 10 against building only the 10 kept.
Corpus vectors are cached in ``--cache-dir``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragmem.eval.beir import cached_embeddings, load_beir
from ragmem.eval.metrics import ndcg
from ragmem.pipeline.defaults import HYBRID, STOPWORDS, build_retriever, new_keyword_index
from ragmem.registry import get_embedder
from ragmem.retrievers.analysis import TextAnalyzer
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.dense import DenseRetriever
from ragmem.retrievers.fusion import fuse
from ragmem.retrievers.hybrid import HybridRetriever
from ragmem.stores.local import LocalVectorStore

DEFAULT_DATA = Path(
    os.environ.get("RAGMEM_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
)


def cpu_ms(fn, items) -> float:
    """CPU milliseconds per item of ``fn`` over ``items``."""
    start = time.process_time()
    for item in items:
        fn(item)
    return 1000 * (time.process_time() - start) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "beir" / "scifact")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "ragmem")
    parser.add_argument("--depths", default="100,200,500,1000", help="candidate depths to time")
    args = parser.parse_args()
    data = load_beir(args.data)
    qids = [q for q in data.queries if q in data.qrels]
    depth = HYBRID["depth"]

    def score(run: dict[str, list]) -> float:
        return float(np.mean([ndcg([h.id for h in run[q]], data.qrels[q], 10) for q in qids]))

    start = time.perf_counter()
    embedder = get_embedder("local")
    vectors, _ = cached_embeddings(embedder, data, args.cache_dir)
    store = LocalVectorStore(dimensions=embedder.dimensions)
    store.upsert(data.ids, vectors, texts=data.texts)
    dense = DenseRetriever(embedder, store)
    dense_lists = {q: dense.retrieve(data.queries[q], depth) for q in qids}
    print(f"defaults: {HYBRID}, BM25 stopwords {STOPWORDS!r}")
    print(f"dense                                   {score(dense_lists):.4f}", flush=True)
    full_lists: dict[str, list] = {}
    for stopwords in ("english", "english-full"):
        bm25 = BM25Retriever(tokenizer=TextAnalyzer(stopwords=stopwords))
        bm25.add(data.ids, data.texts)
        lists = {q: bm25.retrieve(data.queries[q], depth) for q in qids}
        print(f"bm25 {stopwords:<14}                     {score(lists):.4f}", flush=True)
        for label, floors in (("min retrieved", None), ("floor 0", [0.0, None])):
            runs = {
                q: fuse(
                    [lists[q], dense_lists[q]],
                    ["bm25", "dense"],
                    fusion=HYBRID["fusion"],
                    weights=HYBRID["weights"],
                    floors=floors,
                    limit=10,
                )
                for q in qids
            }
            print(f"hybrid {stopwords:<14} BM25 to {label:<13} {score(runs):.4f}", flush=True)
        if stopwords == STOPWORDS:
            full_lists = lists

    keyword = new_keyword_index()
    keyword.add(data.ids, data.texts)
    pipeline = build_retriever("hybrid", embedder=embedder, store=store, keyword=keyword)
    assert isinstance(pipeline, HybridRetriever)
    print("pipeline hybrid by candidate depth: nDCG@10, CPU ms/query")
    for d in (int(x) for x in args.depths.split(",")):
        pipeline.depth = d
        start_cpu = time.process_time()
        runs = {q: pipeline.retrieve(data.queries[q], 10) for q in qids}
        ms = 1000 * (time.process_time() - start_cpu) / len(qids)
        mark = " (default)" if d == depth else ""
        print(f"  depth {d:>5}: {score(runs):.4f}  {ms:6.1f} ms{mark}", flush=True)

    options = {
        "fusion": HYBRID["fusion"],
        "weights": HYBRID["weights"],
        "floors": [BM25Retriever.score_floor, None],
    }
    pairs = [[full_lists[q], dense_lists[q]] for q in qids]
    names = ["bm25", "dense"]
    every = cpu_ms(lambda p: fuse(p, names, **options)[:10], pairs)
    kept = cpu_ms(lambda p: fuse(p, names, **options, limit=10), pairs)
    print(
        f"fusion alone at depth {depth}: every fused hit built {every:.1f} ms/query, "
        f"only the 10 kept {kept:.1f} ms/query"
    )
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
