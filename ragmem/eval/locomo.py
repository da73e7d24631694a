"""LoCoMo, retrieval only: every dialog turn becomes a memory; each question recalls turns.

Metrics follow the reference script shipped with the data (``locomo_retrieval_eval.py``):
per question, recall@k is the share of gold evidence turns among the top k, hit@k is 1
when any is; both are averaged per category and overall. Evidence ids are normalised
("D:11:26" -> "D11:26", several ids packed into one string are split) and questions
with no resolvable evidence are skipped.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragmem.agents.memory import Memory
    from ragmem.agents.recall import RecallWeights
    from ragmem.embedders.base import Embedder

__all__ = [
    "CATEGORY_NAMES",
    "Question",
    "Turn",
    "build_memory",
    "evaluate",
    "load_conversations",
    "memory_recall",
    "normalise_evidence",
]

CATEGORY_NAMES = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
_EVIDENCE = re.compile(r"D:?(\d+):(\d+)")
_SESSION_KEY = re.compile(r"session_(\d+)")
_DATE_FORMATS = ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y")


@dataclass(frozen=True)
class Turn:
    """One dialog turn: the unit stored as a memory."""

    id: str  # dia_id such as "D3:7"
    session: int
    date_time: str
    timestamp: float
    speaker: str
    text: str
    image_caption: str | None = None

    def memory_text(self) -> str:
        """The text stored for this turn: speaker, words, and what an image showed."""
        body = f"{self.speaker}: {self.text}"
        if self.image_caption:
            body += f" [shares {self.image_caption}]"
        return body


@dataclass(frozen=True)
class Question:
    """One QA pair with its normalised gold evidence turn ids."""

    conversation: str
    question: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo sample: its turns in order and its questions."""

    id: str
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]


