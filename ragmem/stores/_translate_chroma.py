"""Chroma metadata encoding and translation of ragmem filter trees into Chroma ``where``.

Chroma's filter language lacks ``$not`` and ``$exists``, rejects empty lists, mixed-type
lists and ``$and``/``$or`` with fewer than two members, compares list elements by exact
type (1 does not match 1.0), has no range test on lists, and returns metadata keys in
no fixed order. So the adapter stores derived fields it can query exactly. For a user
key ``k`` (every stored name starts with a tag, so no two names collide)::

    scalar values                   list values
    "s:k"  a string                 "S:k"  the string elements
    "b:k"  a bool                   "B:k"  the bool elements
    "n:k"  a number, as a float     "N:k"  the numbers, as floats
                                    "lo:k" / "hi:k"  the least / greatest number
    "=k"   an int marker, on every key present: 1 holds no numbers, 2 holds numbers,
           3 holds a scalar int (so it reads back as an int)
    ":m"   the original metadata as JSON, when a list (or an int beyond 2**53) makes
           it needed for an exact round trip, or the metadata is empty (Chroma
           rejects an empty dict)
    ":o"   the key order as JSON, when it is not sorted (without ":m")
    ":0"   True when the item has no text (Chroma cannot store a None document)

Scalars stay scalars and markers are scalar ints because every stored list element
costs Chroma index work, several times what a scalar field costs. Queries then map
exactly: ``$eq v`` is ``s:k == v`` or ``S:k $contains v``. Every number is stored and
queried as a float: Chroma compares list elements by exact type, and compares a stored
int with a float operand after truncating it (2 == 2.75 holds in chromadb 1.5), so
floats on both sides are the only exact form. "any element > v" is ``n:k > v`` or
``hi:k > v``, "any element < v" uses ``lo:k``; ``$exists`` is ``=k $in [1, 2, 3]``
(``$nin`` for absence: Chroma's ``$nin`` and ``$ne`` match records lacking the field),
and "holds no numbers" is ``=k $nin [2, 3]``. ``$not`` is pushed down to the leaves
(De Morgan), where every negated leaf has an exact form: ``$ne`` and ``$not_contains``
in Chroma match records lacking the field, as ragmem's complement does.

Chroma has no substring or prefix test on metadata: ``$contains`` on a string field
matches equal strings only (a subset of ragmem's substring match), and ``$prefix`` is
refused with ``InvalidFilterError``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ragmem.errors import InvalidFilterError
from ragmem.filters import And, Condition, Not, Or

if TYPE_CHECKING:
    from ragmem.filters import Filter
    from ragmem.types import Metadata

__all__ = ["decode_metadata", "decode_text", "encode_metadata", "to_chroma"]

Where = dict[str, Any]

_JSON_FIELD = ":m"
_ORDER_FIELD = ":o"
_NO_TEXT_FIELD = ":0"
_SCALAR_TAG = {str: "s:", bool: "b:", int: "n:", float: "n:"}
_LIST_TAG = {str: "S:", bool: "B:", int: "N:", float: "N:"}
# values of the "=k" marker
_NO_NUMBERS, _NUMBERS, _INT = 1, 2, 3
_PRESENT = [_NO_NUMBERS, _NUMBERS, _INT]
_HOLDS_NUMBERS = [_NUMBERS, _INT]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _encode_list(key: str, value: list[Any], out: dict[str, Any]) -> None:
    strings = [e for e in value if isinstance(e, str)]
    bools = [e for e in value if isinstance(e, bool)]
    numbers = [float(e) for e in value if _is_number(e)]
    if strings:
        out["S:" + key] = strings
    if bools:
        out["B:" + key] = bools
    if numbers:
        out["N:" + key] = numbers
        out["lo:" + key] = min(numbers)
        out["hi:" + key] = max(numbers)
    out["=" + key] = _NUMBERS if numbers else _NO_NUMBERS


def encode_metadata(metadata: Metadata, no_text: bool = False) -> dict[str, Any]:
    """The Chroma metadata dict stored for one item's (validated) metadata."""
    out: dict[str, Any] = {}
    needs_json = not metadata
    for key, value in metadata.items():
        # bool before int: True is an int to isinstance
        if isinstance(value, bool):
            out["b:" + key] = value
            out["=" + key] = _NO_NUMBERS
        elif isinstance(value, str):
            out["s:" + key] = value
            out["=" + key] = _NO_NUMBERS
        elif isinstance(value, int):
            number = float(value)
            out["n:" + key] = number
            out["=" + key] = _INT
            # an int a float cannot hold exactly reads back only from the JSON
            needs_json = needs_json or number != value
        elif isinstance(value, float):
            out["n:" + key] = value
            out["=" + key] = _NUMBERS
        else:
            _encode_list(key, value, out)
            needs_json = True
    if needs_json:
        out[_JSON_FIELD] = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
    else:
        keys = list(metadata)
        if keys != sorted(keys):
            out[_ORDER_FIELD] = json.dumps(keys, ensure_ascii=False, separators=(",", ":"))
    if no_text:
        out[_NO_TEXT_FIELD] = True
    return out


