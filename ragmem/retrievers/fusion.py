"""Rank fusion: combine ranked hit lists from several retrievers into one, by id.

Pure functions shared by the sync and async paths of ``HybridRetriever``, so both give
identical results. Sums use ``math.fsum`` (exactly rounded), so the fused score of a
document does not depend on the order the lists are given in.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Literal, get_args

from ragmem.errors import ConfigurationError
from ragmem.types import Hit

__all__ = ["FUSIONS", "Fusion", "fuse", "normalize"]

Fusion = Literal["rrf", "minmax", "zscore", "dbsf"]
FUSIONS: tuple[str, ...] = get_args(Fusion)


def normalize(scores: Sequence[float], method: str, floor: float | None = None) -> list[float]:
    """Scores of one list mapped to a common scale.

    ``minmax``: to [0, 1]. ``zscore``: to mean 0, standard deviation 1. ``dbsf``
    (distribution-based score fusion): min-max between mean - 3 sd and mean + 3 sd,
    clipped to [0, 1]. A list whose scores are all equal maps to 1.0 (minmax, dbsf)
    or 0.0 (zscore): every member is as good as the best.

    ``floor`` is the score of a document that does not match at all (0 for BM25):
    ``minmax`` then maps it, not the list's lowest score, to 0. A short list keeps its
    proportions (BM25 scores 10 and 9 become 1.0 and 0.9, not 1.0 and 0.0).
    """
    if not scores:
        return []
    if method == "minmax":
        low, high = min(scores), max(scores)
        if floor is not None:
            low = min(low, floor)
        if high - low <= 0:
            return [1.0] * len(scores)
        return [(s - low) / (high - low) for s in scores]
    mean = math.fsum(scores) / len(scores)
    sd = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores))
    if method == "zscore":
        return [(s - mean) / sd if sd > 0 else 0.0 for s in scores]
    if method == "dbsf":
        if sd <= 0:
            return [1.0] * len(scores)
        low = mean - 3 * sd
        return [min(1.0, max(0.0, (s - low) / (6 * sd))) for s in scores]
    raise ConfigurationError(f"unknown normalisation {method!r}; use minmax, zscore or dbsf")


def _best_first(item: tuple[float, str]) -> tuple[float, str]:
    return -item[0], item[1]


def fuse(
    lists: Sequence[Sequence[Hit]],
    names: Sequence[str],
    *,
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    rrf_k: float = 60.0,
    floors: Sequence[float | None] | None = None,
    limit: int | None = None,
) -> list[Hit]:
    """One ranked list, deduplicated by id, best first (ties broken by id).

    Args:
        lists: each retriever's hits, best first.
        names: one name per list, used as the keys of each fused hit's ``explain``.
        fusion: ``"rrf"`` (sum of ``w / (rrf_k + rank)``), or a convex combination
            ``sum(w * normalised score)`` with ``"minmax"``, ``"zscore"`` or ``"dbsf"``
            normalisation. A document missing from a list gets nothing from it under
            rrf, minmax and dbsf, and that list's lowest normalised score under zscore.
        weights: one per list (default all 1.0); for the convex fusions they are
            rescaled to sum to 1.
        rrf_k: the RRF constant.
        floors: per list, the score of a non-matching document for ``minmax`` (see
            ``normalize``); None where unknown.
        limit: keep only the best ``limit`` (default all); the same hits as cutting the
            full list, without building the hits that would be cut.
    """
    if fusion not in FUSIONS:
        raise ConfigurationError(f"unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}")
    if len(names) != len(lists):
        raise ConfigurationError(f"{len(names)} names for {len(lists)} hit lists")
    w = [1.0] * len(lists) if weights is None else [float(x) for x in weights]
    if len(w) != len(lists) or any(not math.isfinite(x) or x < 0 for x in w):
        raise ConfigurationError(f"need {len(lists)} finite non-negative weights, got {weights}")
    if fusion != "rrf":
        total = math.fsum(w)
        if total <= 0:
            raise ConfigurationError("weights sum to zero")
        w = [x / total for x in w]
    lows = [None] * len(lists) if floors is None else list(floors)
    if len(lows) != len(lists):
        raise ConfigurationError(f"{len(lows)} floors for {len(lists)} hit lists")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"limit must be a non-negative integer, got {limit!r}")
    parts: dict[str, list[float]] = {}
    # per id: (list index, rank, score, normalised score); explain is built for kept hits only
    found: dict[str, list[tuple[int, int, float, float]]] = {}
    first: dict[str, Hit] = {}
    worst: list[float] = []  # each list's lowest normalised score (zscore)
    for index, (hits, weight, low) in enumerate(zip(lists, w, lows)):
        seen: set[str] = set()
        unique = [h for h in hits if not (h.id in seen or seen.add(h.id))]  # type: ignore[func-returns-value]
        normalised = (
            normalize([h.score for h in unique], fusion, low)
            if fusion != "rrf"
            else [0.0] * len(unique)
        )
        worst.append(min(normalised) if fusion == "zscore" and normalised else 0.0)
        for rank, (hit, norm) in enumerate(zip(unique, normalised), start=1):
            value = weight / (rrf_k + rank) if fusion == "rrf" else weight * norm
            parts.setdefault(hit.id, []).append(value)
            found.setdefault(hit.id, []).append((index, rank, hit.score, norm))
            if hit.id not in first or (first[hit.id].text is None and hit.text is not None):
                first[hit.id] = hit
    if fusion == "zscore":
        # a list that missed a document contributes its worst normalised score
        for id_, entries in found.items():
            present = {entry[0] for entry in entries}
            for index, (weight, floor) in enumerate(zip(w, worst)):
                if index not in present:
                    parts[id_].append(weight * floor)
    fused = [(math.fsum(values), id_) for id_, values in parts.items()]
    if limit is None or limit >= len(fused):
        fused.sort(key=_best_first)
    else:
        fused = heapq.nsmallest(limit, fused, key=_best_first)
    out = []
    for score, id_ in fused:
        src = first[id_]
        explain: dict[str, dict[str, float | int]] = {}
        for index, rank, raw, norm in sorted(found[id_]):
            entry: dict[str, float | int] = {"rank": rank, "score": raw}
            if fusion != "rrf":
                entry["normalized"] = norm
            explain[names[index]] = entry
        out.append(
            Hit(
                id=id_,
                score=score,
                text=src.text,
                metadata=dict(src.metadata),
                explain={"fusion": fusion, "retrievers": explain},
            )
        )
    return out
