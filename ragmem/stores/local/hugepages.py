"""Backing large in-memory arrays with 2 MiB pages on Linux (advisory, never required).

A graph search fetches a few hundred vectors and neighbour lists from random places in
memory. Once the index outgrows the CPU caches, each fetch also misses the TLB when
pages are 4 KiB, and the page walk adds its own memory accesses. The same memory in
2 MiB pages needs 512 times fewer TLB entries (``benchmarks/ann.py`` measures the gain).
Linux distributions commonly enable transparent huge pages only for memory that asks
for them (``madvise``), and faiss does not ask, so the index asks on its behalf.

Everything here is a hint: on other systems, older kernels or when the kernel has no
huge page free, the arrays simply stay in 4 KiB pages, and nothing else changes.
"""

from __future__ import annotations

import ctypes
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["HUGE_PAGE", "MIN_BYTES", "advise", "advise_once"]

HUGE_PAGE = 2 << 20
# below this an array fits the TLB's reach anyway; not worth a system call
MIN_BYTES = 16 << 20
_MADV_HUGEPAGE = 14  # later faults and khugepaged use huge pages for the range
_MADV_COLLAPSE = 25  # Linux 6.1+: collapse the range into huge pages now


def _madvise() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - a libc without madvise
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_MADVISE = _madvise()


def advise(address: int, size: int) -> bool:
    """Ask for huge pages over ``size`` bytes at ``address``; True when the kernel took it.

    Only whole 2 MiB pages inside the range are advised, so no memory outside it is
    touched. The contents are unchanged either way.
    """
    if _MADVISE is None or size < MIN_BYTES:
        return False
    start = -(-address // HUGE_PAGE) * HUGE_PAGE
    end = (address + size) // HUGE_PAGE * HUGE_PAGE
    if end <= start:
        return False
    hinted: bool = _MADVISE(start, end - start, _MADV_HUGEPAGE) == 0
    # a partial collapse (some page had no huge page free) still helps; errors are ignored
    _MADVISE(start, end - start, _MADV_COLLAPSE)
    return hinted


def advise_once(advised: dict[str, tuple[int, int]], name: str, array: np.ndarray) -> None:
    """:func:`advise` for ``array``, unless it was asked for ``name`` already: asked again
    only when the array moved or grew by an eighth since (``advised`` remembers)."""
    address, size = int(array.ctypes.data), int(array.nbytes)
    last = advised.get(name)
    if last is not None and last[0] == address and size < last[1] * 9 // 8:
        return
    advise(address, size)
    advised[name] = (address, size)
