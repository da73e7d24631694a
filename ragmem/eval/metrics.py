"""Ranking metrics with the trec_eval definitions that BEIR reports.

Each function scores one query: ``ranked`` is the retrieved doc ids best first,
``qrels`` maps doc id to graded relevance (> 0 is relevant; 0 or below is judged
non-relevant). ``evaluate`` averages over queries the way BEIR does (over the
queries that have judgements).

- nDCG@k: gain is the relevance grade (trec_eval ``ndcg_cut``, not ``2^rel - 1``),
  discount ``1 / log2(rank + 1)``; the ideal ranking sorts all judged grades.
- recall@k: relevant docs in the top k over all relevant docs.
- MRR@k: reciprocal rank of the first relevant doc in the top k (0 if none).
- AP@k: sum of precision at each relevant rank <= k, over the number of relevant
  docs (trec_eval ``map_cut``; ``k=None`` is plain MAP).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ragmem.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["average_precision", "evaluate", "mrr", "ndcg", "recall"]


def _cut(ranked: Sequence[str], k: int | None) -> Sequence[str]:
    if k is not None and (not isinstance(k, int) or k < 1):
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return ranked if k is None else ranked[:k]


def ndcg(ranked: Sequence[str], qrels: Mapping[str, int], k: int | None = 10) -> float:
    """Normalised discounted cumulative gain at ``k``.

    Example:
        >>> round(ndcg(["a", "b"], {"b": 1}, k=10), 4)
        0.6309
    """
    top = _cut(ranked, k)
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(top))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)
    ideal = ideal if k is None else ideal[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: Sequence[str], qrels: Mapping[str, int], k: int | None = 100) -> float:
    """Fraction of the relevant docs found in the top ``k``."""
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_cut(ranked, k))) / len(relevant)


def mrr(ranked: Sequence[str], qrels: Mapping[str, int], k: int | None = 10) -> float:
    """Reciprocal rank of the first relevant doc within the top ``k``."""
    for i, d in enumerate(_cut(ranked, k)):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def average_precision(
    ranked: Sequence[str], qrels: Mapping[str, int], k: int | None = None
) -> float:
    """Average precision at ``k`` (trec_eval ``map_cut``); ``k=None`` for uncut AP."""
    n_relevant = sum(1 for g in qrels.values() if g > 0)
    if n_relevant == 0:
        return 0.0
    found = 0
    total = 0.0
    for i, d in enumerate(_cut(ranked, k)):
        if qrels.get(d, 0) > 0:
            found += 1
            total += found / (i + 1)
    return total / n_relevant


def evaluate(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Iterable[int] = (10, 100),
) -> dict[str, float]:
    """Mean ``ndcg@k``, ``recall@k``, ``mrr@k`` and ``map@k`` for each k over judged queries.

    Queries in ``qrels`` that are missing from ``run`` count as retrieving nothing.

    Example:
        >>> evaluate({"q": ["a", "b"]}, {"q": {"b": 1}}, ks=[1])
        {'ndcg@1': 0.0, 'recall@1': 0.0, 'mrr@1': 0.0, 'map@1': 0.0}
    """
    queries = [q for q, judged in qrels.items() if any(g > 0 for g in judged.values())]
    if not queries:
        raise InvalidInputError("qrels hold no query with a relevant document")
    out: dict[str, float] = {}
    for k in ks:
        for name, metric in (
            ("ndcg", ndcg),
            ("recall", recall),
            ("mrr", mrr),
            ("map", average_precision),
        ):
            values = [metric(run.get(q, []), qrels[q], k) for q in queries]
            out[f"{name}@{k}"] = sum(values) / len(values)
    return out
