"""Quantized flat search: scan compact codes, then rescore the best candidates exactly.

Codes (``float16``, ``int8`` or ``binary``) are derived from the store's float32 rows
and live in memory; the float32 rows are only read for the few candidates being
rescored, so they may stay memory-mapped on disk. Returned scores are always exact
float32 scores, so a result differs from exact search only when a true neighbour
fails to reach the candidate list.

Matryoshka coarse-to-fine search is the same scheme with ``coarse_dims=m``: codes hold
only the first ``m`` dimensions (re-normalised for ``cosine``), and rescoring uses all
of them. It is meant for embedders trained so that prefixes are embeddings too.

* ``float16``: half the memory of float32, nearly exact; the scan converts blocks.
* ``int8``: a quarter; one scale per row (``code * scale ~ vector``), no training.
* ``binary``: 1/32; the sign of each dimension (after subtracting a centre for
  ``l2``), compared by Hamming distance with a popcount. The fastest scan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from ragmem.errors import ConfigurationError
from ragmem.stores.local.flat import prepare_queries, top_k

if TYPE_CHECKING:
    from ragmem.types import Metric, Vectors

__all__ = ["CODE_DTYPES", "QuantizedFlatIndex"]

CodeDtype = Literal["float32", "float16", "int8", "binary"]
CODE_DTYPES: tuple[str, ...] = ("float32", "float16", "int8", "binary")

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]
Result = tuple[Rows, Scores]

# Candidates rescored per result, by code type: enough for recall@10 >= 0.99 on
# clustered 384-d unit vectors (benchmarks/ann.py).
_RESCORE = {"float32": 4, "float16": 2, "int8": 4, "binary": 30}
_BLOCK = 8192  # rows converted to float32 at a time by the float16 / int8 scans
_QUERY_BLOCK = 64  # queries scored per pass over the codes
_GATHER_FRACTION = 0.25
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


class QuantizedFlatIndex:
    """Exhaustive search over compact codes of the store's rows, with exact rescoring.

    Args:
        dimensions: vector width.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"``.
        dtype: code type, one of ``"float32"`` (only useful with ``coarse_dims``),
            ``"float16"``, ``"int8"``, ``"binary"``.
        rescore: candidates rescored exactly per requested result (``k * rescore``).
        coarse_dims: scan only the first this many dimensions (Matryoshka).
    """

    def __init__(
        self,
        dimensions: int,
        metric: Metric,
        *,
        dtype: CodeDtype = "binary",
        rescore: int | None = None,
        coarse_dims: int | None = None,
    ) -> None:
        if dtype not in CODE_DTYPES:
            raise ConfigurationError(f"dtype must be one of {CODE_DTYPES}, got {dtype!r}")
        rescore = _RESCORE[dtype] if rescore is None else rescore
        if not isinstance(rescore, int) or rescore < 1:
            raise ConfigurationError(f"rescore must be a positive integer, got {rescore!r}")
        coarse = dimensions if coarse_dims is None else coarse_dims
        if not isinstance(coarse, int) or not 1 <= coarse <= dimensions:
            raise ConfigurationError(
                f"coarse_dims must be an integer in [1, {dimensions}], got {coarse_dims!r}"
            )
        self.dimensions = dimensions
        self.metric = metric
        self.dtype: CodeDtype = dtype
        self.rescore = rescore
        self.coarse_dims = coarse
        self._words = -(-coarse // 64)  # uint64 words per binary code
        self._centre = np.zeros(coarse, np.float32)
        self._centred = False
        self._n = 0
        self._codes = self._alloc(0)
        self._scales = np.empty(0, np.float32)  # int8: one scale per row
        self._sq = np.empty(0, np.float32)  # l2: squared norms of the coarse vectors

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Memory held by the codes (and per-row scales and norms), in bytes."""
        return int(self._codes[..., : self._n].nbytes + self._scales.nbytes + self._sq.nbytes)

    # -- writes -------------------------------------------------------------------------------

    def add(self, rows: Rows, vectors: Vectors) -> None:
        """Set the codes of store ``rows`` (new or replaced) from their float32 ``vectors``."""
        rows = np.asarray(rows, np.int64)
        if len(rows) == 0:
            return
        coarse = self._coarse(vectors)
        if self.dtype == "binary" and self.metric == "l2" and not self._centred:
            # sign bits of raw l2 data (e.g. all-positive SIFT) carry nothing: centre first
            self._centre = coarse.mean(axis=0).astype(np.float32)
            self._centred = True
        self._reserve(int(rows.max()) + 1)
        if self.dtype == "binary":
            self._codes[:, rows] = _pack(coarse - self._centre).T
        elif self.dtype == "int8":
            scale = np.abs(coarse).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            self._codes[rows] = np.rint(coarse / scale[:, None]).astype(np.int8)
            self._scales[rows] = scale
        else:
            self._codes[rows] = coarse.astype(self._codes.dtype)
        if self.metric == "l2":
            self._sq[rows] = np.einsum("ij,ij->i", coarse, coarse)
        self._n = max(self._n, int(rows.max()) + 1)

    def rebuild(self, rows: Rows, vectors: Vectors) -> None:
        """Drop every code and encode ``rows`` anew (recomputing the binary centre)."""
        self._centred = False
        self._n = 0
        self._codes = self._alloc(0)
        self._scales = np.empty(0, np.float32)
        self._sq = np.empty(0, np.float32)
        self.add(rows, vectors)

    def _alloc(self, capacity: int) -> np.ndarray:
        if self.dtype == "binary":
            # word-major layout: one contiguous array per code word keeps the scan streaming
            return np.zeros((self._words, capacity), np.uint64)
        dtype = {"float32": np.float32, "float16": np.float16, "int8": np.int8}[self.dtype]
        return np.zeros((capacity, self.coarse_dims), dtype)

    def _reserve(self, rows: int) -> None:
        capacity = self._codes.shape[-1 if self.dtype == "binary" else 0]
        if rows <= capacity:
            return
        capacity = max(rows, int(capacity * 1.5) + 16)
        codes = self._alloc(capacity)
        if self.dtype == "binary":
            codes[:, : self._n] = self._codes[:, : self._n]
        else:
            codes[: self._n] = self._codes[: self._n]
        self._codes = codes
        if self.dtype == "int8":
            self._scales = np.resize(self._scales, capacity)
        if self.metric == "l2":
            self._sq = np.resize(self._sq, capacity)

    def _coarse(self, vectors: Vectors) -> Vectors:
        coarse = np.ascontiguousarray(vectors[:, : self.coarse_dims], np.float32)
        if self.metric == "cosine" and self.coarse_dims < self.dimensions:
            coarse = prepare_queries(coarse, "cosine")
        return coarse

    # -- search -------------------------------------------------------------------------------

    def search(
        self,
        queries: Vectors,
        k: int,
        *,
        vectors: Vectors,
        sq_norms: Scores | None = None,
        mask: Mask | None = None,
        rescore: int | None = None,
    ) -> list[Result]:
        """Top ``k`` rows per query as ``(rows, exact scores)``, best first.

        Args:
            queries: prepared queries, shape (n, d).
            k: results per query.
            vectors: the store's float32 rows (may be a read-only memory map); only
                the candidates' rows are read.
            sq_norms: squared norms of ``vectors`` (needed for ``l2``).
            mask: candidate rows; ``None`` means every row with a code.
            rescore: candidates per result for this call instead of ``self.rescore``.
        """
        n = self._n
        if mask is not None:
            mask = mask[:n] if len(mask) >= n else np.pad(mask, (0, n - len(mask)))
        subset = None
        if mask is not None:
            matching = int(np.count_nonzero(mask))
            if matching < _GATHER_FRACTION * n:
                subset = np.flatnonzero(mask)
                mask = None
        pool = max(k * (self.rescore if rescore is None else rescore), k)
        coarse_q = self._coarse(queries)
        out = []
        for i, (query, full) in enumerate(zip(coarse_q, queries)):
            if self.dtype == "binary":
                candidates = self._binary_candidates(query, subset, mask, pool)
            else:
                if i % _QUERY_BLOCK == 0:
                    # one pass over the codes serves a block of queries
                    approx = self._approx(coarse_q[i : i + _QUERY_BLOCK], subset)
                    if mask is not None:
                        approx[:, ~mask] = -np.inf
                candidates = _best(approx[i % _QUERY_BLOCK], pool)
            if subset is not None:
                candidates = subset[candidates]
            candidates.sort()  # rows in order, so exact ties resolve by row
            exact = np.asarray(vectors[candidates]) @ full
            if self.metric == "l2":
                assert sq_norms is not None
                # -||x - q||^2, summed as the flat index sums it
                exact *= 2.0
                exact -= sq_norms[candidates]
                exact -= full @ full
            out.append(top_k(exact, k, candidates))
        return out

    def _binary_candidates(
        self, query: Vectors, subset: Rows | None, mask: Mask | None, pool: int
    ) -> Rows:
        """Positions of the ``pool`` codes nearest in Hamming distance, plus ties at the cut.

        Codes tied with the last one are all kept up to ``4 * pool`` in all (then by row).
        """
        codes = self._codes[:, : self._n] if subset is None else self._codes[:, subset]
        distances = _hamming(codes, _pack((query - self._centre)[None, :])[0])
        limit = 64 * self._words + 1  # beyond every real distance
        if mask is not None:
            distances[~mask] = limit
        # distances are small integers: a histogram finds the pool's cut-off in one pass,
        # cheaper than a partition of the whole array
        counts = np.cumsum(np.bincount(distances, minlength=limit + 1)[:limit])
        if counts[-1] <= pool:
            return np.flatnonzero(distances < limit).astype(np.int64)
        cut = int(np.searchsorted(counts, pool))  # distance at which the pool fills
        if counts[cut] <= 4 * pool:
            # codes tied at the cut are equally good candidates: rescore them all
            return np.flatnonzero(distances <= cut).astype(np.int64)
        inside = np.flatnonzero(distances < cut)
        tied = np.flatnonzero(distances == cut)[: 4 * pool - len(inside)]
        return np.concatenate([inside, tied]).astype(np.int64)

    def _approx(self, queries: Vectors, subset: Rows | None) -> Scores:
        """Approximate scores (n_queries, n_rows), higher is better, of every row or ``subset``."""
        codes = self._codes[: self._n] if subset is None else self._codes[subset]
        dots = np.empty((len(queries), len(codes)), np.float32)
        for start in range(0, len(codes), _BLOCK):
            block = codes[start : start + _BLOCK].astype(np.float32, copy=False)
            dots[:, start : start + len(block)] = queries @ block.T
        if self.dtype == "int8":
            dots *= self._scales[: self._n] if subset is None else self._scales[subset]
        if self.metric == "l2":
            dots *= 2.0
            dots -= self._sq[: self._n] if subset is None else self._sq[subset]
        return dots


