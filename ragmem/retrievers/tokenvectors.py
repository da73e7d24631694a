"""Per-document token vectors for late interaction, stored compactly.

Three encodings, chosen per store:

- ``float16``: 2 bytes per dimension.
- ``int8``: each token vector scaled by its largest magnitude to -127..127, plus one
  float16 scale per token (~2x smaller than float16).
- ``int4``: dimensions are first divided by a per-dimension scale (fitted on the first
  vectors stored: transformer states have a few outlier dimensions that would otherwise
  eat the range), then each token is scaled to -7..7 and two values are packed per
  byte (~4x smaller than float16).

MaxSim scores are computed straight from the codes: ``q . (scale * codes)`` is
``scale * (q . codes)``, so nothing is decoded to float32 per document.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ragmem._storage.cache_file import read_cache_strict, refuse_old_format, write_cache
from ragmem.errors import ConfigurationError, CorruptIndexError, InvalidInputError, NotFoundError
from ragmem.stores.base import check_ids

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from ragmem.types import Vectors

__all__ = ["ENCODINGS", "Encoding", "TokenVectorStore"]

Encoding = Literal["float16", "int8", "int4"]
ENCODINGS: tuple[str, ...] = ("float16", "int8", "int4")
_FORMAT = "ragmem-token-vectors/1"
_LEVELS = {"int8": 127.0, "int4": 7.0}
_RECLAIM_FLOOR = 4096  # rows; below this, reclaiming costs more than it frees


class TokenVectorStore:
    """Token matrices by document id, encoded as ``float16``, ``int8`` or ``int4``.

    Example:
        >>> import numpy as np
        >>> store = TokenVectorStore(dimensions=4, encoding="int8")
        >>> store.put(["d"], [np.eye(4, dtype=np.float32)[:3]])
        >>> store.get(["d"])[0].shape
        (3, 4)
    """

    def __init__(self, dimensions: int, *, encoding: Encoding = "int8") -> None:
        if encoding not in ENCODINGS:
            raise ConfigurationError(f"unknown encoding {encoding!r}; use one of {ENCODINGS}")
        if dimensions < 1 or (encoding == "int4" and dimensions % 2):
            raise ConfigurationError(f"bad dimensions {dimensions} for encoding {encoding}")
        self.dimensions = dimensions
        self.encoding = encoding
        self._lock = threading.RLock()
        width = dimensions // 2 if encoding == "int4" else dimensions
        dtype = {"float16": np.float16, "int8": np.int8, "int4": np.uint8}[encoding]
        self._codes = np.zeros((0, width), dtype)
        self._scales = np.zeros(0, np.float32)
        self._dim_scale: npt.NDArray[np.float32] | None = None
        self._n_rows = 0
        self._live_rows = 0  # rows of live documents (the rest are replaced or deleted)
        self._spans: dict[str, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._spans)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._spans

    @property
    def nbytes(self) -> int:
        """Bytes held by live token codes and scales (what the encoding costs)."""
        rows = sum(end - start for start, end in self._spans.values())
        per_row = self._codes.shape[1] * self._codes.itemsize
        per_row += 0 if self.encoding == "float16" else 4
        return rows * per_row

    @property
    def n_tokens(self) -> int:
        """Token vectors stored for live documents."""
        return self._live_rows

    def put(self, ids: Sequence[str], matrices: Sequence[Vectors]) -> None:
        """Store (or replace) each document's (n_tokens, dimensions) token vectors."""
        id_list = check_ids(ids)
        if len(matrices) != len(id_list):
            raise InvalidInputError(f"got {len(matrices)} token matrices for {len(id_list)} ids")
        arrays = []
        for i, m in enumerate(matrices):
            a = np.asarray(m, np.float32)
            if a.ndim != 2 or a.shape[1] != self.dimensions or a.shape[0] == 0:
                raise InvalidInputError(
                    f"token matrix {i} has shape {a.shape}, expected (n > 0, {self.dimensions})"
                )
            if not np.isfinite(a).all():
                raise InvalidInputError(f"token matrix {i} has NaN or infinite values")
            arrays.append(a)
        if not arrays:
            return
        stacked = np.concatenate(arrays)
        with self._lock:
            codes, scales = self._encode(stacked)
            start = self._n_rows
            self._reserve(start + len(stacked))
            self._codes[start : start + len(stacked)] = codes
            self._scales[start : start + len(stacked)] = scales
            for id_, a in zip(id_list, arrays):
                self._live_rows -= self._span_length(id_)
                self._spans[id_] = (start, start + len(a))
                self._live_rows += len(a)
                start += len(a)
            self._n_rows = start
            self._maybe_reclaim()

    def delete(self, ids: Sequence[str]) -> int:
        """Forget documents; returns how many existed. Their rows are reclaimed once
        dropped rows outnumber live ones (and by ``save``)."""
        with self._lock:
            found = 0
            for id_ in check_ids(ids, unique=False):
                if id_ in self._spans:
                    self._live_rows -= self._span_length(id_)
                    del self._spans[id_]
                    found += 1
            self._maybe_reclaim()
            return found

    def _span_length(self, id_: str) -> int:
        start, end = self._spans.get(id_, (0, 0))
        return end - start

    def _maybe_reclaim(self) -> None:
        """Drop replaced and deleted rows once they outnumber the live ones, so a store
        that lives for months of updates holds about what it stores."""
        live = self._live_rows
        if self._n_rows - live <= max(live, _RECLAIM_FLOOR):
            return
        ids = list(self._spans)
        rows, lengths = self._rows(ids)
        self._codes, self._scales = self._codes[rows], self._scales[rows]
        self._spans = _packed_spans(ids, lengths)
        self._n_rows = len(rows)

    def _rows(self, ids: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The rows of ``ids``' token vectors, document after document, and each one's count."""
        spans = [self._spans[i] for i in ids]
        lengths = np.array([e - s for s, e in spans], np.int64)
        if not spans:
            return np.zeros(0, np.int64), lengths
        return np.concatenate([np.arange(s, e) for s, e in spans]), lengths

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._codes):
            return
        capacity = max(rows, 2 * len(self._codes), 1024)
        codes = np.zeros((capacity, self._codes.shape[1]), self._codes.dtype)
        codes[: self._n_rows] = self._codes[: self._n_rows]
        scales = np.zeros(capacity, np.float32)
        scales[: self._n_rows] = self._scales[: self._n_rows]
        self._codes, self._scales = codes, scales

    def _encode(self, vectors: Vectors) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32]]:
        if self.encoding == "float16":
            return vectors.astype(np.float16), np.ones(len(vectors), np.float32)
        if self.encoding == "int4":
            if self._dim_scale is None:
                spread = np.sqrt(np.mean(vectors.astype(np.float64) ** 2, axis=0))
                self._dim_scale = np.maximum(spread, 1e-6).astype(np.float32)
            vectors = vectors / self._dim_scale
        levels = _LEVELS[self.encoding]
        peak = np.abs(vectors).max(axis=1)
        scales = np.where(peak > 0, peak / levels, 1.0).astype(np.float32)
        q = np.rint(vectors / scales[:, None]).astype(np.int8)
        if self.encoding == "int8":
            return q, scales
        nibbles = (q + 8).astype(np.uint8)  # 1..15
        return (nibbles[:, 0::2] << 4) | nibbles[:, 1::2], scales

    def _decode_rows(self, start: int, end: int) -> Vectors:
        if self.encoding == "float16":
            return self._codes[start:end].astype(np.float32)
        if self.encoding == "int8":
            out: Vectors = self._codes[start:end].astype(np.float32) * self._scales[start:end, None]
            return out
        return self._decode_rows_at(np.arange(start, end))

    def get(self, ids: Sequence[str]) -> list[Vectors]:
        """Decoded float32 token matrices, in the order asked.

        Raises:
            NotFoundError: some ids are not stored.
        """
        with self._lock:
            missing = [i for i in ids if i not in self._spans]
            if missing:
                raise NotFoundError(missing, what="token-vector ids")
            return [self._decode_rows(*self._spans[i]) for i in ids]

    def maxsim(self, query: Vectors, ids: Sequence[str]) -> npt.NDArray[np.float32]:
        """ColBERT MaxSim of one query's token vectors against each stored document.

        ``sum over query tokens of max over document tokens of q . d``, for the whole
        candidate set in one matrix product.
        """
        with self._lock:
            rows, lengths = self._rows(ids)
            q = np.asarray(query, np.float32)
            if self.encoding == "float16":
                sims = q @ self._codes[rows].astype(np.float32).T
            elif self.encoding == "int8":
                sims = (q @ self._codes[rows].astype(np.float32).T) * self._scales[rows]
            else:
                sims = q @ self._decode_rows_at(rows).T
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        best = np.maximum.reduceat(sims, offsets, axis=1)
        scores: npt.NDArray[np.float32] = best.sum(axis=0).astype(np.float32)
        return scores

    def _decode_rows_at(self, rows: npt.NDArray[np.int64]) -> Vectors:
        codes, scales = self._codes[rows], self._scales[rows]
        unpacked = np.empty((len(rows), self.dimensions), np.float32)
        unpacked[:, 0::2] = (codes >> 4).astype(np.float32) - 8
        unpacked[:, 1::2] = (codes & 15).astype(np.float32) - 8
        assert self._dim_scale is not None
        decoded: Vectors = unpacked * (scales[:, None] * self._dim_scale)
        return decoded

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write live vectors to one checksummed file, atomically and durably (write
        beside, fsync, rename); deleted documents' space is dropped.

        Raises:
            StorageError: the file cannot be written (the previous one is intact).
        """
        with self._lock:
            ids = list(self._spans)
            rows, lengths = self._rows(ids)
            arrays = {
                "codes": self._codes[rows],
                "scales": self._scales[rows],
                "lengths": lengths,
            }
            if self._dim_scale is not None:
                arrays["dim_scale"] = self._dim_scale
            meta = {
                "format": _FORMAT,
                "dimensions": self.dimensions,
                "encoding": self.encoding,
                "ids": ids,
            }
            write_cache(Path(path), meta, arrays, durable=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenVectorStore:
        """Open a file written by ``save``.

        Raises:
            CorruptIndexError: the file is damaged or holds something else.
            ConfigurationError: the file was written by ragmem 0.x (delete it and save again).
        """
        refuse_old_format(Path(path), "token vectors", "delete it and compute them again")
        meta, arrays = read_cache_strict(Path(path))
        if meta.get("format") != _FORMAT:
            raise CorruptIndexError(path, f"not a token-vector file ({meta.get('format')!r})")
        try:
            store = cls(int(meta["dimensions"]), encoding=meta["encoding"])
            lengths = arrays["lengths"]
            codes, scales = arrays["codes"], arrays["scales"]
            if len(lengths) != len(meta["ids"]) or int(lengths.sum()) != len(codes):
                raise ValueError("lengths disagree with the stored rows")
            if codes.dtype != store._codes.dtype or codes.shape[1:] != store._codes.shape[1:]:
                raise ValueError(f"codes have dtype {codes.dtype} and shape {codes.shape}")
            store._codes, store._scales = codes, scales.astype(np.float32)
            store._n_rows = store._live_rows = len(codes)
            store._dim_scale = arrays.get("dim_scale")
            store._spans = _packed_spans(meta["ids"], lengths)
        except (KeyError, ValueError, TypeError, ConfigurationError) as exc:
            raise CorruptIndexError(path, f"inconsistent contents: {exc}") from exc
        return store


def _packed_spans(ids: Sequence[str], lengths: npt.NDArray[np.int64]) -> dict[str, tuple[int, int]]:
    """Each document's rows when documents lie one after another from row 0."""
    ends = np.cumsum(lengths).tolist()
    return dict(zip(ids, zip([0, *ends[:-1]], ends)))
