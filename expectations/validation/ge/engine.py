"""GE's own engine on a chunk, in the arrow metrics' format: the reference the parity tests hold
the arrow engine to, and ``quality.engine: great_expectations`` for users who want it.

Each chunk becomes a pandas frame validated by GE's pandas execution engine, and every GE result
is translated back into the partial metric entry :mod:`expectations.validation.arrow_metrics`
would have computed, so both engines merge, judge and gate alike. Much slower (one GE validation
per chunk, ~65 ms plus per-row cost, and ``import great_expectations`` takes seconds): import
this module only when the reference engine is asked for.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import great_expectations as gx
import pyarrow as pa
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig

from expectations.exceptions import ReferenceEngineError
from expectations.validation.arrow_metrics import check_entry, compound_entry
from expectations.validation.checks import Check, compile_checks
from expectations.validation.encoding import column_kind, encode, python_value
from expectations.validation.judgement import RESULT_FORMAT, build_expectation

#: the meta key that carries a check's id through GE's validation, to match results to checks
_CHECK_META = "haina_check"


def ge_chunk_metrics(table: pa.Table, suites: list[dict], order: Sequence = ()) -> dict:
    """Reference engine: GE's own pandas engine on the chunk, in the format of
    :func:`expectations.validation.arrow_metrics.chunk_metrics`.

    Much slower (one GE validation per chunk, ~65 ms plus per-row cost); used when
    ``quality.engine == "great_expectations"`` and by the parity tests.
    """
    checks = compile_checks(suites)
    results = ge_validate_chunk(table, suites)
    entries = {}
    for check in checks:
        entries[check.id] = _entry_from_ge(check, results[check.id], table, list(order))
    return {"engine": "great_expectations", "rows": table.num_rows,
            "columns": list(table.column_names), "checks": entries}


def _entry_from_ge(check: Check, result, table: pa.Table, order: list) -> dict:
    """Translate one GE ExpectationValidationResult back into a partial metric entry."""
    if check.family == "table":
        return {}
    if check.family == "compound":
        # GE sees one chunk, and a key's duplicates may lie in others: the run-level count
        # comes from the keys step (duplicate_metrics), whatever the engine
        return compound_entry(table, check)
    if check.family == "pair":
        return _pair_entry_from_ge(check, result, table, order)
    if check.column not in table.column_names:
        return {"missing": True}
    kind = column_kind(table.column(check.column).type)
    message = _raised(result.exception_info or {})
    if message:
        raise ReferenceEngineError(f"Great Expectations failed: {message}", where=check.where,
                                   fix="run with quality.engine: arrow, or correct the expectation")
    observed = result.result or {}
    if check.family == "schema":
        entry = check_entry(table, check, {}, order)
        low, high = next(iter(entry["dtypes"].values()))
        expected = high if entry["nulls"] else low
        if observed.get("observed_value") != expected:
            raise ReferenceEngineError(
                f"Great Expectations sees dtype {observed.get('observed_value')!r} where the "
                f"arrow engine predicts {expected!r}", where=check.where,
                fix="report this as a Haina bug (pandas changed how it converts Arrow types)")
        return entry
    if check.family == "aggregate":
        value = encode(python_value(observed.get("observed_value")), kind)
        return {"kind": kind, "min": value if check.type.endswith("min_to_be_between") else None,
                "max": value if check.type.endswith("max_to_be_between") else None}
    unexpected = observed.get("unexpected_count") or 0
    nulls = unexpected if check.type.endswith("not_be_null") else observed.get("missing_count", 0)
    rows = observed.get("partial_unexpected_index_list") or []
    values = [None if check.type.endswith("not_be_null") else encode(python_value(v), kind)
              for v in observed.get("partial_unexpected_list") or []]
    entry = {"kind": kind, "nulls": nulls, "unexpected": unexpected,
             "values": [[order, int(r), v] for r, v in zip(rows, values, strict=False)]}
    if check.condition is not None:
        entry["rows"] = observed.get("element_count") or 0
    return entry


def _pair_entry_from_ge(check: Check, result, table: pa.Table, order: list) -> dict:
    if any(c not in table.column_names for c in check.column_list):
        return {"missing": True}
    message = _raised(result.exception_info or {})
    if message:
        raise ReferenceEngineError(f"Great Expectations failed: {message}", where=check.where,
                                   fix="run with quality.engine: arrow, or correct the expectation")
    observed = result.result or {}
    kinds = {c: column_kind(table.column(c).type) for c in check.column_list}
    values = [[order, int(row), [encode(python_value(v), kinds[c])
                                 for v, c in zip(pair, check.column_list, strict=True)]]
              for row, pair in zip(observed.get("partial_unexpected_index_list") or [],
                                   observed.get("partial_unexpected_list") or [], strict=False)]
    return {"kind": "pair", "kinds": kinds, "nulls": observed.get("missing_count", 0),
            "unexpected": observed.get("unexpected_count") or 0, "values": values}


def _raised(info: dict) -> str | None:
    """GE's exception message, flat (``raised_exception``) or nested per metric id."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    nested = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    return str(nested[0].get("exception_message")) if nested else None


@functools.cache
def _batch_definition():
    """An in-memory GE context with one pandas dataframe asset, built once per process."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("haina")
    asset = source.add_dataframe_asset("chunk")
    return asset.add_batch_definition_whole_dataframe("whole")


#: GE's data context and validator are not safe to share between threads, and a run's worker
#: threads validate chunks concurrently: the reference engine takes one chunk at a time
_GE_LOCK = threading.Lock()


def ge_validate_chunk(table: pa.Table, suites: list[dict]) -> dict[str, ExpectationValidationResult]:
    """Validate one chunk with GE's pandas engine: {check id: GE result}."""
    with _GE_LOCK:
        return _ge_validate_chunk(table, suites)


def _ge_validate_chunk(table: pa.Table, suites: list[dict]) -> dict:
    checks = compile_checks(suites)
    configs = {s["name"]: s["expectations"] for s in suites}
    expectations = []
    for check in checks:
        config = dict(configs[check.suite][check.index])
        config["meta"] = {**(config.get("meta") or {}), _CHECK_META: check.id}
        expectations.append(build_expectation(config, check))
    suite = gx.ExpectationSuite(name="haina-chunk", expectations=expectations)
    if len(suite.expectations) != len(expectations):
        raise ReferenceEngineError("Great Expectations dropped expectations from the suite",
                                   fix="run with quality.engine: arrow to see which one fails")
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": _to_pandas(table)})
    outcome = batch.validate(suite, result_format=dict(RESULT_FORMAT))
    return {r.expectation_config.meta[_CHECK_META]: r for r in outcome.results}


def _to_pandas(table: pa.Table):
    """GE's pandas engine sees what a user's ``to_pandas`` gives: Arrow nulls become NaN/NaT/None."""
    return table.to_pandas()
