import pytest

from ragmem import ConfigurationError
from ragmem.retrievers import Analyzer, TextAnalyzer


def test_stems_and_drops_stopwords():
    assert TextAnalyzer()("The cats are running to the Houses") == ["cat", "run", "hous"]


def test_unicode_case_folding_and_compatibility_forms():
    analyzer = TextAnalyzer(stem=False, stopwords=None)
    # NFKC turns the ligature and full-width letters into plain ones; casefold handles ß
    text = "\ufb01ne \uff21\uff22\uff23 Stra\u00dfe \u00c9COLE"  # ligature, full-width
    assert analyzer(text) == ["fine", "abc", "strasse", "\u00e9cole"]
    assert analyzer("日本語 テキスト") == ["日本語", "テキスト"]


def test_other_language_and_custom_stopwords():
    analyzer = TextAnalyzer("german", stopwords={"die"})
    assert analyzer("Die Häuser") == ["haus"]


def test_min_length_and_pattern():
    assert TextAnalyzer(stopwords=None, min_length=3)("an ox ran far") == ["ran", "far"]
    assert TextAnalyzer(stem=False, stopwords=None, pattern=r"[a-z]+")("abc123def") == [
        "abc",
        "def",
    ]


def test_terms_matches_call():
    analyzer = TextAnalyzer()
    words = analyzer.words("Running runners ran the race")
    assert [t for t in analyzer.terms(words) if t] == analyzer("Running runners ran the race")


def test_bad_options():
    with pytest.raises(ConfigurationError, match="klingon"):
        TextAnalyzer("klingon")
    with pytest.raises(ConfigurationError):
        TextAnalyzer(stopwords="french")
    with pytest.raises(ConfigurationError):
        TextAnalyzer(min_length=0)


def test_is_a_tokenizer():
    assert isinstance(TextAnalyzer(), Analyzer)
    assert isinstance(str.split, Analyzer)
