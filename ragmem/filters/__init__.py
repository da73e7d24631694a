"""The one metadata filter language, used by every store and by BM25.

``language`` holds the tree, its parser and the reference evaluator ``matches``;
``columns`` evaluates a tree on numpy columns with the same semantics.
"""

from ragmem.filters.language import (
    And,
    Condition,
    F,
    Filter,
    FilterLike,
    Not,
    Or,
    matches,
    parse_filter,
    scalar_equal,
    to_dict,
)

__all__ = [
    "And",
    "Condition",
    "F",
    "Filter",
    "FilterLike",
    "Not",
    "Or",
    "matches",
    "parse_filter",
    "scalar_equal",
    "to_dict",
]
