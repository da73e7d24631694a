"""Choose Memory's recall weights on LoCoMo conversations 1-5, check them on 6-10.

Computes, once per turn and question, the three relevance views that ``Memory`` mixes
(dense cosine, BM25, MaxSim over token vectors), then replays ``Recall``'s fusion for
every weight setting on a grid: candidates are the union of the top ``depth`` by dense
and by BM25 plus their session neighbours, each view is min-max normalised over the
candidates, mixed, and optionally smoothed with the best neighbour. The setting with
the best mean of R@5 and R@10 on the tuning half is reported with its score on the
held-out half. ``ragmem eval locomo`` then measures the chosen defaults end to end.

    python benchmarks/memory_tuning.py [--data ../shared/data/locomo/locomo10.json]
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
from pathlib import Path

import numpy as np

from ragmem.embedders.local import LocalEmbedder
from ragmem.eval.locomo import Conversation, load_conversations
from ragmem.retrievers.analysis import ENGLISH_STOPWORDS
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.tokenvectors import TokenVectorStore

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "locomo" / "locomo10.json"
WORD = re.compile(r"\w+")


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = x.min(), x.max()
    return np.zeros_like(x) if hi - lo < 1e-12 else (x - lo) / (hi - lo)


def features(conv: Conversation, embedder: LocalEmbedder) -> list[dict]:
    texts = [f"{t.date_time}: {t.memory_text()}" for t in conv.turns]
    ids = [t.id for t in conv.turns]
    dense = embedder.embed(texts)
    tokens = TokenVectorStore(embedder.dimensions, encoding="int8")
    tokens.put(ids, embedder.embed_tokens(texts))
    bm25 = BM25Retriever()
    bm25.add(ids, texts)
    session = [t.session for t in conv.turns]
    neighbours = [
        [j for j in (i - 1, i + 1) if 0 <= j < len(ids) and session[j] == session[i]]
        for i in range(len(ids))
    ]
    out = []
    for q in conv.questions:
        if not q.evidence:
            continue
        qv = embedder.embed_query(q.question)
        content = " ".join(
            w for w in WORD.findall(q.question) if w.casefold() not in ENGLISH_STOPWORDS
        )
        qt = embedder.embed_tokens([content or q.question], purpose="query")[0]
        out.append(
            {
                "category": q.category,
                "gold": {ids.index(e) for e in q.evidence},
                "dense": dense @ qv,
                "bm25": np.asarray(bm25.score(q.question, ids)),
                "late": tokens.maxsim(qt, ids).astype(np.float64),
                "neighbours": neighbours,
            }
        )
    return out


def rank(f: dict, w: tuple[float, float, float, float], depth: int) -> list[int]:
    dense, bm25, late = f["dense"], f["bm25"], f["late"]
    cand = set(np.argsort(-dense, kind="stable")[:depth].tolist())
    positive = np.flatnonzero(bm25 > 0)
    cand |= set(positive[np.argsort(-bm25[positive], kind="stable")[:depth]].tolist())
    if w[3] > 0:
        for i in list(cand):
            cand.update(f["neighbours"][i])
    idx = np.array(sorted(cand))
    rel = w[0] * minmax(dense[idx]) + w[1] * minmax(bm25[idx]) + w[2] * minmax(late[idx])
    if w[3] > 0:
        pos = {int(i): p for p, i in enumerate(idx)}
        smooth = rel.copy()
        for p, i in enumerate(idx):
            around = [rel[pos[j]] for j in f["neighbours"][int(i)] if j in pos]
            if around:
                smooth[p] = (1 - w[3]) * rel[p] + w[3] * max(around)
        rel = smooth
    order = sorted(range(len(idx)), key=lambda p: (-rel[p], p))
    return [int(idx[p]) for p in order[:10]]


def score(
    questions: list[dict], w: tuple[float, float, float, float], depth: int
) -> tuple[float, float]:
    r5 = r10 = 0.0
    for f in questions:
        top = rank(f, w, depth)
        r5 += len(f["gold"].intersection(top[:5])) / len(f["gold"])
        r10 += len(f["gold"].intersection(top[:10])) / len(f["gold"])
    return 100 * r5 / len(questions), 100 * r10 / len(questions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--depth", type=int, default=100)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"LoCoMo data not found at {args.data}")
    embedder = LocalEmbedder()
    conversations = load_conversations(args.data)
    started = time.perf_counter()
    per_conv = [features(c, embedder) for c in conversations]
    print(
        f"features for {len(conversations)} conversations in {time.perf_counter() - started:.0f} s"
    )
    tune = [f for fs in per_conv[:5] for f in fs]
    held = [f for fs in per_conv[5:] for f in fs]
    steps = [x / 10 for x in range(11)]
    grid = [
        (d, lex, round(1 - d - lex, 1), n)
        for d, lex in itertools.product(steps, steps)
        if d + lex <= 1.0 + 1e-9
        for n in (0.0, 0.1, 0.2, 0.3, 0.4)
    ]
    results = []
    for w in grid:
        r5, r10 = score(tune, w, args.depth)
        results.append(((r5 + r10) / 2, r5, r10, w))
    results.sort(reverse=True)
    print("best on conversations 1-5 (dense, lexical, late, neighbours): mean R@5 R@10")
    for mean, r5, r10, w in results[:8]:
        print(f"  {w}  {mean:.2f}  {r5:.2f}  {r10:.2f}")
    best = results[0][3]
    h5, h10 = score(held, best, args.depth)
    print(
        f"chosen {best}: tuning half R@5 {results[0][1]:.2f} R@10 {results[0][2]:.2f}; "
        f"held-out half R@5 {h5:.2f} R@10 {h10:.2f}"
    )
    for name, w in [
        ("dense only", (1, 0, 0, 0)),
        ("bm25 only", (0, 1, 0, 0)),
        ("maxsim only", (0, 0, 1, 0)),
    ]:
        print(
            f"{name:12} tuning {score(tune, w, args.depth)}  held-out {score(held, w, args.depth)}"
        )


if __name__ == "__main__":
    main()
