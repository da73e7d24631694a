"""BM25Retriever: incremental lexical search with Lucene BM25, filters and persistence."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem._storage.values import check_texts, metadata_json
from ragmem.errors import (
    ConfigurationError,
    CorruptIndexError,
    InvalidInputError,
    NotFoundError,
)
from ragmem.filters import Filter, FilterLike, parse_filter
from ragmem.filters.columns import MetadataColumns
from ragmem.retrievers.analysis import Analyzer, TextAnalyzer, Vocabulary
from ragmem.retrievers.base import Retriever, _check_query
from ragmem.retrievers.inverted import InvertedIndex, best
from ragmem.retrievers.persist import (
    Change,
    Loaded,
    Saved,
    load_documents,
    parse_items,
    save_documents,
    write_postings,
)
from ragmem.stores.base import check_ids
from ragmem.types import Hit, Metadata, validate_metadata

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    import numpy.typing as npt

    from ragmem._storage.database import Item

__all__ = ["BM25Retriever"]

# Deleted and replaced documents leave dead slots; once they outnumber the live ones (and
# this floor) they are reclaimed, so the cost is amortised over as many writes.
_COMPACT_FLOOR = 1024
# A save rewrites the postings cache once this many documents (or a quarter of the
# index, if more) changed since it was written; a load analyses those documents again.
_UNCACHED_FLOOR = 16


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
        store_texts: hits carry their document's text (a saved index always
            keeps texts, so it can be rebuilt from them).

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
        self._terms = Vocabulary(self.tokenizer)
        self._ids: list[str | None] = []
        self._texts: list[str | None] = []
        self._metadata: list[Metadata] = []
        self._slot_of: dict[str, int] = {}
        self._columns = MetadataColumns()
        # after a save or load: the database, and the writes made since (saved next)
        self._saved: Saved | None = None
        self._changes: list[Change] = []

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
        # in their stored form before anything changes: a later save cannot fail on them
        check_texts(id_list, "ids")
        check_texts(text_list, "texts")
        stored = [metadata_json(m, f"metadata[{i}]") for i, m in enumerate(metas)]
        if not id_list:
            return
        with self._lock:
            lengths, terms = self._terms.analyze(text_list)
            self._index.grow_terms(len(self._terms))
            self._delete_slots([s for s in map(self._slot_of.get, id_list) if s is not None])
            slots = self._index.add(lengths, terms)
            for id_, slot, text, meta in zip(id_list, slots.tolist(), text_list, metas):
                self._ids.append(id_)
                self._texts.append(text)
                self._metadata.append(meta)
                self._slot_of[id_] = slot
                if meta:
                    self._columns.set(slot, meta)
            self._maybe_compact()
            if self._saved is not None:
                items: list[Item] = [(i, t, m, None) for i, t, m in zip(id_list, text_list, stored)]
                self._changes.append(("add", items))

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
                gone: list[Item] = [(self._ids[s] or "", None, "", None) for s in slots]
                self._changes.append(("delete", gone))
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
                slots, contrib = index.postings(self._terms.query(query))
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
                text=texts[slot] if self.store_texts else None,
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
            dense = self._index.scores(self._terms.query(query))
            return [float(v) for v in dense[slots]]

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Persist the index to the SQLite database ``path``, in one transaction.

        Saving again to the file this index was last saved to or loaded from writes only
        the documents changed since; otherwise (or when another process saved to the file
        in between) the whole index replaces what the file held. Saves from several
        processes wait for each other, and each lands whole.

        Raises:
            StorageError: the file cannot be written (the last saved state stays readable).
        """
        with self._lock:
            saved = save_documents(path, self._saved, self._changes, self._items, self._config())
            self._changes = []
            self._saved = saved
            if saved.uncached < 0 or saved.uncached >= max(_UNCACHED_FLOOR, len(self) // 4):
                self.compact()
                write_postings(saved, *self._postings())

    def _config(self) -> dict[str, Any]:
        analyzer = self.tokenizer
        return {
            "k1": self._index.k1,
            "b": self._index.b,
            "store_texts": self.store_texts,
            "analyzer": analyzer.config() if isinstance(analyzer, TextAnalyzer) else None,
        }

    def _items(self) -> list[tuple[str, str | None, str, None]]:
        """Every document in its stored form, in slot (insertion) order."""
        return [
            (id_, text, metadata_json(meta, "metadata"), None)
            for id_, text, meta in zip(self._ids, self._texts, self._metadata)
            if id_ is not None
        ]

    def _postings(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The postings cache: documents and vocabulary as fields, postings as arrays."""
        fields = {
            "vocab": list(self._terms.ids),
            "ids": self._ids,
            "texts": self._texts,
            "metadata": self._metadata,
        }
        return fields, self._index.arrays()

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, tokenizer: Analyzer | None = None
    ) -> BM25Retriever:
        """Open an index written by ``save``.

        Args:
            path: the file.
            tokenizer: required when the index was built with a custom tokenizer.

        Raises:
            CorruptIndexError: the file is empty, damaged or not a BM25 index.
            ConfigurationError: a custom tokenizer was used and none is given, or the
                file is a BM25 index of the old format (the error says what to do).
        """
        loaded = load_documents(path)
        config = loaded.config
        if tokenizer is None:
            if config.get("analyzer") is None:
                raise ConfigurationError(
                    "this index was built with a custom tokenizer: pass tokenizer= to load it"
                )
            tokenizer = TextAnalyzer(**config["analyzer"])
        try:
            new = cls(
                k1=config["k1"],
                b=config["b"],
                tokenizer=tokenizer,
                store_texts=config["store_texts"],
            )
        except (KeyError, TypeError) as exc:
            raise CorruptIndexError(path, f"inconsistent settings: {exc}") from exc
        if loaded.postings is not None:
            try:
                new._restore(*loaded.postings)
                new._catch_up(loaded)
                whole = len(new) == loaded.count
            except (KeyError, IndexError, ValueError, TypeError):
                whole = False
            if not whole:  # a cache that does not add up: rebuild from the documents
                new = cls(k1=new.k1, b=new.b, tokenizer=tokenizer, store_texts=new.store_texts)
                loaded = load_documents(path, cache=False)
        if loaded.postings is None:
            new._catch_up(loaded)
        new._saved = loaded.saved
        return new

    def _catch_up(self, loaded: Loaded) -> None:
        """Apply the documents deleted and written after the postings were cached."""
        if loaded.deleted:
            self.delete(loaded.deleted)
        for start in range(0, len(loaded.written), 4096):
            self.add(*parse_items(loaded.written[start : start + 4096]))

    def _restore(self, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
        index = self._index
        self._terms = Vocabulary(self.tokenizer, meta["vocab"])
        n_slots = len(meta["ids"])
        if len(meta["texts"]) != n_slots:
            raise ValueError("slot lists disagree in length")
        index.restore(arrays, n_slots, len(self._terms))
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
