"""Targeting conditions: which units may enter an experiment, judged on request attributes.

A condition is a MongoDB-style document, the shape GrowthBook uses, so conditions written for
GrowthBook read the same here::

    {"country": {"$in": ["US", "CA"]},
     "app_version": {"$vgte": "2.3.0"},
     "$or": [{"plan": "pro"}, {"age": {"$gte": 18, "$lt": 65}}]}

Keys are attribute paths (``"device.os"`` descends into nested objects) or the logical operators
``$and``, ``$or``, ``$nor`` (lists of conditions) and ``$not`` (one condition); all keys of a
document must hold. A path maps either to a literal (strict equality) or to an operator document:
``$eq $ne $in $nin $gt $gte $lt $lte $regex $regexi $exists $veq $vne $vgt $vgte $vlt $vlte
$not``.

Semantics differ from GrowthBook's JavaScript coercions on purpose (see ``docs/assignment.md``):
values compare strictly by type (``"5"`` is not ``5``, ``1`` is not ``true``); ordering and
version operators fail when the attribute is missing or of another type; regexes use Python's
``re`` syntax and match anywhere in string attributes (``re.search``). Validation is strict:
an unknown operator or a bad operand is an error naming its path, not a silent "false".

``compile_condition`` validates once and returns a predicate; the hot path calls the predicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

__all__ = [
    "FIELD_OPERATORS",
    "LOGICAL_OPERATORS",
    "CompiledCondition",
    "ConditionError",
    "compile_condition",
    "evaluate_condition",
    "padded_version",
    "validate_condition",
]

Attributes = Mapping[str, Any]
_Test = Callable[[Any], bool]

LOGICAL_OPERATORS = ("$and", "$or", "$nor", "$not")
FIELD_OPERATORS = (
    "$eq",
    "$ne",
    "$in",
    "$nin",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$regex",
    "$regexi",
    "$exists",
    "$veq",
    "$vne",
    "$vgt",
    "$vgte",
    "$vlt",
    "$vlte",
    "$not",
)


class ConditionError(ValueError):
    """An invalid targeting condition; ``path`` locates it, ``operator`` names the culprit."""

    def __init__(self, path: str, operator: str | None, message: str) -> None:
        self.path = path
        self.operator = operator
        where = path or "<root>"
        super().__init__(f"targeting condition at {where!r}: {message}")


class CompiledCondition:
    """A validated condition, ready to evaluate; calling it is the hot path."""

    __slots__ = ("_test", "condition")

    def __init__(self, condition: Mapping[str, Any], test: Callable[[Attributes], bool]) -> None:
        self.condition = condition
        self._test = test

    def __call__(self, attributes: Attributes) -> bool:
        return self._test(attributes)

    def __repr__(self) -> str:
        return f"CompiledCondition({self.condition!r})"


def validate_condition(cond: object) -> None:
    """Raise ``ConditionError`` (a ``ValueError``) naming the path and operator at fault."""
    compile_condition(cond)


def evaluate_condition(cond: Mapping[str, Any], attributes: Attributes) -> bool:
    """Whether ``attributes`` satisfy ``cond``; validates first. Compile once on hot paths."""
    return compile_condition(cond)(attributes)


def compile_condition(cond: object) -> CompiledCondition:
    """Validate ``cond`` and turn it into a predicate over attribute mappings."""
    if not isinstance(cond, Mapping):
        raise ConditionError("", None, f"a condition must be an object, got {_kind(cond)}")
    return CompiledCondition(cond, _compile_document(cond, ""))


# --- values -------------------------------------------------------------------------------------


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def _strict_equal(a: object, b: object) -> bool:
    """JSON equality that keeps booleans apart from numbers (Python has ``True == 1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _getter(path: str) -> Callable[[Attributes], Any]:
    """Read a dot-separated path; anything missing along the way reads as None."""
    if "." not in path:
        return lambda attributes: attributes.get(path)
    parts = tuple(path.split("."))

    def get(attributes: Attributes) -> Any:
        current: Any = attributes
        for part in parts:
            if isinstance(current, Mapping):
                if part not in current:
                    return None
                current = current[part]
            elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        return current

    return get


_VERSION_STRIP = re.compile(r"^v|\+.*$")
_VERSION_SPLIT = re.compile(r"[-.]")


def padded_version(value: object) -> str:
    """GrowthBook's ``paddedVersionString``: a version made comparable as a plain string.

    ``"v1.2.3-rc.1+build"`` -> ``"    1-    2-    3-rc-    1"``; numeric parts are left-padded
    to 5 characters and a release (exactly three parts) gets a ``~`` suffix, so ``1.0.0`` sorts
    after ``1.0.0-beta``. Numbers are read as their decimal text; anything else as ``"0"``.
    """
    if _is_number(value):
        number: Any = value
        value = str(int(number)) if float(number).is_integer() else repr(number)
    if not value or not isinstance(value, str):
        value = "0"
    return _padded_version_text(value)


@lru_cache(maxsize=4096)
def _padded_version_text(value: str) -> str:
    # Cached: app versions in request attributes take few distinct values.
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5) if p.isascii() and p.isdigit() else p for p in parts)


