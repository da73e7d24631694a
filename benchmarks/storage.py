"""LocalVectorStore persistence: the SQLite store against the write-ahead-log store it replaced.

Both run in one process on the same data: the current package, and the store of an
earlier commit (``--old``, default: the last commit with the log-based store) extracted
with ``git archive`` into a temporary directory and imported under another name.

* upsert throughput: ``--calls`` upserts of ``--batch`` vectors each, every call
  durable before it returns (one fsync per call in both designs). The calls run in
  ``--rounds`` alternating rounds (old, new, old, new, ...) so that a change in the
  machine's load falls on both sides; also the bytes each call hands the kernel and
  the CPU time per call, which do not depend on the load;
* open: a store of ``--rows`` x ``--dims`` closed cleanly (its caches, or its snapshot,
  up to date), opened again for writing; the best of ``--repeat`` opens, and the
  resident memory the open added (each side opens in its own fresh process).

Run::

    python benchmarks/storage.py --rows 200000 --calls 500
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# the last commit whose LocalVectorStore kept a write-ahead log and snapshots
OLD = "b48e9e5138e6d5e0bc4393532aa147ef34f67076"


def old_package(commit: str, into: Path) -> Any:
    """The ``ragmem`` package of ``commit``, importable as ``ragmem_old``."""
    blob = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "ragmem"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    package = into / "ragmem_old"
    (into / "ragmem").rename(package)
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        source.write_text(re.sub(r"\bragmem\.", "ragmem_old.", text), encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module("ragmem_old.stores.local").LocalVectorStore


def _written() -> int:
    """Bytes this process has handed to write calls so far (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("wchar"))
    except OSError:
        return 0


def upserts(
    stores: dict[str, Any], work: Path, calls: int, batch: int, dims: int, rounds: int
) -> dict[str, tuple[float, float, float]]:
    """Per side: durable upsert calls per second, CPU ms and bytes written per call."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((calls, batch, dims)).astype(np.float32)
    opened = {name: cls(dims, path=work / f"up-{name}") for name, cls in stores.items()}
    wall = dict.fromkeys(stores, 0.0)
    cpu = dict.fromkeys(stores, 0.0)
    written = dict.fromkeys(stores, 0)
    bounds = np.linspace(0, calls, rounds + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        for name, store in opened.items():
            before = _written()
            start, start_cpu = time.perf_counter(), time.process_time()
            for call in range(lo, hi):
                ids = [f"c{call}-{i}" for i in range(batch)]
                store.upsert(ids, vectors[call], metadata=[{"call": call}] * batch)
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
            written[name] += _written() - before
    for store in opened.values():
        store.close()
    return {
        name: (calls / wall[name], 1e3 * cpu[name] / calls, written[name] / calls)
        for name in stores
    }


def fill(store_class: Any, path: Path, rows: int, dims: int) -> None:
    """A store of ``rows`` random vectors, closed with its caches (snapshot) up to date."""
    rng = np.random.default_rng(1)
    store = store_class(dims, path=path)
    for start in range(0, rows, 20_000):
        n = min(20_000, rows - start)
        ids = [f"r{start + i}" for i in range(n)]
        vectors = rng.standard_normal((n, dims)).astype(np.float32)
        store.upsert(ids, vectors, texts=ids, metadata=[{"n": start + i} for i in range(n)])
    store.compact()
    store.close()


_OPEN = """
import importlib, resource, sys, time
sys.path[:0] = {paths!r}
cls = importlib.import_module({module!r}).LocalVectorStore
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()
before = rss()
start = time.perf_counter()
store = cls({dims}, path={path!r})
store.count()
print(time.perf_counter() - start, rss() - before)
store.close()
"""


def open_once(module: str, paths: list[str], path: Path, dims: int) -> tuple[float, int]:
    """Seconds to open the store for writing (and count), and the resident bytes added,
    measured in a fresh process (so that nothing of an earlier open is resident)."""
    code = _OPEN.format(paths=paths, module=module, dims=dims, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    seconds, rss = out.stdout.split()
    return float(seconds), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default=OLD, help="commit of the store to compare with")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of upserts")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the store opened")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-open", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from ragmem.stores.local import LocalVectorStore as New

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        Old = old_package(args.old, work / "old")
        stores = {"old": Old, "new": New}
        rate = upserts(stores, work, args.calls, args.batch, args.dims, args.rounds)
        print(
            f"upsert, {args.batch} x {args.dims} per call, one fsync per call "
            f"({args.calls} calls in {args.rounds} alternating rounds):"
        )
        for name, (calls, cpu, written) in rate.items():
            print(
                f"  {name}: {calls:8.1f} calls/s   {cpu:6.3f} CPU ms/call   "
                f"{written / 1024:6.1f} KiB written/call"
            )
        ratios = [rate["new"][i] / rate["old"][i] for i in range(3)]
        print(f"  new/old: {ratios[0]:.2f}x calls/s, {ratios[1]:.2f}x CPU, {ratios[2]:.2f}x bytes")
        if args.skip_open:
            return
        sides = {"old": ("ragmem_old.stores.local", [str(work / "old")])}
        sides["new"] = ("ragmem.stores.local", [str(ROOT)])
        opened: dict[str, tuple[float, int]] = {}
        for name, store_class in stores.items():
            fill(store_class, work / f"big-{name}", args.rows, args.dims)
            module, paths = sides[name]
            runs = [
                open_once(module, paths, work / f"big-{name}", args.dims)
                for _ in range(args.repeat)
            ]
            opened[name] = min(runs)
        print(
            f"open {args.rows} x {args.dims} with up-to-date caches "
            f"(best of {args.repeat}, each in a fresh process):"
        )
        for name, (seconds, rss) in opened.items():
            print(f"  {name}: {seconds:8.3f} s   resident after open +{rss / 2**20:8.1f} MiB")
        print(
            f"  new/old: {opened['new'][0] / opened['old'][0]:.2f}x time, "
            f"{opened['new'][1] / max(opened['old'][1], 1):.2f}x resident"
        )


if __name__ == "__main__":
    main()
