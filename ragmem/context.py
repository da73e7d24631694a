"""Token-budgeted context assembly: hits in, numbered and citable sources out.

``ContextBuilder`` merges overlapping or adjacent chunks of one document, packs the best
of them into a token budget (after reserving room for the system prompt, the history,
the question and the answer), orders them, numbers them ``[1]..[n]`` and renders one of
three templates. The rendered text is counted with the same tokenizer the model uses, so
the budget is a guarantee, not an estimate.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, Field

from ragmem.errors import ConfigurationError, InvalidInputError
from ragmem.types import Metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.llms.base import Message
    from ragmem.tokens import Tokenizer
    from ragmem.types import Hit

__all__ = ["CUT_MARKER", "Context", "ContextBuilder", "Order", "Source", "Template"]

Order = Literal["score", "document", "edges"]
Template = Literal["plain", "markdown", "xml"]
_ORDERS = get_args(Order)
_TEMPLATES = get_args(Template)

CUT_MARKER = " [...]"
"""Appended to a source's text in the rendered context when the source was cut short."""

# A sentence ends after terminal punctuation (and any closing quotes or brackets) that is
# followed by whitespace or the end of the text; a line break also ends one.
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*(?=\s|$)|\n")


class Source(BaseModel):
    """One numbered source in a context: a merged span of one document.

    ``text`` is exactly what the rendered context shows for this source (before XML
    escaping), and, when ``start``/``end`` are known, equals ``document[start:end]``.
    """

    number: int
    id: str
    doc_id: str
    chunk_ids: list[str]
    start: int | None = None
    end: int | None = None
    text: str
    score: float
    truncated: bool = False
    metadata: Metadata = Field(default_factory=dict)


class Context(BaseModel):
    """The result of ``ContextBuilder.build``.

    Attributes:
        text: the rendered context.
        sources: the sources in rendered order; ``sources[i].number == i + 1``.
        tokens: tokens in ``text``.
        available: tokens the context was allowed (budget minus reservations).
        reserved: tokens reserved for system prompt, history, question and answer.
        dropped: ids of hits left out because they did not fit.
    """

    text: str
    sources: list[Source]
    tokens: int
    available: int
    reserved: int
    dropped: list[str] = Field(default_factory=list)


class _Unit:
    """A mergeable piece of context: one hit, or several overlapping hits of one document."""

    __slots__ = ("chunk_ids", "doc_id", "end", "metadata", "score", "start", "text", "truncated")

    def __init__(self, hit: Hit) -> None:
        if hit.text is None or not hit.text.strip():
            raise InvalidInputError(f"hit {hit.id!r} has no text to put in a context")
        meta = hit.metadata
        doc_id = meta.get("doc_id")
        start, end = meta.get("start"), meta.get("end")
        self.doc_id = doc_id if isinstance(doc_id, str) and doc_id else hit.id
        self.chunk_ids = [hit.id]
        self.text = hit.text
        self.score = hit.score
        self.metadata = dict(meta)
        self.truncated = False
        self.start: int | None = None
        self.end: int | None = None
        # a span is only trusted when it agrees with the text it claims to locate
        if (
            isinstance(start, int)
            and isinstance(end, int)
            and not isinstance(start, bool)
            and start >= 0
            and end - start == len(hit.text)
        ):
            self.start, self.end = start, end

    def absorb(self, other: _Unit) -> bool:
        """Merge ``other`` (same document, starting no earlier) if it overlaps or touches."""
        if self.start is None or self.end is None or other.start is None or other.end is None:
            return False
        if other.start > self.end:
            return False
        overlap = self.end - other.start
        shared = min(overlap, len(other.text))
        if self.text[other.start - self.start :][:shared] != other.text[:shared]:
            return False  # the two chunks disagree about the document's text: keep both
        if other.end > self.end:
            self.text += other.text[overlap:]
            self.end = other.end
        self.chunk_ids.append(other.chunk_ids[0])
        self.score = max(self.score, other.score)
        return True

    def cut(self, length: int) -> _Unit:
        """A copy holding only the first ``length`` characters, marked as cut."""
        part = object.__new__(_Unit)
        for name in _Unit.__slots__:
            setattr(part, name, getattr(self, name))
        part.chunk_ids = list(self.chunk_ids)
        part.text = self.text[:length]
        part.end = None if self.start is None else self.start + length
        part.truncated = True
        return part

    @property
    def key(self) -> tuple[float, str, int]:
        return (-self.score, self.doc_id, self.start or 0)


