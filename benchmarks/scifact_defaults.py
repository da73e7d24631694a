"""SciFact nDCG@10 of the pipeline's default retrieval, and of the choices it was made from.

Usage:
    python benchmarks/scifact_defaults.py [--data ../shared/data/beir/scifact]
        [--cache-dir ~/.cache/ragmem]

Prints nDCG@10 on the test queries for: dense (the local model), BM25 with Lucene's 33
stopwords (``"english"``) and with the pipeline's ``"english-full"`` list, and, for each
list, the pipeline's min-max hybrid (weights 0.55 BM25 / 0.45 dense, 1,000 candidates
each) with BM25 normalised down to the lowest score retrieved (before) and down to its
floor of 0 (``HybridRetriever`` now). Corpus vectors are cached in ``--cache-dir``.
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
from ragmem.pipeline.defaults import HYBRID
from ragmem.registry import get_embedder
from ragmem.retrievers.analysis import TextAnalyzer
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.dense import DenseRetriever
from ragmem.retrievers.fusion import fuse
from ragmem.stores.local import LocalVectorStore

DEFAULT_DATA = Path(
    os.environ.get("RAGMEM_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "beir" / "scifact")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "ragmem")
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
    print(f"dense                                   {score(dense_lists):.4f}", flush=True)
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
                )[:10]
                for q in qids
            }
            print(f"hybrid {stopwords:<14} BM25 to {label:<13} {score(runs):.4f}", flush=True)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
