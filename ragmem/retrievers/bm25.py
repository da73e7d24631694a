"""BM25Retriever: incremental lexical search with Lucene BM25, filters and persistence."""

from __future__ import annotations

import threading
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.columns import MetadataColumns
from ragmem.errors import (
    ConfigurationError,
    CorruptIndexError,
    InvalidInputError,
    NotFoundError,
)
from ragmem.filters import Filter, FilterLike, parse_filter
from ragmem.retrievers.analysis import Analyzer, TextAnalyzer
from ragmem.retrievers.base import Retriever, _check_query
from ragmem.retrievers.inverted import InvertedIndex, Segment, best
from ragmem.retrievers.journal import JournalOp, SavedFiles, new_generation, read_journal
from ragmem.retrievers.persist import read_snapshot, write_snapshot
from ragmem.stores.base import check_ids
from ragmem.types import Hit, Metadata, validate_metadata

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    import numpy.typing as npt

__all__ = ["BM25Retriever"]

_FORMAT = "ragmem-bm25/1"
_WORD_CACHE_LIMIT = 2_000_000
# Deleted and replaced documents leave dead slots; once they outnumber the live ones (and
# this floor) they are reclaimed, so the cost is amortised over as many writes.
_COMPACT_FLOOR = 1024


class BM25Retriever(Retriever):
    """Lexical retrieval with Lucene's BM25 over an index that updates in place.

    ``add`` with an existing id replaces that document; ``delete`` removes by ids or
    filter. Neither rebuilds the index. Filters use the one filter language and are
    applied before top-k: only documents that match the filter and contain a query
    term are returned. Equal scores rank in insertion order (a replaced document
    counts as newly inserted).

    Args:
        k1: term-frequency saturation (Lucene's default 1.2).
        b: length normalisation (Lucene's default 0.75).
        tokenizer: any ``text -> list[str]`` callable; default ``TextAnalyzer()``
            (unicode words, Lucene's English stopwords, Snowball English stemming).
        store_texts: keep texts so hits carry them.

    Example:
        >>> bm25 = BM25Retriever()
        >>> bm25.add(["a", "b"], ["cats purr softly", "dogs bark loudly"],
        ...          metadata=[{"kind": "cat"}, {"kind": "dog"}])
        >>> [h.id for h in bm25.retrieve("barking dogs", k=5)]
        ['b']
        >>> bm25.retrieve("dogs", k=5, where={"kind": "cat"})
        []
    """

    score_floor = 0.0  # a document sharing no term with the query scores 0

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        tokenizer: Analyzer | None = None,
        store_texts: bool = True,
    ) -> None:
        if not k1 >= 0:
            raise ConfigurationError(f"k1 must be >= 0, got {k1}")
        if not 0 <= b <= 1:
            raise ConfigurationError(f"b must be in [0, 1], got {b}")
        self.tokenizer: Analyzer = tokenizer if tokenizer is not None else TextAnalyzer()
        self.store_texts = store_texts
        self._index = InvertedIndex(k1=k1, b=b)
        self._lock = threading.RLock()
        self._vocab: dict[str, int] = {}
        self._word_ids: dict[str, int] = {}  # case-folded word -> term id (-1: dropped)
        self._ids: list[str | None] = []
        self._texts: list[str | None] = []
        self._metadata: list[Metadata] = []
        self._slot_of: dict[str, int] = {}
        self._columns = MetadataColumns()
        # after a save or load: the files, and the writes made since (for incremental saves)
        self._saved: SavedFiles | None = None
        self._journal: list[JournalOp] = []

    @property
    def k1(self) -> float:
        """Term-frequency saturation."""
        return self._index.k1

    @property
    def b(self) -> float:
        """Length normalisation."""
        return self._index.b

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._slot_of

    @property
    def slots(self) -> int:
        """Slots in use: live documents plus deleted or replaced ones not yet compacted."""
        return self._index.n_slots

    # -- writes -------------------------------------------------------------------------------

    def add(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[Metadata] | None = None,
    ) -> None:
        """Index documents; an id already present is replaced whole (text and metadata).

        Raises:
            InvalidInputError: ids are not unique non-empty strings, a text is not a
                string, metadata is invalid, or the lengths differ.
        """
        id_list = check_ids(ids)
        text_list = list(texts) if not isinstance(texts, str) else None
        if text_list is None:
            raise InvalidInputError("texts must be a sequence of strings, not a single string")
        if len(text_list) != len(id_list):
            raise InvalidInputError(f"got {len(text_list)} texts for {len(id_list)} ids")
        for i, text in enumerate(text_list):
            if not isinstance(text, str):
                raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, expected str")
        if metadata is None:
            metas: list[Metadata] = [{} for _ in id_list]
        else:
            metas = [validate_metadata(m) for m in metadata]
            if len(metas) != len(id_list):
                raise InvalidInputError(f"got {len(metas)} metadata dicts for {len(id_list)} ids")
        if not id_list:
            return
        with self._lock:
            lengths, terms = self._analyze(text_list)
            self._index.grow_terms(len(self._vocab))
            self._delete_slots([s for s in map(self._slot_of.get, id_list) if s is not None])
            slots = self._index.add(lengths, terms)
            for id_, slot, text, meta in zip(id_list, slots.tolist(), text_list, metas):
                self._ids.append(id_)
                self._texts.append(text if self.store_texts else None)
                self._metadata.append(meta)
                self._slot_of[id_] = slot
                if meta:
                    self._columns.set(slot, meta)
            self._maybe_compact()
            if self._saved is not None:
                self._journal.append(("add", id_list, text_list, metas))

    def delete(self, ids: Sequence[str] | None = None, *, where: FilterLike | None = None) -> int:
        """Delete by ids or by filter (exactly one); returns how many existed."""
        if (ids is None) == (where is None):
            raise InvalidInputError("pass exactly one of ids or where")
        with self._lock:
            if ids is not None:
                found = map(self._slot_of.get, check_ids(ids, unique=False))
                slots = [s for s in found if s is not None]
            else:
                slots = np.flatnonzero(self._allowed(parse_filter(where))).tolist()
            slots = sorted(set(slots))
            if self._saved is not None and slots:
                self._journal.append(("delete", [self._ids[s] or "" for s in slots], [], []))
            self._delete_slots(slots)
            self._maybe_compact()
            return len(slots)

    def compact(self) -> None:
        """Reclaim the slots of deleted and replaced documents (results are unchanged).

        Runs by itself once dead slots outnumber live ones, and on ``save``.
        """
        with self._lock:
            if self._index.n_alive == self._index.n_slots:
                self._index.merge_all()
                return
            live = self._index.compact().tolist()
            self._ids = [self._ids[s] for s in live]
            self._texts = [self._texts[s] for s in live]
            self._metadata = [self._metadata[s] for s in live]
            self._slot_of = {id_: slot for slot, id_ in enumerate(self._ids) if id_ is not None}
            self._columns = MetadataColumns.of_rows(self._metadata)

    def _maybe_compact(self) -> None:
        dead = self._index.n_slots - self._index.n_alive
        if dead > max(self._index.n_alive, _COMPACT_FLOOR):
            self.compact()

    def _delete_slots(self, slots: list[int]) -> None:
        self._index.delete(slots)
        for slot in slots:
            id_ = self._ids[slot]
            if id_ is not None:
                del self._slot_of[id_]
            self._ids[slot] = None
            self._texts[slot] = None
            if self._metadata[slot]:
                self._columns.clear(slot)
            self._metadata[slot] = {}

    def _analyze(self, texts: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Term ids of every kept token, doc by doc, and each doc's kept-token count."""
        tokenizer = self.tokenizer
        if isinstance(tokenizer, TextAnalyzer):
            # analyse each distinct word once: most of a corpus is repeats
            per_doc = [tokenizer.words(t) for t in texts]
            flat = list(chain.from_iterable(per_doc))
            cache = self._word_ids
            new = list(set(flat).difference(cache))
            for word, term in zip(new, tokenizer.terms(new)):
                cache[word] = -1 if term is None else self._term_id(term)
            raw = np.fromiter(map(cache.__getitem__, flat), np.int64, len(flat))
            if len(cache) > _WORD_CACHE_LIMIT:
                cache.clear()
        else:
            per_doc = [tokenizer(t) for t in texts]
            flat = list(chain.from_iterable(per_doc))
            raw = np.fromiter(map(self._term_id, flat), np.int64, len(flat))
        doc_of = np.repeat(np.arange(len(texts)), [len(w) for w in per_doc])
        keep = raw >= 0
        lengths = np.bincount(doc_of[keep], minlength=len(texts)).astype(np.int64)
        return lengths, raw[keep]

    def _term_id(self, term: str) -> int:
        return self._vocab.setdefault(term, len(self._vocab))

    def _query_terms(self, query: str) -> npt.NDArray[np.int64]:
        """Known term ids of the query (unknown terms score nothing and grow nothing)."""
        tokenizer = self.tokenizer
        if isinstance(tokenizer, TextAnalyzer):
            out = []
            for word in tokenizer.words(query):
                tid = self._word_ids.get(word)
                if tid is None:
                    term = tokenizer.term(word)
                    tid = -1 if term is None else self._vocab.get(term, -1)
                if tid >= 0:
                    out.append(tid)
        else:
            out = [t for t in map(self._vocab.get, tokenizer(query)) if t is not None]
        return np.asarray(out, np.int64)

    # -- reads --------------------------------------------------------------------------------

    def _allowed(self, where: Filter | None) -> npt.NDArray[np.bool_]:
        n = self._index.n_slots
        alive = self._index.alive[:n]
        if where is None:
            return alive
        mask: npt.NDArray[np.bool_] = self._columns.evaluate(where, n) & alive
        return mask

    def count(self, where: FilterLike | None = None) -> int:
        """Number of documents, or of documents matching ``where``."""
        with self._lock:
            return int(self._allowed(parse_filter(where)).sum())

    def _retrieve(self, query: str, k: int, where: Filter | None) -> list[Hit]:
        return self._search([query], k, where)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, *, where: FilterLike | None = None
    ) -> list[list[Hit]]:
        """``retrieve`` for many queries (same results; the filter is evaluated once)."""
        if isinstance(queries, str):
            raise InvalidInputError("queries must be a sequence of strings, not a single string")
        for query in queries:
            _check_query(query, k)
        return self._search(list(queries), k, parse_filter(where))

    def _search(self, queries: list[str], k: int, where: Filter | None) -> list[list[Hit]]:
        with self._lock:
            index = self._index
            allowed = self._allowed(where)
            results: list[list[Hit]] = []
            # one small dense score vector per query: measured faster than one bincount
            # over a (queries x slots) block, whose size defeats the CPU caches
            for query in queries:
                slots, contrib = index.postings(self._query_terms(query))
                scores = np.bincount(slots, weights=contrib, minlength=index.n_slots)
                top, values = best(scores.astype(np.float64, copy=False), allowed, k)
                results.append(self._hits(top.tolist(), values.tolist()))
            return results

    def _hits(self, slots: list[int], scores: list[float]) -> list[Hit]:
        ids, texts, metas = self._ids, self._texts, self._metadata
        return [
            Hit(
                id=ids[slot],
                score=score,
                text=texts[slot],
                metadata=dict(metas[slot]),
                explain={"bm25": score},
            )
            for slot, score in zip(slots, scores)
        ]

    def score(self, query: str, ids: Sequence[str]) -> list[float]:
        """BM25 scores of the given documents for ``query`` (0.0 where no term occurs).

        For fusion and reranking: scores documents that another retriever found.

        Raises:
            NotFoundError: some ids are not indexed.
        """
        id_list = check_ids(ids, unique=False)
        with self._lock:
            missing = [i for i in id_list if i not in self._slot_of]
            if missing:
                raise NotFoundError(missing)
            slots = np.fromiter(map(self._slot_of.__getitem__, id_list), np.int64, len(id_list))
            dense = self._index.scores(self._query_terms(query))
            return [float(v) for v in dense[slots]]

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Persist the index to ``path``; crash-safe, and incremental where it can be.

        Saving again to the file this index was last saved to or loaded from appends only
        the writes made since to ``PATH.log`` (fsync'd, checksummed); otherwise, and once
        that log outgrows half the snapshot, the whole index is written to a new file
        that atomically replaces ``path`` (write-new, fsync, rename).

        Raises:
            StorageError: the files cannot be written (the last saved state stays readable).
        """
        target = Path(path)
        with self._lock:
            saved = self._saved
            if saved is not None and saved.can_append(target):
                saved.append(self._journal)
                self._journal = []
                return
            generation = new_generation(
                target,
                saved.generation
                if saved is not None and saved.snapshot == target.absolute()
                else 0,
            )
            self._write_snapshot(target, generation)
            self._saved = SavedFiles.after_write(target, generation)
            self._journal = []

    def _write_snapshot(self, path: Path, generation: int) -> None:
        with self._lock:
            self.compact()
            index = self._index
            segment = index.segments[0] if index.segments else None
            arrays: dict[str, Any] = {
                "doc_len": index.doc_len[: index.n_slots],
                "alive": index.alive[: index.n_slots],
            }
            if segment is not None:
                arrays["terms"] = segment.expanded_terms()
                arrays["docs"] = segment.docs
                arrays["tfs"] = segment.tfs
            analyzer = self.tokenizer
            meta = {
                "format": _FORMAT,
                "generation": generation,
                "k1": index.k1,
                "b": index.b,
                "store_texts": self.store_texts,
                "analyzer": analyzer.config() if isinstance(analyzer, TextAnalyzer) else None,
                "vocab": list(self._vocab),
                "ids": self._ids,
                "texts": self._texts,
                "metadata": self._metadata,
            }
            write_snapshot(path, meta, arrays)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, tokenizer: Analyzer | None = None
    ) -> BM25Retriever:
        """Open an index written by ``save``.

        Args:
            path: the file.
            tokenizer: required when the index was built with a custom tokenizer.

        Raises:
            CorruptIndexError: the file is damaged or not a BM25 index.
            ConfigurationError: a custom tokenizer was used and none is given.
        """
        meta, arrays = read_snapshot(path)
        if meta.get("format") != _FORMAT:
            raise CorruptIndexError(path, f"not a BM25 index (format {meta.get('format')!r})")
        if tokenizer is None:
            if meta.get("analyzer") is None:
                raise ConfigurationError(
                    "this index was built with a custom tokenizer: pass tokenizer= to load it"
                )
            tokenizer = TextAnalyzer(**meta["analyzer"])
        try:
            new = cls(
                k1=meta["k1"], b=meta["b"], tokenizer=tokenizer, store_texts=meta["store_texts"]
            )
            new._restore(meta, arrays)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise CorruptIndexError(path, f"inconsistent contents: {exc}") from exc
        target = Path(path)
        generation = int(meta.get("generation", 0))
        ops, log_bytes = read_journal(target, generation)
        for op in ops:  # the writes saved incrementally after the snapshot
            if op.op == "delete":
                new.delete(op.ids)
            else:
                new.add(op.ids, [t or "" for t in op.texts or []], op.metadata)
        new._saved = SavedFiles.after_read(target, generation, log_bytes)
        return new

    def _restore(self, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
        index = self._index
        self._vocab = {term: i for i, term in enumerate(meta["vocab"])}
        n_slots = len(meta["ids"])
        if len(arrays["doc_len"]) != n_slots or len(meta["texts"]) != n_slots:
            raise ValueError("slot arrays disagree in length")
        index.grow_terms(len(self._vocab))
        index._reserve(n_slots)
        index.n_slots = n_slots
        index.doc_len[:n_slots] = arrays["doc_len"]
        index.alive[:n_slots] = arrays["alive"]
        if "terms" in arrays:
            terms = arrays["terms"].astype(np.int64)
            docs = arrays["docs"].astype(np.int64)
            if terms.size and (terms.max() >= len(self._vocab) or docs.max() >= n_slots):
                raise ValueError("posting refers to an unknown term or slot")
            segment = Segment.from_postings(0, n_slots, terms, docs, arrays["tfs"], index.n_terms)
            index.segments = [segment]
            index.df[: index.n_terms] = np.diff(segment.term_ptr)
        index.n_alive = int(index.alive[:n_slots].sum())
        index.total_len = float(index.doc_len[:n_slots][index.alive[:n_slots]].sum())
        self._ids = list(meta["ids"])
        self._texts = list(meta["texts"])
        self._metadata = [validate_metadata(m) for m in meta["metadata"]]
        for slot, (id_, alive) in enumerate(zip(self._ids, index.alive[:n_slots].tolist())):
            if (id_ is None) == alive:
                raise ValueError(f"slot {slot} liveness disagrees with its id")
            if id_ is not None:
                self._slot_of[id_] = slot
                if self._metadata[slot]:
                    self._columns.set(slot, self._metadata[slot])
