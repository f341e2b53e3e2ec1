"""Mango selector matching (syncd.replication.selector) against CouchDB's semantics.

CouchDB's behaviour is the reference (src/mango/src/mango_selector.erl); PouchDB's own matcher
(pouchdb-selector-core) is cross-checked on the subset of selectors where the two agree.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import INTEROP_DIR
from hypothesis import given
from hypothesis import strategies as st

from syncd.replication.selector import (
    MAX_DEPTH,
    MAX_OPERATORS,
    MAX_REGEX_LENGTH,
    TYPE_NAMES,
    SelectorError,
    compile_selector,
)


def matches(selector: Any, doc: dict[str, Any]) -> bool:
    return compile_selector(selector)(doc)


def rejects(selector: Any) -> SelectorError:
    with pytest.raises(SelectorError) as info:
        compile_selector(selector)
    return info.value


# --- fields and paths -----------------------------------------------------------------------


def test_empty_selector_matches_every_document() -> None:
    assert matches({}, {"_id": "x"})


def test_implicit_eq_matches_an_equal_value() -> None:
    assert matches({"a": 1}, {"a": 1})


def test_implicit_eq_rejects_a_different_value() -> None:
    assert not matches({"a": 1}, {"a": 2})


def test_implicit_eq_compares_arrays_whole_not_by_element() -> None:
    assert not matches({"tags": "x"}, {"tags": ["x", "y"]})


def test_several_fields_are_an_implicit_and() -> None:
    selector = {"a": 1, "b": 2}
    assert matches(selector, {"a": 1, "b": 2})
    assert not matches(selector, {"a": 1, "b": 3})


def test_several_operators_on_a_field_are_an_implicit_and() -> None:
    selector = {"a": {"$gt": 1, "$lt": 5}}
    assert matches(selector, {"a": 3})
    assert not matches(selector, {"a": 7})


def test_nested_object_is_a_sub_selector_on_the_nested_field() -> None:
    assert matches({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}})


def test_eq_operator_compares_a_whole_object() -> None:
    assert not matches({"a": {"$eq": {"b": 1}}}, {"a": {"b": 1, "c": 2}})
    assert matches({"a": {"$eq": {"b": 1}}}, {"a": {"b": 1}})


def test_empty_object_as_a_value_means_equal_to_an_empty_object() -> None:
    assert matches({"a": {}}, {"a": {}})
    assert not matches({"a": {}}, {"a": {"b": 1}})


def test_dotted_path_reaches_a_nested_field() -> None:
    assert matches({"a.b.c": 1}, {"a": {"b": {"c": 1}}})


def test_nested_object_and_dotted_path_combine() -> None:
    assert matches({"a": {"b.c": {"$gt": 0}}}, {"a": {"b": {"c": 1}}})


def test_escaped_dot_is_part_of_the_field_name() -> None:
    selector = {"a\\.b": 1}
    assert matches(selector, {"a.b": 1})
    assert not matches(selector, {"a": {"b": 1}})


def test_numeric_path_segment_indexes_an_array() -> None:
    assert matches({"tags.1": "y"}, {"tags": ["x", "y"]})


def test_numeric_path_segment_is_a_key_in_an_object() -> None:
    assert matches({"a.0": 1}, {"a": {"0": 1}})


def test_out_of_range_array_index_matches_nothing() -> None:
    assert not matches({"tags.5": {"$exists": False}}, {"tags": ["x"]})


def test_path_through_a_scalar_matches_nothing_not_even_exists_false() -> None:
    assert not matches({"a.b": {"$exists": False}}, {"a": 5})


def test_field_names_are_pushed_through_combination_operators() -> None:
    selector = {"a": {"$or": [{"b": 1}, {"$eq": 5}]}}
    assert matches(selector, {"a": {"b": 1}})
    assert matches(selector, {"a": 5})
    assert not matches(selector, {"a": {"b": 2}})


def test_bare_values_in_a_combination_mean_eq() -> None:
    selector = {"a": {"$or": [1, 2]}}
    assert matches(selector, {"a": 2})
    assert not matches(selector, {"a": 3})


def test_special_fields_of_the_document_can_be_matched() -> None:
    doc = {"_id": "user:1", "_rev": "1-abc", "_deleted": True}
    assert matches({"_id": {"$beginsWith": "user:"}, "_deleted": True}, doc)


# --- comparison and collation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("$eq", 5, True),
        ("$eq", 6, False),
        ("$ne", 6, True),
        ("$ne", 5, False),
        ("$gt", 4, True),
        ("$gt", 5, False),
        ("$gte", 5, True),
        ("$gte", 6, False),
        ("$lt", 6, True),
        ("$lt", 5, False),
        ("$lte", 5, True),
        ("$lte", 4, False),
    ],
)
def test_comparison_operator_against_the_field_value_5(op: str, value: int, expected: bool) -> None:
    assert matches({"n": {op: value}}, {"n": 5}) is expected


@pytest.mark.parametrize("op", ["$eq", "$gt", "$gte", "$lt", "$lte", "$ne"])
def test_comparison_never_matches_a_missing_field(op: str) -> None:
    assert not matches({"n": {op: 5}}, {"m": 5})


def test_integer_and_float_of_equal_value_are_equal() -> None:
    assert matches({"n": 1}, {"n": 1.0})


def test_a_boolean_is_not_a_number() -> None:
    assert not matches({"n": 1}, {"n": True})
    assert not matches({"n": {"$gte": 0}}, {"n": True})


ORDERED = [
    None,
    False,
    True,
    -5,
    0,
    1.5,
    100,
    "",
    "B",
    "a",
    "ab",
    "b",
    [],
    [1],
    [1, 2],
    [2],
    ["a"],
    {},
    {"a": 1},
    {"a": 2},
    {"a": 2, "b": 0},
    {"b": 0},
]


@pytest.mark.parametrize(("lower", "higher"), list(pairwise(ORDERED)))
def test_values_collate_in_couchdb_order(lower: Any, higher: Any) -> None:
    assert matches({"v": {"$lt": higher}}, {"v": lower})
    assert matches({"v": {"$gt": lower}}, {"v": higher})
    assert not matches({"v": {"$eq": higher}}, {"v": lower})


def test_strings_collate_by_code_point_not_icu() -> None:
    # CouchDB's ICU collation puts "a" before "B"; this implementation does not.
    assert matches({"s": {"$lt": "a"}}, {"s": "B"})


def test_arrays_collate_element_wise_before_length() -> None:
    assert matches({"v": {"$gt": [1, 5, 9]}}, {"v": [2]})


def test_objects_collate_pair_by_pair_in_key_order() -> None:
    assert not matches({"v": {"$eq": {"b": 2, "a": 1}}}, {"v": {"a": 1, "b": 2}})


# --- $in, $nin, $all, $size -----------------------------------------------------------------


def test_in_matches_any_listed_value() -> None:
    assert matches({"a": {"$in": [1, 2]}}, {"a": 2})
    assert not matches({"a": {"$in": [1, 2]}}, {"a": 3})


def test_in_matches_an_array_field_sharing_an_element() -> None:
    assert matches({"tags": {"$in": ["y", "z"]}}, {"tags": ["x", "y"]})


def test_in_with_an_empty_list_matches_nothing() -> None:
    assert not matches({"a": {"$in": []}}, {"a": 1})


def test_nin_rejects_a_listed_value() -> None:
    assert not matches({"a": {"$nin": [1, 2]}}, {"a": 2})
    assert matches({"a": {"$nin": [1, 2]}}, {"a": 3})


def test_nin_matches_an_array_field_with_no_listed_element() -> None:
    assert matches({"tags": {"$nin": ["z"]}}, {"tags": ["x", "y"]})
    assert not matches({"tags": {"$nin": ["y"]}}, {"tags": ["x", "y"]})


def test_nin_never_matches_a_missing_field() -> None:
    assert not matches({"a": {"$nin": [1]}}, {})


def test_nin_with_an_empty_list_matches_any_present_value() -> None:
    assert matches({"a": {"$nin": []}}, {"a": None})


def test_all_requires_every_listed_value_in_any_order() -> None:
    assert matches({"tags": {"$all": ["z", "x"]}}, {"tags": ["x", "y", "z"]})
    assert not matches({"tags": {"$all": ["x", "w"]}}, {"tags": ["x", "y", "z"]})


def test_all_never_matches_a_non_array() -> None:
    assert not matches({"tags": {"$all": ["x"]}}, {"tags": "x"})


def test_all_with_an_empty_list_matches_nothing() -> None:
    assert not matches({"tags": {"$all": []}}, {"tags": []})


def test_all_with_one_array_argument_matches_that_array_itself() -> None:
    assert matches({"tags": {"$all": [["x", "y"]]}}, {"tags": ["x", "y"]})


def test_size_matches_the_array_length() -> None:
    assert matches({"tags": {"$size": 2}}, {"tags": ["x", "y"]})
    assert not matches({"tags": {"$size": 1}}, {"tags": ["x", "y"]})


def test_size_never_matches_a_non_array() -> None:
    assert not matches({"s": {"$size": 2}}, {"s": "ab"})


# --- $exists, $type -------------------------------------------------------------------------


def test_exists_true_matches_a_null_value() -> None:
    assert matches({"a": {"$exists": True}}, {"a": None})


def test_exists_true_rejects_a_missing_field() -> None:
    assert not matches({"a": {"$exists": True}}, {})


def test_exists_false_matches_a_missing_field() -> None:
    assert matches({"a": {"$exists": False}}, {"b": 1})


def test_exists_false_rejects_a_present_field() -> None:
    assert not matches({"a": {"$exists": False}}, {"a": None})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("null", None),
        ("boolean", False),
        ("number", 1.5),
        ("number", 0),
        ("string", ""),
        ("array", []),
        ("object", {}),
    ],
)
def test_type_matches_its_json_type(name: str, value: Any) -> None:
    assert matches({"a": {"$type": name}}, {"a": value})


def test_type_rejects_another_type() -> None:
    assert not matches({"a": {"$type": "number"}}, {"a": True})


def test_type_never_matches_a_missing_field() -> None:
    assert not matches({"a": {"$type": "null"}}, {})


# --- $regex, $beginsWith, $mod --------------------------------------------------------------


def test_regex_searches_anywhere_in_the_string() -> None:
    assert matches({"s": {"$regex": "b+"}}, {"s": "abbc"})
    assert not matches({"s": {"$regex": "^b"}}, {"s": "abbc"})


def test_regex_never_matches_a_non_string() -> None:
    assert not matches({"s": {"$regex": "1"}}, {"s": 1})


def test_begins_with_matches_a_prefix() -> None:
    assert matches({"s": {"$beginsWith": "ab"}}, {"s": "abc"})
    assert not matches({"s": {"$beginsWith": "bc"}}, {"s": "abc"})


def test_begins_with_never_matches_a_non_string() -> None:
    assert not matches({"s": {"$beginsWith": "1"}}, {"s": 12})


def test_mod_matches_the_remainder() -> None:
    assert matches({"n": {"$mod": [3, 1]}}, {"n": 7})
    assert not matches({"n": {"$mod": [3, 2]}}, {"n": 7})


def test_mod_remainder_takes_the_sign_of_the_dividend() -> None:
    assert matches({"n": {"$mod": [3, -1]}}, {"n": -7})
    assert matches({"n": {"$mod": [-3, 1]}}, {"n": 7})


def test_mod_never_matches_a_non_integer() -> None:
    assert not matches({"n": {"$mod": [2, 0]}}, {"n": 4.0})
    assert not matches({"n": {"$mod": [1, 0]}}, {"n": True})


# --- $elemMatch, $allMatch, $keyMapMatch ----------------------------------------------------


def test_elem_match_needs_one_element_meeting_every_condition() -> None:
    selector = {"scores": {"$elemMatch": {"$gte": 80, "$lt": 85}}}
    assert matches(selector, {"scores": [70, 82]})
    assert not matches(selector, {"scores": [70, 90]})


def test_elem_match_applies_fields_to_object_elements() -> None:
    selector = {"items": {"$elemMatch": {"kind": "a", "n": {"$gt": 1}}}}
    assert matches(selector, {"items": [{"kind": "a", "n": 1}, {"kind": "a", "n": 2}]})
    assert not matches(selector, {"items": [{"kind": "a", "n": 1}, {"kind": "b", "n": 2}]})


def test_elem_match_never_matches_an_empty_array_or_a_non_array() -> None:
    assert not matches({"a": {"$elemMatch": {"$gt": 0}}}, {"a": []})
    assert not matches({"a": {"$elemMatch": {"$gt": 0}}}, {"a": 1})


def test_all_match_needs_every_element_to_match() -> None:
    selector = {"a": {"$allMatch": {"$gt": 0}}}
    assert matches(selector, {"a": [1, 2]})
    assert not matches(selector, {"a": [1, 0]})


def test_all_match_never_matches_an_empty_array() -> None:
    assert not matches({"a": {"$allMatch": {"$gt": 0}}}, {"a": []})


def test_key_map_match_needs_one_key_to_match() -> None:
    selector = {"m": {"$keyMapMatch": {"$beginsWith": "x"}}}
    assert matches(selector, {"m": {"a": 1, "xy": 2}})
    assert not matches(selector, {"m": {"a": 1}})


# --- $and, $or, $nor, $not ------------------------------------------------------------------


def test_and_requires_every_clause() -> None:
    selector = {"$and": [{"a": 1}, {"b": {"$gt": 1}}]}
    assert matches(selector, {"a": 1, "b": 2})
    assert not matches(selector, {"a": 1, "b": 1})


def test_or_requires_one_clause() -> None:
    selector = {"$or": [{"a": 1}, {"b": 1}]}
    assert matches(selector, {"b": 1})
    assert not matches(selector, {"a": 2, "b": 2})


def test_empty_and_or_nor_match_everything_as_in_couchdb() -> None:
    for op in ("$and", "$or", "$nor"):
        assert matches({op: []}, {"a": 1})
        assert matches({"$not": {op: []}}, {"a": 1})


def test_nor_matches_when_no_clause_matches() -> None:
    selector = {"$nor": [{"a": 1}, {"b": 1}]}
    assert matches(selector, {"a": 2, "b": 2})
    assert not matches(selector, {"a": 2, "b": 1})


def test_nor_never_matches_a_missing_field() -> None:
    assert not matches({"$nor": [{"a": 1}]}, {})


def test_not_inverts_a_sub_selector() -> None:
    assert matches({"$not": {"a": 1}}, {"a": 2})
    assert not matches({"$not": {"a": 1}}, {"a": 1})


def test_not_on_a_field_inverts_its_condition() -> None:
    assert matches({"a": {"$not": {"$gt": 5}}}, {"a": 5})
    assert not matches({"a": {"$not": {"$gt": 5}}}, {"a": 6})


def test_not_never_matches_a_missing_field() -> None:
    assert not matches({"$not": {"a": 1}}, {})
    assert not matches({"a": {"$not": {"$size": 1}}}, {})


def test_not_of_exists_true_matches_a_missing_field() -> None:
    assert matches({"$not": {"a": {"$exists": True}}}, {})


def test_not_of_or_needs_every_field_present() -> None:
    # CouchDB rewrites it to {"$and": [{"a": {"$ne": 1}}, {"b": {"$ne": 1}}]}.
    assert not matches({"$not": {"$or": [{"a": 1}, {"b": 1}]}}, {"a": 2})
    assert matches({"$not": {"$or": [{"a": 1}, {"b": 1}]}}, {"a": 2, "b": 2})


def test_double_not_cancels_out() -> None:
    assert matches({"$not": {"$not": {"a": 1}}}, {"a": 1})
    assert not matches({"$not": {"$not": {"a": 1}}}, {"a": 2})


def test_not_of_elem_match_inverts_it_on_present_fields() -> None:
    selector = {"$not": {"a": {"$elemMatch": {"$gt": 5}}}}
    assert matches(selector, {"a": [1, 2]})
    assert not matches(selector, {"a": [1, 9]})


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("selector", [None, [], "a", 1, True])
def test_a_non_object_selector_is_rejected(selector: Any) -> None:
    assert "Selector must be a JSON object" in str(rejects(selector))


def test_an_unknown_operator_is_rejected() -> None:
    error = rejects({"a": {"$foo": 1}})
    assert (error.error, str(error)) == ("invalid_operator", "Invalid operator: $foo")


@pytest.mark.parametrize("op", ["$where", "$text", "$near"])
def test_a_known_but_unsupported_operator_is_rejected(op: str) -> None:
    error = rejects({"a": {op: "x"}})
    assert (error.error, str(error)) == ("not_supported", f"Unsupported operator: {op}")


@pytest.mark.parametrize(
    ("op", "arg"),
    [
        ("$in", 1),
        ("$nin", "x"),
        ("$all", {"a": 1}),
        ("$and", {}),
        ("$or", 1),
        ("$nor", None),
        ("$not", []),
        ("$elemMatch", []),
        ("$allMatch", 1),
        ("$keyMapMatch", "x"),
        ("$size", -1),
        ("$size", 1.5),
        ("$size", True),
        ("$size", "2"),
        ("$exists", "yes"),
        ("$exists", 1),
        ("$type", 1),
        ("$type", "date"),
        ("$mod", [2]),
        ("$mod", [0, 1]),
        ("$mod", [2.5, 1]),
        ("$mod", [True, 1]),
        ("$mod", 2),
        ("$regex", 1),
        ("$regex", "("),
        ("$regex", "a" * (MAX_REGEX_LENGTH + 1)),
        ("$beginsWith", 1),
    ],
)
def test_a_bad_operand_is_rejected(op: str, arg: Any) -> None:
    error = rejects({"a": {op: arg}})
    assert error.error == "bad_arg"
    assert str(error).startswith(f"Bad argument for operator {op}: ")


@pytest.mark.parametrize(
    "selector", [{"$gt": 1}, {"$and": [{"$eq": 1}]}, {"$and": [1]}, {"$or": [{}]}, {"": 1}]
)
def test_a_condition_without_a_field_is_rejected(selector: Any) -> None:
    assert str(rejects(selector)) == "One or more conditions is missing a field name."


@pytest.mark.parametrize("field", ["a..b", ".a", "a.", "a\\.b..c"])
def test_a_field_name_with_an_empty_segment_is_rejected(field: str) -> None:
    assert rejects({field: 1}).error == "invalid_field_name"


@pytest.mark.parametrize("value", [(1, 2), {1, 2}, float("nan"), b"x"])
def test_a_value_that_is_not_json_is_rejected(value: Any) -> None:
    rejects({"a": {"$eq": value}})


def test_a_non_string_key_is_rejected() -> None:
    rejects({"a": {1: 2}})


def nested(depth: int) -> dict[str, Any]:
    selector: dict[str, Any] = {"$eq": 1}
    for _ in range(depth - 1):
        selector = {"a": selector}
    return selector


def test_nesting_up_to_the_depth_limit_is_accepted() -> None:
    doc: Any = 1
    for _ in range(MAX_DEPTH - 1):
        doc = {"a": doc}
    assert matches(nested(MAX_DEPTH), doc)


def test_nesting_past_the_depth_limit_is_rejected() -> None:
    assert "nested more than" in str(rejects(nested(MAX_DEPTH + 1)))


def test_a_deeply_nested_operand_is_rejected() -> None:
    value: Any = 1
    for _ in range(10_000):
        value = [value]
    assert "nested more than" in str(rejects({"a": {"$eq": value}}))


def test_too_many_operators_are_rejected() -> None:
    compile_selector({"$or": [{"a": i} for i in range(MAX_OPERATORS // 2)]})
    assert "more than" in str(rejects({"$or": [{"a": i} for i in range(MAX_OPERATORS)]}))


def test_selector_error_is_a_value_error() -> None:
    assert isinstance(rejects({"a": {"$foo": 1}}), ValueError)


# --- properties -----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.text("abAB", max_size=3)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("ab", max_size=2), inner),
    max_leaves=6,
)
conditions = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), json_values),
    st.tuples(st.sampled_from(["$in", "$nin", "$all"]), st.lists(json_values, max_size=3)),
    st.tuples(st.just("$exists"), st.booleans()),
    st.tuples(st.just("$type"), st.sampled_from(sorted(TYPE_NAMES))),
    st.tuples(st.just("$size"), st.integers(0, 3)),
    st.tuples(st.just("$regex"), st.sampled_from(["^a", "b", "", "A$"])),
    st.tuples(st.just("$beginsWith"), st.text("ab", max_size=2)),
    st.tuples(st.just("$mod"), st.tuples(st.integers(1, 3), st.integers(0, 2)).map(list)),
    st.tuples(st.just("$elemMatch"), st.just({"$gt": 0})),
).map(lambda pair: {pair[0]: pair[1]})


@given(conditions, json_values)
def test_not_inverts_any_condition_on_a_present_field(cond: dict[str, Any], value: Any) -> None:
    doc = {"f": value}
    plain = matches({"f": cond}, doc)
    assert matches({"f": {"$not": cond}}, doc) is not plain
    assert matches({"$not": {"f": cond}}, doc) is not plain


@given(conditions)
def test_only_exists_false_matches_a_missing_field(cond: dict[str, Any]) -> None:
    assert matches({"f": cond}, {}) is (cond == {"$exists": False})
    assert matches({"$not": {"f": cond}}, {}) is (cond == {"$exists": True})


@given(json_values, json_values.filter(lambda v: not isinstance(v, list)))
def test_in_with_one_value_is_eq_on_non_array_fields(x: Any, value: Any) -> None:
    doc = {"f": value}
    assert matches({"f": {"$in": [x]}}, doc) is matches({"f": {"$eq": x}}, doc)


@given(json_values, json_values)
def test_exactly_one_of_lt_eq_gt_holds(x: Any, y: Any) -> None:
    doc = {"f": x}
    holds = [matches({"f": {op: y}}, doc) for op in ("$lt", "$eq", "$gt")]
    assert holds.count(True) == 1
    assert matches({"f": {"$gt": x}}, {"f": y}) is holds[0]


@given(conditions, st.sampled_from([{}, {"f": 1}, {"f": [1, "a"]}, {"f": None}]))
def test_nor_of_one_clause_is_not(cond: dict[str, Any], doc: dict[str, Any]) -> None:
    assert matches({"$nor": [{"f": cond}]}, doc) is matches({"$not": {"f": cond}}, doc)


# --- cross-check against PouchDB's matcher --------------------------------------------------

CROSS_CHECK_CASES = 2000
SEED = 20240612
STRINGS = ["", "a", "ab", "b", "B", "ba"]
REGEXES = ["^a", "b$", "a", "^$", "[ab]", "B"]
POUCH_MATCH = """
const { matchesSelector } = require('pouchdb-selector-core');
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(([selector, doc]) => {
    try { return matchesSelector(doc, selector); } catch (e) { return `error: ${e.message}`; }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def _scalar(rng: random.Random, null: bool = False) -> Any:
    # No integral floats (2.0 is an integer to JavaScript) and no null in documents
    # (PouchDB treats a null field as missing for $in, $nin, $mod, $size and $regex).
    number = rng.randint(-3, 3)
    choices = [number, number, number + 0.5, rng.choice(STRINGS), rng.random() < 0.5]
    if null:
        choices.append(None)
    return rng.choice(choices)


def _value(rng: random.Random, null: bool = False) -> Any:
    kind = rng.random()
    if kind < 0.6:
        return _scalar(rng, null)
    if kind < 0.85:
        return [_scalar(rng, null) for _ in range(rng.randint(0, 3))]
    return {key: _scalar(rng, null) for key in rng.sample(["j", "k"], rng.randint(0, 2))}


def _condition(rng: random.Random, field: str) -> dict[str, Any]:
    ops = ["$eq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type", "$size"]
    ops += ["$mod", "$regex", "$all"] + ([] if field == "d" else ["$ne"])
    op = rng.choice(ops)
    arg: Any
    if op in ("$in", "$nin"):
        arg = [_scalar(rng, null=True) for _ in range(rng.randint(0, 3))]
    elif op == "$all":
        arg = [_scalar(rng) for _ in range(rng.randint(1, 2))]
    elif op == "$exists":
        arg = rng.random() < 0.5
    elif op == "$type":
        arg = rng.choice(sorted(TYPE_NAMES))
    elif op == "$size":
        arg = rng.randint(0, 3)
    elif op == "$mod":
        arg = [rng.choice([-3, -2, 1, 2, 3]), rng.randint(-2, 2)]
    elif op == "$regex":
        arg = rng.choice(REGEXES)
    elif op == "$ne":  # PouchDB reads an array operand of $ne as a list of values
        arg = _scalar(rng, null=True)
    else:
        arg = _value(rng, null=True)
    return {op: arg}


def _selector(rng: random.Random, depth: int, negated: bool) -> dict[str, Any]:
    # The subset where CouchDB and PouchDB agree: explicit operators only, $or/$nor/$not at
    # selector level, and no missing field ("d") under a negation or with $ne.
    kind = rng.random() if depth < 3 else 0.0
    if kind < 0.5:
        fields = ["a", "b", "c.x"] + ([] if negated else ["d"])
        picked = rng.sample(fields, rng.randint(1, 2))
        return {field: _condition(rng, field) for field in picked}
    if kind < 0.7:
        return {"$or": [_selector(rng, depth + 1, negated) for _ in range(rng.randint(1, 3))]}
    if kind < 0.85:
        return {"$nor": [_selector(rng, depth + 1, True) for _ in range(rng.randint(1, 3))]}
    return {"$not": _selector(rng, depth + 1, True)}


def random_case(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = {"_id": "doc", "a": _value(rng), "b": _value(rng), "c": {"x": _value(rng)}}
    return _selector(rng, 0, False), doc


@pytest.mark.interop
def test_pouchdb_matcher_agrees_on_random_selectors(node_modules: Path) -> None:
    if not (node_modules / "pouchdb-selector-core").is_dir():
        pytest.skip("pouchdb-selector-core is not among the interop npm packages")
    node = shutil.which("node")
    assert node is not None
    rng = random.Random(SEED)
    cases = [random_case(rng) for _ in range(CROSS_CHECK_CASES)]
    done = subprocess.run(
        [node, "-e", POUCH_MATCH],
        cwd=INTEROP_DIR,
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    theirs = json.loads(done.stdout)
    ours = [matches(selector, doc) for selector, doc in cases]
    differ = [
        f"{json.dumps(sel)} on {json.dumps(doc)}: syncd {o}, pouchdb {t}"
        for (sel, doc), o, t in zip(cases, ours, theirs, strict=True)
        if o != t
    ]
    assert not differ, f"{len(differ)} of {len(cases)} differ:\n" + "\n".join(differ[:10])
    assert 0.2 < sum(ours) / len(ours) < 0.8, "the random cases barely exercise one outcome"
