"""The same search and chunking timings with two copies of ragmem, side by side in one run.

For a change that trades speed for simpler code, the cost is measured against the code
before it. Each round runs one subprocess per copy (``PYTHONPATH`` pointing at it), the
copies alternating so that load from other processes hits them alike; each figure is
the best over rounds. Timed:

* ``search 1q``: ``LocalVectorStore`` (flat, 10,000 x 384, metadata on every row),
  ``search`` of one query at a time, k=10 (microseconds per query);
* ``search 100q``: one ``search`` call with 100 queries, k=10 (ms per call);
* ``chunk chars``: ``RecursiveChunker(size=2000, unit="chars")`` over SciFact (no tokenizer:
  the cutting loop and the building of ``Chunk`` objects alone);
* ``chunk tokens``: ``RecursiveChunker(size=512)`` with ``TiktokenTokenizer("cl100k_base")``
  over SciFact, and ``MarkdownChunker(size=512)`` over a 2 MB generated markdown document,
  each copy with its own default tokenizer.

Run, e.g. against main:
    rm -rf /tmp/old && mkdir /tmp/old && git archive main ragmem | tar -x -C /tmp/old
    python benchmarks/compare_versions.py --old /tmp/old --new . [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def worker(docs: int) -> dict[str, float]:
    """Timings of the ``ragmem`` on ``sys.path`` (seconds, per the unit in the name)."""
    import numpy as np
    from documents import markdown_document

    from ragmem import LocalVectorStore
    from ragmem.chunking import MarkdownChunker, RecursiveChunker
    from ragmem.tokens import TiktokenTokenizer

    rng = np.random.default_rng(0)
    n, d = 10_000, 384
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    store = LocalVectorStore(dimensions=d)
    store.upsert(
        [f"doc-{i}" for i in range(n)],
        vectors,
        texts=[f"text of passage {i}" for i in range(n)],
        metadata=[{"source": f"file-{i % 97}", "n": i, "tags": ["a", "b"]} for i in range(n)],
    )
    queries = rng.standard_normal((100, d)).astype(np.float32)
    single = [q for q in queries]
    out: dict[str, float] = {}
    out["search 1q (us/query)"] = (
        _best(lambda: [store.search(q, k=10) for q in single], 5) / len(single) * 1e6
    )
    out["search 100q (ms/call)"] = _best(lambda: store.search(queries, k=10), 5) * 1e3

    path = Path(os.environ.get("RAGMEM_DATA", HERE.parent / ".." / "shared" / "data"))
    with gzip.open(path / "beir" / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(docs), fh)]
    texts = [f"{r['title']}\n\n{r['text']}" for r in rows]
    markdown = markdown_document(2.0)
    tokenizer = TiktokenTokenizer("cl100k_base")
    chars = RecursiveChunker(size=2000, unit="chars")
    tokens = RecursiveChunker(size=512, tokenizer=tokenizer)
    sections = MarkdownChunker(size=512, tokenizer=tokenizer)
    out["chunk chars scifact (s)"] = _best(lambda: [chars.chunk(t) for t in texts], 3)
    out["chunk tokens scifact (s)"] = _best(lambda: [tokens.chunk(t) for t in texts], 3)
    out["chunk tokens markdown-2MB (s)"] = _best(lambda: sections.chunk(markdown), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="", help="folder holding the old ragmem package")
    parser.add_argument("--new", default=str(HERE.parent), help="folder holding the new one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=1000, help="SciFact documents to chunk")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.docs)))
        return
    best: dict[str, dict[str, float]] = {"old": {}, "new": {}}
    for _ in range(args.rounds):
        for label in ("old", "new"):
            root = str(Path(getattr(args, label)).resolve())
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, str(HERE)])}
            command = [sys.executable, __file__, "--worker", "--docs", str(args.docs)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            for name, value in json.loads(done.stdout).items():
                best[label][name] = min(best[label].get(name, float("inf")), value)
    print(f"best of {args.rounds} rounds, old={args.old} new={args.new}")
    print(f"{'timing':<32} {'old':>10} {'new':>10} {'new/old':>8}")
    for name, old in best["old"].items():
        new = best["new"][name]
        print(f"{name:<32} {old:10.4g} {new:10.4g} {new / old:7.3f}x")


if __name__ == "__main__":
    main()