def decode_metadata(stored: dict[str, Any] | None) -> Metadata:
    """The user metadata back from a stored Chroma metadata dict."""
    if not stored:
        return {}
    encoded = stored.get(_JSON_FIELD)
    if encoded is not None:
        decoded: Metadata = json.loads(encoded)
        return decoded
    order = stored.get(_ORDER_FIELD)
    # Chroma returns keys in no fixed order: restore the order written (sorted by default)
    keys = (
        json.loads(order) if order is not None else sorted([n[1:] for n in stored if n[0] == "="])
    )
    out: Metadata = {}
    for key in keys:
        # without the JSON every key is a scalar, and its marker says which kind
        marker = stored["=" + key]
        if marker == _INT:
            out[key] = int(stored["n:" + key])
        elif marker == _NUMBERS:
            out[key] = stored["n:" + key]
        else:
            value = stored.get("s:" + key)
            out[key] = stored["b:" + key] if value is None else value
    return out


def decode_text(document: str | None, stored: dict[str, Any] | None) -> str | None:
    """The item's text back from its Chroma document and stored metadata."""
    if stored and stored.get(_NO_TEXT_FIELD):
        return None
    return document


def _join(op: str, parts: list[Where]) -> Where:
    return parts[0] if len(parts) == 1 else {op: parts}


def _equals(key: str, value: Any, positive: bool) -> Where:
    """Any element equals ``value`` (or, negated, none does / the key is missing)."""
    kind = type(value)
    if positive:
        scalar: Where = {_SCALAR_TAG[kind] + key: {"$eq": value}}
        listed: Where = {_LIST_TAG[kind] + key: {"$contains": value}}
    else:
        scalar = {_SCALAR_TAG[kind] + key: {"$ne": value}}
        listed = {_LIST_TAG[kind] + key: {"$not_contains": value}}
    if _is_number(value):
        scalar = {k: {op: float(v)} for k, c in scalar.items() for op, v in c.items()}
        listed = {k: {op: float(v)} for k, c in listed.items() for op, v in c.items()}
    # a key holds a scalar or a list, never both: either side decides
    return {"$or" if positive else "$and": [scalar, listed]}


_BOUND = {"$lt": "lo:", "$lte": "lo:", "$gt": "hi:", "$gte": "hi:"}
_FLIP = {"$lt": "$gte", "$lte": "$gt", "$gt": "$lte", "$gte": "$lt"}


def _range(key: str, op: str, value: int | float, positive: bool) -> Where:
    # any list element < v  <=>  min < v;  any list element > v  <=>  max > v
    value = float(value)
    if positive:
        return {"$or": [{"n:" + key: {op: value}}, {_BOUND[op] + key: {op: value}}]}
    # no element qualifies: the scalar or list bound fails, or the key holds no numbers
    flipped = _FLIP[op]
    return {
        "$or": [
            {"n:" + key: {flipped: value}},
            {_BOUND[op] + key: {flipped: value}},
            {"=" + key: {"$nin": _HOLDS_NUMBERS}},
        ]
    }


def _condition(cond: Condition, positive: bool) -> Where:
    op, key, value = cond.op, cond.field, cond.value
    if op == "$exists":
        present = value is positive
        return {"=" + key: {"$in" if present else "$nin": _PRESENT}}
    if op in ("$ne", "$nin"):
        op, positive = ("$eq" if op == "$ne" else "$in"), not positive
    if op in ("$eq", "$contains"):
        return _equals(key, value, positive)
    if op == "$in":
        # any of the values (positive), or none of them (negated)
        return _join("$or" if positive else "$and", [_equals(key, v, positive) for v in value])
    if op in _BOUND:
        return _range(key, op, value, positive)
    if op == "$prefix":
        raise InvalidFilterError(
            "Chroma cannot match the start of a metadata string; store the part to scope by "
            "(a folder, say) in a field of its own and filter it with $eq",
            operator=op,
            path=key,
        )
    raise InvalidFilterError("not supported by the Chroma adapter", operator=op, path=key)


def _node(node: Filter, positive: bool) -> Where:
    if isinstance(node, Condition):
        return _condition(node, positive)
    if isinstance(node, Not):
        return _node(node.filter, not positive)
    # De Morgan: a negated And is an Or of negations, and vice versa
    is_and = isinstance(node, And) is positive
    assert isinstance(node, (And, Or))
    return _join("$and" if is_and else "$or", [_node(f, positive) for f in node.filters])


def to_chroma(where: Filter) -> Where:
    """Translate a simplified tree (see ``ragmem.stores._translate.simplify``) to a ``where``.

    Example:
        >>> from ragmem.filters import parse_filter
        >>> to_chroma(parse_filter({"$not": {"tag": "a"}}))
        {'$and': [{'s:tag': {'$ne': 'a'}}, {'S:tag': {'$not_contains': 'a'}}]}
    """
    return _node(where, True)
