"""CodeChunker: Python by top-level definitions (ast), other code by blocks."""

from __future__ import annotations

import ast
import bisect
import re
from typing import TYPE_CHECKING

from ragmem.chunking.base import ArrayLevel, Chunker, Layout, PatternLevel, first_non_space

if TYPE_CHECKING:
    from ragmem.chunking.base import Level, Unit
    from ragmem.tokens import Tokenizer
    from ragmem.types import Metadata, Scalar

__all__ = ["CodeChunker"]

_NEWLINE = re.compile(r"\r\n|\r|\n")  # the line ends Python's own tokenizer knows
_TOP_BLOCK = re.compile(r"(?:\r\n|\r|\n)[^\S\r\n]*(?:\r\n|\r|\n)(?=\S)")
_BLANK = re.compile(r"(?:\r\n|\r|\n)[^\S\r\n]*(?:\r\n|\r|\n)")
_TOP_LINE = re.compile(r"[\r\n](?=\S)")
_LINE = re.compile(r"[\r\n]")
_SPACE = re.compile(r"\s")
# a definition at the start of a line in C-like, Rust, Go, JS/TS, Java, Ruby... code
_DEFINITION = re.compile(
    r"^[ \t]*(?:(?:export|default|pub(?:\([^)]*\))?|public|private|protected|internal|static|"
    r"final|abstract|async|unsafe|extern|inline|virtual|override|sealed|open|data|const)\s+)*"
    r"(?:function\*?|func|fn|def|class|struct|enum|interface|trait|impl|type|module|"
    r"namespace|object|protocol|record|sub|proc|macro_rules!)\s+([A-Za-z_$][\w$]*)",
    re.M,
)
_PYTHON_NAMES = ("python", "py")


class _CodeLayout(Layout):
    """Symbols come in depths (top-level, members); within a depth they do not overlap."""

    def __init__(self, levels: list[Level], depths: list[list[tuple[int, int, str]]]) -> None:
        super().__init__(levels)
        self._depths = [sorted(d) for d in depths]
        self._starts = [[s[0] for s in d] for d in self._depths]
        self._all = sorted(s for d in depths for s in d)
        self._all_starts = [s[0] for s in self._all]

    def metadata(self, own: int, end: int) -> Metadata:
        i = bisect.bisect_left(self._all_starts, own)
        j = bisect.bisect_left(self._all_starts, end)
        names: list[Scalar] = [s[2] for s in self._all[i:j]]
        if not names:  # inside one definition: name the innermost that contains it
            for symbols, starts in zip(self._depths, self._starts):
                k = bisect.bisect_right(starts, own) - 1
                if k >= 0 and symbols[k][1] > own:
                    names = [symbols[k][2]]
        if not names:
            return {"symbols": []}
        return {"symbol": names[0], "symbols": names}


class CodeChunker(Chunker):
    """Chunks source code at definition boundaries; chunks name their symbols.

    Python (``language="python"``) is parsed with ``ast``: windows are cut before
    the last top-level definition (decorators and the comment lines just above it
    included) they contain, then before methods and other top-level statements, then
    at blank lines, lines, whitespace and characters. Small definitions are merged
    up to the limit. Source that does not parse (or any other language) is cut at
    blank lines before unindented code, blank lines, unindented lines, lines,
    whitespace and characters, and definitions are found with a keyword pattern
    (``def``, ``class``, ``function``, ``fn``, ``func``, ``struct``...).

    ``metadata["symbols"]`` lists the definitions (``Class.method`` for methods)
    starting in the chunk's own part, or else the innermost one containing it;
    ``metadata["symbol"]`` is the first of them (absent when none is known).

    Args:
        language: ``"python"`` or another name; ``None`` reads ``metadata["language"]``
            of the document, else a ``.py`` suffix of ``metadata["path"]``.

    Example:
        >>> src = "import os\\n\\ndef a():\\n    return 1\\n\\ndef b():\\n    return 2\\n"
        >>> [c.metadata["symbols"] for c in CodeChunker(size=30, language="python").chunk(src)]
        [[], ['a'], ['b']]
    """

    _whole_if_fits = True

    def __init__(
        self,
        *,
        language: str | None = None,
        size: int,
        overlap: int = 0,
        unit: Unit | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        super().__init__(size=size, overlap=overlap, unit=unit, tokenizer=tokenizer)
        self.language = language.lower() if language else None

    def _layout(self, text: str, metadata: Metadata) -> Layout:
        language = self.language
        lang, path = metadata.get("language"), metadata.get("path")
        if language is None and isinstance(lang, str):
            language = lang.lower()
        elif language is None and isinstance(path, str) and path.endswith((".py", ".pyi")):
            language = "python"
        if language in _PYTHON_NAMES:
            layout = _python_layout(text)
            if layout is not None:
                return layout
        symbols = [
            (m.start(), _block_end(text, m.start()), m.group(1)) for m in _DEFINITION.finditer(text)
        ]
        levels: list[Level] = [
            PatternLevel(_TOP_BLOCK),
            PatternLevel(_BLANK),
            PatternLevel(_TOP_LINE),
            PatternLevel(_LINE),
            PatternLevel(_SPACE),
        ]
        return _CodeLayout(levels, [symbols])


def _block_end(text: str, start: int) -> int:
    """End of the block starting at ``start``: the next blank line before unindented code."""
    m = _TOP_BLOCK.search(text, start)
    return m.start() if m else len(text)


def _python_layout(text: str) -> Layout | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # not Python after all (or NUL bytes, or absurd nesting): use blocks
    line_starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]

    def offset(line: int) -> int:
        return line_starts[line - 1] if line <= len(line_starts) else len(text)

    def begin(node: ast.stmt) -> int:
        """Where a statement's text starts (its decorators and comments included)."""
        return first_non_space(text, offset(first_line(node)))

    def first_line(node: ast.stmt) -> int:
        decorators: list[ast.expr] = getattr(node, "decorator_list", None) or []
        line: int = min([node.lineno, *(d.lineno for d in decorators)])
        # comments directly above a definition belong to it
        while line > 1 and text[offset(line - 1) : offset(line)].lstrip().startswith("#"):
            line -= 1
        return line

    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    top_defs: list[int] = []
    other: list[int] = []
    symbols: list[tuple[int, int, str]] = []
    members: list[tuple[int, int, str]] = []
    for node in tree.body:
        start = begin(node)
        if isinstance(node, defs):
            top_defs.append(start)
            end = offset((node.end_lineno or node.lineno) + 1)
            symbols.append((start, end, node.name))
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, defs):
                        m_start = begin(member)
                        other.append(m_start)
                        m_end = offset((member.end_lineno or member.lineno) + 1)
                        members.append((m_start, m_end, f"{node.name}.{member.name}"))
        else:
            other.append(start)
    levels: list[Level] = [
        ArrayLevel(top_defs),
        ArrayLevel(other),
        PatternLevel(_BLANK),
        PatternLevel(_LINE),
        PatternLevel(_SPACE),
    ]
    return _CodeLayout(levels, [symbols, members])
