"""LlamaIndex adapters: a ragmem store, retriever and embedder as LlamaIndex components.

Example:
    >>> from llama_index.core import StorageContext, VectorStoreIndex
    >>> from llama_index.core.schema import TextNode
    >>> from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
    >>> from ragmem import HashingEmbedder, LocalVectorStore
    >>> from ragmem.integrations.llamaindex import RagmemLlamaEmbedding, RagmemLlamaVectorStore
    >>> vector_store = RagmemLlamaVectorStore(LocalVectorStore(dimensions=64))
    >>> index = VectorStoreIndex(
    ...     [TextNode(id_="a", text="red apples", metadata={"year": 2024}),
    ...      TextNode(id_="b", text="red cars", metadata={"year": 2020})],
    ...     storage_context=StorageContext.from_defaults(vector_store=vector_store),
    ...     embed_model=RagmemLlamaEmbedding(HashingEmbedder(dimensions=64)),
    ... )
    >>> only_2020 = MetadataFilters(filters=[MetadataFilter(key="year", value=2020)])
    >>> [n.node.node_id for n in index.as_retriever(filters=only_2020).retrieve("apples")]
    ['b']

Metadata filters keep ragmem's semantics (see ``ragmem.filters``): a list-valued field
matches a comparison when any element does, and ``!=`` / ``nin`` match records
without the key. LlamaIndex operators with no exact ragmem equivalent
(``text_match``, ``text_match_insensitive``, ``is_empty``) raise ``InvalidFilterError``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ragmem.errors import InvalidFilterError, InvalidInputError, MissingDependencyError
from ragmem.filters import And, Condition, Filter, FilterLike, Not, Or, matches, parse_filter

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.schema import (
        BaseNode,
        MetadataMode,
        NodeWithScore,
        QueryBundle,
        TextNode,
    )
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import metadata_dict_to_node
    from pydantic import PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="llama-index-core", extra="llamaindex") from exc

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ragmem.embedders.base import Embedder
    from ragmem.retrievers.base import Retriever
    from ragmem.stores.base import VectorStore
    from ragmem.types import Hit, Metadata

__all__ = [
    "RagmemLlamaEmbedding",
    "RagmemLlamaRetriever",
    "RagmemLlamaVectorStore",
    "translate_filters",
]

# Keys LlamaIndex needs to rebuild a node (relationships, node type, source document).
_NODE_CONTENT = "_node_content"
_NODE_TYPE = "_node_type"
_REF_DOC_ID = "ref_doc_id"
_RESERVED = (_NODE_CONTENT, _NODE_TYPE, _REF_DOC_ID)

_SIMPLE_OPS: dict[FilterOperator, str] = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    # "contains any of": a list field holding any value is exactly ragmem's $in on lists.
    FilterOperator.ANY: "$in",
    FilterOperator.CONTAINS: "$contains",
}


# -- filters ----------------------------------------------------------------------------------


def _translate_one(flt: MetadataFilter, path: str) -> Filter:
    op = flt.operator
    if op == FilterOperator.ALL:
        values = flt.value
        if not isinstance(values, list) or not values:
            raise InvalidFilterError("expects a non-empty list", operator=op.value, path=path)
        return And(filters=tuple(_condition(flt.key, "$contains", v, op, path) for v in values))
    ragmem_op = _SIMPLE_OPS.get(op)
    if ragmem_op is None:
        raise InvalidFilterError(
            "has no exact equivalent in ragmem's filter language", operator=op.value, path=path
        )
    return _condition(flt.key, ragmem_op, flt.value, op, path)


def _condition(key: str, ragmem_op: str, value: Any, op: FilterOperator, path: str) -> Condition:
    try:
        node = parse_filter({key: {ragmem_op: value}})
    except InvalidFilterError as exc:
        # Name the operator the caller wrote, not the ragmem one it maps to.
        raise InvalidFilterError(str(exc), operator=op.value, path=path) from exc
    assert isinstance(node, Condition)
    return node


def translate_filters(filters: MetadataFilters, *, path: str = "filters") -> Filter:
    """Translate LlamaIndex ``MetadataFilters`` into ragmem's filter tree.

    ``AND`` and ``OR`` combine the filters; ``NOT`` matches records that match none
    of them (like Qdrant's ``must_not``). Nested ``MetadataFilters`` nest.

    Raises:
        InvalidFilterError: an operator has no exact ragmem equivalent, or a value does
            not fit its operator; the message names the LlamaIndex operator and path.
    """
    parts: list[Filter] = []
    for i, flt in enumerate(filters.filters):
        here = f"{path}[{i}]"
        if isinstance(flt, MetadataFilters):
            parts.append(translate_filters(flt, path=here))
        else:
            parts.append(_translate_one(flt, here))
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return parts[0] if len(parts) == 1 else And(filters=tuple(parts))
    if condition == FilterCondition.OR:
        return parts[0] if len(parts) == 1 else Or(filters=tuple(parts))
    if condition == FilterCondition.NOT:
        return Not(filter=parts[0] if len(parts) == 1 else Or(filters=tuple(parts)))
    raise InvalidFilterError("unknown condition", operator=str(condition), path=path)


def _where(filters: MetadataFilters | FilterLike | None) -> Filter | None:
    if isinstance(filters, MetadataFilters):
        return translate_filters(filters)
    return parse_filter(filters)


def _nodes_where(node_ids: list[str] | None, filters: MetadataFilters | None) -> Filter | None:
    if node_ids is not None and filters is not None:
        raise InvalidInputError("delete_nodes takes node_ids or filters, not both")
    return None if filters is None else translate_filters(filters)


# -- nodes ------------------------------------------------------------------------------------


def _node_metadata(node: BaseNode) -> dict[str, Any]:
    user: dict[str, Any] = dict(node.metadata)
    clash = sorted(k for k in _RESERVED if k in user)
    if clash:
        raise InvalidInputError(
            f"node {node.node_id!r} metadata uses reserved keys {clash} (LlamaIndex's own)"
        )
    node_dict = node.model_dump(mode="json")
    node_dict["text"] = ""  # the text is stored once, as the record's text
    node_dict["embedding"] = None
    user[_NODE_CONTENT] = json.dumps(node_dict)
    user[_NODE_TYPE] = node.class_name()
    if node.ref_doc_id is not None:
        user[_REF_DOC_ID] = node.ref_doc_id
    return user  # the ragmem store validates it on upsert


def _to_node(id_: str, text: str | None, metadata: Metadata) -> BaseNode:
    if _NODE_CONTENT in metadata:
        return metadata_dict_to_node(dict(metadata), text=text or "")
    # Written by ragmem itself (not through this adapter): a plain text node.
    return TextNode(id_=id_, text=text or "", metadata=dict(metadata))


def _to_result(hits: list[Hit]) -> VectorStoreQueryResult:
    return VectorStoreQueryResult(
        nodes=[_to_node(h.id, h.text, h.metadata) for h in hits],
        similarities=[h.score for h in hits],
        ids=[h.id for h in hits],
    )


# -- vector store -----------------------------------------------------------------------------


class RagmemLlamaVectorStore(BasePydanticVectorStore):
    """Any ragmem ``VectorStore`` as a LlamaIndex vector store (``stores_text=True``).

    Nodes are stored under their ``node_id`` with their text, their metadata
    (validated by ragmem: flat str/int/float/bool values or lists of those), and
    the fields LlamaIndex needs to rebuild them (``_node_content``, ``_node_type``,
    ``ref_doc_id``), so ``delete(ref_doc_id)`` and ``VectorStoreIndex`` work as usual.

    Args:
        store: the ragmem store; its ``dimensions`` must match the embed model.

    Example:
        >>> from ragmem import LocalVectorStore
        >>> RagmemLlamaVectorStore(LocalVectorStore(dimensions=8)).stores_text
        True
    """

    stores_text: bool = True
    is_embedding_query: bool = True
    flat_metadata: bool = True

    _store: VectorStore = PrivateAttr()

    def __init__(self, store: VectorStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = store

    @classmethod
    def class_name(cls) -> str:
        """Name LlamaIndex records for serialisation."""
        return "RagmemLlamaVectorStore"

    @property
    def client(self) -> VectorStore:
        """The wrapped ragmem store."""
        return self._store

    @property
    def store(self) -> VectorStore:
        """The wrapped ragmem store."""
        return self._store

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Insert or replace nodes (each needs an embedding); returns their ids."""
        args = self._upsert_args(nodes)
        if args[0]:
            self._store.upsert(*args)
        return args[0]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Async twin of ``add``."""
        args = self._upsert_args(nodes)
        if args[0]:
            await self._store.upsert_async(*args)
        return args[0]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document ``ref_doc_id``."""
        self._store.delete(where={_REF_DOC_ID: ref_doc_id})

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Async twin of ``delete``."""
        await self._store.delete_async(where={_REF_DOC_ID: ref_doc_id})

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete nodes by id, or every node matching ``filters`` (exactly one)."""
        self._store.delete(node_ids, where=_nodes_where(node_ids, filters))

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Async twin of ``delete_nodes``."""
        await self._store.delete_async(node_ids, where=_nodes_where(node_ids, filters))

    def clear(self) -> None:
        """Delete every node."""
        self._store.delete(where=And(filters=()))

    async def aclear(self) -> None:
        """Async twin of ``clear``."""
        await self._store.delete_async(where=And(filters=()))

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """Fetch nodes by id (ragmem stores are not enumerable by filter alone)."""
        if node_ids is None:
            raise InvalidInputError("get_nodes needs node_ids")
        where = None if filters is None else translate_filters(filters)
        return [
            _to_node(r.id, r.text, r.metadata)
            for r in self._store.get(node_ids)
            if matches(where, r.metadata)
        ]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest ``query.query_embedding`` within its filters."""
        vector, k, where = self._query_args(query)
        return _to_result(self._store.search(vector, k, where=where)[0])

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Async twin of ``query``."""
        vector, k, where = self._query_args(query)
        return _to_result((await self._store.search_async(vector, k, where=where))[0])

    @staticmethod
    def _upsert_args(
        nodes: Sequence[BaseNode],
    ) -> tuple[list[str], list[list[float]], list[str | None], list[Metadata]]:
        ids: list[str] = []
        vectors: list[list[float]] = []
        texts: list[str | None] = []
        metadata: list[Metadata] = []
        for node in nodes:
            if node.embedding is None:
                raise InvalidInputError(f"node {node.node_id!r} has no embedding")
            ids.append(node.node_id)
            vectors.append(node.embedding)
            texts.append(node.get_content(metadata_mode=MetadataMode.NONE))
            metadata.append(_node_metadata(node))
        return ids, vectors, texts, metadata

    @staticmethod
    def _query_args(query: VectorStoreQuery) -> tuple[list[float], int, Filter | None]:
        if query.mode != VectorStoreQueryMode.DEFAULT:
            mode = getattr(query.mode, "value", query.mode)  # a plain string is accepted too
            raise InvalidInputError(f"query mode {mode!r} is not supported (only 'default')")
        if query.query_embedding is None:
            raise InvalidInputError("the query has no query_embedding")
        # VectorStoreIndex passes an empty list for stores that keep the text (as other
        # LlamaIndex stores do, empty means no restriction); ids are not filterable here.
        if query.node_ids:
            raise InvalidInputError("node_ids restrictions are not supported; use filters")
        parts: list[Filter] = []
        if query.filters is not None:
            parts.append(translate_filters(query.filters))
        if query.doc_ids is not None:
            parts.append(Condition(field=_REF_DOC_ID, op="$in", value=tuple(query.doc_ids)))
        where = None if not parts else parts[0] if len(parts) == 1 else And(filters=tuple(parts))
        return list(query.query_embedding), query.similarity_top_k, where


# -- retriever and embedding ------------------------------------------------------------------


class RagmemLlamaRetriever(BaseRetriever):
    """Any ragmem ``Retriever`` (dense, BM25, hybrid, reranked) as a LlamaIndex retriever.

    Args:
        retriever: the ragmem retriever.
        k: how many nodes to return.
        filters: a fixed filter, as LlamaIndex ``MetadataFilters`` or a ragmem filter.
    """

    def __init__(
        self,
        retriever: Retriever,
        k: int = 10,
        *,
        filters: MetadataFilters | FilterLike | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        super().__init__(**kwargs)
        self.ragmem_retriever = retriever
        self.k = k
        self.where = _where(filters)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.ragmem_retriever.retrieve(query_bundle.query_str, self.k, where=self.where)
        return [NodeWithScore(node=_to_node(h.id, h.text, h.metadata), score=h.score) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.ragmem_retriever.retrieve_async(
            query_bundle.query_str, self.k, where=self.where
        )
        return [NodeWithScore(node=_to_node(h.id, h.text, h.metadata), score=h.score) for h in hits]


class RagmemLlamaEmbedding(BaseEmbedding):
    """Any ragmem ``Embedder`` as a LlamaIndex embed model (queries use ``purpose="query"``).

    Args:
        embedder: the ragmem embedder.
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", f"ragmem:{embedder.name}")
        kwargs.setdefault("embed_batch_size", max(1, min(embedder.batch_size, 2048)))
        super().__init__(**kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        """Name LlamaIndex records for serialisation."""
        return "RagmemLlamaEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed([query], purpose="query")[0]]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        vectors = await self._embedder.embed_async([query], purpose="query")
        return [float(x) for x in vectors[0]]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, row)) for row in self._embedder.embed(texts)]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, row)) for row in await self._embedder.embed_async(texts)]
