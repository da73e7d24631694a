"""Translation of ragmem filter trees into Qdrant ``Filter`` objects, operator by operator.

Payload layout written by ``QdrantVectorStore`` (user metadata never shares a level with
the adapter's own fields, so no user key can collide with them)::

    {"id": "<ragmem id>", "text": "...", "metadata": {...user metadata...}}

plus ``"metadata_keys": [...]`` only on points with a key that ``is_empty`` cannot see
(one holding an empty list, or one whose name contains ``"``), so most payloads are
exactly what a user of the SDK would write.

Why each operator maps as it does:

- Qdrant keeps bool, integer and float apart for exact matches, and an exact match
  never hits a float value. Numbers are therefore compared with a closed ``Range``
  (``gte == lte == v``), which compares ints and floats by value and never matches a
  bool; strings and bools use ``MatchValue``.
- Conditions on an array payload match when any element matches, as in ragmem.
- ``must_not`` matches records lacking the key, which is exactly ``$ne``/``$nin``/``$not``.
- ``$exists`` is ``not is_empty`` on the key. Qdrant's ``is_empty`` also matches an
  empty list, and a path cannot name a key containing ``"``: such keys are listed in
  ``metadata_keys``, which ``$exists`` consults as well.
- Qdrant has no substring or prefix match on a keyword payload: ``$contains`` on a string
  field matches equal strings only (a subset of ragmem's substring match), and ``$prefix``
  is refused with ``InvalidFilterError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qdrant_client import models

from ragmem.errors import InvalidFilterError
from ragmem.filters import And, Condition, Not, Or

if TYPE_CHECKING:
    from ragmem.filters import Filter

__all__ = ["ID_FIELD", "KEYS_FIELD", "METADATA_FIELD", "TEXT_FIELD", "to_qdrant", "unseen_keys"]

ID_FIELD = "id"
TEXT_FIELD = "text"
METADATA_FIELD = "metadata"
KEYS_FIELD = "metadata_keys"

_RANGE_ARG = {"$lt": "lt", "$lte": "lte", "$gt": "gt", "$gte": "gte"}


def _path(field: str) -> str:
    # quoting keeps dots and brackets in user keys from reading as nested paths
    return f'{METADATA_FIELD}."{field}"'


def unseen_keys(metadata: dict[str, Any]) -> list[str]:
    """The keys of one item's metadata that ``is_empty`` cannot see (see the module doc)."""
    return [k for k, v in metadata.items() if v == [] or '"' in k]


def _exists(field: str, present: bool) -> models.Condition:
    listed = models.FieldCondition(key=KEYS_FIELD, match=models.MatchValue(value=field))
    if '"' in field:
        return listed if present else models.Filter(must_not=[listed])
    empty = models.IsEmptyCondition(is_empty=models.PayloadField(key=_path(field)))
    if present:
        return models.Filter(should=[models.Filter(must_not=[empty]), listed])
    return models.Filter(must=[empty], must_not=[listed])


def _key(cond: Condition) -> str:
    if '"' in cond.field:
        # Qdrant's key paths quote names with '"' and have no escape for the quote itself
        raise InvalidFilterError(
            f"Qdrant cannot filter on field names containing '\"' (field {cond.field!r})",
            operator=cond.op,
            path=cond.field,
        )
    return _path(cond.field)


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
        return _exists(cond.field, bool(cond.value))
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
    if op == "$prefix":
        raise InvalidFilterError(
            "Qdrant cannot match the start of a metadata string; store the part to scope by "
            "(a folder, say) in a field of its own and filter it with $eq",
            operator=op,
            path=cond.field,
        )
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
