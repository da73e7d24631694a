"""Updates without a key: an LLM decides what each new fact does to what memory holds.

For every fact extracted from new content, the most similar active memories of the same
scope are shown to the LLM, which answers one decision per fact: ADD (a new memory),
UPDATE (the fact supersedes memory X), DELETE (the fact retires memory X) or NONE
(already known). The answer must fit a strict JSON schema (validated with pydantic) and
may name only memories it was shown, so a reply cannot touch another scope. A malformed
answer is asked for once more, then every fact is simply added: a bad reply never leads
to a destructive action. Nothing is destroyed either way: superseded and retired
memories stay in the ledger with their history, and ``Memory.restore`` brings one back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ragmem.agents.index import MemoryIndex
from ragmem.agents.records import Ledger, MemoryChange, MemoryInput, MemoryItem
from ragmem.agents.scope import EXPIRES, check_scope, scope_filter
from ragmem.filters import And, F
from ragmem.llms.base import LLM, Message

__all__ = ["Decision", "InferredUpdates", "decide", "extract_facts"]

CANDIDATES = 5  # existing memories shown to the LLM per fact

logger = logging.getLogger(__name__)

EXTRACT_PROMPT = (
    "Extract the durable facts about the user from the conversation below. Answer with a "
    'JSON list of short, self-contained sentences, e.g. ["Ana lives in Lisbon"]. Answer [] '
    "if there are none.\n\n{content}"
)
DECIDE_PROMPT = (
    "You maintain a memory of facts about a user. For each new fact, decide what it does "
    "to the existing memories listed under it:\n"
    "- ADD: it is new information;\n"
    "- UPDATE: it replaces an existing memory (the old value changed); give its memory_id;\n"
    "- DELETE: it says an existing memory is no longer true, without a new value; give its "
    "memory_id;\n"
    "- NONE: an existing memory already says it; give its memory_id.\n"
    'Answer only with JSON: {{"decisions": [{{"fact": <number>, "event": "ADD|UPDATE|DELETE|'
    'NONE", "memory_id": "<id or null>"}}]}}, one decision per fact.\n\n{facts}'
)


class Decision(BaseModel):
    """The LLM's decision about one fact (``fact`` is its index in the list given)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    fact: int
    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    memory_id: str | None = None


class _Decisions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    decisions: list[Decision]


def _json_part(reply: str, open_char: str, close_char: str) -> object:
    start, end = reply.find(open_char), reply.rfind(close_char)
    if not 0 <= start < end:
        raise ValueError("no JSON in the reply")
    return json.loads(reply[start : end + 1])


def extract_facts(llm: LLM, texts: Sequence[str]) -> list[str] | None:
    """The facts the LLM finds in ``texts`` (asked twice at most), or None if it never
    answered with a JSON list of strings."""
    prompt = [Message(role="user", content=EXTRACT_PROMPT.format(content="\n".join(texts)))]
    for _ in range(2):
        reply = llm.complete(prompt)
        try:
            facts = _json_part(reply, "[", "]")
        except (ValueError, RecursionError):
            continue
        if isinstance(facts, list) and all(isinstance(f, str) for f in facts):
            return [f.strip() for f in facts if f.strip()]
    logger.warning("the LLM gave no JSON list of facts twice; keeping the content as it is")
    return None


def _check(
    decisions: list[Decision], n_facts: int, offered: Mapping[int, Sequence[MemoryItem]]
) -> None:
    if sorted(d.fact for d in decisions) != list(range(n_facts)):
        raise ValueError("not exactly one decision per fact")
    for d in decisions:
        shown = {m.id for m in offered.get(d.fact, ())}
        if d.event == "ADD":
            continue
        # only a memory shown for this fact may be named: never another scope's
        if d.memory_id not in shown:
            raise ValueError(f"decision names memory {d.memory_id!r}, which it was not shown")


