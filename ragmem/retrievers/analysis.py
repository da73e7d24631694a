"""Text analysis for lexical retrieval: unicode word splitting, stopwords, Snowball stemming.

An analyzer is any callable ``text -> list[str]``. The default, ``TextAnalyzer``, also
exposes its two stages (``words`` and ``term``) so the BM25 index can cache the
analysis of each distinct word instead of re-stemming every occurrence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ragmem.errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ENGLISH_FULL_STOPWORDS",
    "ENGLISH_STOPWORDS",
    "Analyzer",
    "TextAnalyzer",
    "Vocabulary",
]

_WORD_CACHE_LIMIT = 2_000_000

# Lucene's EnglishAnalyzer default stop set (33 words), as in Lucene-based BM25 baselines.
_LUCENE_ENGLISH = (
    "a an and are as at be but by for if in into is it no not of on or such that the "
    "their then there these they this to was will with"
)
ENGLISH_STOPWORDS: frozenset[str] = frozenset(_LUCENE_ENGLISH.split())
"""Lucene's English stop set: ``stopwords="english"``."""

# Lucene's set plus pronouns, auxiliaries, question words and the pieces \w+ leaves of
# contractions ("don't" -> "don", "t"). Users ask questions: without these, BM25 ranks a
# page that shares "how do I" above the one that answers. Words that carry meaning in
# claims and queries (more, most, few, before, after, up, down, against) are kept.
_QUESTION_WORDS = (
    "i me my myself we us our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself its itself them theirs themselves what which who whom "
    "whose when where why how am were been being have has had having do does did doing "
    "would should could can may might must shall from about so than too very just also "
    "s t don d ll m re ve"
)
ENGLISH_FULL_STOPWORDS: frozenset[str] = ENGLISH_STOPWORDS | frozenset(_QUESTION_WORDS.split())
"""Lucene's set plus question words: ``stopwords="english-full"``, RAGPipeline's default."""


@runtime_checkable
class Analyzer(Protocol):
    """Turns a text into the terms a lexical index counts (stems, not model tokens).

    Named apart from ``ragmem.tokens.Tokenizer``, which counts a model's tokens.
    """

    def __call__(self, text: str) -> list[str]: ...


def _load_stemmer(language: str) -> Any:
    try:
        import Stemmer
    except ImportError as exc:
        raise MissingDependencyError(package="PyStemmer", extra="bm25") from exc
    try:
        stemmer = Stemmer.Stemmer(language)
    except KeyError as exc:
        raise ConfigurationError(
            f"no Snowball stemmer for {language!r}; "
            f"available: {', '.join(sorted(Stemmer.algorithms()))}"
        ) from exc
    return stemmer


