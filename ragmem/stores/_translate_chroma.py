"""Chroma metadata encoding and translation of ragmem filter trees into Chroma ``where``.

Chroma's filter language lacks ``$not`` and ``$exists``, rejects empty lists, mixed-type
lists and ``$and``/``$or`` with fewer than two members, compares list elements by exact
type (1 does not match 1.0) and has no range test on lists. So the adapter stores, next
to the original metadata (JSON, for an exact round trip), derived fields it can query
exactly. For a user key ``k`` (user keys never start with ``:``, and every derived name
starts with a tag, so no two names collide)::

    "s:k"  the string elements (a list)        "b:k"  the bool elements (a list)
    "n:k"  the numbers, as floats (a list)     "lo:k" / "hi:k"  their min / max
    ":k"   list of the keys present            ":n"   list of the keys holding numbers
    ":m"   the original metadata as JSON (always present, so no metadata dict is empty)
    ":0"   True when the item has no text (Chroma cannot store a None document)

Queries then map exactly: ``$eq v`` is ``$contains`` on the list of v's type; "any
element > v" is ``max > v``, "any element < v" is ``min < v``; ``$exists`` is membership
in ``:k``. ``$not`` is pushed down to the leaves (De Morgan), where every negated leaf
has an exact form: ``$not_contains`` and ``$ne`` in Chroma match records lacking the
field, as ragmem's complement does.
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
_KEYS_FIELD = ":k"
_NUMERIC_KEYS_FIELD = ":n"
_NO_TEXT_FIELD = ":0"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def encode_metadata(metadata: Metadata, no_text: bool = False) -> dict[str, Any]:
    """The Chroma metadata dict stored for one item's (validated) metadata."""
    out: dict[str, Any] = {
        _JSON_FIELD: json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
    }
    if no_text:
        out[_NO_TEXT_FIELD] = True
    if metadata:
        out[_KEYS_FIELD] = list(metadata)
    numeric_keys = []
    for key, value in metadata.items():
        elements = value if isinstance(value, list) else [value]
        strings = [e for e in elements if isinstance(e, str)]
        bools = [e for e in elements if isinstance(e, bool)]
        numbers = [float(e) for e in elements if _is_number(e)]
        if strings:
            out["s:" + key] = strings
        if bools:
            out["b:" + key] = bools
        if numbers:
            out["n:" + key] = numbers
            out["lo:" + key] = min(numbers)
            out["hi:" + key] = max(numbers)
            numeric_keys.append(key)
    if numeric_keys:
        out[_NUMERIC_KEYS_FIELD] = numeric_keys
    return out


def decode_metadata(stored: dict[str, Any] | None) -> Metadata:
    """The user metadata back from a stored Chroma metadata dict."""
    if not stored or _JSON_FIELD not in stored:
        return {}
    decoded: Metadata = json.loads(stored[_JSON_FIELD])
    return decoded


def decode_text(document: str | None, stored: dict[str, Any] | None) -> str | None:
    """The item's text back from its Chroma document and stored metadata."""
    if stored and stored.get(_NO_TEXT_FIELD):
        return None
    return document


def _join(op: str, parts: list[Where]) -> Where:
    return parts[0] if len(parts) == 1 else {op: parts}


def _equals(key: str, value: Any, positive: bool) -> Where:
    """Any element equals ``value`` (or, negated, none does / the key is missing)."""
    op = "$contains" if positive else "$not_contains"
    if isinstance(value, bool):
        return {"b:" + key: {op: value}}
    if isinstance(value, str):
        return {"s:" + key: {op: value}}
    return {"n:" + key: {op: float(value)}}


_BOUND = {"$lt": "lo:", "$lte": "lo:", "$gt": "hi:", "$gte": "hi:"}
_FLIP = {"$lt": "$gte", "$lte": "$gt", "$gt": "$lte", "$gte": "$lt"}


def _range(key: str, op: str, value: float, positive: bool) -> Where:
    # any element < v  <=>  min < v;  any element > v  <=>  max > v
    field = _BOUND[op] + key
    if positive:
        return {field: {op: value}}
    # no element qualifies: the bound fails, or the key holds no numbers at all
    return {"$or": [{field: {_FLIP[op]: value}}, {_NUMERIC_KEYS_FIELD: {"$not_contains": key}}]}


def _condition(cond: Condition, positive: bool) -> Where:
    op, key, value = cond.op, cond.field, cond.value
    if op == "$exists":
        present = value is positive
        return {_KEYS_FIELD: {"$contains" if present else "$not_contains": key}}
    if op in ("$ne", "$nin"):
        op, positive = ("$eq" if op == "$ne" else "$in"), not positive
    if op in ("$eq", "$contains"):
        return _equals(key, value, positive)
    if op == "$in":
        # any of the values (positive), or none of them (negated)
        return _join("$or" if positive else "$and", [_equals(key, v, positive) for v in value])
    if op in _BOUND:
        return _range(key, op, value, positive)
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
        {'s:tag': {'$not_contains': 'a'}}
    """
    return _node(where, True)
