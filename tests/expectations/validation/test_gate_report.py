"""The quality gate and the report files, on real GE results built from arrow metrics."""
from __future__ import annotations

import html
import json

import numpy as np
import pyarrow as pa
import pytest

from expectations.quality_config import QualityConfig
from expectations.validation.arrow_metrics import chunk_metrics
from expectations.validation.checks import compile_checks
from expectations.validation.gate import GateDecision, evaluate_gate
from expectations.validation.suites import builtin_suite_path, load_suite

results_mod = pytest.importorskip("expectations.validation.judgement")

# 100 rows: 10 above the max (values 90..99), 5 nulls
VALUES = np.arange(100, dtype=np.float64)
TABLE = pa.table({"x": pa.array(VALUES, mask=np.isin(np.arange(100), [0, 1, 2, 3, 4])),
                  "y": pa.array(np.ones(100))})


def results_for(*expectations):
    suites = [{"name": "s", "expectations": list(expectations)}]
    return results_mod.suite_results(suites, chunk_metrics(TABLE, compile_checks(suites)))


RANGE = {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "x", "min_value": 0, "max_value": 89.5}}


@pytest.mark.parametrize("allowed, passed", [
    (0.10, True),    # 10/100 equals the threshold: allowed
    (0.11, True),
    (0.09, False),
    (0.0, False),    # zero is a real threshold, not "unset"
])
def test_threshold_equal_above_below_zero(allowed, passed):
    decision = evaluate_gate(results_for(RANGE), QualityConfig(max_failing_fraction=allowed))
    assert decision.passed is passed
    if not passed:
        (failure,) = decision.failures
        assert "s: expect_column_values_to_be_between on column 'x'" in failure
        assert "10 of 100 rows unexpected (10.0000%)" in failure


def test_zero_threshold_passes_clean_data():
    clean = {"type": "expect_column_values_to_be_between",
             "kwargs": {"column": "y", "min_value": 0, "max_value": 2}}
    assert evaluate_gate(results_for(clean), QualityConfig()) == GateDecision(True, ())


def test_column_override_then_type_override_then_global():
    results = results_for(RANGE)
    by_column = QualityConfig(max_failing_fraction=0.0,
                              max_failing_fraction_by_column={"x": 0.2})
    by_type = QualityConfig(max_failing_fraction_by_column={
        "expect_column_values_to_be_between": 0.2})
    column_wins = QualityConfig(max_failing_fraction_by_column={
        "x": 0.05, "expect_column_values_to_be_between": 0.2})
    assert evaluate_gate(results, by_column).passed
    assert evaluate_gate(results, by_type).passed
    assert not evaluate_gate(results, column_wins).passed


def test_mostly_uses_ge_success_and_nulls_count_in_not_null():
    not_null = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}
    mostly_ok = {"type": "expect_column_values_to_be_between",
                 "kwargs": {"column": "x", "min_value": 0, "max_value": 89.5, "mostly": 0.85}}
    mostly_bad = {"type": "expect_column_values_to_be_between",
                  "kwargs": {"column": "x", "min_value": 0, "max_value": 89.5, "mostly": 0.95}}
    results = results_for(not_null, mostly_ok, mostly_bad)
    evrs = results[0].results
    assert (evrs[0].result["unexpected_count"], evrs[0].result["element_count"]) == (5, 100)
    # GE: 10 unexpected of 95 non-null -> 89.5% >= 85% passes, < 95% fails
    assert [r.success for r in evrs[1:]] == [True, False]
    decision = evaluate_gate(results, QualityConfig(max_failing_fraction=0.05))
    assert decision.passed is False and len(decision.failures) == 1
    assert "mostly=0.95" in decision.failures[0]


def test_missing_column_and_aggregates_fail_the_gate():
    results = results_for(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ghost"}},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "x", "max_value": 50}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "y"}})
    decision = evaluate_gate(results, QualityConfig(max_failing_fraction=1.0))
    assert len(decision.failures) == 2
    assert "ghost" in decision.failures[0] and "does not exist" in decision.failures[0]
    assert "observed 99.0" in decision.failures[1]
    assert evaluate_gate(results, QualityConfig(enabled=False)).passed


def test_every_packaged_suite_builds_real_ge_expectations():
    from expectations.validation.suites import suites_for  # noqa: F401  (the same files suites_for loads)
    names = [p.stem for p in builtin_suite_path("wind_speed").parent.glob("*.json")]
    suites = [load_suite(builtin_suite_path(n)) for n in names]
    results = results_mod.suite_results(suites, {})  # no rows: vacuously true
    assert len(results) == len(names) >= 20 and all(r.success for r in results)


def test_report_files_contain_the_numbers(tmp_path):
    results = results_for(RANGE, {"type": "expect_column_to_exist", "kwargs": {"column": "y"}})
    decision = evaluate_gate(results, QualityConfig())
    json_path, html_path = results_mod_write(results, decision, tmp_path)
    document = json.loads(json_path.read_text())
    evr = document["results"][0]["results"][0]
    assert (evr["result"]["element_count"], evr["result"]["unexpected_count"],
            evr["result"]["missing_count"]) == (100, 10, 5)
    assert evr["result"]["partial_unexpected_list"] == [float(v) for v in range(90, 100)]
    assert document["gate"]["passed"] is False and document["info"]["dataset"] == "demo<1>"
    page = html_path.read_text()
    assert "Gate: FAILED" in page and html.escape("demo<1>") in page
    assert "<script" not in page and "http" not in page.split("</style>")[0]
    # element count, unexpected count, unexpected % (10 of 95 non-missing), missing count
    for cell in (">100<", ">10<", ">10.53<", ">5<"):
        assert cell.replace(">", "<td class='num'>", 1) in page, cell
    assert "99.0" in page  # partial unexpected values


def results_mod_write(results, decision, directory):
    from catalog.documents.report import write_report
    return write_report(results, decision, {"dataset": "demo<1>", "version": 3}, directory)
