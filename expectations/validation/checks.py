"""Compile GE suite dicts into small, picklable checks the arrow engine computes metrics for.

This module must not import Great Expectations (it runs on every worker, per chunk). A
:class:`Check` is one expectation of one suite with its kwargs parsed once: ISO time bounds become
aware ``datetime`` objects, number bounds floats. Only expectation types whose metrics the arrow
engine computes exactly are accepted; anything else is refused up front, before any work starts.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any

from expectations.exceptions import SuiteError, UnsupportedExpectationError

#: kwargs every expectation may carry that do not change the metrics we compute
_IGNORED_KWARGS = frozenset({"result_format", "catch_exceptions", "include_config", "batch_id"})
_BOUNDS = ("min_value", "max_value", "strict_min", "strict_max")

#: type -> (family, accepted kwargs). "map": per-row yes/no (GE ColumnMapExpectation);
#: "aggregate": one value per column; "table": whole-table metrics; "schema": the column's
#: type; "compound": a multicolumn key, unique across the whole run (needs every chunk's keys).
SUPPORTED: dict[str, tuple[str, frozenset[str]]] = {
    "expect_column_to_exist": ("table", frozenset({"column", "column_index"})),
    "expect_table_row_count_to_be_between": ("table", frozenset(_BOUNDS)),
    "expect_table_columns_to_match_set": ("table", frozenset({"column_set", "exact_match"})),
    "expect_column_values_to_not_be_null": ("map", frozenset({"column", "mostly"})),
    "expect_column_values_to_be_between": ("map", frozenset({"column", "mostly", *_BOUNDS})),
    "expect_column_values_to_be_in_set": ("map", frozenset({"column", "mostly", "value_set"})),
    "expect_column_min_to_be_between": ("aggregate", frozenset({"column", *_BOUNDS})),
    "expect_column_max_to_be_between": ("aggregate", frozenset({"column", *_BOUNDS})),
    "expect_column_type_to_be": ("schema", frozenset({"column", "type_"})),
    "expect_compound_columns_to_be_unique": (
        "compound", frozenset({"column_list", "mostly", "ignore_row_if"})),
    # Haina's adapter over expectations.qc.qartod.gross_range (registered with GE by ge_qartod)
    "expect_column_values_to_pass_qartod_gross_range": (
        "map", frozenset({"column", "mostly", "fail_span", "suspect_span"})),
    # ...and over expectations.qc.position.location (latitude in column_A, longitude in
    # column_B)
    "expect_column_pair_values_to_pass_qartod_location": (
        "pair", frozenset({"column_A", "column_B", "bbox", "mostly", "ignore_row_if"})),
}

Bound = float | dt.datetime | None

#: GE's ``ignore_row_if`` choices for multicolumn expectations (its default first)
IGNORE_ROW_IF = ("all_values_are_missing", "any_value_is_missing", "never")
#: ...and for column pair expectations
PAIR_IGNORE_ROW_IF = ("both_values_are_missing", "either_value_is_missing", "neither")


#: the one row_condition form the arrow engine computes: ``<column> in [<int>, ...]``, which
#: GE's pandas condition parser evaluates with ``DataFrame.query`` to the same rows
_ROW_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+"
                            r"\[\s*(-?[0-9]+(?:\s*,\s*-?[0-9]+)*)\s*,?\s*\]\s*$")


@dataclasses.dataclass(frozen=True)
class RowCondition:
    """Rows whose ``column`` holds one of ``values`` (a null holds none of them)."""

    column: str
    values: tuple[int, ...]

    @property
    def text(self) -> str:
        """The condition as GE's pandas parser reads it."""
        return f"{self.column} in [{', '.join(str(v) for v in self.values)}]"


def row_condition(column: str, values) -> dict:
    """The kwargs that restrict a map expectation to rows where ``column`` is in ``values``."""
    return {"row_condition": RowCondition(column, tuple(values)).text,
            "condition_parser": "pandas"}


