"""Backend-neutral rewriting of filter trees before adapters translate them.

Vector databases disagree on the corner cases of the filter language: Chroma rejects
``$and``/``$or`` with fewer than two members, and an empty ``should`` means "anything"
to some engines. ``simplify`` folds those corners into constants first, so each adapter
only translates trees in which every group has at least two members and every
``$in``/``$nin`` list is non-empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragmem.filters import And, Condition, Not, Or

if TYPE_CHECKING:
    from ragmem.filters import Filter

__all__ = ["simplify"]


def simplify(where: Filter | None) -> Filter | bool:
    """An equivalent filter, or ``True`` (matches every record) / ``False`` (matches none).

    The tree returned has no empty or single-member ``And``/``Or``, no double negation,
    and no empty ``$in``/``$nin`` list.

    Example:
        >>> from ragmem.filters import parse_filter
        >>> simplify(parse_filter({"$or": []}))
        False
        >>> simplify(parse_filter({"$and": [{"a": 1}, {"$and": []}]}))
        Condition(field='a', op='$eq', value=1)
    """
    if where is None:
        return True
    if isinstance(where, Condition):
        if where.op in ("$in", "$nin") and not where.value:
            # nothing is in the empty set, so $in [] matches no record and $nin [] all
            return where.op == "$nin"
        return where
    if isinstance(where, Not):
        inner = simplify(where.filter)
        if isinstance(inner, bool):
            return not inner
        if isinstance(inner, Not):
            return inner.filter
        return Not(filter=inner)
    is_and = isinstance(where, And)
    members: list[Filter] = []
    for sub in where.filters:
        folded = simplify(sub)
        if isinstance(folded, bool):
            if folded is not is_and:
                # a False member decides an And, a True member decides an Or
                return folded
            continue
        # nested groups of the same kind flatten into this one
        if isinstance(folded, And if is_and else Or):
            members.extend(folded.filters)
        else:
            members.append(folded)
    if not members:
        return is_and
    if len(members) == 1:
        return members[0]
    return And(filters=tuple(members)) if is_and else Or(filters=tuple(members))
