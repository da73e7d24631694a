"""Translation of ragmem filter trees into Qdrant ``Filter`` objects, operator by operator.

Payload layout written by ``QdrantVectorStore`` (user metadata never shares a level with
the adapter's own fields, so no user key can collide with them)::

    {"id": "<ragmem id>", "text": "...", "metadata": {...user metadata...},
     "metadata_keys": ["<every key present in metadata>"]}

Why each operator maps as it does:

- Qdrant keeps bool, integer and float apart for exact matches, and an exact match
  never hits a float value. Numbers are therefore compared with a closed ``Range``
  (``gte == lte == v``), which compares ints and floats by value and never matches a
  bool; strings and bools use ``MatchValue``.
- Conditions on an array payload match when any element matches, as in ragmem.
- ``must_not`` matches records lacking the key, which is exactly ``$ne``/``$nin``/``$not``.
- Qdrant's ``is_empty`` treats an empty list as absent, so ``$exists`` tests the
  ``metadata_keys`` list instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qdrant_client import models

from ragmem.errors import InvalidFilterError
from ragmem.filters import And, Condition, Not, Or

if TYPE_CHECKING:
    from ragmem.filters import Filter

__all__ = ["ID_FIELD", "KEYS_FIELD", "METADATA_FIELD", "TEXT_FIELD", "to_qdrant"]

ID_FIELD = "id"
TEXT_FIELD = "text"
METADATA_FIELD = "metadata"
KEYS_FIELD = "metadata_keys"

_RANGE_ARG = {"$lt": "lt", "$lte": "lte", "$gt": "gt", "$gte": "gte"}


def _key(cond: Condition) -> str:
    if '"' in cond.field:
        # Qdrant's key paths quote names with '"' and have no escape for the quote itself
        raise InvalidFilterError(
            f"Qdrant cannot filter on field names containing '\"' (field {cond.field!r})",
            operator=cond.op,
            path=cond.field,
        )
    # quoting keeps dots and brackets in user keys from reading as nested paths
    return f'{METADATA_FIELD}."{cond.field}"'


def _equals(key: str, value: Any) -> models.FieldCondition:
    if isinstance(value, (bool, str)):
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))
    return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))


def _any_equals(key: str, values: tuple[Any, ...]) -> models.Condition:
    strings = [v for v in values if isinstance(v, str)]
    others = [v for v in values if not isinstance(v, str)]
    parts: list[models.Condition] = []
    if strings:
        parts.append(models.FieldCondition(key=key, match=models.MatchAny(any=strings)))
    parts.extend(_equals(key, v) for v in others)
    return parts[0] if len(parts) == 1 else models.Filter(should=parts)


def _condition(cond: Condition) -> models.Condition:
    op = cond.op
    if op == "$exists":
        present = models.FieldCondition(key=KEYS_FIELD, match=models.MatchValue(value=cond.field))
        return present if cond.value else models.Filter(must_not=[present])
    key = _key(cond)
    if op in ("$eq", "$contains"):
        return _equals(key, cond.value)
    if op == "$ne":
        return models.Filter(must_not=[_equals(key, cond.value)])
    if op == "$in":
        return _any_equals(key, cond.value)
    if op == "$nin":
        return models.Filter(must_not=[_any_equals(key, cond.value)])
    if op in _RANGE_ARG:
        return models.FieldCondition(key=key, range=models.Range(**{_RANGE_ARG[op]: cond.value}))
    raise InvalidFilterError("not supported by the Qdrant adapter", operator=op, path=cond.field)


def _node(node: Filter) -> models.Condition:
    if isinstance(node, Condition):
        return _condition(node)
    if isinstance(node, And):
        return models.Filter(must=[_node(f) for f in node.filters])
    if isinstance(node, Or):
        return models.Filter(should=[_node(f) for f in node.filters])
    assert isinstance(node, Not)
    return models.Filter(must_not=[_node(node.filter)])


def to_qdrant(where: Filter) -> models.Filter:
    """Translate a simplified tree (see ``ragmem.stores._translate.simplify``) to a Qdrant Filter.

    Raises:
        InvalidFilterError: a field name Qdrant cannot address.
    """
    condition = _node(where)
    if isinstance(condition, models.Filter):
        return condition
    return models.Filter(must=[condition])