@lru_cache(maxsize=1024)
def _regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


# --- compilation --------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _compile_document(cond: Mapping[Any, Any], path: str) -> Callable[[Attributes], bool]:
    tests: list[Callable[[Attributes], bool]] = []
    for key, value in cond.items():
        if not isinstance(key, str):
            raise ConditionError(path, None, f"keys must be strings, got {key!r}")
        if key.startswith("$"):
            tests.append(_compile_logical(key, value, path))
        else:
            tests.append(_compile_field(key, value, _join(path, key)))
    if not tests:
        return lambda attributes: True
    if len(tests) == 1:
        return tests[0]
    all_tests = tuple(tests)
    return lambda attributes: all(test(attributes) for test in all_tests)


def _compile_logical(op: str, value: object, path: str) -> Callable[[Attributes], bool]:
    here = _join(path, op)
    if op == "$not":
        if not isinstance(value, Mapping):
            raise ConditionError(here, op, f"$not takes a condition object, got {_kind(value)}")
        inner = _compile_document(value, here)
        return lambda attributes: not inner(attributes)
    if op not in ("$and", "$or", "$nor"):
        raise ConditionError(
            here,
            op,
            f"unknown logical operator {op!r}; supported: {', '.join(LOGICAL_OPERATORS)} "
            "(field operators go under an attribute name)",
        )
    if not isinstance(value, list | tuple):
        raise ConditionError(here, op, f"{op} takes a list of conditions, got {_kind(value)}")
    parts: list[Callable[[Attributes], bool]] = []
    for index, item in enumerate(value):
        item_path = f"{here}[{index}]"
        if not isinstance(item, Mapping):
            raise ConditionError(item_path, op, f"expected a condition object, got {_kind(item)}")
        parts.append(_compile_document(item, item_path))
    subs = tuple(parts)
    if op == "$and":
        return lambda attributes: all(sub(attributes) for sub in subs)
    if not subs:  # As in GrowthBook: an empty $or passes, so an empty $nor fails.
        passes = op == "$or"
        return lambda attributes: passes
    if op == "$or":
        return lambda attributes: any(sub(attributes) for sub in subs)
    return lambda attributes: not any(sub(attributes) for sub in subs)


def _compile_field(key: str, value: object, path: str) -> Callable[[Attributes], bool]:
    get = _getter(key)
    test = _compile_value(value, path)
    return lambda attributes: test(get(attributes))


def _compile_value(value: object, path: str) -> _Test:
    """A test of one attribute value: a literal (strict equality) or an operator document."""
    if isinstance(value, Mapping):
        keys = list(value)
        operator_keys = [k for k in keys if isinstance(k, str) and k.startswith("$")]
        if operator_keys and len(operator_keys) != len(keys):
            plain = [k for k in keys if k not in operator_keys]
            raise ConditionError(
                path,
                operator_keys[0],
                f"mixes operators {operator_keys} with plain keys {plain}; "
                "use only operators, or only a literal object to compare with",
            )
        if operator_keys:
            tests = tuple(_compile_operator(op, value[op], path) for op in operator_keys)
            if len(tests) == 1:
                return tests[0]
            return lambda actual: all(test(actual) for test in tests)
    if value is None:
        return lambda actual: actual is None
    if isinstance(value, str | bool) or _is_number(value) or isinstance(value, Mapping | list):
        literal = value
        return lambda actual: _strict_equal(actual, literal)
    raise ConditionError(path, None, f"unsupported value of type {_kind(value)}")


