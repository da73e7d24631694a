"""Chat history for the pipeline: accepting plain dicts, and rewriting follow-up questions.

A follow-up such as "and for EU customers?" retrieves nothing useful on its own. With an
LLM and a history, the pipeline first asks the model for a standalone question that
carries the conversation's subject, and retrieves with that (``Answer.explain`` shows it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ragmem.errors import InvalidInputError
from ragmem.llms.base import Message

if TYPE_CHECKING:
    from ragmem.llms.base import LLM

__all__ = [
    "REWRITE_PROMPT",
    "HistoryLike",
    "as_messages",
    "standalone_question",
    "standalone_question_async",
]

HistoryLike = Sequence[Message | Mapping[str, Any]]

REWRITE_PROMPT = (
    "Rewrite the user's last question as one standalone search query that can be understood "
    "without the conversation: resolve pronouns and references, keep names and numbers, and "
    "add nothing else. Reply with the query only."
)
# the last turns are what a follow-up refers to; older ones only cost tokens
_REWRITE_TURNS = 6


def as_messages(history: HistoryLike | None) -> list[Message]:
    """``history`` as ``Message`` objects; plain ``{"role", "content"}`` dicts are accepted.

    Raises:
        InvalidInputError: an item is neither, naming its position in ``history``.
    """
    if history is None:
        return []
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence):
        raise InvalidInputError(f"history must be a list of messages, got {type(history).__name__}")
    out = []
    for i, item in enumerate(history):
        if isinstance(item, Message):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise InvalidInputError(
                f"history[{i}] must be a Message or a dict with 'role' and 'content', "
                f"got {type(item).__name__}"
            )
        try:
            out.append(Message.model_validate(dict(item)))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise InvalidInputError(f"history[{i}].{where}: {problem['msg']}") from None
    return out


def _rewrite_messages(question: str, history: list[Message]) -> list[Message]:
    turns = [m for m in history if m.role != "system"][-_REWRITE_TURNS:]
    transcript = "\n".join(f"{m.role}: {m.content}" for m in turns)
    return [
        Message(role="system", content=REWRITE_PROMPT),
        Message(role="user", content=f"Conversation:\n{transcript}\n\nLast question: {question}"),
    ]


def _clean(reply: str, question: str) -> str:
    # a model may quote the query or add a label; an empty reply keeps the question
    line = reply.strip().splitlines()[0].strip() if reply.strip() else ""
    line = line.removeprefix("Query:").strip().strip('"').strip()
    return line or question


def standalone_question(llm: LLM, question: str, history: list[Message]) -> str:
    """The question rewritten to stand alone, or ``question`` itself without a history."""
    if not any(m.role != "system" for m in history):
        return question
    return _clean(llm.complete(_rewrite_messages(question, history)), question)


async def standalone_question_async(llm: LLM, question: str, history: list[Message]) -> str:
    """Async twin of ``standalone_question``."""
    if not any(m.role != "system" for m in history):
        return question
    return _clean(await llm.complete_async(_rewrite_messages(question, history)), question)