@dataclasses.dataclass(frozen=True)
class Check:
    """One expectation of one suite, ready for :func:`expectations.validation.arrow_metrics.chunk_metrics`."""

    suite: str
    index: int
    type: str
    column: str | None = None
    min_value: Bound = None
    max_value: Bound = None
    strict_min: bool = False
    strict_max: bool = False
    value_set: tuple = ()
    mostly: float = 1.0
    column_index: int | None = None
    #: QARTOD spans (low, high) of the gross range adapter
    fail_span: tuple[float, float] | None = None
    suspect_span: tuple[float, float] | None = None
    #: expect_column_type_to_be: the pandas dtype name GE compares with
    type_: str | None = None
    #: expect_compound_columns_to_be_unique: the key columns and which rows GE skips
    column_list: tuple[str, ...] = ()
    ignore_row_if: str = IGNORE_ROW_IF[0]
    #: the location adapter's region: (lon_min, lat_min, lon_max, lat_max)
    bbox: tuple[float, float, float, float] | None = None
    #: GE's ``row_condition`` of a map expectation, parsed: only rows whose ``column`` value is
    #: in ``values`` are checked (None: every row)
    condition: RowCondition | None = None

    @property
    def id(self) -> str:
        """Stable key of this check's metrics: ``<suite name>[<expectation position>]``."""
        return f"{self.suite}[{self.index}]"

    @property
    def family(self) -> str:
        return SUPPORTED[self.type][0]

    @property
    def where(self) -> str:
        column = (f", column {self.column!r}" if self.column else
                  f", columns {list(self.column_list)!r}" if self.column_list else "")
        return f"suite {self.suite!r}, expectation {self.index} ({self.type}{column})"


def compile_checks(suites: list[dict]) -> tuple[Check, ...]:
    """All expectations of ``suites`` as checks, in suite then expectation order.

    Raises :class:`UnsupportedExpectationError` for a type or kwarg the arrow engine cannot
    compute, and :class:`SuiteError` for malformed suites, bounds, or duplicate suite names.
    """
    seen: set[str] = set()
    checks: list[Check] = []
    for suite in suites:
        name = _suite_name(suite)
        if name in seen:
            raise SuiteError(f"two suites are named {name!r}; check ids would collide",
                             fix="give every suite (including quality.suites files) a unique name")
        seen.add(name)
        for index, expectation in enumerate(suite.get("expectations", [])):
            checks.append(compile_check(name, index, expectation))
    return tuple(checks)


def compile_check(suite: str, index: int, expectation: dict) -> Check:
    where = f"suite {suite!r}, expectation {index}"
    if not isinstance(expectation, dict):
        raise SuiteError(f"expected a mapping with 'type' and 'kwargs' (got {expectation!r})",
                         where=where)
    kind = expectation.get("type") or expectation.get("expectation_type")
    if kind not in SUPPORTED:
        raise UnsupportedExpectationError(
            f"expectation type {kind!r} cannot be computed by the arrow metrics engine",
            where=where,
            fix=f"use one of {', '.join(sorted(SUPPORTED))}, or set quality.engine: "
                "great_expectations to run GE's own (slower) engine")
    kwargs = dict(expectation.get("kwargs") or {})
    _check_kwargs(kind, kwargs, where)
    fields = _parse_kwargs(kind, kwargs, where)
    return Check(suite=suite, index=index, type=kind, **fields)


def _suite_name(suite: Any) -> str:
    if not isinstance(suite, dict) or not isinstance(suite.get("name"), str) or not suite["name"]:
        got = suite.get("name") if isinstance(suite, dict) else suite
        raise SuiteError(f"a suite needs a non-empty string 'name' (got {got!r})",
                         fix="load suites with expectations.validation.suites.load_suite")
    if not isinstance(suite.get("expectations", []), list):
        raise SuiteError(f"'expectations' must be a list (got {suite['expectations']!r})",
                         where=f"suite {suite['name']!r}")
    return suite["name"]


def _check_kwargs(kind: str, kwargs: dict, where: str) -> None:
    accepted = SUPPORTED[kind][1]
    # A row condition with value None is GE's default and harmless; map expectations take the
    # one form _parse_row_condition reads, any other is refused there.
    conditional = SUPPORTED[kind][0] == "map"
    unknown = sorted(k for k, v in kwargs.items()
                     if k not in accepted and k not in _IGNORED_KWARGS
                     and not (k in ("row_condition", "condition_parser")
                              and (v is None or conditional)))
    if unknown:
        raise UnsupportedExpectationError(
            f"{kind} kwargs {unknown} are not supported by the arrow metrics engine",
            where=where, fix=f"use only {sorted(accepted)}, or set quality.engine: "
                             "great_expectations")
    if "column" in accepted and not isinstance(kwargs.get("column"), str):
        raise SuiteError(f"{kind} needs a string 'column' (got {kwargs.get('column')!r})",
                         where=where)


