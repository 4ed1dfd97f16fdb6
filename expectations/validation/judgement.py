"""GE's judgement: run-level GE results from merged metrics, by GE's own expectation classes.

Every expectation of every suite becomes a real GE ``Expectation`` (from its JSON configuration);
its ``metrics_validate`` (the call GE's Validator makes after its execution engine resolved the
metrics) receives the metrics computed by :mod:`expectations.validation.arrow_metrics` and returns a GE
``ExpectationValidationResult``. So success, ``mostly``, percentages and the result format are
GE's logic, not a re-implementation; only the metric computation is ours.

Importing this module imports Great Expectations (seconds): do it once per run, in the GE helper
process (:mod:`expectations.validation.ge.process`) or the driver.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import great_expectations as gx
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.exceptions import InvalidExpectationConfigurationError
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.validator.validation_statistics import calc_validation_statistics
from pandas.api.types import pandas_dtype

from expectations.exceptions import ExpectationsError, SuiteError
from expectations.validation.checks import Check, compile_checks
from expectations.validation.encoding import decode
from expectations.validation.ge import qartod as ge_qartod  # noqa: F401  (registers Haina's QARTOD expectations)

#: GE's default result format for batch validation; partial_unexpected_count 20 matches the engine
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}


def build_expectation(config: dict, check: Check):
    """A GE Expectation object from one suite entry; GE validates the kwargs."""
    kwargs = dict(config.get("kwargs") or {})
    try:
        return ExpectationConfiguration(type=check.type, kwargs=kwargs,
                                        meta=dict(config.get("meta") or {})).to_domain_obj()
    except (InvalidExpectationConfigurationError, ValueError, TypeError) as err:
        raise SuiteError(f"Great Expectations rejects the configuration {config!r}: {err}",
                         where=check.where, fix="correct the kwargs of this expectation") from err


def suite_results(suites: list[dict], metrics: dict) -> list[ExpectationSuiteValidationResult]:
    """One GE ExpectationSuiteValidationResult per suite, from merged (or chunk) metrics."""
    by_suite: dict[str, list[Check]] = defaultdict(list)
    for check in compile_checks(suites):
        by_suite[check.suite].append(check)
    return [_suite_result(suite, by_suite[suite["name"]], metrics) for suite in suites]


def _suite_result(suite: dict, checks: list[Check], metrics: dict):
    results = [_expectation_result(suite["expectations"][c.index], c, metrics) for c in checks]
    stats = calc_validation_statistics(results)
    return ExpectationSuiteValidationResult(
        success=stats.success, results=results, suite_name=suite["name"],
        statistics={
            "evaluated_expectations": stats.evaluated_expectations,
            "successful_expectations": stats.successful_expectations,
            "unsuccessful_expectations": stats.unsuccessful_expectations,
            "success_percent": stats.success_percent,
        },
        meta={"great_expectations_version": gx.__version__,
              "metrics_engine": metrics.get("engine", "arrow"),
              "row_count": metrics.get("rows", 0)},
    )


def _expectation_result(config: dict, check: Check, metrics: dict) -> ExpectationValidationResult:
    expectation = build_expectation(config, check)
    entry = _entry(check, metrics)
    if entry.get("missing"):
        return _missing_column(expectation, check)
    if check.family == "schema" and not entry.get("dtypes"):
        return _raised_result(expectation, f'No chunk was read, so the type of column '
                                           f'"{check.column}" is unknown')
    if check.family == "schema" and len(entry["dtypes"]) > 1:
        return _raised_result(expectation, f'The column "{check.column}" has different types '
                              f'in different chunks: {", ".join(sorted(entry["dtypes"]))}')
    runtime = {"result_format": dict(RESULT_FORMAT)}
    dependencies = expectation.get_validation_dependencies(runtime_configuration=dict(runtime))
    provided = {
        configuration.id: _metric_value(name, check, entry, metrics)
        for name, configuration in dependencies.metric_configurations.items()
    }
    return expectation.metrics_validate(provided, runtime_configuration=runtime)


def _entry(check: Check, metrics: dict) -> dict:
    entry = metrics.get("checks", {}).get(check.id)
    if entry is not None:
        return entry
    if not metrics.get("rows"):
        # no chunk at all: an empty table, where GE's map expectations are vacuously true
        return {} if check.family == "table" else _EMPTY.get(check.family, {})
    raise ExpectationsError(f"the metrics hold no entry for check {check.id!r}",
                            where=check.where,
                            fix="compute chunk metrics with the same suites as the results")


_EMPTY: dict[str, dict[str, Any]] = {"map": {"kind": "other", "nulls": 0, "unexpected": 0, "values": []},
          "compound": {"kind": "compound", "kinds": {}, "nulls": 0, "unexpected": 0,
                       "values": []},
          "pair": {"kind": "pair", "kinds": {}, "nulls": 0, "unexpected": 0, "values": []},
          "aggregate": {"kind": "other", "min": None, "max": None}}


def _missing_column(expectation, check: Check) -> ExpectationValidationResult:
    """What GE reports when a metric's column does not exist: a failed, raised result."""
    missing = check.column or ", ".join(check.column_list)
    return _raised_result(expectation, f'Error: The column "{missing}" in BatchData does not '
                                       "exist.")


def _raised_result(expectation, message: str) -> ExpectationValidationResult:
    return ExpectationValidationResult(
        success=False, expectation_config=expectation.configuration, result={},
        exception_info={"raised_exception": True, "exception_traceback": None,
                        "exception_message": message})


def _metric_value(name: str, check: Check, entry: dict, metrics: dict):
    """The value of GE metric ``name`` for this check, from our metrics format."""
    if name == "table.row_count":  # of the check's domain: the rows its row_condition selects
        return entry.get("rows", 0) if check.condition is not None else metrics.get("rows", 0)
    if name == "table.columns":
        return list(metrics.get("columns", []))
    if name in ("column.min", "column.max"):
        return decode(entry[name.rsplit(".", 1)[1]], entry["kind"])
    if name == "table.column_types":
        (low, high), = entry["dtypes"].values()
        return [{"name": check.column, "type": pandas_dtype(high if entry["nulls"] else low)}]
    suffix = name.rsplit(".", 1)[1]
    if suffix == "unexpected_count":
        return entry["nulls"] if name.startswith("column_values.nonnull.") else entry["unexpected"]
    if suffix == "filtered_row_count":  # rows a multicolumn expectation does not ignore
        return metrics.get("rows", 0) - entry["nulls"]
    if suffix == "unexpected_values" and entry.get("kind") == "pair":  # GE lists (A, B) tuples
        kinds = entry["kinds"]
        return [tuple(decode(v, kinds[c]) for v, c in zip(value, check.column_list, strict=True))
                for _, _, value in entry["values"]]
    if suffix == "unexpected_values" and "kinds" in entry:
        kinds = entry["kinds"]
        return [{c: decode(v, kinds[c]) for c, v in value.items()}
                for _, _, value in entry["values"]]
    if suffix == "unexpected_values":
        return [decode(value, entry["kind"]) for _, _, value in entry["values"]]
    if suffix in ("unexpected_index_list", "unexpected_index_query"):
        return None  # row positions are chunk-local; GE omits the field when it is None
    raise ExpectationsError(f"metric {name!r} is not computed by the arrow engine",
                            where=check.where, fix="report this as a Haina bug")
