"""Documents the benchmarks generate: reproducible, nothing downloaded."""

from __future__ import annotations

import random


def markdown_document(megabytes: float, seed: int = 0) -> str:
    """A reproducible markdown document of about ``megabytes`` MB."""
    rnd = random.Random(seed)
    vocab = [
        "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))
        for _ in range(3000)
    ]

    def sentence() -> str:
        words = rnd.choices(vocab, k=rnd.randint(5, 25))
        return " ".join(words).capitalize() + rnd.choice([".", ".", ".", "?", "!"])

    parts: list[str] = []
    size = 0
    n = 0
    while size < megabytes * 1_000_000:
        depth = min(6, 1 + int(rnd.expovariate(0.8)))
        block = [f"{'#' * depth} Section {n} {rnd.choice(vocab)}\n"]
        for _ in range(rnd.randint(1, 4)):
            kind = rnd.random()
            if kind < 0.6:
                block.append(" ".join(sentence() for _ in range(rnd.randint(2, 12))) + "\n")
            elif kind < 0.75:
                block.append("".join(f"- {sentence()}\n" for _ in range(rnd.randint(2, 8))))
            elif kind < 0.9:
                lines = "".join(
                    f"    {rnd.choice(vocab)} = {rnd.choice(vocab)}({rnd.randint(0, 99)})\n"
                    for _ in range(rnd.randint(3, 60))
                )
                block.append(f"```python\ndef {rnd.choice(vocab)}():\n{lines}```\n")
            else:
                rows = "".join(
                    f"| {rnd.choice(vocab)} | {rnd.randint(0, 9999)} | {sentence()} |\n"
                    for _ in range(rnd.randint(2, 40))
                )
                block.append(f"| name | value | note |\n|------|-------|------|\n{rows}")
        text = "\n".join(block) + "\n"
        parts.append(text)
        size += len(text)
        n += 1
    return "".join(parts)
