"""Hybrid relevance for memories: dense + BM25 + late interaction, fused, with session context.

Short chat turns are a hard case for one mean-pooled vector (a speaker's name can
dominate it), so recall blends three views of each memory: the dense vector, BM25 over
stemmed words, and ColBERT-style MaxSim over the turn's token vectors. Each is
min-max normalised over the candidate set and mixed with fixed weights. Optionally a
memory's relevance is smoothed with its neighbours in the same session: the turn that
answers a question often sits next to the turn that names its subject.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ragmem.embedders.base import Embedder, TokenEmbedder
from ragmem.errors import ConfigurationError
from ragmem.filters import Filter
from ragmem.retrievers.analysis import ENGLISH_STOPWORDS
from ragmem.retrievers.bm25 import BM25Retriever
from ragmem.retrievers.fusion import normalize
from ragmem.retrievers.tokenvectors import TokenVectorStore
from ragmem.stores.base import VectorStore
from ragmem.types import Hit, Metadata, Purpose, Vectors

__all__ = ["JointEmbedder", "Recall", "RecallWeights"]

_WORD = re.compile(r"\w+")
LEXICAL_HALF = 5.0
"""The BM25 score that counts as half a lexical match on the absolute scale."""


@runtime_checkable
class JointEmbedder(Protocol):
    """An embedder that gives sentence and token vectors from one forward pass
    (``LocalEmbedder``)."""

    def embed_with_tokens(
        self, texts: Sequence[str], *, purpose: Purpose = "document"
    ) -> tuple[Vectors, list[Vectors]]: ...


@dataclass(frozen=True)
class RecallWeights:
    """How the views of a memory are mixed (each view min-max normalised first).

    The defaults were chosen on LoCoMo conversations 1-5 only (``benchmarks/memory_tuning.py``)
    and checked on conversations 6-10; see the README for both halves.

    Attributes:
        dense: weight of the dense (mean-pooled) similarity.
        lexical: weight of BM25.
        late: weight of MaxSim over token vectors (used when the embedder has them).
        neighbors: share of a memory's score taken from its best neighbour in the
            same session (0 disables smoothing).
        depth: candidates fetched from each first-stage index.
        assistant: factor on the relevance of memories an assistant said (metadata
            ``role`` "assistant", as ``Memory.add`` stores chat messages). A reply
            restates the user's topic at length and outranks the user's own short
            statement of the fact; 1 treats both speakers alike.
    """

    dense: float = 0.1
    lexical: float = 0.3
    late: float = 0.6
    neighbors: float = 0.4
    depth: int = 100
    assistant: float = 0.6

    def __post_init__(self) -> None:
        for name in ("dense", "lexical", "late", "neighbors", "assistant"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"RecallWeights.{name} must be a number, got {value!r}")
            if not 0.0 <= value <= (1.0 if name in ("neighbors", "assistant") else math.inf):
                raise ConfigurationError(f"RecallWeights.{name} is out of range: {value!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ConfigurationError(
                f"RecallWeights.depth must be a positive int, got {self.depth!r}"
            )


@dataclass
class Recall:
    """Candidate generation and scoring over a vector store, BM25 and token vectors."""

    embedder: Embedder
    store: VectorStore
    weights: RecallWeights = field(default_factory=RecallWeights)
    lexical: BM25Retriever = field(default_factory=BM25Retriever)
    tokens: TokenVectorStore | None = None

    def __post_init__(self) -> None:
        if self.tokens is None and isinstance(self.embedder, TokenEmbedder):
            self.tokens = TokenVectorStore(self.embedder.dimensions, encoding="int8")

    @property
    def token_embedder(self) -> TokenEmbedder | None:
        return self.embedder if isinstance(self.embedder, TokenEmbedder) else None

    def index(self, ids: Sequence[str], texts: Sequence[str], metadata: Sequence[Metadata]) -> None:
        """Add or replace memories in the lexical index."""
        self.lexical.add(ids, texts, metadata)

    def put_tokens(self, ids: Sequence[str], token_vectors: Sequence[Vectors]) -> None:
        """Add or replace memories' token vectors (for late interaction)."""
        if self.tokens is not None and ids:
            self.tokens.put(ids, token_vectors)

    def remove(self, ids: Sequence[str]) -> None:
        self.lexical.delete(ids)
        if self.tokens is not None:
            self.tokens.delete(ids)

    def search(
        self,
        query: str,
        k: int,
        where: Filter,
        neighbors_of: Callable[[list[str]], dict[str, list[str]]] | None = None,
        roles_of: Callable[[list[str]], list[object]] | None = None,
    ) -> list[Hit]:
        """The best ``k`` memories for ``query`` among those matching ``where``
        (``roles_of`` gives each candidate's speaker role, if any)."""
        w = self.weights
        depth = max(k, w.depth)
        query_vector, query_tokens = self._embed_query(query)
        dense_hits = self.store.search(query_vector, k=depth, where=where)[0]
        lexical_hits = self.lexical.retrieve(query, depth, where=where)
        candidates: dict[str, Hit] = {h.id: h for h in lexical_hits}
        candidates.update((h.id, h) for h in dense_hits)
        neighbors = neighbors_of(list(candidates)) if neighbors_of and w.neighbors > 0 else None
        if neighbors:
            for id_ in list(candidates):
                for other in neighbors.get(id_, ()):
                    if other not in candidates and other in self.lexical:
                        candidates[other] = Hit(id=other, score=0.0)
        ids = list(candidates)
        if not ids:
            return []
        dense = self._dense_scores(query_vector, ids, {h.id: h.score for h in dense_hits})
        lexical = np.asarray(self.lexical.score(query, ids), np.float64)
        late = self._late_scores(query_tokens, ids)
        parts = {"dense": dense, "lexical": lexical, "late": late}
        mix = {"dense": w.dense, "lexical": w.lexical, "late": w.late if late is not None else 0.0}
        total = sum(mix.values()) or 1.0
        relevance = np.zeros(len(ids))
        for name, values in parts.items():
            if values is not None and mix[name] > 0:
                relevance += (mix[name] / total) * np.asarray(normalize(list(values), "minmax"))
        if neighbors and w.neighbors > 0:
            relevance = self._smooth(ids, relevance, neighbors, w.neighbors)
        if roles_of is not None and w.assistant != 1.0:
            said = np.array([role == "assistant" for role in roles_of(ids)])
            relevance = np.where(said, w.assistant * relevance, relevance)
        # min-max ranks the candidates of one query; the absolute match of the best one
        # sets the scale, so a weak query's hits score low and scores compare across queries
        match = self._match(dense, lexical, late, mix)
        strength = float(match.max())
        order = sorted(range(len(ids)), key=lambda i: (-relevance[i], i))[:k]
        out = []
        for i in order:
            explain: dict[str, object] = {
                "dense": float(dense[i]),
                "bm25": float(lexical[i]),
            }
            if late is not None:
                explain["maxsim"] = float(late[i])
            explain["match"] = float(match[i])
            explain["rank_score"] = float(relevance[i])
            explain["strength"] = strength
            out.append(Hit(id=ids[i], score=float(relevance[i]) * strength, explain=explain))
        return out

    @staticmethod
    def _match(
        dense: np.ndarray, lexical: np.ndarray, late: np.ndarray | None, mix: dict[str, float]
    ) -> np.ndarray:
        """Each candidate's match on a fixed [0, 1] scale: cosine and mean MaxSim clipped
        at 0, BM25 saturated (``LEXICAL_HALF`` scores one half), mixed like relevance."""
        total = sum(mix.values()) or 1.0
        match = mix["dense"] * np.clip(dense, 0.0, 1.0)
        match += mix["lexical"] * lexical / (lexical + LEXICAL_HALF)
        if late is not None:
            match += mix["late"] * np.clip(late, 0.0, 1.0)
        out: np.ndarray = match / total
        return out

    def _dense_scores(self, query: Vectors, ids: list[str], known: dict[str, float]) -> np.ndarray:
        missing = [i for i in ids if i not in known]
        if missing:
            records = self.store.get(missing)
            vectors = np.stack([r.vector for r in records])
            norms = np.linalg.norm(vectors, axis=1) * float(np.linalg.norm(query))
            sims = (vectors @ query) / np.maximum(norms, 1e-12)
            known = {**known, **dict(zip(missing, sims.tolist()))}
        return np.asarray([known[i] for i in ids], np.float64)

    def _embed_query(self, query: str) -> tuple[Vectors, Vectors | None]:
        """The query's dense vector and, when late interaction is on, the token vectors of
        its content words (both from one model call where the embedder allows it)."""
        embedder = self.token_embedder
        if embedder is None or self.tokens is None or self.weights.late <= 0:
            return self.embedder.embed_query(query), None
        # stopwords carry little signal in MaxSim and dominate short questions
        content = " ".join(w for w in _WORD.findall(query) if w.casefold() not in ENGLISH_STOPWORDS)
        if isinstance(embedder, JointEmbedder):
            dense, tokens = embedder.embed_with_tokens([query, content or query], purpose="query")
            return dense[0], tokens[1]
        query_tokens = embedder.embed_tokens([content or query], purpose="query")[0]
        return self.embedder.embed_query(query), query_tokens

    def _late_scores(self, query_tokens: Vectors | None, ids: list[str]) -> np.ndarray | None:
        if query_tokens is None or self.tokens is None:
            return None
        have = [i for i in ids if i in self.tokens]
        scores = dict.fromkeys(ids, 0.0)
        if have:
            # the mean over query tokens: on one scale whatever the query's length
            sums = self.tokens.maxsim(query_tokens, have) / max(len(query_tokens), 1)
            scores.update(zip(have, sums.tolist()))
        return np.asarray([scores[i] for i in ids], np.float64)

    @staticmethod
    def _smooth(
        ids: list[str], relevance: np.ndarray, neighbors: dict[str, list[str]], share: float
    ) -> np.ndarray:
        position = {id_: i for i, id_ in enumerate(ids)}
        smoothed: np.ndarray = relevance.copy()
        for i, id_ in enumerate(ids):
            around = [relevance[position[n]] for n in neighbors.get(id_, ()) if n in position]
            if around:
                smoothed[i] = (1 - share) * relevance[i] + share * max(around)
        return smoothed