def decide(
    llm: LLM, facts: Sequence[str], offered: Mapping[int, Sequence[MemoryItem]]
) -> tuple[list[Decision], bool]:
    """One decision per fact, given the memories ``offered`` for each.

    Returns:
        The decisions, and whether they came from the LLM (False: it answered badly
        twice, and every fact is an ADD).
    """
    lines = []
    for n, fact in enumerate(facts):
        lines.append(f"Fact {n}: {fact}")
        for item in offered.get(n, ()):
            lines.append(f"  memory_id {item.id}: {item.text}")
    prompt = [Message(role="user", content=DECIDE_PROMPT.format(facts="\n".join(lines)))]
    for _ in range(2):
        reply = llm.complete(prompt)
        try:
            parsed = _Decisions.model_validate(_json_part(reply, "{", "}"))
            _check(parsed.decisions, len(facts), offered)
        except (ValueError, RecursionError, ValidationError) as exc:
            logger.warning("unusable memory decisions from the LLM (%s)", str(exc)[:200])
            continue
        return sorted(parsed.decisions, key=lambda d: d.fact), True
    return [Decision(fact=n, event="ADD") for n in range(len(facts))], False


class InferredUpdates:
    """``add(..., infer=True)`` for ``Memory`` (which inherits it)."""

    llm: LLM | None
    clock: Callable[[], float]
    _ledger: Ledger
    _index: MemoryIndex
    _write_lock: threading.RLock
    add_many: Callable[..., list[MemoryChange]]  # Memory's

    def _add_inferred(
        self, inputs: list[MemoryInput], *, user_id: str | None, agent_id: str | None
    ) -> list[MemoryChange]:
        assert self.llm is not None
        if not inputs:
            return []
        facts = extract_facts(self.llm, [i.text for i in inputs])
        if facts is None:  # no usable facts: keep what was said, as said
            return self.add_many(inputs, user_id=user_id, agent_id=agent_id)
        template = inputs[0]
        scope = check_scope(user_id, agent_id, template.session_id, require=True)
        offered = {n: self._similar(fact, scope) for n, fact in enumerate(facts)}
        decisions, from_llm = decide(self.llm, facts, offered)
        changes = []
        for decision in decisions:
            fact = facts[decision.fact]
            shown = {m.id: m for m in offered[decision.fact]}
            target = shown.get(decision.memory_id or "")
            detail = {"decision": decision.event, "fact": fact, "by_llm": from_llm}
            if decision.event == "ADD" or target is None:
                entry = template.model_copy(update={"text": fact})
                changes += self.add_many([entry], user_id=user_id, agent_id=agent_id)
            elif decision.event == "UPDATE":
                entry = template.model_copy(update={"text": fact})
                (added,) = self.add_many([entry], user_id=user_id, agent_id=agent_id)
                if added.item.id != target.id:
                    self._retire(target, "superseded", detail, by=added.item)
                changes.append(MemoryChange(event="UPDATE", item=added.item, superseded=target.id))
            elif decision.event == "DELETE":
                self._retire(target, "deleted", detail)
                changes.append(MemoryChange(event="DELETE", item=self._ledger.get([target.id])[0]))
            else:
                with self._write_lock, self._ledger.transaction() as db:
                    self._ledger.record(db, target.id, "NONE", detail=detail)
                changes.append(MemoryChange(event="NONE", item=target))
        return changes

    def _similar(self, fact: str, scope: dict[str, str]) -> list[MemoryItem]:
        """The active memories of exactly this scope most like ``fact``."""
        conditions = (
            scope_filter(scope, exact=True),
            ~F(EXPIRES).exists() | (F(EXPIRES) > self.clock()),
        )
        hits = self._index.search(fact, CANDIDATES, And(filters=conditions))
        found = self._ledger.find([h.id for h in hits])
        return [found[h.id] for h in hits if h.id in found and found[h.id].status == "active"]

    def _retire(
        self,
        item: MemoryItem,
        status: str,
        detail: dict[str, object],
        by: MemoryItem | None = None,
    ) -> None:
        now = self.clock()
        with self._write_lock:
            with self._ledger.transaction() as db:
                current = self._ledger.find([item.id]).get(item.id)
                if current is None or current.status != "active":
                    return
                valid_to = now if by is None else max(item.timestamp, by.timestamp)
                fields: dict[str, object] = {"status": status, "valid_to": valid_to}
                if by is not None:
                    fields["superseded_by"] = by.id
                    detail = {**detail, "by": by.id}
                self._ledger.update(db, item.id, updated_at=now, **fields)
                event = "SUPERSEDE" if status == "superseded" else "DELETE"
                self._ledger.record(db, item.id, event, detail=detail)
            self._index.sync()
