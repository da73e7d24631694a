"""Columnar metadata: per-key numpy columns that evaluate filters without a Python loop per row.

Rows are integer slots owned by the caller (a store or the BM25 index). Each key keeps
typed columns (numbers as float64, strings as int32 codes into a vocabulary, bools as
int8; an int that float64 cannot hold exactly is also kept as an int, and every comparison
that float64 cannot decide is redone exactly on those few values) plus an "exploded"
table of list elements, so ``$contains`` and any-element
comparisons on list-valued fields are vectorised too. ``evaluate`` follows the
semantics documented in ``ragmem.filters`` exactly; ``tests/filters/test_filters.py`` checks
it against ``ragmem.filters.matches`` on random data.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ragmem.filters.language import And, Condition, Filter, Not, Or

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ragmem.types import Metadata, Scalar

__all__ = ["MetadataColumns"]

Mask = npt.NDArray[np.bool_]
_NO_CODE = -1
_RANGE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$eq": operator.eq,
}


def _inexact(value: object) -> bool:
    """An int that float64 rounds (beyond 2**53)."""
    return isinstance(value, int) and not isinstance(value, bool) and float(value) != value


def _matching_codes(op: str, wanted: str, vocab: dict[str, int]) -> list[int]:
    if op == "$prefix":
        return [c for s, c in vocab.items() if s.startswith(wanted)]
    return [c for s, c in vocab.items() if wanted in s]


def _grow(array: npt.NDArray[Any], size: int, fill: Any) -> npt.NDArray[Any]:
    if size <= len(array):
        return array
    new = np.full(max(size, 2 * len(array), 16), fill, dtype=array.dtype)
    new[: len(array)] = array
    return new


class _Values:
    """Typed parallel arrays for a set of scalar values (one per row or per list element)."""

    def __init__(self) -> None:
        self.num = np.empty(0, np.float64)
        self.code = np.empty(0, np.int32)
        self.flag = np.empty(0, np.int8)
        # position -> exact value, for ints that ``num`` holds rounded
        self.big: dict[int, int] = {}

    def reserve(self, size: int) -> None:
        self.num = _grow(self.num, size, np.nan)
        self.code = _grow(self.code, size, _NO_CODE)
        self.flag = _grow(self.flag, size, -1)

    def put(self, i: int, value: Scalar, vocab: dict[str, int]) -> None:
        self.clear(i)
        if isinstance(value, bool):
            self.flag[i] = int(value)
        elif isinstance(value, (int, float)):
            self.num[i] = float(value)
            if _inexact(value):
                self.big[i] = int(value)
        else:
            self.code[i] = vocab.setdefault(value, len(vocab))

    def clear(self, i: int) -> None:
        self.num[i] = np.nan
        self.code[i] = _NO_CODE
        self.flag[i] = -1
        self.big.pop(i, None)

    def test(
        self, op: str, wanted: Any, size: int, vocab: dict[str, int], *, substring: bool = False
    ) -> Mask:
        """Which of the first ``size`` entries satisfy ``op wanted`` (positive operators only).

        ``substring`` makes ``$contains`` with a string test substrings (scalar string
        fields) rather than equality (list elements).
        """
        num, code, flag = self.num[:size], self.code[:size], self.flag[:size]
        if op == "$prefix" or (op == "$contains" and substring and isinstance(wanted, str)):
            return np.isin(code, _matching_codes(op, wanted, vocab))
        if op in ("$eq", "$contains"):
            return self._exact(self._equal(wanted, num, code, flag, vocab), "$eq", wanted, num)
        if op == "$in":
            mask = np.zeros(size, np.bool_)
            numbers = [w for w in wanted if not isinstance(w, (bool, str))]
            codes = [vocab[w] for w in wanted if isinstance(w, str) and w in vocab]
            flags = [int(w) for w in wanted if isinstance(w, bool)]
            for number in numbers:
                mask |= self._exact(num == float(number), "$eq", number, num)
            if codes:
                mask |= np.isin(code, codes)
            if flags:
                mask |= np.isin(flag, flags)
            return mask
        return self._exact(self._compare(op, float(wanted), num), op, wanted, num)

    def _exact(self, mask: Mask, op: str, wanted: Any, num: npt.NDArray[np.float64]) -> Mask:
        """``mask`` with the entries float64 cannot decide redone in Python, exactly.

        Those are entries holding a rounded int, and, for a wanted int beyond 2**53, entries
        equal to it as floats; elsewhere rounding is monotonic, so float order is exact.
        """
        if isinstance(wanted, bool) or not isinstance(wanted, (int, float)):
            return mask
        positions = [p for p in self.big if p < len(num)]
        if _inexact(wanted):
            positions.extend(np.flatnonzero(num == float(wanted)).tolist())
        if not positions:
            return mask
        test = _RANGE[op]
        mask = mask.copy()
        for p in positions:
            mask[p] = test(self.big.get(p, num[p].item()), wanted)
        return mask

    @staticmethod
    def _compare(op: str, bound: float, num: npt.NDArray[np.float64]) -> Mask:
        with np.errstate(invalid="ignore"):
            if op == "$lt":
                result: Mask = num < bound
            elif op == "$lte":
                result = num <= bound
            elif op == "$gt":
                result = num > bound
            else:
                result = num >= bound
        return result

    @staticmethod
    def _equal(
        wanted: Scalar,
        num: npt.NDArray[np.float64],
        code: npt.NDArray[np.int32],
        flag: npt.NDArray[np.int8],
        vocab: dict[str, int],
    ) -> Mask:
        if isinstance(wanted, bool):
            result: Mask = flag == int(wanted)
        elif isinstance(wanted, str):
            wanted_code = vocab.get(wanted)
            result = (
                code == wanted_code if wanted_code is not None else np.zeros(len(code), np.bool_)
            )
        else:
            result = num == float(wanted)
        return result


class _Column:
    """One metadata key: scalar values per row, list elements exploded into their own table."""

    def __init__(self) -> None:
        self.present = np.empty(0, np.bool_)
        self.scalars = _Values()
        self.elements = _Values()
        self.element_rows = np.empty(0, np.int64)
        self.n_elements = 0
        # rows whose value is a list -> positions of their elements in the exploded table
        self.row_elements: dict[int, list[int]] = {}

    def reserve(self, rows: int) -> None:
        self.present = _grow(self.present, rows, False)
        self.scalars.reserve(rows)

    def set(self, row: int, value: Any, vocab: dict[str, int]) -> None:
        self.clear(row)
        self.present[row] = True
        if not isinstance(value, list):
            self.scalars.put(row, value, vocab)
            return
        positions = []
        for item in value:
            pos = self.n_elements
            self.n_elements += 1
            self.elements.reserve(self.n_elements)
            self.element_rows = _grow(self.element_rows, self.n_elements, -1)
            self.elements.put(pos, item, vocab)
            self.element_rows[pos] = row
            positions.append(pos)
        self.row_elements[row] = positions

    def clear(self, row: int) -> None:
        if row >= len(self.present) or not self.present[row]:
            return
        self.present[row] = False
        self.scalars.clear(row)
        for pos in self.row_elements.pop(row, ()):
            self.elements.clear(pos)
            self.element_rows[pos] = -1

    def test(self, op: str, wanted: Any, n_rows: int, vocab: dict[str, int]) -> Mask:
        mask = np.zeros(n_rows, np.bool_)
        limit = min(n_rows, len(self.present))
        mask[:limit] = self.scalars.test(op, wanted, limit, vocab, substring=True)
        if self.row_elements:
            hits = self.elements.test(op, wanted, self.n_elements, vocab)
            rows = self.element_rows[: self.n_elements][hits]
            mask[rows[(rows >= 0) & (rows < n_rows)]] = True
        return mask


class MetadataColumns:
    """Metadata for rows ``0..n-1`` held column by column, with vectorised filter evaluation.

    Example:
        >>> from ragmem.filters import F
        >>> cols = MetadataColumns.of_rows([{"year": 2020}, {"year": 2024, "tags": ["x"]}])
        >>> cols.evaluate(F("year") > 2021, 2).tolist()
        [False, True]
    """

    def __init__(self) -> None:
        self._columns: dict[str, _Column] = {}
        self._vocab: dict[str, int] = {}
        self._rows = 0

    @classmethod
    def of_rows(cls, metadatas: Iterable[Metadata]) -> MetadataColumns:
        """Columns for rows ``0..n-1`` holding ``metadatas`` in order (empty ones set nothing)."""
        columns = cls()
        for row, metadata in enumerate(metadatas):
            if metadata:
                columns.set(row, metadata)
        return columns

    @property
    def keys(self) -> list[str]:
        """Every key that has ever held a value."""
        return list(self._columns)

    def set(self, row: int, metadata: Metadata) -> None:
        """Replace one row's metadata."""
        self.clear(row)
        self._rows = max(self._rows, row + 1)
        for key, value in metadata.items():
            column = self._columns.get(key)
            if column is None:
                column = self._columns[key] = _Column()
            column.reserve(self._rows)
            column.set(row, value, self._vocab)

    def clear(self, row: int) -> None:
        """Forget one row's metadata."""
        for column in self._columns.values():
            column.clear(row)

    def evaluate(self, where: Filter, n_rows: int) -> Mask:
        """Boolean mask over rows ``0..n_rows-1`` of those matching ``where``."""
        if isinstance(where, Condition):
            return self._condition(where, n_rows)
        if isinstance(where, And):
            mask = np.ones(n_rows, np.bool_)
            for sub in where.filters:
                mask &= self.evaluate(sub, n_rows)
            return mask
        if isinstance(where, Or):
            mask = np.zeros(n_rows, np.bool_)
            for sub in where.filters:
                mask |= self.evaluate(sub, n_rows)
            return mask
        if isinstance(where, Not):
            return ~self.evaluate(where.filter, n_rows)
        raise TypeError(f"not a filter node: {where!r}")

    def _condition(self, cond: Condition, n_rows: int) -> Mask:
        column = self._columns.get(cond.field)
        if cond.op in ("$ne", "$nin"):
            positive = Condition(
                field=cond.field, op="$eq" if cond.op == "$ne" else "$in", value=cond.value
            )
            return ~self._condition(positive, n_rows)
        if cond.op == "$exists":
            present = np.zeros(n_rows, np.bool_)
            if column is not None:
                limit = min(n_rows, len(column.present))
                present[:limit] = column.present[:limit]
            return present if cond.value else ~present
        if column is None:
            return np.zeros(n_rows, np.bool_)
        return column.test(cond.op, cond.value, n_rows, self._vocab)
