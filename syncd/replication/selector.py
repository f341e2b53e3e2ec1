"""Mango selectors (the query language of CouchDB's ``/{db}/_find``) as document predicates.

Used by ``_changes?filter=_selector``. Pure: no I/O. ``compile_selector`` validates a selector
once and returns a predicate over a whole JSON document (``_id``, ``_rev``, ``_deleted``
included).

Supported:

* combination operators ``$and $or $not $nor $all $elemMatch $allMatch $keyMapMatch``;
* condition operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists $type $size $mod $regex
  $beginsWith``;
* implicit ``$eq`` (``{"a": 1}``) and implicit ``$and`` (several keys), nested objects as
  sub-selectors (``{"a": {"b": 1}}`` is ``{"a.b": 1}``), dotted paths with ``\\.`` escaping a
  literal dot, and numeric path segments indexing arrays (``"tags.0"``).

Semantics follow CouchDB's ``mango_selector.erl``, which pushes ``$not``/``$nor`` down to the
leaves (De Morgan) before matching. Hence a missing field matches nothing except
``$exists: false``: not ``$ne``, not ``$nin``, not ``{"$not": {"a": 1}}``. A path through a
non-container (``a.b`` where ``a`` is 5) matches nothing at all. Empty ``$and``/``$or``/``$nor``
match everything, ``$all: []`` matches nothing, ``$in``/``$nin`` on an array field test its
elements, and values compare in CouchDB's collation order:
null < false < true < numbers < strings < arrays < objects; arrays element-wise, then by
length; objects key, then value, pair by pair in document order, then by size.

Deliberate differences from CouchDB:

* strings compare by Unicode code point. CouchDB uses ICU collation (``"a" < "B"`` there, the
  reverse here); for ``_id`` CouchDB compares raw bytes, which is the same as code points.
* ``$regex`` is Python's ``re.search``, not PCRE (the common syntax is shared); patterns are
  capped at ``MAX_REGEX_LENGTH`` characters, which limits, but cannot rule out, slow patterns.
* validation is stricter: an unknown ``$type`` name, a ``$mod`` divisor of 0, a condition with
  no field outside ``$elemMatch``/``$allMatch``/``$keyMapMatch`` (such as ``{"$and": [{}]}``),
  more than ``MAX_DEPTH`` levels of nesting or more than ``MAX_OPERATORS`` operators are errors.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

MAX_DEPTH: Final = 64
MAX_OPERATORS: Final = 1000
MAX_REGEX_LENGTH: Final = 1000

Predicate = Callable[[Any], bool]
Path = tuple[tuple[str, int | None], ...]  # (object key, the key as an array index or None)

TYPE_NAMES: Final = frozenset({"null", "boolean", "number", "string", "array", "object"})
_UNSUPPORTED: Final = frozenset(
    {"$text", "$default", "$where", "$geoWithin", "$geoIntersects", "$near", "$nearSphere"}
)
_COMBINATIONS: Final = frozenset(
    {"$and", "$or", "$nor", "$not", "$elemMatch", "$allMatch", "$keyMapMatch"}
)
_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")
_ARRAY_INDEX = re.compile(r"[+-]?[0-9]+")
_MISSING: Final = object()  # the path ends at an object without that key
_BAD_PATH: Final = object()  # the path runs into a scalar, or into an array with a bad index


class SelectorError(ValueError):
    """An invalid selector. ``str(exc)`` is the reason for the 400; ``error`` is CouchDB's
    error name (``bad_arg``, ``invalid_operator``, ``not_supported``, ``invalid_selector``...).
    """

    def __init__(self, reason: str, error: str = "invalid_selector") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


def compile_selector(selector: object) -> Callable[[dict[str, Any]], bool]:
    """Validate ``selector`` and return a predicate telling whether a document matches it.

    Raises ``SelectorError`` for anything CouchDB would answer with a 400 (and a little more,
    see the module docstring).
    """
    if not isinstance(selector, dict):
        raise SelectorError(
            f"Selector must be a JSON object, not: {_show(selector)}", "invalid_selector_json"
        )
    _check_shape(selector)
    if not selector:
        return _always
    return _Compiler().selector(selector, (), False, False)


# --- collation ------------------------------------------------------------------------------


def _rank(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, bool):
        return 2 if v else 1
    if isinstance(v, int | float):
        return 3
    if isinstance(v, str):
        return 4
    if isinstance(v, list):
        return 5
    if isinstance(v, dict):
        return 6
    raise TypeError(f"not a JSON value: {type(v).__name__}")


def _collate(a: Any, b: Any) -> int:
    """-1, 0 or 1: the order of two JSON values in CouchDB's collation (see module docstring)."""
    kind = type(a)
    if kind is type(b) and (kind is str or kind is int or kind is float):  # the common case
        return int(a > b) - int(a < b)
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 5:
        for x, y in zip(a, b, strict=False):
            if c := _collate(x, y):
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 6:
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=False):
            if c := _collate(ka, kb) or _collate(va, vb):
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra <= 2:  # null, false, true: the rank is the value
        return 0
    return int(a > b) - int(a < b)