def _parse_kwargs(kind: str, kwargs: dict, where: str) -> dict:
    fields: dict[str, Any] = {"column": kwargs.get("column")}
    if kwargs.get("row_condition") is not None:
        fields["condition"] = _parse_row_condition(kwargs, where)
    if "min_value" in SUPPORTED[kind][1]:
        fields.update(_parse_bounds(kind, kwargs, where))
    if "mostly" in kwargs:
        fields["mostly"] = _parse_mostly(kwargs["mostly"], where)
    if kind == "expect_column_values_to_be_in_set":
        fields["value_set"] = _parse_value_set(kwargs.get("value_set"), where)
    if kwargs.get("column_index") is not None:
        fields["column_index"] = int(kwargs["column_index"])
    if kind == "expect_column_type_to_be":
        fields["type_"] = _parse_dtype(kwargs.get("type_"), where)
    if kind == "expect_compound_columns_to_be_unique":
        fields["column_list"] = _parse_column_list(kwargs.get("column_list"), where)
        fields["ignore_row_if"] = _parse_ignore_row_if(kwargs, IGNORE_ROW_IF, where)
    if kind == "expect_column_pair_values_to_pass_qartod_location":
        fields.update(_parse_pair(kwargs, where))
    if kind == "expect_column_values_to_pass_qartod_gross_range":
        fields["fail_span"] = _parse_span(kwargs.get("fail_span"), f"{where}, fail_span")
        if kwargs.get("suspect_span") is not None:
            fields["suspect_span"] = _parse_span(kwargs["suspect_span"], f"{where}, suspect_span")
    return fields


def _parse_row_condition(kwargs: dict, where: str) -> RowCondition:
    """GE's pandas ``row_condition`` in the form ``<column> in [<int>, ...]``."""
    text, parser = kwargs["row_condition"], kwargs.get("condition_parser")
    match = _ROW_CONDITION.match(text) if isinstance(text, str) else None
    if match is None or parser != "pandas":
        raise UnsupportedExpectationError(
            f"row_condition {text!r} with condition_parser {parser!r} is not computed by the "
            "arrow metrics engine", where=where,
            fix='write "row_condition": "<column> in [<integer>, ...]" (e.g. "msg_type in '
                '[1, 2, 3]") with "condition_parser": "pandas", or set quality.engine: '
                "great_expectations")
    values = tuple(int(v) for v in match.group(2).split(","))
    return RowCondition(match.group(1), values)


def _parse_dtype(value: Any, where: str) -> str:
    """A dtype name pandas accepts (GE's pandas check parses it with ``pandas_dtype`` too)."""
    from pandas.api.types import pandas_dtype  # pandas only when a suite asks for a type

    if not isinstance(value, str) or not value:
        raise SuiteError(f"type_ must be a pandas dtype name (got {value!r})", where=where,
                         fix='write e.g. "type_": "float64" or "datetime64[us, UTC]"')
    try:
        pandas_dtype(value)
    except Exception as err:  # pandas raises TypeError, or ImportError for some extension dtypes
        raise SuiteError(f"type_ {value!r} is not a dtype pandas knows ({err})", where=where,
                         fix='use a pandas dtype name: "float64", "int64", "str", '
                             '"datetime64[us, UTC]", "uint8", ...') from err
    return value


def _parse_column_list(value: Any, where: str) -> tuple[str, ...]:
    if (not isinstance(value, (list, tuple)) or len(value) < 2
            or not all(isinstance(c, str) and c for c in value) or len(set(value)) != len(value)):
        raise SuiteError(f"column_list must list two or more distinct column names, as GE "
                         f"requires (got {value!r})", where=where,
                         fix='write e.g. "column_list": ["station_id", "time"]')
    return tuple(value)


def _parse_ignore_row_if(kwargs: dict, choices: tuple[str, ...], where: str) -> str:
    """GE's ``ignore_row_if`` (default: the first of ``choices``, GE's own default)."""
    value = kwargs.get("ignore_row_if", choices[0])
    if value not in choices:
        raise SuiteError(f"ignore_row_if must be one of {list(choices)} (got {value!r})",
                         where=where)
    return value


