"""LlamaIndex MetadataFilters translate into ragmem filters with the same matches."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from ragmem.errors import InvalidFilterError
from ragmem.filters import matches
from ragmem.integrations.llamaindex import translate_filters

SAMPLES: dict[str, dict[str, Any]] = {
    "a": {"year": 2021, "tags": ["ml", "nlp"], "lang": "en", "score": 0.5},
    "b": {"year": 2023, "tags": ["cv"], "lang": "de"},
    "c": {"year": 2024.0, "tags": ["ml", "cv"], "lang": "en", "draft": True},
    "d": {"lang": "fr", "tags": []},
}


def _one(key: str, op: FilterOperator, value: Any) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=key, operator=op, value=value)])


def _matching(where: Any) -> list[str]:
    return [i for i, meta in SAMPLES.items() if matches(where, meta)]


CASES = [
    (_one("lang", FilterOperator.EQ, "en"), {"lang": "en"}, ["a", "c"]),
    (_one("year", FilterOperator.EQ, 2024), {"year": 2024}, ["c"]),
    (_one("lang", FilterOperator.NE, "en"), {"lang": {"$ne": "en"}}, ["b", "d"]),
    (_one("year", FilterOperator.NE, 2021), {"year": {"$ne": 2021}}, ["b", "c", "d"]),
    (_one("year", FilterOperator.GT, 2021), {"year": {"$gt": 2021}}, ["b", "c"]),
    (_one("year", FilterOperator.GTE, 2023), {"year": {"$gte": 2023}}, ["b", "c"]),
    (_one("year", FilterOperator.LT, 2023), {"year": {"$lt": 2023}}, ["a"]),
    (_one("year", FilterOperator.LTE, 2023.0), {"year": {"$lte": 2023}}, ["a", "b"]),
    (
        _one("lang", FilterOperator.IN, ["en", "fr"]),
        {"lang": {"$in": ["en", "fr"]}},
        ["a", "c", "d"],
    ),
    (_one("lang", FilterOperator.NIN, ["en", "fr"]), {"lang": {"$nin": ["en", "fr"]}}, ["b"]),
    (_one("tags", FilterOperator.CONTAINS, "ml"), {"tags": {"$contains": "ml"}}, ["a", "c"]),
    (
        _one("tags", FilterOperator.ANY, ["nlp", "cv"]),
        {"tags": {"$in": ["nlp", "cv"]}},
        ["a", "b", "c"],
    ),
    (
        _one("tags", FilterOperator.ALL, ["ml", "cv"]),
        {"$and": [{"tags": {"$contains": "ml"}}, {"tags": {"$contains": "cv"}}]},
        ["c"],
    ),
    (
        MetadataFilters(
            filters=[
                MetadataFilter(key="lang", value="en"),
                MetadataFilters(
                    filters=[
                        MetadataFilter(key="year", operator=FilterOperator.GTE, value=2024),
                        MetadataFilter(key="tags", operator=FilterOperator.CONTAINS, value="nlp"),
                    ],
                    condition=FilterCondition.OR,
                ),
            ],
            condition=FilterCondition.AND,
        ),
        {"lang": "en", "$or": [{"year": {"$gte": 2024}}, {"tags": {"$contains": "nlp"}}]},
        ["a", "c"],
    ),
    (
        MetadataFilters(
            filters=[
                MetadataFilter(key="lang", value="de"),
                MetadataFilter(key="year", operator=FilterOperator.LT, value=2022),
            ],
            condition=FilterCondition.OR,
        ),
        {"$or": [{"lang": "de"}, {"year": {"$lt": 2022}}]},
        ["a", "b"],
    ),
    (
        MetadataFilters(
            filters=[
                MetadataFilter(key="lang", value="en"),
                MetadataFilter(key="year", value=2023),
            ],
            condition=FilterCondition.NOT,
        ),
        {"$not": {"$or": [{"lang": "en"}, {"year": 2023}]}},
        ["d"],
    ),
    (
        MetadataFilters(filters=[MetadataFilter(key="draft", value=1)], condition=None),
        {"draft": 1},
        [],  # bool is not a number in ragmem's filter language
    ),
]


@pytest.mark.parametrize(("llama", "ragmem_dict", "expected"), CASES)
def test_translation_matches_the_equivalent_ragmem_filter(
    llama: MetadataFilters, ragmem_dict: dict[str, Any], expected: list[str]
) -> None:
    tree = translate_filters(llama)
    assert _matching(tree) == _matching(ragmem_dict) == expected


@pytest.mark.parametrize(
    "op",
    [FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE, FilterOperator.IS_EMPTY],
)
def test_operators_without_an_exact_equivalent_raise_naming_the_operator(
    op: FilterOperator,
) -> None:
    with pytest.raises(InvalidFilterError, match=op.value) as info:
        translate_filters(_one("lang", op, "en"))
    assert info.value.operator == op.value
    assert info.value.path == "filters[0]"


@pytest.mark.parametrize(
    ("flt", "operator"),
    [
        (_one("lang", FilterOperator.GT, "en"), ">"),  # ranges compare numbers only
        (_one("tags", FilterOperator.ALL, []), "all"),
        (_one("lang", FilterOperator.EQ, None), "=="),
        (_one("lang", FilterOperator.IN, "en"), "in"),
    ],
)
def test_values_that_do_not_fit_the_operator_raise(flt: MetadataFilters, operator: str) -> None:
    with pytest.raises(InvalidFilterError) as info:
        translate_filters(flt)
    assert info.value.operator == operator


def test_errors_locate_nested_filters() -> None:
    nested = MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="en"),
            _one("lang", FilterOperator.TEXT_MATCH, "e"),
        ]
    )
    with pytest.raises(InvalidFilterError) as info:
        translate_filters(nested)
    assert info.value.path == "filters[1][0]"