def parse_session_time(text: str) -> float:
    """Unix time of a LoCoMo session stamp such as ``"1:56 pm on 8 May, 2023"`` (UTC)."""
    cleaned = " ".join(text.split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unrecognised LoCoMo session time {text!r}")


def normalise_evidence(raw: Iterable[str], known: set[str]) -> tuple[str, ...]:
    """Resolvable evidence ids, de-duplicated in order (malformed entries repaired)."""
    ids: list[str] = []
    for entry in raw:
        for piece in re.split(r"[;,\s]+", entry.strip()):
            match = _EVIDENCE.fullmatch(piece) if piece else None
            dia_id = f"D{int(match.group(1))}:{int(match.group(2))}" if match else None
            if dia_id in known and dia_id not in ids:
                ids.append(dia_id)
    return tuple(ids)


def load_conversations(path: str | Path) -> list[Conversation]:
    """Read ``locomo10.json`` (or ``.json.gz``)."""
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        samples = json.load(handle)
    out = []
    for sample in samples:
        conv = sample["conversation"]
        sessions = sorted(
            int(m.group(1))
            for key in conv
            if (m := _SESSION_KEY.fullmatch(key)) and isinstance(conv[key], list)
        )
        turns = []
        for number in sessions:
            stamp = conv.get(f"session_{number}_date_time", "")
            when = parse_session_time(stamp)
            for position, turn in enumerate(conv[f"session_{number}"]):
                turns.append(
                    Turn(
                        id=turn["dia_id"],
                        session=number,
                        date_time=stamp,
                        timestamp=when + position,  # keeps turn order within a session
                        speaker=turn["speaker"],
                        text=turn["text"],
                        image_caption=turn.get("blip_caption"),
                    )
                )
        known = {t.id for t in turns}
        questions = tuple(
            Question(
                conversation=sample["sample_id"],
                question=qa["question"],
                category=int(qa["category"]),
                evidence=normalise_evidence(qa.get("evidence", []), known),
            )
            for qa in sample["qa"]
        )
        out.append(Conversation(id=sample["sample_id"], turns=tuple(turns), questions=questions))
    return out


Recall = Callable[[Question, int], Sequence[str]]
"""Given a question and k, the ids of the top-k turns, best first."""


def evaluate(
    conversations: Sequence[Conversation],
    index: Callable[[Conversation], Recall],
    ks: Sequence[int] = (5, 10),
) -> dict[str, Any]:
    """Run the benchmark: ``index(conversation)`` stores the turns and returns a recall function.

    Returns recall@k and hit@k (percent) per category, over categories 1-5 (the
    LoCoMo paper's average) and 1-4, plus timings. The top level carries
    ``recall@k`` for categories 1-5.
    """
    ks = sorted(set(ks))
    sums: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[int, int] = defaultdict(int)
    skipped: dict[int, int] = defaultdict(int)
    index_seconds = query_seconds = 0.0
    n_queries = 0
    for conversation in conversations:
        started = time.perf_counter()
        recall = index(conversation)
        index_seconds += time.perf_counter() - started
        for question in conversation.questions:
            if not question.evidence:
                skipped[question.category] += 1
                continue
            started = time.perf_counter()
            ranked = list(recall(question, max(ks)))
            query_seconds += time.perf_counter() - started
            n_queries += 1
            gold = set(question.evidence)
            counts[question.category] += 1
            for k in ks:
                found = len(gold.intersection(ranked[:k]))
                sums[question.category][f"recall@{k}"] += found / len(gold)
                sums[question.category][f"hit@{k}"] += 1.0 if found else 0.0

    def summary(categories: Iterable[int]) -> dict[str, float]:
        cats = [c for c in categories if counts[c]]
        n = sum(counts[c] for c in cats)
        out: dict[str, float] = {"n": n}
        for k in ks:
            for metric in (f"recall@{k}", f"hit@{k}"):
                total = sum(sums[c][metric] for c in cats)
                out[metric] = round(100 * total / n, 2) if n else float("nan")
        return out

    overall = summary(range(1, 6))
    return {
        **{f"recall@{k}": overall[f"recall@{k}"] for k in ks},
        "categories 1-5": overall,
        "categories 1-4": summary(range(1, 5)),
        "per_category": {f"{c} {CATEGORY_NAMES.get(c, '?')}": summary([c]) for c in sorted(counts)},
        "skipped_no_evidence": {str(c): n for c, n in sorted(skipped.items())},
        "conversations": [c.id for c in conversations],
        "index_seconds": round(index_seconds, 2),
        "query_ms_mean": round(1000 * query_seconds / max(n_queries, 1), 2),
    }


def memory_recall(
    embedder: Embedder,
    *,
    weights: RecallWeights | None = None,
    with_date: bool = True,
) -> Callable[[Conversation], Recall]:
    """The indexing function ``evaluate`` needs, backed by ragmem's ``Memory``.

    Each conversation gets its own in-memory ``Memory``; every turn is added (no
    de-duplication and no supersession: a chat log keeps every turn as said) in the
    conversation's user scope with its session as ``session_id``, its time as
    ``timestamp``, and the session date in its text when ``with_date``.
    """

    def index(conversation: Conversation) -> Recall:
        memory = build_memory(conversation, embedder, weights=weights, with_date=with_date)

        def recall(question: Question, k: int) -> list[str]:
            hits = memory.search(question.question, user_id=conversation.id, k=k)
            return [str(hit.metadata["dia_id"]) for hit in hits]

        return recall

    return index


def build_memory(
    conversation: Conversation,
    embedder: Embedder,
    *,
    weights: RecallWeights | None = None,
    with_date: bool = True,
) -> Memory:
    """An in-memory ``Memory`` holding every turn of ``conversation`` (see ``memory_recall``)."""
    from ragmem.agents.memory import Memory, MemoryInput

    # a chat log, not a set of facts: every turn is kept as said (no merging), and an
    # older turn on a subject is not taken as superseded by a newer one
    memory = Memory(embedder=embedder, weights=weights, deduplicate=False, same_subject=None)
    inputs = [
        MemoryInput(
            text=f"{turn.date_time}: {turn.memory_text()}" if with_date else turn.memory_text(),
            metadata={"dia_id": turn.id, "speaker": turn.speaker},
            session_id=f"session_{turn.session}",
            timestamp=turn.timestamp,
        )
        for turn in conversation.turns
    ]
    memory.add_many(inputs, user_id=conversation.id)
    return memory
