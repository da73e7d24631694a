"""An incremental inverted index with Lucene BM25 scoring, in numpy.

Documents live in integer slots. Each ``add`` writes one immutable *segment* (postings
sorted by term, then slot) covering a contiguous range of new slots, so adding never
rebuilds what exists; small segments are merged into their neighbours in the
background of later adds (a log-structured merge, amortised O(P log P)). Deleting
tombstones a slot and corrects the collection statistics at once; the dead postings
are dropped at the next merge. Scores are computed at query time from live
statistics, so BM25 stays exact after any sequence of adds and deletes.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["InvertedIndex", "Segment", "best"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# Merge the newest segment into its predecessor while it holds at least this
# fraction of the predecessor's postings: keeps O(log n) segments.
_MERGE_RATIO = 0.25
# Per-term score arrays kept between writes (16 bytes per posting): bounds the cache.
_CACHE_POSTINGS = 8_000_000


@dataclass
class Segment:
    """Postings of the slots ``base .. base + n_slots - 1``.

    ``term_ptr[t]:term_ptr[t + 1]`` indexes the postings of term ``t`` in ``docs`` and
    ``tfs`` (slots ascending); ``fwd_ptr``/``fwd_terms`` hold each slot's distinct terms.
    """

    base: int
    n_slots: int
    term_ptr: Ints
    docs: npt.NDArray[np.int32]
    tfs: npt.NDArray[np.float32]
    fwd_ptr: Ints
    fwd_terms: npt.NDArray[np.int32]

    @property
    def n_postings(self) -> int:
        return int(self.docs.shape[0])

    @classmethod
    def build(cls, base: int, n_slots: int, slots: Ints, terms: Ints, n_terms: int) -> Segment:
        """From one (slot, term) pair per token occurrence (slots absolute)."""
        width = max(n_slots, 1)  # one key per (term, slot) pair
        keys, counts = np.unique(terms * width + (slots - base), return_counts=True)
        return cls.from_postings(base, n_slots, keys // width, keys % width + base, counts, n_terms)

    @classmethod
    def from_postings(
        cls,
        base: int,
        n_slots: int,
        terms: Ints,
        slots: Ints,
        tfs: npt.NDArray[np.generic],
        n_terms: int,
    ) -> Segment:
        """From postings already sorted by (term, slot)."""
        term_ptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(np.bincount(terms, minlength=n_terms), out=term_ptr[1:])
        # postings come sorted by (term, slot): a stable sort by slot gives (slot, term)
        by_slot = np.argsort(slots, kind="stable")
        fwd_ptr = np.zeros(n_slots + 1, np.int64)
        np.cumsum(np.bincount(slots - base, minlength=n_slots), out=fwd_ptr[1:])
        return cls(
            base,
            n_slots,
            term_ptr,
            slots.astype(np.int32),
            np.asarray(tfs, np.float32),
            fwd_ptr,
            terms[by_slot].astype(np.int32),
        )

    def expanded_terms(self) -> Ints:
        """The term of every posting (the inverse of ``term_ptr``)."""
        return np.repeat(np.arange(len(self.term_ptr) - 1, dtype=np.int64), np.diff(self.term_ptr))

    def terms_of(self, slot: int) -> npt.NDArray[np.int32]:
        """Distinct terms of one slot of this segment."""
        i = slot - self.base
        return self.fwd_terms[self.fwd_ptr[i] : self.fwd_ptr[i + 1]]


class InvertedIndex:
    """Postings, document lengths and document frequencies for BM25.

    Args:
        k1: term-frequency saturation.
        b: document-length normalisation (0 = none, 1 = full).
    """

    def __init__(self, *, k1: float, b: float) -> None:
        self.k1 = k1
        self.b = b
        self.n_terms = 0
        self.n_slots = 0
        self.segments: list[Segment] = []
        self.doc_len = np.zeros(0, np.float64)
        self.alive = np.zeros(0, np.bool_)
        self.df = np.zeros(0, np.int64)
        self.n_alive = 0
        self.total_len = 0.0
        self._norm: Floats | None = None
        self._cache: dict[int, tuple[Ints, Floats]] = {}
        self._cached_postings = 0

    def _changed(self) -> None:
        # statistics moved: every cached score is stale
        self._norm = None
        self._cache = {}
        self._cached_postings = 0

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The index as arrays (after ``merge_all`` or ``compact``: one segment or none)."""
        out: dict[str, npt.NDArray[Any]] = {
            "doc_len": self.doc_len[: self.n_slots],
            "alive": self.alive[: self.n_slots],
        }
        if self.segments:
            segment = self.segments[0]
            out.update(terms=segment.expanded_terms(), docs=segment.docs, tfs=segment.tfs)
        return out

    def restore(self, arrays: dict[str, npt.NDArray[Any]], n_slots: int, n_terms: int) -> None:
        """Take the state ``arrays`` gave (into an empty index).

        Raises:
            ValueError: the arrays disagree with each other or with the counts.
        """
        if len(arrays["doc_len"]) != n_slots or len(arrays["alive"]) != n_slots:
            raise ValueError("slot arrays disagree in length")
        self.grow_terms(n_terms)
        self._reserve(n_slots)
        self.n_slots = n_slots
        self.doc_len[:n_slots] = arrays["doc_len"]
        self.alive[:n_slots] = arrays["alive"]
        if "terms" in arrays:
            terms = arrays["terms"].astype(np.int64)
            docs = arrays["docs"].astype(np.int64)
            if terms.size and (terms.max() >= n_terms or docs.max() >= n_slots):
                raise ValueError("posting refers to an unknown term or slot")
            segment = Segment.from_postings(0, n_slots, terms, docs, arrays["tfs"], self.n_terms)
            self.segments = [segment]
            self.df[: self.n_terms] = np.diff(segment.term_ptr)
        self.n_alive = int(self.alive[:n_slots].sum())
        self.total_len = float(self.doc_len[:n_slots][self.alive[:n_slots]].sum())

    # -- writes -------------------------------------------------------------------------------

    def grow_terms(self, n_terms: int) -> None:
        """Make room for term ids below ``n_terms``."""
        if n_terms > len(self.df):
            df = np.zeros(max(n_terms, 2 * len(self.df)), np.int64)
            df[: len(self.df)] = self.df
            self.df = df
        self.n_terms = max(self.n_terms, n_terms)

    def add(self, lengths: Ints, terms: Ints) -> Ints:
        """Index new documents; ``terms`` holds every kept token's term id, doc by doc.

        Returns the slots given to the documents, in order.
        """
        m = len(lengths)
        base = self.n_slots
        slots = np.arange(base, base + m, dtype=np.int64)
        self._reserve(base + m)
        token_slots = np.repeat(slots, lengths)
        segment = Segment.build(base, m, token_slots, terms, self.n_terms)
        self.segments.append(segment)
        self.df[: self.n_terms] += np.diff(segment.term_ptr)
        self.doc_len[base : base + m] = lengths
        self.alive[base : base + m] = True
        self.n_slots += m
        self.n_alive += m
        self.total_len += float(lengths.sum())
        self._changed()
        self._maybe_merge()
        return slots

    def delete(self, slots: Sequence[int]) -> None:
        """Tombstone live slots and remove them from the statistics."""
        bases = [s.base for s in self.segments]
        for slot in slots:
            if not self.alive[slot]:
                continue
            segment = self.segments[bisect.bisect_right(bases, slot) - 1]
            self.df[segment.terms_of(slot)] -= 1
            self.alive[slot] = False
            self.n_alive -= 1
            self.total_len -= float(self.doc_len[slot])
        self._changed()

    def _reserve(self, size: int) -> None:
        if size <= len(self.alive):
            return
        capacity = max(size, 2 * len(self.alive), 64)
        for name in ("doc_len", "alive"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _maybe_merge(self) -> None:
        while (
            len(self.segments) > 1
            and self.segments[-1].n_postings >= _MERGE_RATIO * self.segments[-2].n_postings
        ):
            last = self.segments.pop()
            self.segments[-1] = self._merge([self.segments[-1], last])

    def merge_all(self) -> None:
        """Merge every segment into one and drop dead postings (search gets a little faster)."""
        if len(self.segments) > 1 or (self.segments and not self.alive[: self.n_slots].all()):
            self.segments = [self._merge(self.segments)]

    def compact(self) -> Ints:
        """Renumber the live slots ``0..n_alive-1`` (order kept) and drop dead postings.

        Returns the old slot of each new slot.
        """
        n = self.n_slots
        live = np.flatnonzero(self.alive[:n])
        renumber = np.full(n, -1, np.int64)
        renumber[live] = np.arange(len(live))
        if self.segments:
            terms = np.concatenate([p.expanded_terms() for p in self.segments])
            slots = np.concatenate([p.docs for p in self.segments]).astype(np.int64)
            tfs = np.concatenate([p.tfs for p in self.segments])
            keep = self.alive[slots]
            terms, slots, tfs = terms[keep], renumber[slots[keep]], tfs[keep]
            order = np.argsort(terms * max(len(live), 1) + slots, kind="stable")
            self.segments = [
                Segment.from_postings(
                    0, len(live), terms[order], slots[order], tfs[order], self.n_terms
                )
            ]
        self.doc_len = self.doc_len[live].copy()
        self.alive = np.ones(len(live), np.bool_)
        self.n_slots = len(live)
        self._changed()
        return live

    def _merge(self, parts: list[Segment]) -> Segment:
        base = parts[0].base
        n_slots = sum(p.n_slots for p in parts)
        terms = np.concatenate([p.expanded_terms() for p in parts])
        slots = np.concatenate([p.docs for p in parts]).astype(np.int64)
        tfs = np.concatenate([p.tfs for p in parts])
        keep = self.alive[slots]
        terms, slots, tfs = terms[keep], slots[keep], tfs[keep]
        order = np.argsort(terms * n_slots + (slots - base), kind="stable")
        return Segment.from_postings(
            base, n_slots, terms[order], slots[order], tfs[order], self.n_terms
        )

    # -- scoring ------------------------------------------------------------------------------

    def idf(self, terms: Ints) -> Floats:
        """Lucene's idf: ``log(1 + (N - df + 0.5) / (df + 0.5))``, always positive."""
        df = self.df[terms].astype(np.float64)
        idf: Floats = np.log1p((self.n_alive - df + 0.5) / (df + 0.5))
        return idf

    def _length_norm(self) -> Floats:
        if self._norm is None:
            avgdl = self.total_len / self.n_alive if self.n_alive else 1.0
            avgdl = max(avgdl, 1e-9)
            self._norm = self.k1 * (1.0 - self.b + self.b * self.doc_len[: self.n_slots] / avgdl)
        return self._norm

    def term_postings(self, term: int) -> tuple[Ints, Floats]:
        """(slots, BM25 contributions) of one term, cached until the next write.

        Lucene's BM25: ``idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))``.
        """
        cached = self._cache.get(term)
        if cached is not None:
            return cached
        slot_parts = []
        tf_parts = []
        for segment in self.segments:
            ptr = segment.term_ptr
            if term < len(ptr) - 1 and ptr[term] < ptr[term + 1]:
                slot_parts.append(segment.docs[ptr[term] : ptr[term + 1]])
                tf_parts.append(segment.tfs[ptr[term] : ptr[term + 1]])
        if not slot_parts:
            result = (np.zeros(0, np.int64), np.zeros(0, np.float64))
        else:
            slots = np.concatenate(slot_parts).astype(np.int64)
            tfs = np.concatenate(tf_parts).astype(np.float64)
            idf = self.idf(np.array([term]))[0]
            result = (slots, idf * tfs / (tfs + self._length_norm()[slots]))
        if self._cached_postings + len(result[0]) <= _CACHE_POSTINGS:
            self._cache[term] = result
            self._cached_postings += len(result[0])
        return result

    def postings(self, terms: Ints) -> tuple[Ints, Floats]:
        """(slots, contributions) of every posting of ``terms`` (a repeated term counts again)."""
        parts = [self.term_postings(t) for t in terms.tolist() if t < self.n_terms]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        if len(parts) == 1:
            return parts[0]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def scores(self, terms: Ints) -> Floats:
        """Dense BM25 scores over all slots (0 where no query term occurs)."""
        slots, contrib = self.postings(terms)
        scores: Floats = np.bincount(slots, weights=contrib, minlength=self.n_slots).astype(
            np.float64, copy=False
        )
        return scores


def best(scores: Floats, allowed: npt.NDArray[np.bool_], k: int) -> tuple[Ints, Floats]:
    """Top ``k`` slots among positive, allowed ``scores``; ties go to the lower slot."""
    cand = np.flatnonzero((scores > 0) & allowed)
    values = scores[cand]
    if len(cand) > k:
        threshold = values[np.argpartition(-values, k - 1)[k - 1]]
        # keep everything tied with the k-th score so ties resolve by slot
        keep = values >= threshold
        cand, values = cand[keep], values[keep]
    order = np.lexsort((cand, -values))[:k]
    return cand[order], values[order]
