"""The one metadata filter language, used by every store and by BM25.

Two spellings parse to the same validated tree::

    from ragmem.filters import F
    where = (F("year") >= 2023) & F("tags").contains("ml") & ~F("draft").exists()
    where = {"year": {"$gte": 2023}, "tags": {"$contains": "ml"},
             "$not": {"draft": {"$exists": True}}}

Semantics (every backend must give exactly these results):

- Values are str, int, float or bool, or lists of those. int and float compare
  numerically (1 == 1.0); bool is not a number (True != 1); str never equals a number.
- ``$eq``, ``$lt``, ``$lte``, ``$gt``, ``$gte``, ``$in`` match a record whose value
  satisfies the comparison; for a list-valued field, when *any* element does.
  A missing key, or a value of another type, does not match.
- ``$contains v`` on a list is membership: the list holds ``v``. On a string field with a
  string ``v`` it is substring matching (``"guides/backup.md"`` contains ``"backup"``); on
  any other scalar it is equality.
- ``$prefix p`` (a string) matches a string value starting with ``p``; for a list-valued
  field, when any string element does. Numbers and bools never match it.
- ``$ne`` is exactly ``$not $eq`` and ``$nin`` is exactly ``$not $in``: a record
  without the key matches them.
- ``$lt``, ``$lte``, ``$gt``, ``$gte`` take numbers only.
- ``$exists: true`` matches when the key is present (an empty list counts as present).
- ``$and``/``$or`` take a list of filters (an empty ``$and`` matches all, an empty
  ``$or`` matches none); ``$not`` takes one filter and complements it.
- Several keys in one dict, or several operators on one key, are ANDed.
- Filters nest at most ``MAX_DEPTH`` levels deep.
- Integers compare exactly at any size (``2**63`` does not equal ``2**63 + 1``).

Python's ``and``, ``or``, ``not`` and chained comparisons (``1 < F("x") < 5``) cannot be
overloaded and would silently keep one condition, so a filter refuses ``bool()`` with a
``TypeError``: combine with ``&``, ``|`` and ``~``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from ragmem.errors import InvalidFilterError

if TYPE_CHECKING:
    from ragmem.types import Metadata, Scalar

Operator = Literal[
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$contains", "$prefix", "$exists"
]
OPERATORS: tuple[str, ...] = get_args(Operator)
_COMPARE = {"$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge}
RANGE_OPERATORS = frozenset(_COMPARE)
LOGICAL_OPERATORS = ("$and", "$or", "$not")
MAX_DEPTH = 100
"""How deeply ``$and``/``$or``/``$not`` may nest (deeper filters are refused, not recursed)."""

_BOOL_MESSAGE = (
    "a filter has no truth value: combine conditions with & (and), | (or) and ~ (not), "
    "e.g. (F('year') >= 2023) & (F('year') < 2030), not 'and', 'or', 'not' or a chained comparison"
)


class _Node(BaseModel):
    # built on first use, not at import: the recursive schema is a visible share of import time
    model_config = ConfigDict(frozen=True, defer_build=True)

    def __and__(self, other: Filter) -> And:
        return And(filters=(*_flatten(self, And), *_flatten(other, And)))

    def __or__(self, other: Filter) -> Or:
        return Or(filters=(*_flatten(self, Or), *_flatten(other, Or)))

    def __invert__(self) -> Not:
        return Not(filter=self)

    def __bool__(self) -> bool:
        raise TypeError(_BOOL_MESSAGE)


class Condition(_Node):
    """A test on one metadata field: ``field op value``."""

    field: str
    op: Operator
    value: Any


class And(_Node):
    """Matches when every sub-filter matches (an empty And matches everything)."""

    filters: tuple[Filter, ...]


class Or(_Node):
    """Matches when any sub-filter matches (an empty Or matches nothing)."""

    filters: tuple[Filter, ...]


class Not(_Node):
    """Matches exactly the records its sub-filter does not."""

    filter: Filter


Filter = Condition | And | Or | Not
FilterLike = Filter | Mapping[str, Any]


def _flatten(node: _Node, kind: type[And] | type[Or]) -> tuple[_Node, ...]:
    if isinstance(node, kind):
        return tuple(node.filters)
    return (node,)


class F:
    """Builds conditions on one metadata field.

    Example:
        >>> from ragmem.filters import F, to_dict
        >>> to_dict((F("year") >= 2023) & F("tag").isin(["a", "b"]))
        {'$and': [{'year': {'$gte': 2023}}, {'tag': {'$in': ['a', 'b']}}]}
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _make(self, op: str, value: Any) -> Condition:
        return _condition(self.name, op, value, path="")

    def __eq__(self, value: object) -> Condition:  # type: ignore[override]
        return self._make("$eq", value)

    def __ne__(self, value: object) -> Condition:  # type: ignore[override]
        return self._make("$ne", value)

    def __lt__(self, value: float) -> Condition:
        return self._make("$lt", value)

    def __le__(self, value: float) -> Condition:
        return self._make("$lte", value)

    def __gt__(self, value: float) -> Condition:
        return self._make("$gt", value)

    def __ge__(self, value: float) -> Condition:
        return self._make("$gte", value)

    def isin(self, values: Sequence[Scalar]) -> Condition:
        """The field equals one of ``values``."""
        return self._make("$in", values)

    def notin(self, values: Sequence[Scalar]) -> Condition:
        """The field equals none of ``values`` (or is missing)."""
        return self._make("$nin", values)

    def contains(self, value: Scalar) -> Condition:
        """The list-valued field holds ``value`` (or the string field has it as a substring)."""
        return self._make("$contains", value)

    def startswith(self, prefix: str) -> Condition:
        """The string field (or any string element of a list) starts with ``prefix``."""
        return self._make("$prefix", prefix)

    def exists(self, flag: bool = True) -> Condition:
        """The field is present (or absent, with ``flag=False``)."""
        return self._make("$exists", flag)

    def __bool__(self) -> bool:
        raise TypeError(_BOOL_MESSAGE)

    __hash__ = None  # type: ignore[assignment]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_scalar(value: object, op: str, path: str) -> Scalar:
    if value is None:
        raise InvalidFilterError(
            "None is not a value; use $exists to test for a missing key", operator=op, path=path
        )
    if not isinstance(value, (str, int, float, bool)):
        raise InvalidFilterError(
            f"value must be str, int, float or bool, got {type(value).__name__}",
            operator=op,
            path=path,
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilterError(f"value {value} is not finite", operator=op, path=path)
    return value


def _condition(field: object, op: str, value: Any, *, path: str) -> Condition:
    if not isinstance(field, str) or not field or field.startswith("$"):
        raise InvalidFilterError(f"field name must be a non-empty string, got {field!r}", path=path)
    if op not in OPERATORS:
        raise InvalidFilterError(
            f"unknown operator; use one of {', '.join(OPERATORS + LOGICAL_OPERATORS)}",
            operator=op,
            path=path,
        )
    if op in ("$in", "$nin"):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise InvalidFilterError("expects a list of values", operator=op, path=path)
        value = tuple(_check_scalar(v, op, path) for v in value)
    elif op == "$exists":
        if not isinstance(value, bool):
            raise InvalidFilterError("expects true or false", operator=op, path=path)
    else:
        value = _check_scalar(value, op, path)
        if op in RANGE_OPERATORS and not _is_number(value):
            raise InvalidFilterError(
                f"compares numbers only, got {type(value).__name__}", operator=op, path=path
            )
        if op == "$prefix" and not isinstance(value, str):
            raise InvalidFilterError(
                f"expects a string, got {type(value).__name__}", operator=op, path=path
            )
    return Condition(field=field, op=op, value=value)


def _too_deep(path: str) -> InvalidFilterError:
    return InvalidFilterError(f"filter nests deeper than {MAX_DEPTH} levels", path=path)


def _check_depth(tree: Filter) -> None:
    # iterative, so a tree built with ~ or & thousands of times deep is refused, not recursed
    stack: list[tuple[Filter, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep("")
        if isinstance(node, Not):
            stack.append((node.filter, depth + 1))
        elif isinstance(node, (And, Or)):
            stack.extend((f, depth + 1) for f in node.filters)


def _parse(node: Any, path: str, depth: int = 1) -> Filter:
    if depth > MAX_DEPTH:
        raise _too_deep(path)
    if isinstance(node, (Condition, And, Or, Not)):
        _check_depth(node)
        return node
    if not isinstance(node, Mapping):
        raise InvalidFilterError(f"expected a dict, got {type(node).__name__}", path=path)
    parts: list[Filter] = []
    for key, value in node.items():
        here = f"{path}.{key}" if path else str(key)
        if key in ("$and", "$or"):
            if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
                raise InvalidFilterError("expects a list of filters", operator=key, path=here)
            subs = tuple(_parse(v, f"{here}[{i}]", depth + 1) for i, v in enumerate(value))
            parts.append(And(filters=subs) if key == "$and" else Or(filters=subs))
        elif key == "$not":
            parts.append(Not(filter=_parse(value, here, depth + 1)))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidFilterError(
                f"unknown operator at top level; use {', '.join(LOGICAL_OPERATORS)} or a field",
                operator=key,
                path=here,
            )
        elif isinstance(value, Mapping):
            if not value:
                raise InvalidFilterError("empty operator dict", path=here)
            for op, operand in value.items():
                parts.append(_condition(key, op, operand, path=f"{here}.{op}"))
        else:
            parts.append(_condition(key, "$eq", value, path=here))
    return parts[0] if len(parts) == 1 else And(filters=tuple(parts))


def parse_filter(where: FilterLike | None) -> Filter | None:
    """Validate a filter given as a tree or a dict and return the tree (None passes through).

    Raises:
        InvalidFilterError: the message names the operator and where in the filter it is.
    """
    if where is None:
        return None
    return _parse(where, "")


def to_dict(where: Filter) -> dict[str, Any]:
    """Render a filter tree in the dict form (JSON-serialisable)."""
    if isinstance(where, Condition):
        value = list(where.value) if isinstance(where.value, tuple) else where.value
        return {where.field: {where.op: value}}
    if isinstance(where, And):
        return {"$and": [to_dict(f) for f in where.filters]}
    if isinstance(where, Or):
        return {"$or": [to_dict(f) for f in where.filters]}
    return {"$not": to_dict(where.filter)}


def scalar_equal(stored: object, wanted: object) -> bool:
    """Equality as the filter language defines it: numbers by value, bool apart."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if _is_number(stored) and _is_number(wanted):
        return stored == wanted
    return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted


def _scalar_test(op: str, stored: Scalar, wanted: Any) -> bool:
    if op in ("$eq", "$contains"):
        return scalar_equal(stored, wanted)
    if op == "$prefix":
        return isinstance(stored, str) and stored.startswith(wanted)
    if op == "$in":
        return any(scalar_equal(stored, w) for w in wanted)
    if isinstance(stored, (bool, str)):
        return False
    # int and float compare exactly in Python (no rounding of big ints to float64)
    return bool(_COMPARE[op](stored, wanted))


def _condition_matches(cond: Condition, metadata: Metadata) -> bool:
    op = cond.op
    if op == "$exists":
        return (cond.field in metadata) is cond.value
    if op in ("$ne", "$nin"):
        positive = Condition(field=cond.field, op="$eq" if op == "$ne" else "$in", value=cond.value)
        return not _condition_matches(positive, metadata)
    if cond.field not in metadata:
        return False
    stored = metadata[cond.field]
    if op == "$contains" and isinstance(stored, str) and isinstance(cond.value, str):
        return cond.value in stored
    values = stored if isinstance(stored, list) else [stored]
    return any(_scalar_test(op, v, cond.value) for v in values)


def matches(where: FilterLike | None, metadata: Metadata) -> bool:
    """Evaluate a filter on one metadata dict: the reference semantics.

    Example:
        >>> matches({"tags": {"$contains": "a"}}, {"tags": ["a", "b"]})
        True
    """
    tree = parse_filter(where)
    return True if tree is None else _matches(tree, metadata)


def _matches(node: Filter, metadata: Metadata) -> bool:
    if isinstance(node, Condition):
        return _condition_matches(node, metadata)
    if isinstance(node, And):
        return all(_matches(f, metadata) for f in node.filters)
    if isinstance(node, Or):
        return any(_matches(f, metadata) for f in node.filters)
    return not _matches(node.filter, metadata)
