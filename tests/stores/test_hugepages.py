"""Huge-page advice: a hint that never changes memory contents or fails loudly."""

from __future__ import annotations

import numpy as np

from ragmem.stores.local import hugepages


def test_advice_leaves_the_contents_unchanged():
    array = np.arange(2 * hugepages.MIN_BYTES // 8, dtype=np.int64)
    hugepages.advise(array.ctypes.data, array.nbytes)
    assert np.array_equal(array, np.arange(len(array)))


def test_small_regions_and_other_systems_are_left_alone(monkeypatch):
    small = np.zeros(1024, np.uint8)
    assert not hugepages.advise(small.ctypes.data, small.nbytes)
    monkeypatch.setattr(hugepages, "_MADVISE", None)
    large = np.zeros(hugepages.MIN_BYTES * 2, np.uint8)
    assert not hugepages.advise(large.ctypes.data, large.nbytes)


def test_only_whole_huge_pages_inside_the_region_are_advised(monkeypatch):
    calls: list[tuple[int, int]] = []

    def madvise(start: int, size: int, advice: int) -> int:
        calls.append((start, size))
        return 0

    monkeypatch.setattr(hugepages, "_MADVISE", madvise)
    page = hugepages.HUGE_PAGE
    assert hugepages.advise(page * 10 + 5, hugepages.MIN_BYTES + page)
    starts = {start for start, _ in calls}
    ends = {start + size for start, size in calls}
    assert starts == {page * 11}
    assert ends == {(page * 10 + 5 + hugepages.MIN_BYTES + page) // page * page}