def _operand_error(path: str, op: str, expected: str, got: object) -> ConditionError:
    return ConditionError(_join(path, op), op, f"{op} takes {expected}, got {_kind(got)}")


def _compile_operator(op: str, operand: object, path: str) -> _Test:
    here = _join(path, op)
    if op in ("$eq", "$ne"):
        if not _is_scalar(operand):
            raise _operand_error(path, op, "a string, number, boolean or null", operand)
        if op == "$eq":
            return lambda actual: _strict_equal(actual, operand)
        return lambda actual: not _strict_equal(actual, operand)
    if op in ("$in", "$nin"):
        return _compile_membership(op, operand, path)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compile_ordering(op, operand, path)
    if op in ("$regex", "$regexi"):
        if not isinstance(operand, str):
            raise _operand_error(path, op, "a regular expression string", operand)
        try:
            pattern = _regex(operand, op == "$regexi")
        except re.error as exc:
            raise ConditionError(
                here, op, f"invalid regular expression {operand!r}: {exc}"
            ) from exc
        search = pattern.search
        return lambda actual: isinstance(actual, str) and search(actual) is not None
    if op == "$exists":
        if not isinstance(operand, bool):
            raise _operand_error(path, op, "true or false", operand)
        if operand:
            return lambda actual: actual is not None
        return lambda actual: actual is None
    if op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
        return _compile_version(op, operand, path)
    if op == "$not":
        inner = _compile_value(operand, here)
        return lambda actual: not inner(actual)
    raise ConditionError(
        here, op, f"unknown operator {op!r}; supported: {', '.join(FIELD_OPERATORS)}"
    )


def _compile_membership(op: str, operand: object, path: str) -> _Test:
    if not isinstance(operand, list | tuple):
        raise _operand_error(path, op, "a list of strings, numbers, booleans or nulls", operand)
    strings: set[str] = set()
    numbers: set[float] = set()
    booleans: set[bool] = set()
    has_null = False
    for index, item in enumerate(operand):
        if item is None:
            has_null = True
        elif isinstance(item, bool):
            booleans.add(item)
        elif isinstance(item, str):
            strings.add(item)
        elif _is_number(item):
            numbers.add(item)
        else:
            raise ConditionError(
                f"{_join(path, op)}[{index}]",
                op,
                f"{op} list items must be strings, numbers, booleans or null, got {_kind(item)}",
            )

    def member(value: object) -> bool:
        if isinstance(value, str):
            return value in strings
        if isinstance(value, bool):
            return value in booleans
        if isinstance(value, int | float):
            return value in numbers
        if value is None:
            return has_null
        return False

    def contains(actual: object) -> bool:
        # An array attribute (tags, groups) matches when any element is in the list.
        if isinstance(actual, list | tuple):
            return any(member(element) for element in actual)
        return member(actual)

    if op == "$in":
        return contains
    return lambda actual: not contains(actual)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _compile_ordering(op: str, operand: object, path: str) -> _Test:
    compare = _ORDER[op]
    if _is_number(operand):
        return lambda actual: _is_number(actual) and compare(actual, operand)
    if isinstance(operand, str):
        return lambda actual: isinstance(actual, str) and compare(actual, operand)
    raise _operand_error(path, op, "a number (or a string, compared as text)", operand)


def _compile_version(op: str, operand: object, path: str) -> _Test:
    if not (isinstance(operand, str) or _is_number(operand)):
        raise _operand_error(path, op, 'a version string such as "1.2.3"', operand)
    expected = padded_version(operand)
    compare: Callable[[str, str], bool] = {
        "$veq": lambda a, b: a == b,
        "$vne": lambda a, b: a != b,
        "$vgt": lambda a, b: a > b,
        "$vgte": lambda a, b: a >= b,
        "$vlt": lambda a, b: a < b,
        "$vlte": lambda a, b: a <= b,
    }[op]

    def test(actual: object) -> bool:
        if not (isinstance(actual, str) or _is_number(actual)):
            return False
        return compare(padded_version(actual), expected)

    return test
