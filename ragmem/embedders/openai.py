"""OpenAIEmbedder: OpenAI embeddings and any OpenAI-compatible server (``ragmem[openai]``)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ragmem.embedders.base import Embedder, l2_normalize
from ragmem.errors import BackendResponseError, ConfigurationError, TextTooLongError
from ragmem.remote.openai import OpenAIClients
from ragmem.remote.resilience import RetryPolicy
from ragmem.tokens import TiktokenTokenizer, is_openai_model, local_tokenizer

if TYPE_CHECKING:
    from collections.abc import Sequence

    import openai

    from ragmem.tokens import Tokenizer
    from ragmem.types import Purpose, Vectors

__all__ = ["OpenAIEmbedder"]

# model -> (native dimensions, accepts the `dimensions` parameter)
_MODELS: dict[str, tuple[int, bool]] = {
    "text-embedding-3-small": (1536, True),
    "text-embedding-3-large": (3072, True),
    "text-embedding-ada-002": (1536, False),
}
# The API's documented limits for its embedding models.
_MAX_INPUTS = 2048
_MAX_TOKENS_PER_INPUT = 8192
_MAX_TOKENS_PER_REQUEST = 300_000


class _Batch(list[str]):
    """Texts of one request and their token count (for the tokens/min limit)."""

    tokens: int = 0


class OpenAIEmbedder(Embedder):
    """Embeddings from the OpenAI API or an OpenAI-compatible server.

    Requests are packed up to the API's limits (inputs per request, tokens per input
    and per request, counted offline with tiktoken); a text over the per-input limit
    raises ``TextTooLongError`` before anything is sent. Vectors travel base64-encoded
    and come back as float32 rows, checked for count, width and finiteness.

    ``dimensions`` is the output width. For ``text-embedding-3-*`` it is sent to the
    API (Matryoshka shortening, ``matryoshka="api"``); ``matryoshka="client"`` keeps
    the first ``dimensions`` of what the server returns and renormalises, for servers
    that ignore the parameter. Otherwise the server must return exactly ``dimensions``.

    For compatible servers pass ``base_url`` (e.g. ``http://localhost:11434/v1`` for
    Ollama, ``http://localhost:8000/v1`` for vLLM) and the model's ``dimensions``.
    ``api_key=None`` reads ``OPENAI_API_KEY`` when the first request is made.

    Example:
        >>> embedder = OpenAIEmbedder("text-embedding-3-small", dimensions=256)
        >>> embedder.dimensions
        256
    """

    concurrent_batches = True

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        client: openai.OpenAI | None = None,
        async_client: openai.AsyncOpenAI | None = None,
        matryoshka: Literal["api", "client"] | None = None,
        normalize: bool = True,
        encoding_format: Literal["base64", "float"] = "base64",
        max_inputs_per_request: int = _MAX_INPUTS,
        max_tokens_per_input: int | None = None,
        max_tokens_per_request: int | None = None,
        tokenizer: Tokenizer | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_concurrency: int = 8,
    ) -> None:
        native, shortenable = _MODELS.get(model, (None, False))
        if dimensions is None and native is None:
            raise ConfigurationError(
                f"dimensions is required for model {model!r} (the width of its vectors)"
            )
        if dimensions is not None and dimensions < 1:
            raise ConfigurationError(f"dimensions must be positive, got {dimensions}")
        if matryoshka is None and dimensions is not None and shortenable:
            matryoshka = "api"
        if native is not None and dimensions is not None and dimensions > native:
            raise ConfigurationError(f"{model} returns at most {native} dimensions")
        if (
            native is not None
            and not shortenable
            and dimensions not in (None, native)
            and matryoshka != "client"
        ):
            raise ConfigurationError(f"{model} does not accept dimensions; it returns {native}")
        if encoding_format not in ("base64", "float"):
            raise ConfigurationError(f"encoding_format must be base64 or float: {encoding_format}")
        if max_inputs_per_request < 1:
            raise ConfigurationError("max_inputs_per_request must be >= 1")
        self.model = model
        self.dimensions = int(dimensions or native or 0)
        self.matryoshka = matryoshka
        self.normalize = normalize
        self.encoding_format = encoding_format
        self.batch_size = max_inputs_per_request
        openai_model = is_openai_model(model)
        self.max_tokens_per_input = max_tokens_per_input or (
            _MAX_TOKENS_PER_INPUT if openai_model else None
        )
        self.max_tokens_per_request = max_tokens_per_request or (
            _MAX_TOKENS_PER_REQUEST if openai_model else None
        )
        self.tokenizer = tokenizer
        if tokenizer is None and openai_model:
            self.tokenizer = TiktokenTokenizer.for_model(model)
        needs_counts = self.max_tokens_per_input or self.max_tokens_per_request
        if self.tokenizer is None and (needs_counts or tokens_per_minute):
            # token limits on a non-OpenAI model: count with the local model's tokenizer
            self.tokenizer = local_tokenizer()
        self.base_url = base_url
        # The name identifies the vectors (it keys CachedEmbedder): everything that
        # changes them is in it; dimensions are keyed separately.
        self.name = (
            f"openai:{model}"
            + ("" if normalize else ":unnormalized")
            + (f"@{base_url}" if base_url else "")
        )
        self._clients = OpenAIClients(
            self.name,
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            client=client,
            async_client=async_client,
            retry=retry,
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_concurrency=max_concurrency,
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIEmbedder(model={self.model!r}, dimensions={self.dimensions}, "
            f"base_url={self.base_url!r})"
        )

    # batching -----------------------------------------------------------------------

    def _batches(self, items: list[str]) -> list[Sequence[str]]:
        batches: list[Sequence[str]] = []
        current = _Batch()
        for index, text in enumerate(items):
            tokens = self.tokenizer.count(text) if self.tokenizer is not None else 0
            if self.max_tokens_per_input is not None and tokens > self.max_tokens_per_input:
                raise TextTooLongError(
                    f"texts[{index}] has {tokens} tokens; {self.model} accepts at most "
                    f"{self.max_tokens_per_input} per input (split it, e.g. with a chunker)"
                )
            full = len(current) >= self.batch_size or (
                self.max_tokens_per_request is not None
                and current.tokens + tokens > self.max_tokens_per_request
            )
            if full and current:
                batches.append(current)
                current = _Batch()
            current.append(text)
            current.tokens += tokens
        if current:
            batches.append(current)
        return batches

    # request and response, shared by sync and async -----------------------------------

    def _request(self, texts: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "input": list(texts),
            "encoding_format": self.encoding_format,
        }
        if self.matryoshka == "api":
            body["dimensions"] = self.dimensions
        return body

    def _parse(self, response: object, count: int) -> Vectors:
        data = getattr(response, "data", None)
        if not isinstance(data, list):
            raise BackendResponseError(
                f"expected an embedding list, got {type(response).__name__}", backend=self.name
            )
        if len(data) != count:
            raise BackendResponseError(
                f"returned {len(data)} embeddings for {count} inputs", backend=self.name
            )
        rows: list[Any] = [None] * count
        for item in data:
            index = getattr(item, "index", None)
            if not isinstance(index, int) or not 0 <= index < count or rows[index] is not None:
                raise BackendResponseError(f"bad embedding index {index!r}", backend=self.name)
            rows[index] = self._decode(getattr(item, "embedding", None))
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise BackendResponseError(f"embeddings of mixed widths {widths}", backend=self.name)
        vectors = np.stack(rows)
        if not np.isfinite(vectors).all():
            raise BackendResponseError("returned NaN or infinite values", backend=self.name)
        if self.matryoshka == "client":
            if vectors.shape[1] < self.dimensions:
                raise BackendResponseError(
                    f"returned {vectors.shape[1]} dimensions, fewer than {self.dimensions}",
                    backend=self.name,
                )
            vectors = np.ascontiguousarray(vectors[:, : self.dimensions])
        elif vectors.shape[1] != self.dimensions:
            raise BackendResponseError(
                f"returned {vectors.shape[1]}-dimensional vectors, expected {self.dimensions}",
                backend=self.name,
            )
        return l2_normalize(vectors) if self.normalize else vectors

    def _decode(self, embedding: object) -> Any:
        if isinstance(embedding, str):
            try:
                raw = base64.b64decode(embedding, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BackendResponseError(
                    "embedding is not valid base64", backend=self.name
                ) from exc
            if len(raw) % 4:
                raise BackendResponseError(
                    "base64 embedding is not whole float32 values", backend=self.name
                )
            return np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if isinstance(embedding, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in embedding
        ):
            return np.asarray(embedding, dtype=np.float32)
        raise BackendResponseError(
            f"embedding has type {type(embedding).__name__}", backend=self.name
        )

    # transport ------------------------------------------------------------------------

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        body = self._request(texts)
        return self._clients.call(
            lambda client, timeout: self._parse(
                client.embeddings.create(**body, timeout=timeout), len(texts)
            ),
            tokens=getattr(texts, "tokens", 0),
        )

    async def _embed_batch_async(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        body = self._request(texts)

        async def send(client: openai.AsyncOpenAI, timeout: float) -> Vectors:
            return self._parse(await client.embeddings.create(**body, timeout=timeout), len(texts))

        return await self._clients.call_async(
            send, lambda: self._embed_batch(texts, purpose), tokens=getattr(texts, "tokens", 0)
        )
