"""A fake Cohere v2 API: /v2/embed, /v2/chat (plain and streamed) and /v2/rerank.

It validates requests like api.cohere.com (required fields, enums, the 96-text
limit, output_dimension only on embed-v4.0, unknown fields rejected) and answers
with the same shapes and error bodies. Float vectors come from HashingEmbedder;
int8/uint8/binary/ubinary are derived from them the way Cohere documents. Chat usage
counts words, in both of Cohere's forms: ``billed_units`` bills the prompt's and the
answer's words, ``tokens`` adds PREAMBLE_TOKENS of the server's own preamble to the input.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from ragmem.embedders import HashingEmbedder
from tests.remote.fakeserver import FakeServer, Reply, Request

if TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "co-test-8hT2mXq4LpV9sKd1"
MODELS = {
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-english-light-v3.0": 384,
}
CHAT_MODELS = {"command-a-03-2025", "command-r7b-12-2024"}
RERANK_MODELS = {"rerank-v3.5", "rerank-english-v3.0"}
INPUT_TYPES = {"search_document", "search_query", "classification", "clustering", "image"}
TYPES = {"float", "int8", "uint8", "binary", "ubinary", "base64"}
_EMBED_FIELDS = {
    "model", "texts", "images", "inputs", "input_type", "embedding_types",
    "output_dimension", "max_tokens", "truncate", "priority",
}  # fmt: skip
_CHAT_FIELDS = {"model", "messages", "stream", "temperature", "max_tokens", "seed"}
PREAMBLE_TOKENS = 10
_RERANK_FIELDS = {"model", "query", "documents", "top_n", "max_tokens_per_doc", "priority"}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    defaults = {
        400: "invalid request",
        401: "invalid api token",
        429: "You are using a Trial key, which is limited to 100 API calls / minute.",
        500: "internal server error, this has been reported to our developers",
        503: "service unavailable",
    }
    return {"message": message or defaults.get(status, "error")}


def quantize(vectors: np.ndarray, kind: str) -> Any:
    if kind == "float":
        return vectors.astype(np.float32).tolist()
    int8 = np.clip(np.round(vectors / np.abs(vectors).max(axis=1, keepdims=True) * 127), -128, 127)
    ubinary = np.packbits(vectors > 0, axis=1).astype(np.int64)
    table = {"int8": int8, "uint8": int8 + 128, "ubinary": ubinary, "binary": ubinary - 128}
    return table[kind].astype(np.int64).tolist()


class FakeCohere:
    """Configuration and state of one fake Cohere server."""

    def __init__(self) -> None:
        self._base = HashingEmbedder(32)
        self.server = FakeServer(self.app, error_body=error_body)

    def _bad(self, message: str, status: int = 400) -> Reply:
        return Reply(status, error_body(status, message))

    def app(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return self._bad("invalid api token", 401)
        body = request.json
        if not isinstance(body, dict):
            return self._bad("invalid request: body must be a JSON object")
        handler = {"/v2/embed": self.embed, "/v2/chat": self.chat, "/v2/rerank": self.rerank}
        if request.path not in handler:
            return self._bad(f"not found: {request.path}", 404)
        return handler[request.path](body)

    def vectors(self, texts: list[str], width: int) -> np.ndarray:
        base = self._base.embed(texts)
        weights = 1.0 / (1.0 + np.arange(width) / 32.0)
        full = base[:, np.arange(width) % 32] * weights
        return np.asarray(full / np.linalg.norm(full, axis=1, keepdims=True))

    # embed ------------------------------------------------------------------------

    def embed(self, body: dict[str, Any]) -> Reply:
        unknown = set(body) - _EMBED_FIELDS
        if unknown:
            return self._bad(f"invalid request: unknown field {sorted(unknown)[0]}")
        model = body.get("model")
        if model not in MODELS:
            return self._bad(f"model '{model}' not found", 404)
        if body.get("input_type") not in INPUT_TYPES:
            return self._bad("invalid request: input_type is required for embed v3 models")
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return self._bad("invalid request: texts must be a non-empty list of strings")
        if len(texts) > 96:
            return self._bad(
                f"invalid request: texts must have at most 96 entries, got {len(texts)}"
            )
        if any(not t.strip() for t in texts):
            return self._bad("invalid request: texts must not be empty")
        kinds = body.get("embedding_types", ["float"])
        if not isinstance(kinds, list) or not kinds or not set(kinds) <= TYPES:
            return self._bad(f"invalid request: embedding_types {kinds!r}")
        if body.get("truncate", "END") not in ("NONE", "START", "END"):
            return self._bad("invalid request: truncate must be one of NONE, START, END")
        width = MODELS[model]
        if "output_dimension" in body:
            if model != "embed-v4.0":
                return self._bad(
                    "invalid request: output_dimension is only supported on embed-v4.0"
                )
            if body["output_dimension"] not in (256, 512, 1024, 1536):
                return self._bad("invalid request: output_dimension must be 256, 512, 1024 or 1536")
            width = body["output_dimension"]
        vectors = self.vectors(texts, width)
        embeddings = {kind: quantize(vectors, kind) for kind in kinds if kind != "base64"}
        return Reply(200, {
            "id": "emb-1",
            "embeddings": embeddings,
            "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 3}},
            "response_type": "embeddings_by_type",
        })  # fmt: skip

    # chat -------------------------------------------------------------------------

    def chat(self, body: dict[str, Any]) -> Reply:
        unknown = set(body) - _CHAT_FIELDS
        if unknown:
            return self._bad(f"invalid request: unknown field {sorted(unknown)[0]}")
        if body.get("model") not in CHAT_MODELS:
            return self._bad(f"model '{body.get('model')}' not found", 404)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad("invalid request: messages must be a non-empty list")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                return self._bad("invalid request: bad message role")
            if not isinstance(m.get("content"), str):
                return self._bad("invalid request: bad message content")
        answer = "echo: " + messages[-1]["content"]
        prompt, output = sum(len(m["content"].split()) for m in messages), len(answer.split())
        usage = {
            "billed_units": {"input_tokens": prompt, "output_tokens": output},
            "tokens": {"input_tokens": prompt + PREAMBLE_TOKENS, "output_tokens": output},
        }
        if body.get("stream"):
            return Reply(200, self._events(answer, usage))
        return Reply(200, {
            "id": "chat-1",
            "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            "usage": usage,
        })  # fmt: skip

    def _events(self, answer: str, usage: dict[str, Any]) -> Iterator[str]:
        def event(kind: str, data: dict[str, Any]) -> str:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

        words = answer.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        yield event("message-start", {"id": "chat-1", "delta": {"message": {"role": "assistant"}}})
        start = {"message": {"content": {"type": "text", "text": ""}}}
        yield event("content-start", {"index": 0, "delta": start})
        for piece in pieces:
            delta = {"message": {"content": {"text": piece}}}
            yield event("content-delta", {"index": 0, "delta": delta})
        yield event("content-end", {"index": 0})
        yield event("message-end", {"delta": {"finish_reason": "COMPLETE", "usage": usage}})

    # rerank -----------------------------------------------------------------------

    def rerank(self, body: dict[str, Any]) -> Reply:
        unknown = set(body) - _RERANK_FIELDS
        if unknown:
            return self._bad(f"invalid request: unknown field {sorted(unknown)[0]}")
        if body.get("model") not in RERANK_MODELS:
            return self._bad(f"model '{body.get('model')}' not found", 404)
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not query.strip():
            return self._bad("invalid request: query must be a non-empty string")
        if not isinstance(documents, list) or not documents:
            return self._bad("invalid request: documents must be a non-empty list")
        if len(documents) > 1000:
            return self._bad("invalid request: at most 1000 documents")
        if not all(isinstance(d, str) for d in documents):
            return self._bad("invalid request: documents must be strings")
        top_n = body.get("top_n", len(documents))
        if not isinstance(top_n, int) or top_n < 1:
            return self._bad("invalid request: top_n must be a positive integer")
        q = self.vectors([query], 64)[0]
        scores = self.vectors(documents, 64) @ q
        relevance = (scores + 1.0) / 2.0
        order = np.argsort(-relevance, kind="stable")[:top_n]
        results = [{"index": int(i), "relevance_score": float(relevance[i])} for i in order]
        return Reply(
            200, {"id": "rr-1", "results": results, "meta": {"api_version": {"version": "2"}}}
        )
