"""Folder ingestion against the model's speed, and a large text file in bounded memory.

Two measurements, each run in one worker process per copy of ragmem (``--new``, by
default this checkout, and ``--old``, e.g. main's package extracted with
``git archive main ragmem | tar -x -C /tmp/oldragmem``), alternating copies by round:

* **overlap** (default): SciFact passages (title, blank line, text) written out as one
  ``.txt`` file each in a temporary folder; ``RAGPipeline(path).ingest_folder(folder)``
  with the default local model, timed end to end (reading, chunking, embedding, BM25,
  store, manifest); then the same chunks (read back from the index) embedded alone in
  batches of 256 by the same model. Printed: both wall times, their ratio (ingest / embed
  alone: 1.0 means ingestion runs at the model's speed), and the CPU seconds of each.
* **large** (``--large-mb N``): one generated N MB text file indexed with the hashing
  embedder (the ingestion machinery, not the model), timed, with the worker's peak
  resident memory above what it held before indexing.

    python benchmarks/ingest_overlap.py --docs 800                   # scaled, this checkout
    python benchmarks/ingest_overlap.py --docs 0 --old /tmp/oldragmem  # all 5,183 files
    python benchmarks/ingest_overlap.py --large-mb 50 --old /tmp/oldragmem
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """SciFact's folder: ``$RAGMEM_DATA/beir/scifact``, or the shared data beside the repo."""
    candidates = [os.environ.get("RAGMEM_DATA"), REPO.parent / "shared" / "data"]
    candidates.append(REPO.parent.parent / "shared" / "data")  # a git worktree one level deeper
    for root in candidates:
        if root and (Path(root) / "beir" / "scifact" / "corpus.jsonl.gz").exists():
            return Path(root) / "beir" / "scifact"
    raise SystemExit("SciFact not found: set RAGMEM_DATA to the folder holding beir/scifact")


def write_corpus(folder: Path, docs: int) -> int:
    """SciFact's first ``docs`` passages (all when 0) as one text file each."""
    n = 0
    with gzip.open(data_dir() / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            text = f"{row['title']}\n\n{row['text']}".strip()
            (folder / f"{row['_id']}.txt").write_text(text + "\n", encoding="utf-8")
            n += 1
            if n == docs:
                break
    return n


def write_large(path: Path, megabytes: float) -> None:
    """A text file of about ``megabytes`` MB: numbered paragraphs of varied sentences."""
    words = ["ragmem", "streams", "large", "files", "through", "the", "chunker", "into", "store"]
    target = int(megabytes * 1e6)
    size = 0
    with path.open("w", encoding="utf-8") as fh:
        n = 0
        while size < target:
            sentence = " ".join(words[(n + i) % len(words)] for i in range(12 + n % 9))
            sentence += f" term{n * 7919 % 20011}"
            line = f"Paragraph {n}: {sentence}.\n" + ("\n" if n % 5 == 4 else "")
            fh.write(line)
            size += len(line)
            n += 1


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def overlap_worker(docs: int) -> dict[str, Any]:
    """Ingest the corpus folder end to end, then embed the same chunks alone."""
    import numpy as np

    from ragmem import RAGPipeline

    with tempfile.TemporaryDirectory(prefix="ragmem-ingest-") as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        files = write_corpus(folder, docs)
        with RAGPipeline(Path(tmp) / "index") as rag:
            rag.embedder.embed(["warm up the model once"] * 4)
            cpu, start = _cpu(), time.perf_counter()
            report = rag.ingest_folder(folder)
            ingest_s, ingest_cpu = time.perf_counter() - start, _cpu() - cpu
            texts = [r.text or "" for r in rag.store.get(rag.manifest.chunk_ids())]
            cpu, start = _cpu(), time.perf_counter()
            for offset in range(0, len(texts), 256):
                vectors = rag.embedder.embed(texts[offset : offset + 256])
            embed_s, embed_cpu = time.perf_counter() - start, _cpu() - cpu
            assert np.isfinite(vectors).all()
    assert report.chunks_added == len(texts)
    return {
        "files": files,
        "chunks": len(texts),
        "ingest_s": ingest_s,
        "embed_s": embed_s,
        "ingest_cpu_s": ingest_cpu,
        "embed_cpu_s": embed_cpu,
    }


def large_worker(megabytes: float) -> dict[str, Any]:
    """Index one generated large text file with the hashing embedder: time and peak RSS."""
    from ragmem import HashingEmbedder, RAGPipeline

    with tempfile.TemporaryDirectory(prefix="ragmem-large-") as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        write_large(folder / "large.txt", megabytes)
        with RAGPipeline(Path(tmp) / "index", embedder=HashingEmbedder(dimensions=384)) as rag:
            before = _rss_mb()
            start = time.perf_counter()
            report = rag.ingest_folder(folder)
            seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mb": megabytes,
        "chunks": report.chunks_added,
        "seconds": seconds,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
    }


def run_worker(root: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(root).resolve())}
    command = [sys.executable, __file__, "--worker", "--docs", str(args.docs)]
    if args.large_mb:
        command += ["--large-mb", str(args.large_mb)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"worker for {root} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=800, help="SciFact files (0: all 5,183)")
    parser.add_argument("--large-mb", type=float, default=0.0, help="index one file this big")
    parser.add_argument("--old", default="", help="folder holding the old ragmem package")
    parser.add_argument("--new", default=str(REPO), help="folder holding the new one")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = large_worker(args.large_mb) if args.large_mb else overlap_worker(args.docs)
        print(json.dumps(result))
        return
    sides = [("new", args.new)] + ([("old", args.old)] if args.old else [])
    for round_ in range(args.rounds):
        # alternate which copy goes first, so load from other processes hits both alike
        for label, root in sides if round_ % 2 == 0 else sides[::-1]:
            r = run_worker(root, args)
            if args.large_mb:
                print(
                    f"round {round_} {label}: {r['mb']:g} MB text file, {r['chunks']:,} chunks, "
                    f"{r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:,.0f} MB "
                    f"(+{r['peak_rss_mb'] - r['rss_before_mb']:,.0f} MB while indexing)"
                )
            else:
                print(
                    f"round {round_} {label}: {r['files']:,} files, {r['chunks']:,} chunks: "
                    f"ingest_folder {r['ingest_s']:.1f} s ({r['ingest_cpu_s']:.1f} s CPU), "
                    f"embedding alone {r['embed_s']:.1f} s ({r['embed_cpu_s']:.1f} s CPU), "
                    f"ratio {r['ingest_s'] / r['embed_s']:.3f}x"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
