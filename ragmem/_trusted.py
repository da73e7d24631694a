"""Pydantic models assembled from values ragmem has already validated.

Hits (``k`` per query) and chunks (thousands per document) are made in bulk from
values that were validated where they entered ragmem, so running pydantic's
validator again is pure cost. They are assembled the way ``model_construct``
assembles a model, minus its per-call bookkeeping: a new instance with its four
``BaseModel`` slots set through the slots' own descriptors (a quarter cheaper than
``object.__setattr__``, which looks each one up by name first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from ragmem.types import Metadata

__all__ = ["TRUSTED", "assemble", "copy_with_lists", "has_fields"]

_M = TypeVar("_M", bound=BaseModel)

# the assembly below needs BaseModel's instance slots to be the ones of pydantic 2 as
# we know it; when they are not, callers validate as usual
TRUSTED = BaseModel.__slots__ == (
    "__dict__",
    "__pydantic_fields_set__",
    "__pydantic_extra__",
    "__pydantic_private__",
)

_new = object.__new__
_slots = vars(BaseModel)
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__


def assemble(model: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance of ``model`` holding ``values`` (every field, in field order) with
    ``fields_set`` as its set fields; only when ``has_fields`` holds for ``model``."""
    instance: _M = _new(model)
    _set_dict(instance, values)
    _set_fields_set(instance, fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def has_fields(model: type[BaseModel], names: list[str]) -> bool:
    """Whether ``model`` has exactly these fields, in this order (what an assembler sets)."""
    return TRUSTED and list(model.model_fields) == names


def copy_with_lists(metadata: Metadata) -> Metadata:
    """A copy of validated metadata that shares no list with it (scalars are immutable)."""
    return {k: v.copy() if type(v) is list else v for k, v in metadata.items()}
