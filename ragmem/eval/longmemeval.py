"""LongMemEval, retrieval only: each question's haystack sessions become memories.

For every question (abstention questions, ids ending ``_abs``, are left out) the turns of
its haystack sessions are added to one scope of a persistent ``Memory`` (user id = the
question id, session id = the haystack session, timestamp = the session date, the date
also written in words in front of the text, "Saturday 20 May 2023, user: ...", as LoCoMo's
evaluation does), then the question recalls turns. Its ``question_date`` is not a cutoff:
the files date some haystack sessions after the question, evidence sessions among them (4
of the 27 questions of LongMemEval-S dev), so recall ``as_of`` that date would hide the
answer. Reported, per question type and overall:

- session level, over ``answer_session_ids`` (sessions ranked by their best turn):
  ``recall_any@k`` (any evidence session in the top k), ``recall_all@k`` (all of them)
  and ``ndcg@k`` (binary gains);
- turn level: ``turn_recall@k``, the share of ``has_answer`` turns in the top k turns.

The memory lives in a cache directory, so a second run reuses the embeddings (dense and
token vectors) of every question already ingested.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragmem._util import cache_root
from ragmem.errors import InvalidInputError

if TYPE_CHECKING:
    from ragmem.agents.memory import Memory

__all__ = ["Question", "add_arguments", "evaluate", "load_questions", "parse_date", "run"]

_DATE_FORMAT = "%Y/%m/%d (%a) %H:%M"
RANKED_SESSIONS = 50  # distinct sessions listed per question in the JSON report


@dataclass(frozen=True)
class Question:
    """One LongMemEval question with its haystack."""

    id: str
    type: str
    text: str
    date: float
    answer_sessions: tuple[str, ...]
    sessions: tuple[tuple[str, float, str, tuple[dict[str, Any], ...]], ...]
    """(session id, timestamp, date text, turns) for each haystack session."""

    @property
    def evidence_turns(self) -> set[str]:
        return {
            f"{sid}:{n}"
            for sid, _, _, turns in self.sessions
            for n, turn in enumerate(turns)
            if turn.get("has_answer")
        }


def parse_date(text: str) -> float:
    """A LongMemEval date ("2023/05/20 (Sat) 03:38") as Unix seconds (read as UTC)."""
    try:
        moment = datetime.strptime(text, _DATE_FORMAT).replace(tzinfo=timezone.utc)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"not a LongMemEval date: {text!r}") from exc
    return moment.timestamp()


def load_questions(path: str | Path) -> list[Question]:
    """Questions from a LongMemEval file (a JSON list, optionally gzipped), ``_abs`` left out."""
    file = Path(path)
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, list):
        raise InvalidInputError(f"{file}: expected a JSON list of questions")
    out = []
    for raw in data:
        if str(raw["question_id"]).endswith("_abs"):
            continue
        sessions = tuple(
            (str(sid), parse_date(date), str(date), tuple(turns))
            for sid, date, turns in zip(
                raw["haystack_session_ids"], raw["haystack_dates"], raw["haystack_sessions"]
            )
        )
        out.append(
            Question(
                id=str(raw["question_id"]),
                type=str(raw["question_type"]),
                text=str(raw["question"]),
                date=parse_date(raw["question_date"]),
                answer_sessions=tuple(str(s) for s in raw["answer_session_ids"]),
                sessions=sessions,
            )
        )
    return out


def _spoken_date(stamp: float) -> str:
    """A session date as people write it ("Saturday 20 May 2023"): the words a question
    uses ("in May", "on Saturday") then match the turns of that date."""
    moment = datetime.fromtimestamp(stamp, timezone.utc)
    return f"{moment:%A} {moment.day} {moment:%B %Y}"


def _ingest(memory: Memory, question: Question) -> int:
    """Add the question's turns to its scope unless a previous run did; returns turns added."""
    from ragmem.agents.memory import MemoryInput

    inputs = [
        MemoryInput(
            text=f"{_spoken_date(stamp)}, {turn['role']}: {turn['content']}",
            metadata={"turn": f"{sid}:{n}", "role": str(turn["role"])},
            session_id=sid,
            timestamp=stamp + n,  # keeps the turns of a session in order
        )
        for sid, stamp, _, turns in question.sessions
        for n, turn in enumerate(turns)
        if str(turn.get("content", "")).strip()
    ]
    if len(memory.list(user_id=question.id)) == len(inputs):
        return 0
    memory.purge(user_id=question.id)  # a partial earlier ingest: start the scope again
    memory.add_many(inputs, user_id=question.id)
    return len(inputs)


def _ndcg(ranked: Sequence[str], gold: set[str], k: int) -> float:
    dcg = sum(1 / math.log2(r + 2) for r, s in enumerate(ranked[:k]) if s in gold)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(len(gold), k)))
    return dcg / ideal if ideal else 0.0