Words = npt.NDArray[np.uint64]


def _pack(vectors: Vectors) -> Words:
    """Sign bits of each row packed into uint64 words (zero padding bits), shape (n, w)."""
    packed = np.packbits(vectors > 0, axis=1)
    pad = -packed.shape[1] % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    words: Words = np.ascontiguousarray(packed).view(np.uint64)
    return words


def _popcount(words: Words) -> npt.NDArray[np.uint8]:
    if _HAS_BITWISE_COUNT:
        counts: npt.NDArray[np.uint8] = np.bitwise_count(words)
        return counts
    # numpy < 2: count the bytes of each word through a table
    by_byte = _POPCOUNT8[words.view(np.uint8)].reshape(len(words), 8)
    summed: npt.NDArray[np.uint8] = by_byte.sum(axis=1, dtype=np.uint8)
    return summed


def _hamming(codes: Words, bits: Words) -> npt.NDArray[np.uint16]:
    """Hamming distance from ``bits`` to each column of word-major ``codes``."""
    total = np.zeros(codes.shape[1], np.uint16)
    for word, code_row in zip(bits, codes):
        total += _popcount(code_row ^ word)
    return total


def _best(scores: Scores, pool: int) -> Rows:
    """Positions of the ``pool`` highest finite scores (any order)."""
    finite = np.isfinite(scores)
    available = int(np.count_nonzero(finite))
    if available <= pool:
        return np.flatnonzero(finite).astype(np.int64)
    return np.argpartition(-scores, pool - 1)[:pool].astype(np.int64)