class ContextBuilder:
    """Packs retrieved hits into a token budget as numbered, citable sources.

    Hits should carry ``doc_id``, ``start`` and ``end`` in their metadata (the chunkers and
    the pipeline store them), which lets overlapping or adjacent chunks of one document
    merge into one source. Sources are chosen best score first; a source that no longer
    fits whole is cut at a sentence boundary and marked with ``CUT_MARKER``; one whose
    first sentence does not fit is left out and listed in ``Context.dropped``.

    Args:
        budget_tokens: the model's whole budget for this request.
        model: a model name whose tokenizer counts tokens: OpenAI models use their
            tiktoken encoding (offline, ``ragmem[openai]``), others the local model's
            tokenizer as an approximation (see ``ragmem.tokens.tokenizer_for_model``).
        tokenizer: any ``Tokenizer``; give this or ``model``.
        answer_tokens: tokens reserved for the model's answer.
        order: ``"score"`` (best first), ``"document"`` (documents by best score, each in
            reading order) or ``"edges"`` (best at both ends, weakest in the middle, against
            "lost in the middle").
        template: ``"plain"``, ``"markdown"`` or ``"xml"``.
        merge: merge overlapping or adjacent chunks of the same document.
        message_overhead: tokens each chat message costs beyond its content.

    Example:
        >>> from ragmem import Hit
        >>> from ragmem.tokens import WhitespaceTokenizer
        >>> builder = ContextBuilder(60, tokenizer=WhitespaceTokenizer(), answer_tokens=10)
        >>> hits = [Hit(id="a#0", score=0.9, text="Cats purr.",
        ...             metadata={"doc_id": "a", "start": 0, "end": 10}),
        ...         Hit(id="a#1", score=0.5, text=" Dogs bark.",
        ...             metadata={"doc_id": "a", "start": 10, "end": 21})]
        >>> ctx = builder.build(hits)
        >>> print(ctx.text)
        [1] a
        Cats purr. Dogs bark.
        >>> ctx.sources[0].chunk_ids
        ['a#0', 'a#1']
    """

    def __init__(
        self,
        budget_tokens: int,
        *,
        model: str | None = None,
        tokenizer: Tokenizer | None = None,
        answer_tokens: int = 0,
        order: Order = "score",
        template: Template = "plain",
        merge: bool = True,
        message_overhead: int = 4,
    ) -> None:
        if type(budget_tokens) is not int or budget_tokens < 1:
            raise ConfigurationError(
                f"budget_tokens must be a positive integer, got {budget_tokens!r}"
            )
        if answer_tokens < 0 or message_overhead < 0:
            raise ConfigurationError("answer_tokens and message_overhead must not be negative")
        if order not in _ORDERS:
            raise ConfigurationError(f"order must be one of {_ORDERS}, got {order!r}")
        if template not in _TEMPLATES:
            raise ConfigurationError(f"template must be one of {_TEMPLATES}, got {template!r}")
        if (model is None) == (tokenizer is None):
            raise ConfigurationError("give exactly one of model= or tokenizer=")
        if tokenizer is None:
            from ragmem.tokens import tokenizer_for_model

            tokenizer = tokenizer_for_model(model or "")
        self.tokenizer: Tokenizer = tokenizer
        self.budget_tokens = budget_tokens
        self.answer_tokens = answer_tokens
        self.order: Order = order
        self.template: Template = template
        self.merge = merge
        self.message_overhead = message_overhead

    def reserved_tokens(
        self,
        *,
        system: str | None = None,
        history: Sequence[Message] = (),
        question: str | None = None,
    ) -> int:
        """Tokens kept free for the system prompt, history, question and answer."""
        count = self.tokenizer.count
        reserved = self.answer_tokens
        for text in [system, question, *(m.content for m in history)]:
            if text is not None:
                reserved += count(text) + self.message_overhead
        return reserved

    def build(
        self,
        hits: Sequence[Hit],
        *,
        system: str | None = None,
        history: Sequence[Message] = (),
        question: str | None = None,
    ) -> Context:
        """Pack ``hits`` into the budget left after the reservations and render them.

        Raises:
            InvalidInputError: a hit has no text, or the reservations alone exceed the budget.
        """
        reserved = self.reserved_tokens(system=system, history=history, question=question)
        available = self.budget_tokens - reserved
        if available < 0:
            raise InvalidInputError(
                f"the budget of {self.budget_tokens} tokens leaves no room for context: "
                f"{reserved} are reserved for the system prompt, history, question and answer"
            )
        units = self._units(hits)
        chosen: list[_Unit] = []
        dropped: list[str] = []
        for i, unit in enumerate(units):
            if self._fits([*chosen, unit], available):
                chosen.append(unit)
                continue
            part = self._longest_fitting_cut(chosen, unit, available)
            if part is None:
                dropped.extend(unit.chunk_ids)
                continue
            chosen.append(part)
            # the budget is now full: whatever is left would not fit whole either
            dropped.extend(cid for rest in units[i + 1 :] for cid in rest.chunk_ids)
            break
        text, sources = self._render(chosen)
        return Context(
            text=text,
            sources=sources,
            tokens=self.tokenizer.count(text),
            available=available,
            reserved=reserved,
            dropped=dropped,
        )

    # -- selection ----------------------------------------------------------------------------

    def _units(self, hits: Sequence[Hit]) -> list[_Unit]:
        best: dict[str, Hit] = {}
        for hit in hits:  # the same id twice (e.g. from two retrievers) counts once
            if hit.id not in best or hit.score > best[hit.id].score:
                best[hit.id] = hit
        units = [_Unit(h) for h in best.values()]
        if self.merge:
            units = _merge(units)
        return sorted(units, key=lambda u: u.key)

    def _fits(self, units: list[_Unit], available: int) -> bool:
        return self.tokenizer.count(self._render(units)[0]) <= available

    def _longest_fitting_cut(
        self, chosen: list[_Unit], unit: _Unit, available: int
    ) -> _Unit | None:
        ends = [m.end() for m in _SENTENCE_END.finditer(unit.text) if m.end() < len(unit.text)]
        ends = [e for e in ends if unit.text[:e].strip()]
        lo, hi, found = 0, len(ends) - 1, None
        # token counts grow with the prefix, so a binary search finds the longest prefix;
        # each candidate is still checked on the full rendering
        while lo <= hi:
            mid = (lo + hi) // 2
            part = unit.cut(ends[mid])
            if self._fits([*chosen, part], available):
                found, lo = part, mid + 1
            else:
                hi = mid - 1
        return found

    # -- rendering ----------------------------------------------------------------------------

    def _ordered(self, units: list[_Unit]) -> list[_Unit]:
        ranked = sorted(units, key=lambda u: u.key)
        if self.order == "score":
            return ranked
        if self.order == "edges":
            # ranks 1,3,5,... from the front and 2,4,6,... from the back
            return ranked[0::2] + ranked[1::2][::-1]
        first_rank: dict[str, int] = {}
        for i, unit in enumerate(ranked):
            first_rank.setdefault(unit.doc_id, i)
        return sorted(ranked, key=lambda u: (first_rank[u.doc_id], u.start or 0))

    def _render(self, units: list[_Unit]) -> tuple[str, list[Source]]:
        sources = [_source(n, u) for n, u in enumerate(self._ordered(units), start=1)]
        if not sources:
            return "", []
        if self.template == "xml":
            body = "\n".join(_render_xml(s) for s in sources)
            return f"<sources>\n{body}\n</sources>", sources
        render = _render_markdown if self.template == "markdown" else _render_plain
        return "\n\n".join(render(s) for s in sources), sources