def evaluate(
    memory: Memory, questions: Sequence[Question], ks: Sequence[int] = (5, 10)
) -> dict[str, Any]:
    """Ingest (or reuse) and recall every question; the metrics, per type and overall."""
    ks = sorted(set(ks))
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    report = []
    added = 0
    ingest_seconds = query_seconds = 0.0
    for number, question in enumerate(questions, 1):
        started = time.perf_counter()
        added += _ingest(memory, question)
        ingest_seconds += time.perf_counter() - started
        started = time.perf_counter()
        hits = memory.search(question.text, user_id=question.id, k=max(300, max(ks)))
        query_seconds += time.perf_counter() - started
        turns = [str(h.metadata["turn"]) for h in hits]
        sessions = list(dict.fromkeys(str(h.metadata["session_id"]) for h in hits))
        report.append({"question_id": question.id, "ranked_session_ids": sessions[:50]})
        gold = set(question.answer_sessions)
        evidence = question.evidence_turns
        for group in (question.type, "overall"):
            counts[group] += 1
            for k in ks:
                top = set(sessions[:k])
                sums[group][f"recall_any@{k}"] += 1.0 if gold & top else 0.0
                sums[group][f"recall_all@{k}"] += 1.0 if gold <= top else 0.0
                sums[group][f"ndcg@{k}"] += _ndcg(sessions, gold, k)
                if evidence:
                    sums[group][f"turn_recall@{k}"] += len(evidence & set(turns[:k])) / len(
                        evidence
                    )
                    sums[group][f"_turn_n@{k}"] += 1
        print(f"[{number}/{len(questions)}] {question.id}", file=sys.stderr, flush=True)

    def summary(group: str) -> dict[str, float]:
        out: dict[str, float] = {"n": counts[group]}
        for k in ks:
            for name in ("recall_any", "recall_all", "ndcg"):
                out[f"{name}@{k}"] = round(sums[group][f"{name}@{k}"] / counts[group], 4)
            turn_n = sums[group][f"_turn_n@{k}"]
            out[f"turn_recall@{k}"] = (
                round(sums[group][f"turn_recall@{k}"] / turn_n, 4) if turn_n else float("nan")
            )
        return out

    overall = summary("overall") if questions else {}
    return {
        **overall,
        "per_type": {t: summary(t) for t in sorted(counts) if t != "overall"},
        "turns_ingested": added,
        "ingest_seconds": round(ingest_seconds, 1),
        "turns_per_second": round(added / ingest_seconds, 1) if added else None,
        "query_ms_mean": round(1000 * query_seconds / max(len(questions), 1), 1),
        "questions": report,
    }


def _default_cache() -> Path:
    return cache_root() / "longmemeval"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``ragmem eval longmemeval``'s arguments and handler on ``parser``."""
    parser.add_argument("path", help="a LongMemEval file (JSON list, optionally .gz)")
    parser.add_argument("--questions", type=int, default=None, help="only the first N")
    parser.add_argument(
        "--k",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[5, 10],
        help="cutoffs (default 5,10)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="the memory reused between runs (default longmemeval in $RAGMEM_CACHE_DIR, "
        "else $XDG_CACHE_HOME/ragmem, else ~/.cache/ragmem)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    if args.questions is not None and args.questions < 1:
        raise InvalidInputError(f"--questions must be positive, got {args.questions}")
    result = run(args.path, questions=args.questions, ks=args.k, cache=args.cache_dir)
    if args.json:
        print(json.dumps(result))
        return 0
    metrics = [f"{m}@{k}" for k in args.k for m in ("recall_any", "recall_all", "turn_recall")]
    print(f"{'':28}{'n':>4}" + "".join(f"{m:>16}" for m in metrics))
    rows = {**result["per_type"], "overall": result}
    for name, row in rows.items():
        print(f"{name:28}{row['n']:>4}" + "".join(f"{row[m]:>16.3f}" for m in metrics))
    print(
        f"{result['turns_ingested']} turns ingested in {result['ingest_seconds']} s "
        f"({result['turns_per_second']} turns/s), {result['query_ms_mean']} ms per question"
    )
    return 0


def run(
    path: str | Path,
    *,
    questions: int | None = None,
    ks: Sequence[int] = (5, 10),
    cache: str | Path | None = None,
) -> dict[str, Any]:
    """``ragmem eval longmemeval``: the default ``Memory`` (bundled local model, no LLM)
    kept in ``cache`` (default ``~/.cache/ragmem/longmemeval``) over the first
    ``questions`` questions of ``path``."""
    from ragmem.agents.memory import Memory

    chosen = load_questions(path)[:questions]
    directory = Path(cache) if cache is not None else _default_cache()
    # a chat log: every turn kept as said, none taken as superseding another
    with Memory(directory, deduplicate=False, same_subject=None) as memory:
        return evaluate(memory, chosen, ks)
