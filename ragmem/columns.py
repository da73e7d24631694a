"""Kept for imports written before the filters became a package: use ``ragmem.filters.columns``."""

from ragmem.filters.columns import MetadataColumns

__all__ = ["MetadataColumns"]
