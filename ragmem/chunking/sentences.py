"""Sentence boundaries (abbreviations, decimals, quotes, CJK punctuation) and SentenceChunker."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ragmem.chunking.base import Chunker, Layout, PatternLevel, first_non_space

if TYPE_CHECKING:
    from ragmem.types import Metadata

__all__ = ["SentenceChunker", "SentenceLevel", "sentence_boundaries", "sentence_spans"]

_TERMINAL = ".!?\u2026\u203c\u2047\u2048\u2049"  # . ! ? … ‼ ⁇ ⁈ ⁉
_CJK_TERMINAL = "\u3002\uff01\uff1f\uff61\uff0e"  # ideographic and fullwidth stops, ! and ?
_CLOSERS = "\"'\u201d\u2019\u00bb\u203a)\\]}\u300d\u300f\uff09\u3011\u3015\u3009\u300b"
# Three kinds of candidate: Western terminal punctuation (plus closing quotes and
# brackets) followed by whitespace; CJK/fullwidth terminal punctuation, which needs no
# space after it; and a blank line, which ends a sentence at its start.
_CANDIDATE = re.compile(
    # the leading lookahead gives the regex engine one character set to scan for
    rf"(?=[{_TERMINAL}{_CJK_TERMINAL}\r\n])"
    rf"(?:(?P<w>[{_TERMINAL}]+[{_CLOSERS}]*)(?=\s)"
    rf"|(?P<c>[{_CJK_TERMINAL}]+[{_CLOSERS}]*)"
    r"|(?P<p>(?:\r\n|\r|\n)[^\S\r\n]*(?:\r\n|\r|\n)))"
)
_OPENERS = "\"'(\u201c\u2018\u00ab\u2039[{\u300c\u300e\uff08"
_DOTTED = re.compile(r"(?:\w\.)+\w")
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "mx",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "vs",
        "cf",
        "al",
        "fig",
        "figs",
        "eq",
        "eqs",
        "ref",
        "refs",
        "no",
        "nos",
        "vol",
        "vols",
        "pp",
        "ch",
        "sec",
        "sect",
        "approx",
        "dept",
        "est",
        "inc",
        "ltd",
        "co",
        "corp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "rev",
        "hon",
        "op",
        "ed",
        "eds",
        "viz",
        "ca",
        "resp",
    }
)


def _is_boundary(text: str, m: re.Match[str]) -> bool:
    """Decide whether a candidate from ``_CANDIDATE`` really ends a sentence."""
    if m.lastgroup == "p":
        return True
    end = m.end()
    nxt = first_non_space(text, end)
    following = text[nxt] if nxt < len(text) else ""
    if m.lastgroup == "c":
        # a fullwidth full stop before a digit is a decimal point (fullwidth 3.14)
        return not (text[m.start()] == "\uff0e" and following.isdigit())
    if following.islower():
        return False  # "e.g. the", "\"Stop!\" he said", "... and then"
    punct = m.group("w").rstrip(_CLOSERS)
    if punct != ".":
        return True
    start = m.start()
    before = text[max(0, start - 40) : start].rsplit(None, 1)
    word = before[-1].lstrip(_OPENERS) if before and not text[start - 1].isspace() else ""
    if not word:
        return True
    if len(word) == 1 and word.isalpha() and word.isupper():
        return False  # an initial: "J. Smith"
    lower = word.lower()
    if lower in _ABBREVIATIONS or _DOTTED.fullmatch(word):
        return False
    return not (lower == "etc" and following.isdigit())


def sentence_boundaries(text: str, lo: int = 0, hi: int | None = None) -> list[int]:
    """Positions in ``text[lo:hi]`` where a sentence ends (after its punctuation).

    Example:
        >>> sentence_boundaries("Dr. Smith paid $3.50. He left. 「好。」次")
        [21, 30, 35]
    """
    hi = len(text) if hi is None else hi
    out = []
    for m in _CANDIDATE.finditer(text, lo, hi):
        if _is_boundary(text, m):
            out.append(m.start() if m.lastgroup == "p" else m.end())
    return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence, trimmed of whitespace, in order.

    Example:
        >>> sentence_spans("One. Two!  Three")
        [(0, 4), (5, 9), (11, 16)]
    """
    spans = []
    pos = first_non_space(text, 0)
    for cut in [*sentence_boundaries(text), len(text)]:
        if cut <= pos:
            continue
        end = pos + len(text[pos:cut].rstrip())
        if end > pos:
            spans.append((pos, end))
        pos = first_non_space(text, cut)
        if pos >= len(text):
            break
    return spans


# characters a candidate can hold, besides whitespace (see ``_fresh``)
_CANDIDATE_PUNCT = frozenset(_TERMINAL + _CJK_TERMINAL + _CLOSERS)


def _fresh(text: str, start: int, stop: int) -> int:
    """The first position ``q >= start`` after a character no candidate can hold.

    No candidate spans ``q - 1`` and ``q``, so a scan started at ``start`` and one
    started anywhere before it find the same candidates from ``q`` on.
    """
    q = start
    while q < stop and (text[q - 1].isspace() or text[q - 1] in _CANDIDATE_PUNCT):
        q += 1
    return q


class SentenceLevel:
    """A boundary level at sentence ends, searched lazily inside each window.

    The last boundary is looked for in the last ``tail`` characters of the window
    first, widened fourfold until that decides, so a long window is scanned whole
    only when no sentence ends near its end. The result does not depend on ``tail``.
    """

    def __init__(self, tail: int = 512) -> None:
        self.tail = max(1, tail)

    def last(self, text: str, lo: int, hi: int) -> int:
        # one character past the window, so "end." followed by a space at hi is seen
        stop = min(len(text), hi + 1)
        width = self.tail
        while True:
            start = max(lo, hi - width)
            found = self._last_from(text, start, lo, hi, stop)
            if found is not None:
                return found
            width *= 4

    @staticmethod
    def _last_from(text: str, start: int, lo: int, hi: int, stop: int) -> int | None:
        """The last boundary in ``(lo, hi]`` (-1 if none) from a scan that starts at
        ``start``; None when only a scan from further back can tell."""
        trusted = lo if start == lo else _fresh(text, start, stop)
        for m in reversed(list(_CANDIDATE.finditer(text, start, stop))):
            p = m.start() if m.lastgroup == "p" else m.end()
            if p > hi:
                continue
            if m.start() < trusted:
                return None
            if p <= lo:
                break
            if _is_boundary(text, m):
                return p
        return -1 if start == lo else None


_SPACE = PatternLevel(re.compile(r"\s"))


class SentenceChunker(Chunker):
    """Groups whole sentences up to the limit; a longer sentence is cut at words.

    Sentence ends survive abbreviations (``Dr.``, ``e.g.``, ``U.S.``), initials,
    decimals (``3.14``), closing quotes and brackets, and CJK/fullwidth punctuation
    (U+3002, U+FF01, U+FF1F...), which needs no following space. Blank lines end sentences too.

    Example:
        >>> chunks = SentenceChunker(size=20).chunk("Dr. Who came. He left at 3.30 pm.")
        >>> [c.text for c in chunks]
        ['Dr. Who came.', 'He left at 3.30 pm.']
    """

    _whole_if_fits = _plain = True

    def _layout(self, text: str, metadata: Metadata) -> Layout:
        return Layout([SentenceLevel(), _SPACE])
