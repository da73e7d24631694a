"""LocalVectorStore persistence: the SQLite store against the write-ahead-log store it replaced.

Both run in one process on the same data: the current package, and the store of an
earlier commit (``--old``, default ``main``) extracted with ``git archive`` into a
temporary directory and imported under another name.

* upsert throughput: ``--calls`` upserts of ``--batch`` vectors each, every call
  durable before it returns (one fsync per call in both designs);
* open: a store of ``--rows`` x ``--dims`` closed cleanly (its caches, or its snapshot,
  up to date), opened again for writing; the best of ``--repeat`` opens.

Run::

    python benchmarks/storage.py --rows 200000
"""

from __future__ import annotations

import argparse
import importlib
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


def upserts(store_class: Any, path: Path, calls: int, batch: int, dims: int) -> float:
    """Durable upsert calls per second."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((calls, batch, dims)).astype(np.float32)
    store = store_class(dims, path=path)
    start = time.perf_counter()
    for call in range(calls):
        ids = [f"c{call}-{i}" for i in range(batch)]
        store.upsert(ids, vectors[call], metadata=[{"call": call}] * batch)
    elapsed = time.perf_counter() - start
    store.close()
    return calls / elapsed


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


def open_seconds(store_class: Any, path: Path, dims: int, repeat: int) -> float:
    """Best time to open the store for writing (and answer one count)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        store = store_class(dims, path=path)
        store.count()
        best = min(best, time.perf_counter() - start)
        store.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="main", help="commit of the store to compare with")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from ragmem.stores.local import LocalVectorStore as New

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        Old = old_package(args.old, work / "old")
        stores = {"old": Old, "new": New}
        rate = {
            k: upserts(s, work / f"up-{k}", args.calls, args.batch, args.dims)
            for k, s in stores.items()
        }
        print(f"upsert, {args.batch} x {args.dims} per call, one fsync per call:")
        for name, value in rate.items():
            print(f"  {name}: {value:8.1f} calls/s")
        print(f"  new/old: {rate['new'] / rate['old']:.2f}x")
        opened = {}
        for name, store_class in stores.items():
            fill(store_class, work / f"big-{name}", args.rows, args.dims)
            opened[name] = open_seconds(store_class, work / f"big-{name}", args.dims, args.repeat)
        print(f"open {args.rows} x {args.dims} with up-to-date caches (best of {args.repeat}):")
        for name, value in opened.items():
            print(f"  {name}: {value:8.3f} s")
        print(f"  new/old: {opened['new'] / opened['old']:.2f}x")


if __name__ == "__main__":
    main()
