"""A fake OpenAI-compatible API: /v1/embeddings and /v1/chat/completions.

It validates requests the way api.openai.com does (required fields, types, unknown
arguments, the 2048-input, 8192-token and 300k-token limits, `dimensions` only for
text-embedding-3 models, `stream_options` only on streams) and answers with the same
shapes, including base64 vectors, error bodies and usage (a stream ends with a usage
chunk when `stream_options.include_usage` asks for it). Vectors come from
HashingEmbedder, so similar texts get similar vectors and the embedder contract can
run against it. Chat usage counts words: the prompt's words across all messages, and
the answer's.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.embedders import HashingEmbedder
from ragmem.tokens import TiktokenTokenizer
from tests.remote.fakeserver import FakeServer, Reply, Request

if TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "sk-test-Zq8VbN3xT1LmP0sA"
MODELS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
SHORTENABLE = {"text-embedding-3-small", "text-embedding-3-large"}
CHAT_MODELS = {"gpt-4o-mini", "gpt-4o"}
_EMBED_FIELDS = {"model", "input", "dimensions", "encoding_format", "user"}
_CHAT_FIELDS = {
    "model",
    "messages",
    "stream",
    "temperature",
    "max_completion_tokens",
    "stream_options",
    "seed",
}


def error_body(
    status: int, message: str | None = None, kind: str = "invalid_request_error"
) -> dict[str, Any]:
    defaults = {
        400: "Invalid request.",
        401: "Incorrect API key provided.",
        404: "The model does not exist or you do not have access to it.",
        429: "Rate limit reached for requests. Please try again later.",
        500: "The server had an error while processing your request.",
        503: "The engine is currently overloaded, please try again later.",
    }
    kinds = {429: "requests", 500: "server_error", 503: "server_error"}
    return {
        "error": {
            "message": message or defaults.get(status, "Error."),
            "type": kinds.get(status, kind),
            "param": None,
            "code": None,
        }
    }


class FakeOpenAI:
    """Configuration and state of one fake OpenAI-compatible server."""

    def __init__(self, *, extra_models: dict[str, int] | None = None, require_key: bool = True):
        self.models = {**MODELS, **(extra_models or {})}
        self.require_key = require_key
        self.tokenizer = TiktokenTokenizer("cl100k_base")
        self._base = HashingEmbedder(32)
        self.server = FakeServer(self.app, error_body=error_body)

    def _bad(self, message: str, status: int = 400, param: str | None = None) -> Reply:
        body = error_body(status, message)
        body["error"]["param"] = param
        return Reply(status, body)

    def app(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        if self.require_key and auth != f"Bearer {KEY}":
            shown = auth.removeprefix("Bearer ")
            # The real API masks the key; this fake echoes it whole to test redaction.
            return self._bad(f"Incorrect API key provided: {shown}.", 401)
        if request.path == "/v1/embeddings":
            return self.embeddings(request.json)
        if request.path == "/v1/chat/completions":
            return self.chat(request.json)
        return self._bad(f"Invalid URL (POST {request.path})", 404)

    # embeddings -----------------------------------------------------------------

    def vectors(self, texts: list[str], width: int) -> np.ndarray:
        # Like a Matryoshka model, every prefix carries the meaning: a 32-wide hashing
        # vector repeated with decaying weight, so truncated vectors are never zero.
        base = self._base.embed(texts)
        weights = 1.0 / (1.0 + np.arange(width) / 32.0)
        full = base[:, np.arange(width) % 32] * weights
        return np.asarray(full / np.linalg.norm(full, axis=1, keepdims=True))

    def embeddings(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            return self._bad("We could not parse the JSON body of your request.")
        unknown = set(body) - _EMBED_FIELDS
        if unknown:
            return self._bad(f"Unrecognized request argument supplied: {sorted(unknown)[0]}")
        model = body.get("model")
        if not isinstance(model, str):
            return self._bad("you must provide a model parameter", param="model")
        if model not in self.models:
            return self._bad(f"The model `{model}` does not exist", 404, param="model")
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(t, str) for t in inputs)
        ):
            return self._bad("'$.input' is invalid.", param="input")
        if len(inputs) > 2048:
            return self._bad("'$.input' is invalid: at most 2048 inputs.", param="input")
        if any(t == "" for t in inputs):
            return self._bad("'$.input' is invalid: empty string.", param="input")
        counts = [self.tokenizer.count(t) for t in inputs]
        if max(counts) > 8192:
            return self._bad(
                "This model's maximum context length is 8192 tokens, however you requested "
                f"{max(counts)} tokens.",
                param="input",
            )
        if sum(counts) > 300_000:
            return self._bad(
                "Requested 300001+ tokens, max 300000 tokens per request", param="input"
            )
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return self._bad("'encoding_format' must be float or base64", param="encoding_format")
        width = self.models[model]
        vectors = self.vectors(inputs, width)
        if "dimensions" in body:
            dims = body["dimensions"]
            if model not in SHORTENABLE:
                return self._bad(
                    "This model does not support specifying dimensions.", param="dimensions"
                )
            if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= width:
                return self._bad(f"Invalid dimensions {dims!r}", param="dimensions")
            vectors = vectors[:, :dims] / np.linalg.norm(vectors[:, :dims], axis=1, keepdims=True)
        vectors = vectors.astype("<f4")
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(v.tobytes()).decode()
                if fmt == "base64"
                else v.tolist(),
            }
            for i, v in enumerate(vectors)
        ]
        total = sum(counts)
        return Reply(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": total, "total_tokens": total},
            },
        )

    # chat -----------------------------------------------------------------------

    def chat(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            return self._bad("We could not parse the JSON body of your request.")
        unknown = set(body) - _CHAT_FIELDS
        if unknown:
            return self._bad(f"Unrecognized request argument supplied: {sorted(unknown)[0]}")
        model = body.get("model")
        if model not in CHAT_MODELS:
            return self._bad(f"The model `{model}` does not exist", 404, param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad("'messages' must be a non-empty array", param="messages")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in (
                "system",
                "user",
                "assistant",
                "developer",
            ):
                return self._bad("Invalid message role", param="messages")
            if not isinstance(m.get("content"), str):
                return self._bad("Invalid message content", param="messages")
        options = body.get("stream_options")
        if options is not None and not body.get("stream"):
            return self._bad(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        answer = "echo: " + messages[-1]["content"]
        created = int(time.time())
        prompt = sum(len(m["content"].split()) for m in messages)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(answer.split()),
            "total_tokens": prompt + len(answer.split()),
        }
        if body.get("stream"):
            wants_usage = isinstance(options, dict) and options.get("include_usage") is True
            return Reply(200, self._chunks(model, answer, created, usage if wants_usage else None))
        return Reply(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            },
        )

    def _chunks(
        self, model: str, answer: str, created: int, usage: dict[str, int] | None
    ) -> Iterator[str]:
        def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
            data = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n"

        def delta(content: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": content, "finish_reason": finish}
            # with include_usage, every chunk carries "usage": null until the last one
            return chunk([choice], **({"usage": None} if usage is not None else {}))

        words = answer.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        events = [delta({"role": "assistant", "content": ""})]
        events += [delta({"content": p}) for p in pieces]
        events.append(delta({}, "stop"))
        if usage is not None:
            events.append(chunk([], usage=usage))
        events.append("data: [DONE]\n\n")
        return iter(events)
