"""Late-interaction variants on SciFact, each family cross-validated like benchmarks/beir.py.

Usage:
    python benchmarks/rerank_variants.py [--data ../shared/data/beir/scifact]
        [--cache-dir DIR] [--splits 50]

The first stage is the default hybrid (``ragmem.eval.configs.HYBRID_DEFAULTS``); its top
200 are reranked with MaxSim over the corpus's token vectors in the default encoding
(``RERANK_DEFAULTS``, cached in ``--cache-dir`` by ``ragmem eval beir``). Families:

- ``library``: what ``LateInteractionReranker`` does: normalisation (minmax, zscore)
  x depth x MaxSim weight.
- ``tokens``: which document tokens count (all; no punctuation; no stopwords; neither)
  x how query tokens are weighted (uniform; punctuation and stopwords dropped; IDF from
  the corpus's WordPiece document frequencies; IDF with both dropped), min-max blend.
  Dropping document tokens also shrinks storage: the share dropped is printed.
- ``transform``: each query token's best similarity ``s`` thresholded (``max(s - t, 0)``)
  or raised to a power before the sum.
- ``three``: BM25, dense and MaxSim scores, each normalised over the candidates, mixed
  with two free weights (instead of MaxSim against the fused score).

Each family's grid is cross-validated over 2-fold query splits exactly as in
benchmarks/beir.py; printed: the CV estimate, the most-chosen point and its full-split
nDCG@10, and the best full-split point (a test-fitted upper bound, not a result).
Then why reranking gains little: MaxSim alone, its rank correlation with BM25 and
dense, an oracle reranking of the same candidates, and the per-query changes.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from beir import cross_validate, most_chosen  # benchmarks/beir.py

from ragmem.eval.beir import cached_embeddings, load_beir
from ragmem.eval.configs import HYBRID_DEFAULTS, RERANK_DEFAULTS, _bm25, _dense, token_store
from ragmem.eval.metrics import ndcg
from ragmem.registry import get_embedder
from ragmem.retrievers.analysis import ENGLISH_STOPWORDS
from ragmem.retrievers.hybrid import HybridRetriever

DEFAULT_DATA = Path(
    os.environ.get("RAGMEM_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
)
CANDIDATES = 200
DEPTHS = [50, 100, 200]
BLEND = [0.2, 0.3, 0.4, 0.5]
DOC_MASKS = ["all", "no-punct", "no-stop", "content"]
QUERY_WEIGHTS = ["uniform", "content", "idf", "idf-content"]


def minmax(x: np.ndarray) -> np.ndarray:
    low, high = x.min(), x.max()
    return np.ones_like(x) if high - low <= 0 else (x - low) / (high - low)


def zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return np.zeros_like(x) if sd <= 0 else (x - x.mean()) / sd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "beir" / "scifact")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "ragmem")
    parser.add_argument("--splits", type=int, default=50, help="random 2-fold splits")
    args = parser.parse_args()
    data = load_beir(args.data)
    qids = list(data.queries)
    model = get_embedder("local")
    timings: dict[str, float] = {}
    bm25 = _bm25(data, timings)
    dense = _dense(data, model, args.cache_dir, timings)
    store = token_store(data, model, RERANK_DEFAULTS["encoding"], args.cache_dir, timings)
    hybrid = HybridRetriever({"bm25": bm25, "dense": dense}, **HYBRID_DEFAULTS)

    # WordPiece ids of every stored token: the embedder's tokenizer, same window, specials
    # dropped (as embed_tokens drops them), checked against the stored row counts
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model.tokenizer_path))
    tokenizer.enable_truncation(max_length=model.max_tokens)

    def token_ids(texts: list[str]) -> list[np.ndarray]:
        return [
            np.array([t for t, s in zip(e.ids, e.special_tokens_mask) if s == 0], np.int64)
            for e in tokenizer.encode_batch(texts)
        ]

    doc_tokens = dict(zip(data.ids, token_ids(data.texts)))
    vocab = {i: t for t, i in tokenizer.get_vocab().items()}
    size = max(vocab) + 1
    punct = np.array([not any(c.isalnum() for c in vocab.get(i, "x")) for i in range(size)])
    stop = np.array([vocab.get(i, "") in ENGLISH_STOPWORDS for i in range(size)])
    df = np.zeros(size)
    for ids in doc_tokens.values():
        df[np.unique(ids)] += 1
    n_docs = len(data.ids)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    every = np.concatenate(list(doc_tokens.values()))
    if len(every) != store.n_tokens:
        raise SystemExit(f"{len(every)} tokenized vs {store.n_tokens} stored token vectors")
    dropped = {
        "no-punct": punct[every].mean(),
        "no-stop": stop[every].mean(),
        "content": (punct[every] | stop[every]).mean(),
    }
    print(
        f"{store.n_tokens} stored tokens, {store.nbytes / 1e6:.0f} MB ({store.encoding}); "
        "share of document tokens dropped: "
        + ", ".join(f"{k} {v:.1%}" for k, v in dropped.items()),
        flush=True,
    )

    # per query: the candidates, their first-stage scores, and each query token's best
    # similarity in each candidate under every document-token mask
    start = time.perf_counter()
    texts = [data.queries[q] for q in qids]
    query_vectors = model.embed_tokens(texts, purpose="query")
    query_ids = token_ids(texts)
    dense_queries = model.embed(texts, purpose="query")
    vectors, _ = cached_embeddings(model, data, args.cache_dir)
    position = {d: i for i, d in enumerate(data.ids)}
    feats: dict[str, dict[str, object]] = {}
    for q, qv, qi, qd in zip(qids, query_vectors, query_ids, dense_queries):
        if len(qi) != len(qv):
            raise SystemExit(f"query {q}: {len(qi)} token ids for {len(qv)} vectors")
        hits = hybrid.retrieve(data.queries[q], CANDIDATES)
        cands = [h.id for h in hits]
        mats = store.get(cands)
        sims = qv @ np.concatenate(mats).T
        tok = np.concatenate([doc_tokens[c] for c in cands])
        offsets = np.concatenate(([0], np.cumsum([len(m) for m in mats])[:-1]))
        best = {}
        for mask in DOC_MASKS:
            drop = {
                "all": None,
                "no-punct": punct[tok],
                "no-stop": stop[tok],
                "content": punct[tok] | stop[tok],
            }[mask]
            masked = sims if drop is None else np.where(drop[None, :], -2.0, sims)
            best[mask] = np.maximum.reduceat(masked, offsets, axis=1)
        feats[q] = {
            "cands": cands,
            "fused": np.array([h.score for h in hits]),
            "bm25": np.array(bm25.score(data.queries[q], cands)),
            "dense": vectors[[position[c] for c in cands]] @ qd,
            "qids": qi,
            "best": best,
        }
    print(f"features: {time.perf_counter() - start:.0f} s", flush=True)

    def run(score, depth: int) -> dict[str, float]:
        """Per-query nDCG@10 after reranking each query's top ``depth`` by ``score``."""
        out = {}
        for q in qids:
            f = feats[q]
            final = score(f, depth)
            order = sorted(range(depth), key=lambda i: (-final[i], i))
            ranked = [f["cands"][i] for i in order] + f["cands"][depth:]
            out[q] = ndcg(ranked, data.qrels[q], 10)
        return out

    def maxsim(f, mask: str = "all", weighting: str = "uniform", transform=None) -> np.ndarray:
        qi = f["qids"]
        w = idf[qi] if weighting.startswith("idf") else np.ones(len(qi))
        if weighting.endswith("content") and not (punct[qi] | stop[qi]).all():
            w = np.where(punct[qi] | stop[qi], 0.0, w)
        best = f["best"][mask]
        return w @ (best if transform is None else transform(best))

    def blend(weight: float, norm=minmax, **how):
        return lambda f, d: (
            weight * norm(maxsim(f, **how)[:d]) + (1 - weight) * norm(f["fused"][:d])
        )

    def three(weight: float, share: float):
        def score(f, d):
            first = (1 - share) * minmax(f["bm25"][:d]) + share * minmax(f["dense"][:d])
            return weight * minmax(maxsim(f)[:d]) + (1 - weight) * first

        return score

    # keys: (depth, MaxSim weight, *variant); weight 0 is the hybrid alone (in "three": its
    # BM25 and dense scores re-normalised over the candidates)
    weights = [0.0, *BLEND]
    grid = list(itertools.product(DEPTHS, weights))
    transforms = {
        **{f"threshold {t}": (lambda m, t=t: np.maximum(m - t, 0.0)) for t in (0.2, 0.4, 0.6)},
        **{f"power {p}": (lambda m, p=p: np.maximum(m, 0.0) ** p) for p in (2, 4)},
    }
    families = {
        "library": {
            (d, w, n): run(blend(w, {"minmax": minmax, "zscore": zscore}[n]), d)
            for (d, w), n in itertools.product(grid, ["minmax", "zscore"])
        },
        "tokens": {
            (d, w, m, qw): run(blend(w, mask=m, weighting=qw), d)
            for (d, w), m, qw in itertools.product(grid, DOC_MASKS, QUERY_WEIGHTS)
        },
        "transform": {
            (d, w, t): run(blend(w, transform=fn), d)
            for (d, w), (t, fn) in itertools.product(grid, transforms.items())
        },
        "three": {
            (d, w, f"dense share {sh}"): run(three(w, sh), d)
            for (d, w), sh in itertools.product(grid, [0.3, 0.4, 0.45, 0.5, 0.6])
        },
    }
    for name, table in families.items():
        chosen, estimate, _ = cross_validate(table, qids, args.splits)
        pick = most_chosen(chosen, lambda c: 0 if c[1] == 0 else c[0])
        full = {c: float(np.mean(list(t.values()))) for c, t in table.items()}
        top = max(full, key=full.__getitem__)
        print(
            f"{name} ({len(table)} points): CV estimate {estimate:.4f}; most chosen {pick} "
            f"({chosen[pick]} of {2 * args.splits}), full split {full[pick]:.4f}; "
            f"best full-split point {top} {full[top]:.4f}",
            flush=True,
        )
    for mask in DOC_MASKS:
        best = max(
            (float(np.mean(list(families["tokens"][(d, w, mask, qw)].values()))), d, w, qw)
            for (d, w), qw in itertools.product(grid, QUERY_WEIGHTS)
        )
        print(f"  document tokens {mask}: best full-split {best[0]:.4f} at {best[1:]}")

    # -- why reranking gains little -----------------------------------------------------------
    hybrid_alone = run(lambda f, d: f["fused"][:d], 100)
    alone = {
        "hybrid": hybrid_alone,
        "maxsim": run(lambda f, d: maxsim(f)[:d], 100),
        "bm25": run(lambda f, d: f["bm25"][:d], 100),
        "dense": run(lambda f, d: f["dense"][:d], 100),
    }
    print(
        "each signal alone, ranking the hybrid's top 100: "
        + ", ".join(f"{k} {np.mean(list(v.values())):.4f}" for k, v in alone.items())
    )

    def spearman(a: np.ndarray, b: np.ndarray) -> float:
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        return float(np.corrcoef(ra, rb)[0, 1])

    rho = {
        other: np.mean([spearman(maxsim(feats[q])[:100], feats[q][other][:100]) for q in qids])
        for other in ("bm25", "dense", "fused")
    }
    print(
        "rank correlation of MaxSim with each first-stage score over the top 100 (mean over "
        "queries): " + ", ".join(f"{k} {v:.2f}" for k, v in rho.items())
    )
    for depth in DEPTHS:
        perfect = [
            ndcg(
                sorted(feats[q]["cands"][:depth], key=lambda c: -data.qrels[q].get(c, 0))
                + feats[q]["cands"][depth:],
                data.qrels[q],
                10,
            )
            for q in qids
        ]
        print(f"oracle reranking of the top {depth}: {np.mean(perfect):.4f}")
    norm = {"minmax": minmax, "zscore": zscore}[RERANK_DEFAULTS.get("normalization", "minmax")]
    default = run(blend(RERANK_DEFAULTS["weight"], norm), RERANK_DEFAULTS["depth"])
    diff = np.array([default[q] - hybrid_alone[q] for q in qids])
    print(
        f"library default {RERANK_DEFAULTS}: nDCG@10 {np.mean(list(default.values())):.4f}, "
        f"{diff.mean():+.4f} over the hybrid (paired standard error "
        f"{diff.std(ddof=1) / math.sqrt(len(diff)):.4f}); queries improved "
        f"{(diff > 1e-12).sum()}, worsened {(diff < -1e-12).sum()}, unchanged "
        f"{(abs(diff) <= 1e-12).sum()}"
    )


if __name__ == "__main__":
    main()