def _type_name(v: Any) -> str:
    return ("null", "boolean", "boolean", "number", "string", "array", "object")[_rank(v)]


# --- validation helpers ---------------------------------------------------------------------


def _show(v: Any) -> str:
    try:
        text = json.dumps(v, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad_arg(op: str, arg: Any, expected: str) -> SelectorError:
    return SelectorError(f"Bad argument for operator {op}: {_show(arg)} ({expected})", "bad_arg")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_shape(selector: dict[str, Any]) -> None:
    """Reject nesting deeper than ``MAX_DEPTH`` and anything that is not JSON, iteratively,
    so that a hostile selector cannot exhaust the stack before it is refused."""
    stack: list[tuple[Any, int]] = [(selector, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise SelectorError(f"Selector is nested more than {MAX_DEPTH} levels deep.")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise SelectorError(f"Selector has a non-string key: {key!r}")
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise SelectorError(f"Selector contains a number JSON cannot hold: {value!r}")
        elif value is not None and not isinstance(value, str | int | float):
            raise SelectorError(f"Selector contains a value that is not JSON: {value!r}")


def _parse_field(name: str) -> Path:
    """``"a.b\\.c.0"`` -> ``(("a", None), ("b.c", None), ("0", 0))``."""
    if name == "":
        raise SelectorError("One or more conditions is missing a field name.")
    parts = _UNESCAPED_DOT.split(name)
    if "" in parts:
        raise SelectorError(f"Invalid field name: {name}", "invalid_field_name")
    keys = [part.replace("\\", "") for part in parts]
    return tuple((k, int(k) if _ARRAY_INDEX.fullmatch(k) else None) for k in keys)


# --- matching -------------------------------------------------------------------------------


def _always(_value: Any) -> bool:
    return True


def _lookup(value: Any, path: Path) -> Any:
    """The value at ``path``, ``_MISSING`` or ``_BAD_PATH``, like ``mango_doc:get_field``."""
    for key, index in path:
        if isinstance(value, dict):
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif isinstance(value, list) and index is not None and 0 <= index < len(value):
            value = value[index]
        else:
            return _BAD_PATH
    return value


def _rem(a: int, b: int) -> int:
    """Erlang's ``rem`` (the sign of the dividend), also JavaScript's ``%``."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _contains(values: list[Any], wanted: Any) -> bool:
    return any(_collate(v, wanted) == 0 for v in values)


def _in(args: list[Any]) -> Predicate:
    def test(v: Any) -> bool:
        if isinstance(v, list):
            return any(_contains(v, a) for a in args)
        return _contains(args, v)

    return test


def _all(args: list[Any]) -> Predicate:
    whole = args[0] if len(args) == 1 and isinstance(args[0], list) else None

    def test(v: Any) -> bool:
        if not args or not isinstance(v, list):
            return False
        if whole is not None and _collate(whole, v) == 0:
            return True  # CouchDB: {"$all": [[1, 2]]} also matches the array [1, 2] itself
        return all(_contains(v, a) for a in args)

    return test


def _members(op: str, inner: Predicate) -> Predicate:
    """``$elemMatch``: some element matches; ``$allMatch``: a non-empty array whose elements all
    match; ``$keyMapMatch``: some key of an object matches."""
    if op == "$elemMatch":
        return lambda v: isinstance(v, list) and any(map(inner, v))
    if op == "$allMatch":
        return lambda v: isinstance(v, list) and bool(v) and all(map(inner, v))
    return lambda v: isinstance(v, dict) and any(map(inner, v))


_COMPARISONS: Final[dict[str, Callable[[int], bool]]] = {
    "$eq": lambda c: c == 0,
    "$ne": lambda c: c != 0,
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
}


def _condition(op: str, arg: Any) -> Predicate | None:
    """The test of condition operator ``op`` on a present value; None if ``op`` is not one."""
    if op in _COMPARISONS:
        holds = _COMPARISONS[op]
        return lambda v: holds(_collate(v, arg))
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise _bad_arg(op, arg, "expected an array")
        test = _in(arg)
        return test if op == "$in" else lambda v: not test(v)
    if op == "$all":
        if not isinstance(arg, list):
            raise _bad_arg(op, arg, "expected an array")
        return _all(arg)
    if op == "$exists":
        if not isinstance(arg, bool):
            raise _bad_arg(op, arg, "expected true or false")
        return lambda v: arg
    if op == "$type":
        if arg not in TYPE_NAMES:
            raise _bad_arg(op, arg, "expected one of " + ", ".join(sorted(TYPE_NAMES)))
        return lambda v: _type_name(v) == arg
    if op == "$size":
        if not _is_int(arg) or arg < 0:
            raise _bad_arg(op, arg, "expected a non-negative integer")
        return lambda v: isinstance(v, list) and len(v) == arg
    if op == "$mod":
        if not (isinstance(arg, list) and len(arg) == 2 and all(map(_is_int, arg)) and arg[0]):
            raise _bad_arg(op, arg, "expected [divisor, remainder], integers, divisor not 0")
        divisor, remainder = arg
        return lambda v: _is_int(v) and _rem(v, divisor) == remainder
    if op == "$regex":
        if not isinstance(arg, str):
            raise _bad_arg(op, arg, "expected a string")
        if len(arg) > MAX_REGEX_LENGTH:
            raise _bad_arg(op, arg, f"longer than {MAX_REGEX_LENGTH} characters")
        try:
            pattern = re.compile(arg)
        except (re.error, OverflowError, RecursionError) as exc:
            raise _bad_arg(op, arg, f"invalid pattern: {exc}") from None
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op == "$beginsWith":
        if not isinstance(arg, str):
            raise _bad_arg(op, arg, "expected a string")
        return lambda v: isinstance(v, str) and v.startswith(arg)
    return None


class _Compiler:
    """Builds predicates from a selector whose shape ``_check_shape`` has already vetted.

    Every builder takes the field ``path`` reached so far, ``negated`` (an odd number of
    ``$not``/``$nor`` above: CouchDB pushes negation down to the leaves) and ``nested`` (inside
    an ``$elemMatch``/``$allMatch``/``$keyMapMatch``, where a condition may test the element
    itself).
    """

    def __init__(self) -> None:
        self.operators = 0

    def count(self) -> None:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise SelectorError(f"Selector has more than {MAX_OPERATORS} operators.")

    def value(self, value: Any, path: Path, negated: bool, nested: bool) -> Predicate:
        """A selector position: an object is a sub-selector, any other value means ``$eq``."""
        if isinstance(value, dict):
            return self.selector(value, path, negated, nested)
        return self.leaf("$eq", value, path, negated, nested)

    def selector(self, sel: dict[str, Any], path: Path, negated: bool, nested: bool) -> Predicate:
        if not sel:  # as in CouchDB, {} below the top means "equals {}"
            return self.leaf("$eq", {}, path, negated, nested)
        if len(sel) > 1:  # implicit $and
            self.count()
            parts = [self.selector({k: v}, path, negated, nested) for k, v in sel.items()]
            return _any(parts) if negated else _every(parts)
        ((key, arg),) = sel.items()
        if not key.startswith("$"):
            return self.value(arg, path + _parse_field(key), negated, nested)
        if key not in _COMBINATIONS:
            return self.leaf(key, arg, path, negated, nested)
        self.count()
        if key in ("$and", "$or", "$nor"):
            if not isinstance(arg, list):
                raise _bad_arg(key, arg, "expected an array")
            # $nor is $and over negated clauses; De Morgan turns $and into $or when negated.
            parts = [self.value(a, path, negated != (key == "$nor"), nested) for a in arg]
            return _every(parts) if (key == "$or") == negated else _any(parts)
        if key == "$not":
            if not isinstance(arg, dict):
                raise _bad_arg(key, arg, "expected an object")
            return self.selector(arg, path, not negated, nested)
        if not isinstance(arg, dict):  # $elemMatch, $allMatch, $keyMapMatch
            raise _bad_arg(key, arg, "expected an object")
        inner = self.selector(arg, (), False, True)
        return self.at(path, _members(key, inner), negated, nested, False)

    def leaf(self, op: str, arg: Any, path: Path, negated: bool, nested: bool) -> Predicate:
        self.count()
        test = _condition(op, arg)
        if test is None:
            if op in _UNSUPPORTED:
                raise SelectorError(f"Unsupported operator: {op}", "not_supported")
            raise SelectorError(f"Invalid operator: {op}", "invalid_operator")
        # Only $exists: false (or a negated $exists: true) matches a missing field.
        return self.at(path, test, negated, nested, op == "$exists" and arg is negated)

    @staticmethod
    def at(path: Path, test: Predicate, negated: bool, nested: bool, if_missing: bool) -> Predicate:
        """``test`` (inverted if ``negated``) applied to the value at ``path``."""
        if not path:
            if not nested:
                raise SelectorError("One or more conditions is missing a field name.")
            return (lambda v: not test(v)) if negated else test

        def match(doc: Any) -> bool:
            value = _lookup(doc, path)
            if value is _MISSING:
                return if_missing
            if value is _BAD_PATH:
                return False
            return test(value) != negated

        return match


def _every(parts: list[Predicate]) -> Predicate:
    if not parts:  # CouchDB: an empty $and (or $nor) matches everything
        return _always
    if len(parts) == 1:
        return parts[0]
    return lambda v: all(p(v) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    if not parts:  # CouchDB: an empty $or (or negated $and) matches everything
        return _always
    if len(parts) == 1:
        return parts[0]
    return lambda v: any(p(v) for p in parts)
