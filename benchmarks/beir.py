"""Choose the hybrid and rerank defaults by cross-validation over SciFact query folds.

Usage:
    python benchmarks/beir.py [--data ../shared/data/beir/scifact] [--cache-dir DIR]
        [--splits 50] [--encodings float16,int8,int4 | none] [--table grid.json]
        [--per-query table.json]

Only SciFact's test qrels are available, so the defaults are chosen without fitting
them: the 300 queries are split at random into two folds; for each fold, the grid
point with the best mean nDCG@10 on the *other* fold is scored on it (the CV
estimate is the mean of those held-out scores). This is repeated for ``--splits``
random splits, and the default is the grid point chosen most often across the fold
selections; a tie goes to the cheaper point (fewer fused candidates, fewer MaxSim
computations), never to the better test score. Printed: every selection, the CV estimate, and the full-split score of
the chosen default next to the best grid point (how much a test-fitted choice would
have flattered us).

Grid (first stage: the pipeline's own keyword index, ``new_keyword_index()``: BM25 with
the ``english-full`` stopwords and stemming; and LocalEmbedder dense):
    candidate depth per retriever in {100, 200, 500, 1000}
    x fusion in {rrf, minmax, zscore, dbsf} x dense weight in 0.2..0.7 (steps of 0.05)
The default is chosen among the admissible grid points only: a fusion that keeps the
proportions of a short or flat score list (``rrf``, or ``minmax`` with BM25's floor; ``zscore``
and ``dbsf`` map any two-hit list to the same two values, whatever their scores), at a
weight where the small-corpus rule holds (on ``tests/data/small_corpus.json`` the hybrid
ranks the answer first at least as often as the better of dense and BM25 alone). The
cross-validation over every grid point is printed too, for comparison.
Before the grid, the pipeline's default hybrid (``build_retriever("hybrid")``) is run on
every query and compared with the grid point of the same settings, so the grid is known
to score what a pipeline returns (BM25's floor, the normalisation, the candidate depth).
Rerank (ColBERT MaxSim over MiniLM token vectors, on the chosen fusion's output):
    normalisation in {minmax, zscore} x depth in {20, 30, 50, 100, 200}
    x MaxSim weight in 0.0..1.0, for each token encoding.

The blend formulas are the library's (``fusion.fuse``, and the reranker's
``weight * norm(maxsim) + (1 - weight) * norm(previous)``); MaxSim comes from
``TokenVectorStore.maxsim``, so the grid scores exactly what the retrievers return.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragmem import Document, RAGPipeline
from ragmem.eval.beir import load_beir
from ragmem.eval.configs import _dense, token_store
from ragmem.eval.metrics import ndcg
from ragmem.pipeline.defaults import HYBRID, build_retriever, new_keyword_index
from ragmem.registry import get_embedder
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.dense import DenseRetriever
from ragmem.retrievers.fusion import fuse, normalize
from ragmem.retrievers.hybrid import HybridRetriever

DEFAULT_DATA = Path(
    os.environ.get("RAGMEM_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
)
SMALL_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "small_corpus.json"
CANDIDATE_DEPTHS = [100, 200, 500, 1000]
FUSIONS = ["rrf", "minmax", "zscore", "dbsf"]
# fusions under which two BM25 hits scoring 10 and 9 stay close (see the module docstring)
PROPORTIONAL = ("rrf", "minmax")
WEIGHTS = [round(0.2 + 0.05 * i, 2) for i in range(11)]
RERANK_DEPTHS = [20, 30, 50, 100, 200]
NORMALIZATIONS = ["minmax", "zscore"]
RERANK_WEIGHTS = [round(0.1 * i, 1) for i in range(11)]


def per_query(run: dict[str, list[str]], qrels) -> dict[str, float]:
    return {q: ndcg(run.get(q, []), qrels[q], 10) for q in qrels}


def most_chosen(chosen: collections.Counter[object], cost) -> object:
    """The configuration selected most often; ties go to the cheapest (``cost``)."""
    top = max(chosen.values())
    return min((c for c, n in chosen.items() if n == top), key=lambda c: (cost(c), str(c)))


def fused(lists, qids: list[str], fusion: str, w: float, depth: int, limit: int) -> dict:
    """Per query: the top ``depth`` BM25 and dense hits fused with weights ``1 - w, w``."""
    return {
        q: fuse(
            [hits[:depth] for hits in lists[q]],
            ["bm25", "dense"],
            fusion=fusion,
            weights=[1 - w, w],
            # as HybridRetriever does: BM25 is min-max normalised down to its floor of 0
            floors=[BM25Retriever.score_floor, None],
            limit=limit,
        )
        for q in qids
    }


def small_corpus_rates(embedder) -> tuple[float, dict[tuple[str, float], float]]:
    """First-place rates on the small corpus: the better of dense and BM25 alone, and the
    hybrid's for each fusion and dense weight of the grid (as tests/test_small_corpus.py)."""
    data = json.loads(SMALL_CORPUS.read_text(encoding="utf-8"))
    rag = RAGPipeline(embedder=embedder)
    rag.ingest([Document(id=i, text=t) for i, t in data["documents"].items()])
    questions = data["questions"]

    def rate(retriever) -> float:
        right = 0
        for q in questions:
            hits = retriever.retrieve(q["question"], k=5)
            right += bool(hits) and hits[0].metadata["doc_id"] == q["answer"]
        return right / len(questions)

    dense = DenseRetriever(embedder, rag.store)
    alone = max(rate(dense), rate(rag.keyword))
    hybrid = {
        (fusion, w): rate(
            HybridRetriever(
                {"bm25": rag.keyword, "dense": dense}, fusion=fusion, weights=[1 - w, w]
            )
        )
        for fusion in FUSIONS
        for w in WEIGHTS
    }
    return alone, hybrid


