"""compile_checks: what the arrow engine accepts, and how it refuses the rest."""
from __future__ import annotations

import datetime as dt
import pickle

import pyarrow as pa
import pytest

from expectations.exceptions import MetricTypeError, SuiteError, UnsupportedExpectationError
from expectations.validation.arrow_metrics import chunk_metrics
from expectations.validation.checks import SUPPORTED, compile_checks


def suite(*expectations, name="s"):
    return [{"name": name, "expectations": list(expectations)}]


def between(**kwargs):
    return {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", **kwargs}}


def test_compiles_bounds_and_is_picklable():
    checks = compile_checks(suite(
        between(min_value=1, max_value=2.5, strict_max=True, mostly=0.9),
        between(min_value="2020-01-01T00:00:00", max_value="2021-01-01T00:00:00Z")))
    first, second = checks
    assert (first.id, first.min_value, first.max_value, first.strict_max, first.mostly) == (
        "s[0]", 1.0, 2.5, True, 0.9)
    assert second.min_value == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # naive -> UTC
    assert second.max_value == dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    assert pickle.loads(pickle.dumps(checks)) == checks


def test_unsupported_type_names_suite_type_and_supported_ones():
    with pytest.raises(UnsupportedExpectationError) as err:
        compile_checks(suite({"type": "expect_column_values_to_match_regex",
                              "kwargs": {"column": "x", "regex": "a"}}, name="mine"))
    text = str(err.value)
    assert "'mine'" in text and "expect_column_values_to_match_regex" in text
    assert all(kind in text for kind in SUPPORTED)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"row_condition": 'col("x")>0'}, UnsupportedExpectationError, "row_condition"),
    ({"min_value": 5, "max_value": 1}, SuiteError, "greater than max_value"),
    ({}, SuiteError, "cannot both be null"),
    ({"min_value": "yesterday"}, SuiteError, "ISO-8601"),
    ({"min_value": {"$PARAMETER": "lo"}}, UnsupportedExpectationError, "suite parameters"),
    ({"min_value": 0, "mostly": 1.5}, SuiteError, "mostly"),
    ({"min_value": 0, "max_value": "2020-01-01"}, SuiteError, "not the same kind"),
])
def test_bad_kwargs(kwargs, error, words):
    with pytest.raises(error, match=words):
        compile_checks(suite(between(**kwargs)))


def test_duplicate_suite_names_and_missing_column_kwarg():
    with pytest.raises(SuiteError, match="two suites are named"):
        compile_checks(suite(between(min_value=0)) + suite(between(min_value=0)))
    with pytest.raises(SuiteError, match="needs a string 'column'"):
        compile_checks(suite({"type": "expect_column_values_to_not_be_null", "kwargs": {}}))


def test_time_bound_on_number_column_is_a_named_error():
    checks = compile_checks(suite(between(min_value="2020-01-01T00:00:00+00:00")))
    with pytest.raises(MetricTypeError, match="ISO-8601 time bounds for timestamp columns"):
        chunk_metrics(pa.table({"x": pa.array([1.0])}), checks)
