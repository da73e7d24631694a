"""CohereEmbedder: Cohere's v2 embed API (``ragmem[cohere]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ragmem.embedders.base import Embedder, l2_normalize
from ragmem.errors import BackendResponseError, ConfigurationError
from ragmem.remote.cohere import CohereClients, request_options
from ragmem.remote.resilience import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Sequence

    import cohere

    from ragmem.types import Purpose, Vectors

__all__ = ["CohereEmbedder"]

EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary"]
InputType = Literal["search_document", "search_query", "classification", "clustering"]

# model -> (native dimensions, output_dimension choices or None)
_MODELS: dict[str, tuple[int, tuple[int, ...] | None]] = {
    "embed-v4.0": (1536, (256, 512, 1024, 1536)),
    "embed-english-v3.0": (1024, None),
    "embed-multilingual-v3.0": (1024, None),
    "embed-english-light-v3.0": (384, None),
    "embed-multilingual-light-v3.0": (384, None),
}
_MAX_TEXTS = 96  # the API's limit per request
_TYPES = ("float", "int8", "uint8", "binary", "ubinary")
_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


class CohereEmbedder(Embedder):
    """Embeddings from Cohere's v2 embed API.

    ``purpose`` picks ``input_type``: ``search_query`` for queries, ``search_document``
    for documents; set ``input_type="classification"`` or ``"clustering"`` to use
    those for every call instead. ``embedding_type`` asks for compressed vectors and
    unpacks them to float32: ``int8`` as is, ``uint8`` shifted back by 128, ``binary``
    and ``ubinary`` unpacked bit by bit to +1/-1 (so ``dimensions`` is 8x the packed
    width). Rows are L2-normalised unless ``normalize=False``. ``output_dimension``
    (embed-v4.0 and newer) shortens vectors on the server.

    ``api_key=None`` reads ``CO_API_KEY`` (or ``COHERE_API_KEY``) at the first request.

    Example:
        >>> embedder = CohereEmbedder("embed-v4.0", output_dimension=512)
        >>> embedder.dimensions
        512
    """

    concurrent_batches = True

    def __init__(
        self,
        model: str = "embed-v4.0",
        *,
        dimensions: int | None = None,
        output_dimension: int | None = None,
        embedding_type: EmbeddingType = "float",
        input_type: InputType | None = None,
        normalize: bool = True,
        base_url: str | None = None,
        api_key: str | None = None,
        client: cohere.ClientV2 | None = None,
        async_client: cohere.AsyncClientV2 | None = None,
        max_texts_per_request: int = _MAX_TEXTS,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        requests_per_minute: float | None = None,
        max_concurrency: int = 8,
    ) -> None:
        native, choices = _MODELS.get(model, (None, None))
        if embedding_type not in _TYPES:
            raise ConfigurationError(f"embedding_type must be one of {_TYPES}: {embedding_type}")
        if input_type is not None and input_type not in _INPUT_TYPES:
            raise ConfigurationError(f"input_type must be one of {_INPUT_TYPES}: {input_type}")
        if output_dimension is not None:
            if native is not None and choices is None:
                raise ConfigurationError(f"{model} does not support output_dimension")
            if choices is not None and output_dimension not in choices:
                raise ConfigurationError(f"{model} supports output_dimension in {choices}")
        width = output_dimension or dimensions or native
        if width is None:
            raise ConfigurationError(f"dimensions is required for model {model!r}")
        if dimensions is not None and dimensions != width:
            raise ConfigurationError(f"dimensions={dimensions} but the model returns {width}")
        if native is not None and output_dimension is None and width != native:
            raise ConfigurationError(
                f"{model} returns {native} dimensions; use output_dimension= where supported"
            )
        if not 1 <= max_texts_per_request <= _MAX_TEXTS:
            raise ConfigurationError(f"max_texts_per_request must be in 1..{_MAX_TEXTS}")
        self.model = model
        self.dimensions = int(width)
        self.output_dimension = output_dimension
        self.embedding_type: EmbeddingType = embedding_type
        self.input_type = input_type
        self.normalize = normalize
        self.batch_size = max_texts_per_request
        self.base_url = base_url
        # The name identifies the vectors (it keys CachedEmbedder): everything that
        # changes them is in it; dimensions are keyed separately.
        self.name = (
            f"cohere:{model}"
            + (f":{embedding_type}" if embedding_type != "float" else "")
            + (f":{input_type}" if input_type else "")
            + ("" if normalize else ":unnormalized")
            + (f"@{base_url}" if base_url else "")
        )
        self._clients = CohereClients(
            self.name,
            api_key=api_key,
            base_url=base_url,
            client=client,
            async_client=async_client,
            retry=retry,
            timeout=timeout,
            requests_per_minute=requests_per_minute,
            max_concurrency=max_concurrency,
        )

    def __repr__(self) -> str:
        return (
            f"CohereEmbedder(model={self.model!r}, dimensions={self.dimensions}, "
            f"embedding_type={self.embedding_type!r})"
        )

    # request and response, shared by sync and async -----------------------------------

    def _request(self, texts: Sequence[str], purpose: Purpose) -> dict[str, Any]:
        input_type = self.input_type or (
            "search_query" if purpose == "query" else "search_document"
        )
        body: dict[str, Any] = {
            "model": self.model,
            "texts": list(texts),
            "input_type": input_type,
            "embedding_types": [self.embedding_type],
            # never cut a text silently: an over-long input is an error from the API
            "truncate": "NONE",
        }
        if self.output_dimension is not None:
            body["output_dimension"] = self.output_dimension
        return body

    def _parse(self, response: object, count: int) -> Vectors:
        embeddings = getattr(response, "embeddings", None)
        field = "float_" if self.embedding_type == "float" else self.embedding_type
        rows = getattr(embeddings, field, None)
        if not isinstance(rows, list):
            raise BackendResponseError(
                f"reply has no {self.embedding_type!r} embeddings", backend=self.name
            )
        if len(rows) != count:
            raise BackendResponseError(
                f"returned {len(rows)} embeddings for {count} texts", backend=self.name
            )
        try:
            values = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BackendResponseError(
                "embeddings are not a rectangular array of numbers", backend=self.name
            ) from exc
        if values.ndim != 2 or not np.isfinite(values).all():
            raise BackendResponseError("embeddings have a bad shape or values", backend=self.name)
        vectors = self._unpack(values)
        if vectors.shape[1] != self.dimensions:
            raise BackendResponseError(
                f"returned {vectors.shape[1]}-dimensional vectors, expected {self.dimensions}",
                backend=self.name,
            )
        return l2_normalize(vectors) if self.normalize else vectors

    def _unpack(self, values: np.ndarray[Any, Any]) -> Vectors:
        kind = self.embedding_type
        if kind == "float":
            return values.astype(np.float32)
        limits = {"int8": (-128, 127), "binary": (-128, 127)}.get(kind, (0, 255))
        if values.size and (
            values.min() < limits[0] or values.max() > limits[1] or (values % 1).any()
        ):
            raise BackendResponseError(f"{kind} values out of range", backend=self.name)
        if kind == "int8":
            return values.astype(np.float32)
        if kind == "uint8":
            # uint8 is int8 shifted by +128; shifting back keeps dot products meaningful
            return (values - 128.0).astype(np.float32)
        packed = (values + 128 if kind == "binary" else values).astype(np.uint8)
        bits = np.unpackbits(packed, axis=1)
        return (bits.astype(np.float32) * 2.0) - 1.0

    # transport ------------------------------------------------------------------------

    def _embed_batch(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        body = self._request(texts, purpose)
        return self._clients.call(
            lambda co, timeout: self._parse(
                co.embed(**body, request_options=request_options(timeout)), len(texts)
            )
        )

    async def _embed_batch_async(self, texts: Sequence[str], purpose: Purpose) -> Vectors:
        body = self._request(texts, purpose)

        async def send(co: cohere.AsyncClientV2, timeout: float) -> Vectors:
            reply = await co.embed(**body, request_options=request_options(timeout))
            return self._parse(reply, len(texts))

        return await self._clients.call_async(send, lambda: self._embed_batch(texts, purpose))