def cross_validate(table: dict[object, dict[str, float]], qids: list[str], splits: int = 10):
    """Per config: per-query nDCG. Returns (counts of selections, CV estimate, log)."""
    chosen: collections.Counter[object] = collections.Counter()
    held_out, log = [], []
    for seed in range(splits):
        order = np.random.default_rng(seed).permutation(len(qids))
        folds = [
            [qids[i] for i in order[: len(qids) // 2]],
            [qids[i] for i in order[len(qids) // 2 :]],
        ]
        for f in (0, 1):
            train, test = folds[1 - f], folds[f]
            best = max(table, key=lambda c: (np.mean([table[c][q] for q in train]), str(c)))
            score = float(np.mean([table[best][q] for q in test]))
            chosen[best] += 1
            held_out.append(score)
            log.append((seed, f, best, score))
    return chosen, float(np.mean(held_out)), log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "beir" / "scifact")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "ragmem")
    parser.add_argument("--embedder", default="local")
    parser.add_argument(
        "--encodings",
        default="float16,int8,int4",
        help="token-vector encodings to evaluate for reranking (comma-separated; none: skip)",
    )
    parser.add_argument("--splits", type=int, default=10, help="random 2-fold splits")
    parser.add_argument(
        "--table", type=Path, help="write every grid point's full-split nDCG@10 here (JSON)"
    )
    parser.add_argument(
        "--per-query", type=Path, help="write every grid point's per-query nDCG@10 here (JSON)"
    )
    args = parser.parse_args()
    data = load_beir(args.data)
    qids = list(data.queries)
    model = get_embedder(args.embedder)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    bm25 = new_keyword_index()  # the pipeline's keyword index: english-full, stemmed
    bm25.add(data.ids, data.texts)
    timings["bm25_index_s"] = time.perf_counter() - start
    dense = _dense(data, model, args.cache_dir, timings)
    start = time.perf_counter()
    deepest = max(CANDIDATE_DEPTHS)
    # both retrievers rank exactly (ties by id), so the top d of the deepest list is what
    # retrieve(query, d) returns
    lists = {
        q: (bm25.retrieve(data.queries[q], deepest), dense.retrieve(data.queries[q], deepest))
        for q in qids
    }
    timings["first_stage_s"] = time.perf_counter() - start
    print(f"first stage ready: {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
    pipeline = build_retriever("hybrid", embedder=model, store=dense.store, keyword=bm25)
    mirror = fused(lists, qids, HYBRID["fusion"], HYBRID["weights"][1], HYBRID["depth"], 10)
    differ = [
        q
        for q in qids
        if [h.id for h in pipeline.retrieve(data.queries[q], 10)] != [h.id for h in mirror[q]]
    ]
    print(
        f"pipeline default {HYBRID}: top 10 equal to the grid's on "
        f"{len(qids) - len(differ)} of {len(qids)} queries",
        flush=True,
    )

    table: dict[object, dict[str, float]] = {}
    table[("bm25",)] = per_query({q: [h.id for h in lists[q][0]] for q in qids}, data.qrels)
    table[("dense",)] = per_query({q: [h.id for h in lists[q][1]] for q in qids}, data.qrels)
    for depth in CANDIDATE_DEPTHS:
        for fusion in FUSIONS:
            for w in WEIGHTS:
                runs = fused(lists, qids, fusion, w, depth, 100)
                table[(fusion, w, depth)] = per_query(
                    {q: [h.id for h in runs[q]] for q in qids}, data.qrels
                )
        best_at = max(
            (c for c in table if len(c) == 3 and c[2] == depth),
            key=lambda c: np.mean(list(table[c].values())),
        )
        print(
            f"candidate depth {depth}: "
            + ", ".join(
                f"{f} {max(np.mean(list(table[(f, w, depth)].values())) for w in WEIGHTS):.4f}"
                for f in FUSIONS
            )
            + f" (best weight per fusion, full split; best {best_at})",
            flush=True,
        )
    for name in (("bm25",), ("dense",), ("rrf", 0.5, 100)):
        print(f"{name}: nDCG@10 {np.mean(list(table[name].values())):.4f} (full split)")
    first = {c: t for c, t in table.items() if len(c) == 3}
    full = {c: np.mean(list(t.values())) for c, t in first.items()}
    if args.table is not None:
        args.table.write_text(json.dumps({str(c): round(float(v), 5) for c, v in full.items()}))
    if args.per_query is not None:
        args.per_query.write_text(json.dumps({str(c): t for c, t in table.items()}))
    alone, small = small_corpus_rates(model)
    admissible = {c: t for c, t in first.items() if c[0] in PROPORTIONAL and small[c[:2]] >= alone}
    print(
        f"small corpus: better of dense and BM25 alone {alone:.3f}; hybrid "
        + ", ".join(f"{f} {w} {r:.3f}" for (f, w), r in small.items() if f in PROPORTIONAL)
    )
    default = None
    for label, grid in (("every grid point", first), ("admissible grid points", admissible)):
        chosen, estimate, log = cross_validate(grid, qids, args.splits)
        for seed, f, best, score in log:
            print(
                f"  split {seed} fold {f}: chose {best} on the other fold -> {score:.4f} held out"
            )
        # a tie goes to the smaller candidate depth: fusing fewer candidates is cheaper
        default = most_chosen(chosen, lambda c: c[2])
        best_full = max(grid, key=full.get)
        print(
            f"hybrid over {label} ({len(grid)}): selections {dict(chosen)}\n"
            f"  default {default}: CV estimate {estimate:.4f}, full split {full[default]:.4f} "
            f"(best of these on the full split {best_full}: {full[best_full]:.4f})",
            flush=True,
        )
    assert default is not None

    if args.encodings == "none":
        return
    # -- rerank on the default fusion -------------------------------------------------------
    fusion, w, depth = default
    runs = fused(lists, qids, fusion, w, depth, max(RERANK_DEPTHS))
    per_encoding: dict[object, float] = {}
    picks = {}
    query_tokens = model.embed_tokens([data.queries[q] for q in qids], purpose="query")
    for encoding in args.encodings.split(","):
        store = token_store(data, model, encoding, args.cache_dir, timings)
        maxsim = {}
        for q, qt in zip(qids, query_tokens):
            cands = [h.id for h in runs[q][: max(RERANK_DEPTHS)]]
            maxsim[q] = dict(zip(cands, store.maxsim(qt, cands).tolist()))
        rerank_table = {}
        for norm, depth, w in itertools.product(NORMALIZATIONS, RERANK_DEPTHS, RERANK_WEIGHTS):
            ranked = {}
            for q in qids:
                hits = runs[q][:depth]
                sims = normalize([maxsim[q][h.id] for h in hits], norm)
                prior = normalize([h.score for h in hits], norm)
                final = [w * s + (1 - w) * p for s, p in zip(sims, prior)]
                order = sorted(range(len(hits)), key=lambda i: (-final[i], i))
                ranked[q] = [hits[i].id for i in order] + [h.id for h in runs[q][depth:]]
            rerank_table[(encoding, norm, depth, w)] = per_query(ranked, data.qrels)
        chosen_r, estimate_r, _ = cross_validate(rerank_table, qids, args.splits)
        # a tie goes to the fewer MaxSim computations (no reranking, weight 0, costs none)
        pick = most_chosen(chosen_r, lambda c: 0 if c[3] == 0 else c[2])
        latency = []
        for q, qt in zip(qids, query_tokens):
            cands = [h.id for h in runs[q][: pick[2]]]
            start = time.perf_counter()
            store.maxsim(qt, cands)
            latency.append(time.perf_counter() - start)
        full_r = {c: np.mean(list(t.values())) for c, t in rerank_table.items()}
        best_r = max(full_r, key=full_r.get)
        per_encoding.update(full_r)
        picks[encoding] = pick
        print(
            f"rerank {encoding}: {store.nbytes / 1e6:.0f} MB for {store.n_tokens} tokens; "
            f"MaxSim over the default's {pick[2]} candidates "
            f"{1000 * np.median(latency):.2f} ms/query (median)\n"
            f"  selections {dict(chosen_r)}\n  default {pick}: CV estimate {estimate_r:.4f}, "
            f"full split {full_r[pick]:.4f} (best grid point {best_r}: {full_r[best_r]:.4f})"
        )

    if "float16" not in picks:
        return
    # compression loss at one fixed setting (the float16 choice), so only the encoding differs
    _, norm, depth, weight = picks["float16"]
    losses = {
        e: per_encoding[("float16", norm, depth, weight)] - per_encoding[(e, norm, depth, weight)]
        for e in picks
    }
    print(f"nDCG@10 lost to compression at {norm}, depth {depth}, weight {weight}: {losses}")


if __name__ == "__main__":
    main()