def _merge(units: list[_Unit]) -> list[_Unit]:
    by_doc: dict[str, list[_Unit]] = {}
    loose: list[_Unit] = []
    for unit in units:
        (loose if unit.start is None else by_doc.setdefault(unit.doc_id, [])).append(unit)
    merged: list[_Unit] = []
    for group in by_doc.values():
        group.sort(key=lambda u: (u.start or 0, -(u.end or 0)))
        current = group[0]
        for unit in group[1:]:
            if not current.absorb(unit):
                merged.append(current)
                current = unit
        merged.append(current)
    return merged + loose


def _source(number: int, unit: _Unit) -> Source:
    span = "" if unit.start is None else f":{unit.start}-{unit.end}"
    return Source(
        number=number,
        id=f"{unit.doc_id}{span}",
        doc_id=unit.doc_id,
        chunk_ids=list(unit.chunk_ids),
        start=unit.start,
        end=unit.end,
        text=unit.text,
        score=unit.score,
        truncated=unit.truncated,
        metadata=unit.metadata,
    )


def _label(source: Source) -> str:
    for key in ("source", "title"):
        value = source.metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return source.doc_id


def _shown(source: Source) -> str:
    return source.text + (CUT_MARKER if source.truncated else "")


def _render_plain(source: Source) -> str:
    return f"[{source.number}] {_label(source)}\n{_shown(source)}"


def _render_markdown(source: Source) -> str:
    return f"### [{source.number}] {_label(source)}\n\n{_shown(source)}"


def _escape(text: str) -> str:
    # xml.sax.saxutils would do, but importing it costs ~20 ms of ``import ragmem``
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render_xml(source: Source) -> str:
    label = _escape(_label(source)).replace('"', "&quot;")
    attrs = f'id="{source.number}" ref="{label}"'
    if source.truncated:
        attrs += ' truncated="true"'
    return f"<source {attrs}>\n{_escape(_shown(source))}\n</source>"
