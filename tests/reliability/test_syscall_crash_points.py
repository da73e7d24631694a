"""Crash points at every syscall: the writer is killed just before each of its writes,
syncs, renames, unlinks and truncations, and the reopened data is exactly what it
acknowledged, plus possibly the whole call in flight, never part of it.

For each scenario (the store flat and HNSW, BM25, token vectors, agent memory, the
embedding cache) a counting run finds how often the writer calls each syscall; then for
each syscall and each N (every N, or a stride when there are many) the writer runs again
under ``strace -e inject=SYSCALL:signal=KILL:when=N`` on a fresh copy of the saved state,
which is then reopened in a fresh object and compared with the model. The run after the
last N finishes unharmed. ``RAGMEM_CRASH_POINTS`` caps the points per syscall (default
48); the counts of each scenario are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.reliability.scenarios import SCENARIOS, Scenario
from tests.reliability.tracing import KINDS, Acks, count_calls, kill_at, unavailable

_WHY_NOT = unavailable()
if _WHY_NOT is not None and os.environ.get("CI"):
    raise RuntimeError(f"the crash-point test must run in CI: {_WHY_NOT}")
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT))

_CAP = int(os.environ.get("RAGMEM_CRASH_POINTS", "48"))


def _points(total: int) -> list[int]:
    """N = 1..total, every one or an even stride, always with the first and last."""
    stride = max(1, -(-total // _CAP))
    return sorted({*range(1, total + 1, stride), total})


def _check(scenario: Scenario, base: Path, acks: int) -> str:
    """Reopen ``base``: the acknowledged state, or that plus the whole call in flight."""
    found = scenario.read(base)
    expected = scenario.expected
    assert acks < len(expected), f"{acks} acks for {len(expected) - 1} calls"
    if found == expected[acks]:
        return "before"
    assert acks + 1 < len(expected), f"after all {acks} calls: {found} != {expected[acks]}"
    assert found == expected[acks + 1], (
        f"after {acks} acknowledged calls the reopened state is neither the state after "
        f"them nor the state after the next one:\n{found}\nexpected\n{expected[acks]}"
    )
    return "after"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_kill_before_any_file_syscall_loses_nothing_acknowledged(scenario, tmp_path):
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    scenario.prepare(pristine)

    run_dir = tmp_path / "run"

    def fresh() -> None:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.copytree(pristine, run_dir)

    def work(acks: Acks) -> None:
        scenario.work(run_dir, acks)

    fresh()
    counts = count_calls(work, tmp_path)
    assert _check(scenario, run_dir, len(scenario.expected) - 1) == "before"
    # the writes must go through the syscalls under test
    assert counts["pwrite64"] + counts["write"] > 0
    assert counts["fsync"] + counts["fdatasync"] > 0 or scenario.name == "embedding-cache"

    report = []
    outcomes = {"before": 0, "after": 0}
    for kind, names in KINDS.items():
        tested = 0
        for name in names:
            total = counts[name]
            if not total:
                continue
            for n in [*_points(total), total + 1]:
                fresh()
                run = kill_at(work, name, n)
                if n > total:
                    assert not run.killed, f"{name} was called more than {total} times"
                    assert run.acks == len(scenario.expected) - 1
                else:
                    tested += run.killed
                outcomes[_check(scenario, run_dir, run.acks)] += run.killed
        report.append(f"{kind}={tested}")
    print(
        f"\n{scenario.name}: {sum(outcomes.values())} crash points, all recovered: "
        f"{' '.join(report)}; the call in flight absent {outcomes['before']} times, whole "
        f"{outcomes['after']} times (syscalls per run: {dict(sorted(counts.items()))})"
    )
