"""A chatbot over a folder of your files: index, ask with citations, follow-ups, delete, re-index.

Run it against any OpenAI-compatible chat server (OpenAI, Ollama, vLLM, llama.cpp)::

    export OPENAI_API_KEY=...            # or any string for a local server
    python examples/folder_chatbot.py ~/notes --store ~/.notes-index \\
        --model gpt-4o-mini [--base-url http://localhost:11434/v1]

Then type questions. Answers stream as they are written and end with the sources they
cite; a follow-up ("and for EU customers?") is rewritten into a standalone search from
the conversation. Commands: ``/delete PATH`` removes a file from the index, ``/reindex``
picks up added, changed and removed files, ``/quit`` leaves. Embeddings are computed
locally by default (``--embedder hashing`` is a fast stand-in for trying it out).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ragmem import RAGPipeline
from ragmem.llms.openai import OpenAIChat


def reindex(rag: RAGPipeline, folder: Path) -> None:
    report = rag.ingest_folder(folder, progress=sys.stderr.isatty())
    for problem in report.skipped + report.failed:
        print(f"  skipped {problem.path}: {problem.reason}")
    print(f"indexed: {report.summary()}")


def answer(rag: RAGPipeline, question: str, history: list[dict[str, str]]) -> None:
    stream = rag.stream(question, history=history)
    if stream.explain["search_query"] != question:
        print(f"(searched for: {stream.explain['search_query']})")
    for piece in stream:
        print(piece, end="", flush=True)
    print()
    result = stream.answer
    shown = result.citations or result.sources
    print("Sources:" if result.citations else "Sources sent (none cited):")
    for source in shown:
        print(f"  [{source.number}] {source.metadata.get('source', source.doc_id)}")
    history += [
        {"role": "user", "content": question},
        {"role": "assistant", "content": result.text or ""},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--store", required=True, help="index folder (kept between runs)")
    parser.add_argument("--model", required=True, help="chat model name")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OpenAI)")
    parser.add_argument("--embedder", default=None, help="embedder for a new index (local)")
    args = parser.parse_args(argv)

    llm = OpenAIChat(args.model, base_url=args.base_url)
    with RAGPipeline(args.store, embedder=args.embedder, llm=llm) as rag:
        reindex(rag, args.folder)
        history: list[dict[str, str]] = []
        for line in sys.stdin:
            text = line.strip()
            if not text:
                continue
            if text == "/quit":
                break
            if text == "/reindex":
                reindex(rag, args.folder)
            elif text.startswith("/delete "):
                path = (args.folder / text.removeprefix("/delete ").strip()).as_posix()
                removed = rag.delete(path).removed
                print(f"deleted: {', '.join(removed)}" if removed else f"not indexed: {path}")
            else:
                print(f"> {text}")
                answer(rag, text, history)
    return 0


if __name__ == "__main__":
    sys.exit(main())
