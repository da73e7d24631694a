"""The filter language: parsing, validation, and vectorised evaluation equal to the reference."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragmem import InvalidFilterError
from ragmem.filters import And, Condition, F, Filter, Not, Or, matches, parse_filter, to_dict
from ragmem.filters.columns import MetadataColumns
from ragmem.types import Metadata

KEYS = ["a", "b", "c"]
scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, 2.0, -1.5]),
    st.sampled_from(["x", "y", "1", "", "xy", "yx"]),
    st.booleans(),
    # ints that float64 rounds to the same value as each other and as the float
    st.sampled_from([2**60, 2**60 + 1, float(2**60), -(2**60) - 1]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))
metadatas = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)
numbers = st.one_of(
    st.integers(-3, 3), st.sampled_from([0.5, 1.0, -1.5, 2**60, 2**60 + 1, float(2**60)])
)
conditions = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(KEYS), scalars),
    st.builds(
        lambda k, op, v: {k: {op: v}},
        st.sampled_from(KEYS),
        st.sampled_from(["$eq", "$ne", "$contains"]),
        scalars,
    ),
    st.builds(
        lambda k, op, v: {k: {op: v}},
        st.sampled_from(KEYS),
        st.sampled_from(["$lt", "$lte", "$gt", "$gte"]),
        numbers,
    ),
    st.builds(
        lambda k, op, v: {k: {op: v}},
        st.sampled_from(KEYS),
        st.sampled_from(["$in", "$nin"]),
        st.lists(scalars, max_size=3),
    ),
    st.builds(lambda k, v: {k: {"$exists": v}}, st.sampled_from(KEYS), st.booleans()),
    st.builds(
        lambda k, v: {k: {"$prefix": v}},
        st.sampled_from(KEYS),
        st.sampled_from(["x", "y", "", "xy", "1"]),
    ),
)
filters = st.recursive(
    conditions,
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
        st.builds(lambda f, g: {**f, **g}, inner, inner),  # several keys in one dict: AND
    ),
    max_leaves=6,
)
# writes: set a row's metadata, or clear it (as a delete does)
writes = st.lists(
    st.tuples(st.integers(0, 11), st.one_of(st.none(), metadatas)), min_size=1, max_size=30
)


@settings(max_examples=400, deadline=None)
@given(writes, st.lists(filters, min_size=1, max_size=4), st.integers(0, 4))
def test_columns_evaluate_like_matches(ops, wheres, extra_rows):
    columns = MetadataColumns()
    current: dict[int, Metadata] = {}
    for row, meta in ops:
        if meta is None:
            columns.clear(row)
            current.pop(row, None)
        else:
            columns.set(row, meta)
            current[row] = meta
    n_rows = max(current, default=0) + 1 + extra_rows  # rows never written have no metadata
    for where in wheres:
        tree = parse_filter(where)
        assert tree is not None
        got = columns.evaluate(tree, n_rows).tolist()
        want = [matches(tree, current.get(row, {})) for row in range(n_rows)]
        assert got == want, where


@settings(max_examples=200, deadline=None)
@given(filters)
def test_dict_form_round_trips(where):
    tree = parse_filter(where)
    assert tree is not None
    assert parse_filter(to_dict(tree)) == tree


def test_builder_and_dict_forms_parse_to_the_same_tree():
    built = (F("year") >= 2023) & F("tag").isin(["a", "b"]) & ~F("draft").exists()
    spelled = {
        "$and": [
            {"year": {"$gte": 2023}},
            {"tag": {"$in": ["a", "b"]}},
            {"$not": {"draft": {"$exists": True}}},
        ]
    }
    assert parse_filter(spelled) == built
    assert parse_filter({"year": {"$gte": 2023}, "tag": {"$in": ["a", "b"]}}) == And(
        filters=(
            Condition(field="year", op="$gte", value=2023),
            Condition(field="tag", op="$in", value=("a", "b")),
        )
    )
    assert (F("a") == 1) | (F("b") != "x") == Or(
        filters=(
            Condition(field="a", op="$eq", value=1),
            Condition(field="b", op="$ne", value="x"),
        )
    )
    assert F("t").contains("x") == parse_filter({"t": {"$contains": "x"}})
    assert F("t").notin([1]) == parse_filter({"t": {"$nin": [1]}})
    assert ~F("x").exists(False) == Not(filter=Condition(field="x", op="$exists", value=False))
    assert parse_filter(None) is None


@pytest.mark.parametrize(
    ("where", "operator", "path"),
    [
        ({"a": {"$regex": "x"}}, "$regex", "a.$regex"),
        ({"$nor": []}, "$nor", "$nor"),
        ({"a": {"$gt": "text"}}, "$gt", "a.$gt"),
        ({"a": {"$lte": True}}, "$lte", "a.$lte"),
        ({"a": {"$in": "abc"}}, "$in", "a.$in"),
        ({"a": {"$nin": [1, None]}}, "$nin", "a.$nin"),
        ({"a": {"$exists": 1}}, "$exists", "a.$exists"),
        ({"a": {"$eq": None}}, "$eq", "a.$eq"),
        ({"a": None}, "$eq", "a"),
        ({"a": {"$eq": [1, 2]}}, "$eq", "a.$eq"),
        ({"a": {"$eq": float("nan")}}, "$eq", "a.$eq"),
        ({"$and": {"a": 1}}, "$and", "$and"),
        ({"$or": [{"a": 1}, {"b": {"$bad": 1}}]}, "$bad", "$or[1].b.$bad"),
        ({"$not": {"$and": [{"x": {"$gte": "no"}}]}}, "$gte", "$not.$and[0].x.$gte"),
    ],
)
def test_invalid_dict_filters_name_operator_and_path(where, operator, path):
    with pytest.raises(InvalidFilterError) as info:
        parse_filter(where)
    assert info.value.operator == operator
    assert info.value.path == path
    assert operator in str(info.value)
    assert path in str(info.value)


@pytest.mark.parametrize(
    ("build", "operator"),
    [
        (lambda: F("a") > "x", "$gt"),  # type: ignore[operator]
        (lambda: F("a") < None, "$lt"),  # type: ignore[operator]
        (lambda: F("a").isin("abc"), "$in"),
        (lambda: F("a").contains({"x": 1}), "$contains"),  # type: ignore[arg-type]
        (lambda: F("a") == float("inf"), "$eq"),
        (lambda: F("a").exists("yes"), "$exists"),  # type: ignore[arg-type]
    ],
)
def test_invalid_builder_filters_name_the_operator(build, operator):
    with pytest.raises(InvalidFilterError) as info:
        build()
    assert info.value.operator == operator


@pytest.mark.parametrize("where", [[], "a", 3, {"": 1}, {"$and": [5]}, {"a": {}}])
def test_malformed_filters_are_rejected(where):
    with pytest.raises(InvalidFilterError):
        parse_filter(where)


def test_documented_semantics():
    assert matches({"n": 1}, {"n": 1.0})
    assert not matches({"n": 1}, {"n": True})
    assert not matches({"n": "1"}, {"n": 1})
    assert matches({"tags": "a"}, {"tags": ["b", "a"]})
    assert matches({"tags": {"$gt": 2}}, {"tags": [1, 3]})
    assert not matches({"missing": {"$gt": 0}}, {})
    assert matches({"missing": {"$ne": 0}}, {})
    assert matches({"missing": {"$nin": [0]}}, {})
    assert matches({"t": {"$exists": True}}, {"t": []})
    assert matches({"$and": []}, {})
    assert not matches({"$or": []}, {})


@pytest.mark.parametrize(
    "build",
    [
        lambda: (F("year") >= 2023) and (F("year") < 2030),
        lambda: (F("year") >= 2023) or (F("year") < 2030),
        lambda: not (F("year") >= 2023),
        lambda: 2023 <= F("year") <= 2030,
        lambda: bool(F("year")),
    ],
)
def test_python_boolean_operators_refuse_instead_of_dropping_a_condition(build):
    with pytest.raises(TypeError, match=r"&.*\|.*~"):
        build()


def test_contains_on_a_string_is_substring_and_on_a_list_is_membership():
    assert matches({"path": {"$contains": "backup"}}, {"path": "guides/backup.md"})
    assert not matches({"path": {"$contains": "vpn"}}, {"path": "guides/backup.md"})
    assert matches({"tags": {"$contains": "ml"}}, {"tags": ["ml", "nlp"]})
    assert not matches({"tags": {"$contains": "m"}}, {"tags": ["ml", "nlp"]})
    assert matches(F("n").contains(3), {"n": 3})


def test_prefix_scopes_to_a_folder():
    where = F("path").startswith("guides/")
    assert matches(where, {"path": "guides/backup.md"})
    assert not matches(where, {"path": "notes/guides/faq.rst"})
    assert matches(where, {"path": ["notes/a", "guides/b"]})
    assert not matches(where, {"path": 7})
    assert to_dict(where) == {"path": {"$prefix": "guides/"}}
    with pytest.raises(InvalidFilterError, match=r"\$prefix"):
        parse_filter({"path": {"$prefix": 3}})


def test_integers_beyond_2_pow_53_compare_exactly_in_columns():
    big = 1_700_000_000_000_000_000
    metas: list[Metadata] = [{"ts": big}, {"ts": big + 1}, {"ts": float(big)}, {"ts": [big + 1, 5]}]
    columns = MetadataColumns.of_rows(metas)
    for where in (
        {"ts": big},
        {"ts": big + 1},
        {"ts": {"$gt": big}},
        {"ts": {"$lte": big}},
        {"ts": {"$in": [big + 1]}},
        {"ts": {"$nin": [big]}},
        {"ts": {"$lt": float(big)}},
    ):
        want = [matches(where, m) for m in metas]
        tree = parse_filter(where)
        assert tree is not None
        assert columns.evaluate(tree, len(metas)).tolist() == want, where
    assert [matches({"ts": big}, m) for m in metas] == [True, False, True, False]


def test_deeply_nested_filters_are_refused_not_recursed():
    deep: dict[str, Any] = {"a": 1}
    for _ in range(3000):
        deep = {"$not": deep}
    with pytest.raises(InvalidFilterError, match="deeper"):
        parse_filter(deep)
    tree: Filter = F("a") == 1
    for _ in range(3000):
        tree = ~tree
    with pytest.raises(InvalidFilterError, match="deeper"):
        matches(tree, {"a": 1})
    shallow: dict[str, Any] = {"a": 1}
    for _ in range(50):
        shallow = {"$not": shallow}
    assert matches(shallow, {"a": 1})