def _parse_pair(kwargs: dict, where: str) -> dict:
    columns = (kwargs.get("column_A"), kwargs.get("column_B"))
    if not all(isinstance(c, str) and c for c in columns):
        raise SuiteError(f"column_A and column_B must be column names (got {list(columns)!r})",
                         where=where, fix='write "column_A": "latitude", "column_B": "longitude"')
    ignore = _parse_ignore_row_if(kwargs, PAIR_IGNORE_ROW_IF, where)
    bbox = kwargs.get("bbox")
    if bbox is not None:
        if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bbox)
                or bbox[0] > bbox[2] or bbox[1] > bbox[3]):
            raise SuiteError(f"bbox must be [lon_min, lat_min, lon_max, lat_max] with min <= max "
                             f"(got {bbox!r})", where=where,
                             fix='write e.g. "bbox": [119.0, 35.0, 121.5, 36.5]')
        bbox = tuple(float(v) for v in bbox)
    return {"column_list": columns, "ignore_row_if": ignore, "bbox": bbox}


def _parse_span(value: Any, where: str) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
            or value[0] > value[1]):
        raise SuiteError(f"a span is [low, high] with low <= high (got {value!r})", where=where,
                         fix="write e.g. \"fail_span\": [-2.5, 40.0]")
    return float(value[0]), float(value[1])


def _parse_bounds(kind: str, kwargs: dict, where: str) -> dict:
    low = parse_bound(kwargs.get("min_value"), f"{where}, min_value")
    high = parse_bound(kwargs.get("max_value"), f"{where}, max_value")
    if low is None and high is None and kind == "expect_column_values_to_be_between":
        raise SuiteError("min_value and max_value cannot both be null (GE refuses it too)",
                         where=where, fix="give at least one bound")
    if low is not None and high is not None:
        if isinstance(low, dt.datetime) != isinstance(high, dt.datetime):
            raise SuiteError(f"min_value {low!r} and max_value {high!r} are not the same kind "
                             "(one is a time, the other a number)", where=where)
        if _exceeds(low, high):
            raise SuiteError(f"min_value {low!r} is greater than max_value {high!r}", where=where,
                             fix="swap the bounds")
    return {"min_value": low, "max_value": high,
            "strict_min": bool(kwargs.get("strict_min") or False),
            "strict_max": bool(kwargs.get("strict_max") or False)}


def parse_bound(value: Any, where: str) -> Bound:
    """A number bound as float, an ISO-8601 string as an aware UTC datetime (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SuiteError(f"bound must be a number or an ISO-8601 time (got {value!r})", where=where)
    if isinstance(value, (int, float)):
        if math.isnan(value):
            raise SuiteError("bound is NaN", where=where, fix="use null for no bound")
        return float(value)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError as err:
            raise SuiteError(f"bound {value!r} is neither a number nor an ISO-8601 time",
                             where=where, fix="write times like 2020-01-31T00:00:00+00:00") from err
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise UnsupportedExpectationError(
        f"bound {value!r} ({type(value).__name__}) is not supported (suite parameters "
        "such as {'$PARAMETER': ...} are not evaluated)", where=where,
        fix="write the literal number or ISO-8601 time")


def _parse_mostly(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise SuiteError(f"mostly must be a number in [0, 1] (got {value!r})", where=where)
    return float(value)


def _parse_value_set(value: Any, where: str) -> tuple:
    if not isinstance(value, (list, tuple)) or not value:
        raise SuiteError(f"value_set must be a non-empty list (got {value!r})", where=where)
    kinds = {type(v) for v in value if v is not None}
    if len(kinds - {int, float}) > 1 or (kinds & {int, float} and kinds - {int, float}):
        raise SuiteError(f"value_set mixes types {sorted(k.__name__ for k in kinds)}",
                         where=where, fix="use only numbers or only strings")
    return tuple(value)


def _exceeds(low: float | dt.datetime, high: float | dt.datetime) -> bool:
    """``low > high`` for two bounds of the same kind (two times or two numbers)."""
    if isinstance(low, dt.datetime) and isinstance(high, dt.datetime):
        return low > high
    if not isinstance(low, dt.datetime) and not isinstance(high, dt.datetime):
        return low > high
    return False
