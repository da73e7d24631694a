"""``ragmem demo``: index ragmem's own documentation and answer questions about it, offline."""

from __future__ import annotations

import re
import tempfile
import time
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path
from typing import TYPE_CHECKING

from ragmem._cli_parts import snippet
from ragmem.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.context import Source
    from ragmem.llms.base import LLM

__all__ = ["DEMO_QUESTIONS", "documentation_files", "run_demo"]

DEMO_QUESTIONS = (
    "How do I install ragmem and run it offline?",
    "How does re-indexing a folder avoid embedding unchanged files?",
    "How does the context builder stay within the token budget?",
    "Which command answers a question with citations from an OpenAI-compatible server?",
)


def documentation_files(workdir: Path) -> list[Path]:
    """ragmem's README and docs/: from the source checkout, else the installed README."""
    root = Path(__file__).resolve().parents[1]
    docs = root / "docs"
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    if docs.is_dir():
        files += sorted(p for p in docs.rglob("*") if p.suffix in (".md", ".rst", ".txt"))
    if files:
        return files
    try:  # an installed wheel carries the README as its long description
        description = metadata("ragmem").get_payload()  # type: ignore[attr-defined]
    except PackageNotFoundError:
        description = None
    if not description:
        raise ConfigurationError("ragmem's documentation is not available in this installation")
    readme = workdir / "README.md"
    readme.write_text(str(description), encoding="utf-8")
    return [readme]


def run_demo(questions: Sequence[str] = (), *, k: int = 3, llm: LLM | None = None) -> int:
    """Index the documentation into a temporary store and answer ``questions``.

    Prints ranked, cited sources for each question and, when ``llm`` is given, its answer.
    """
    from ragmem.pipeline import RAGPipeline

    with tempfile.TemporaryDirectory(prefix="ragmem-demo-") as tmp:
        workdir = Path(tmp)
        files = documentation_files(workdir)
        corpus = workdir / "docs"
        corpus.mkdir()
        # index copies under short names so the citations read README.md, docs/...
        root = Path(__file__).resolve().parents[1]
        texts: dict[str, str] = {}
        for file in files:
            short = file.relative_to(root) if file.is_relative_to(root) else Path(file.name)
            target = corpus / short
            target.parent.mkdir(parents=True, exist_ok=True)
            texts[short.as_posix()] = file.read_text(encoding="utf-8")
            target.write_text(texts[short.as_posix()], encoding="utf-8")

        started = time.perf_counter()
        rag = RAGPipeline(workdir / "index", llm=llm, k=k)
        report = rag.ingest_folder(corpus)
        took = time.perf_counter() - started
        print(
            f"ragmem demo: indexed {len(report.added)} files ({report.chunks_added} chunks) "
            f"in {took:.1f} s with {rag.embedder.name}; nothing left this machine.\n"
        )
        prefix = corpus.as_posix() + "/"
        for question in questions or DEMO_QUESTIONS:
            print(f"Q: {question}")
            answer = rag.query(question)
            if answer.text is not None:
                print(f"A: {answer.text}")
            shown = answer.citations or answer.sources
            for source in shown:
                name = str(source.metadata.get("source", source.doc_id)).removeprefix(prefix)
                where = _location(name, source, texts)
                print(f"  [{source.number}] {where}  score {source.score:.3f}")
                print(f"      {snippet(_best_passage(source.text, question), 150)}")
            print()
        rag.close()
        if llm is None:
            print(
                "These are the sources an LLM would be given. To get written answers, run\n"
                "  ragmem demo --model MODEL --base-url http://localhost:11434/v1\n"
                "against any OpenAI-compatible server."
            )
    return 0


def _location(name: str, source: Source, texts: dict[str, str]) -> str:
    text = texts.get(name)
    if text is None or source.start is None or source.end is None:
        return name
    first = text.count("\n", 0, source.start) + 1
    last = first + source.text.rstrip("\n").count("\n")
    return f"{name}:{first}-{last}" if last > first else f"{name}:{first}"


def _best_passage(text: str, question: str) -> str:
    """The line or sentence of ``text`` sharing the most words with ``question``."""
    words = {w for w in re.findall(r"\w+", question.lower()) if len(w) > 3}
    passages = [p for p in re.split(r"\n+|(?<=[.!?])\s+", text) if p.strip()]
    if not passages:
        return text
    return max(passages, key=lambda p: len(words & set(re.findall(r"\w+", p.lower()))))