class TextAnalyzer:
    """Unicode-aware analysis: NFKC, case folding, ``\\w+`` words, stopwords, Snowball stems.

    Args:
        language: Snowball stemmer language (PyStemmer), e.g. ``"english"``, ``"german"``.
        stem: whether to stem (needs the ``bm25`` extra: PyStemmer).
        stopwords: ``"english"`` (Lucene's 33 words), ``"english-full"`` (Lucene's plus
            pronouns, auxiliaries and question words, so "how do I restore a backup"
            searches for "restore backup"; what ``RAGPipeline`` uses), ``None`` for none,
            or your own collection of case-folded words. An index keeps its list.
        min_length: shortest word kept (in characters).
        pattern: regular expression for one word.

    Example:
        >>> TextAnalyzer()("The runners were running in Zürich")
        ['runner', 'were', 'run', 'zürich']
        >>> TextAnalyzer(stopwords="english-full")("How do I stop the runners?")
        ['stop', 'runner']
    """

    def __init__(
        self,
        language: str = "english",
        *,
        stem: bool = True,
        stopwords: str | Collection[str] | None = "english",
        min_length: int = 1,
        pattern: str = r"\w+",
    ) -> None:
        if isinstance(stopwords, str):
            builtin = {"english": ENGLISH_STOPWORDS, "english-full": ENGLISH_FULL_STOPWORDS}
            if stopwords not in builtin:
                raise ConfigurationError(
                    f"built-in stopwords are 'english' and 'english-full', got {stopwords!r}; "
                    "pass a collection of words instead"
                )
            stops: frozenset[str] = builtin[stopwords]
        else:
            stops = frozenset(stopwords or ())
        if min_length < 1:
            raise ConfigurationError(f"min_length must be at least 1, got {min_length}")
        self.language = language
        self.stem = stem
        self.stopwords = stops
        self.min_length = min_length
        self.pattern = pattern
        self._regex = re.compile(pattern, re.UNICODE)
        self._stemmer = _load_stemmer(language) if stem else None
        self._cache: dict[str, str | None] = {}

    def config(self) -> dict[str, object]:
        """The options, JSON-serialisable (saved with an index to rebuild the analyzer)."""
        return {
            "language": self.language,
            "stem": self.stem,
            "stopwords": sorted(self.stopwords),
            "min_length": self.min_length,
            "pattern": self.pattern,
        }

    def words(self, text: str) -> list[str]:
        """Split into case-folded words, before stopwords and stemming."""
        return self._regex.findall(unicodedata.normalize("NFKC", text).casefold())

    def term(self, word: str) -> str | None:
        """The indexed term for one case-folded word, or None when it is dropped."""
        if word in self._cache:
            return self._cache[word]
        return self.terms([word])[0]

    def terms(self, words: Sequence[str]) -> list[str | None]:
        """``term`` for many words at once (one stemmer call for the uncached ones)."""
        cache = self._cache
        todo = [w for w in dict.fromkeys(words) if w not in cache]
        kept = [w for w in todo if len(w) >= self.min_length and w not in self.stopwords]
        stems = self._stemmer.stemWords(kept) if self._stemmer is not None else kept
        found: dict[str, str | None] = dict.fromkeys(todo)
        found.update(zip(kept, stems))
        if len(cache) < 1_000_000:  # bound memory on adversarial vocabularies
            cache.update(found)
        return [cache[w] if w in cache else found[w] for w in words]

    def __call__(self, text: str) -> list[str]:
        """Terms of ``text`` in order (stopwords removed, stemmed)."""
        out = []
        for word in self.words(text):
            term = self.term(word)
            if term is not None:
                out.append(term)
        return out

    def __repr__(self) -> str:
        return f"TextAnalyzer(language={self.language!r}, stem={self.stem})"


class Vocabulary:
    """The term ids of a lexical index: texts become the ids of their kept terms.

    New terms get the next id. With a ``TextAnalyzer`` each distinct word is analysed
    once and its term id cached: most of a corpus is repeats.

    Args:
        analyzer: turns a text into terms.
        terms: the terms already known, in id order (a restored index).
    """

    def __init__(self, analyzer: Analyzer, terms: Iterable[str] = ()) -> None:
        self.analyzer = analyzer
        self.ids: dict[str, int] = {term: i for i, term in enumerate(terms)}
        self._word_ids: dict[str, int] = {}  # case-folded word -> term id (-1: dropped)

    def __len__(self) -> int:
        return len(self.ids)

    def analyze(self, texts: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Each text's kept-term count, and the term ids of all kept terms, text by text."""
        analyzer = self.analyzer
        if isinstance(analyzer, TextAnalyzer):
            per_doc = [analyzer.words(t) for t in texts]
            flat = list(chain.from_iterable(per_doc))
            cache = self._word_ids
            new = list(set(flat).difference(cache))
            for word, term in zip(new, analyzer.terms(new)):
                cache[word] = -1 if term is None else self._term_id(term)
            raw = np.fromiter(map(cache.__getitem__, flat), np.int64, len(flat))
            if len(cache) > _WORD_CACHE_LIMIT:
                cache.clear()
        else:
            per_doc = [analyzer(t) for t in texts]
            flat = list(chain.from_iterable(per_doc))
            raw = np.fromiter(map(self._term_id, flat), np.int64, len(flat))
        doc_of = np.repeat(np.arange(len(texts)), [len(w) for w in per_doc])
        keep = raw >= 0
        lengths = np.bincount(doc_of[keep], minlength=len(texts)).astype(np.int64)
        return lengths, raw[keep]

    def _term_id(self, term: str) -> int:
        return self.ids.setdefault(term, len(self.ids))

    def query(self, query: str) -> npt.NDArray[np.int64]:
        """Known term ids of a query (unknown terms score nothing and grow nothing)."""
        analyzer = self.analyzer
        if isinstance(analyzer, TextAnalyzer):
            out = []
            for word in analyzer.words(query):
                tid = self._word_ids.get(word)
                if tid is None:
                    term = analyzer.term(word)
                    tid = -1 if term is None else self.ids.get(term, -1)
                if tid >= 0:
                    out.append(tid)
        else:
            out = [t for t in map(self.ids.get, analyzer(query)) if t is not None]
        return np.asarray(out, np.int64)
