"""The QARTOD gross range expectation: a GE adapter over expectations.qc, on both engines."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from expectations import qc
from expectations.checks import compile_checks
from expectations.engine import chunk_metrics, ge_chunk_metrics, merge_metrics
from expectations.exceptions import SuiteError

results = pytest.importorskip("expectations.results")  # imports GE and registers the adapter

SUITE = [{"name": "qartod", "expectations": [
    {"type": "expect_column_values_to_pass_qartod_gross_range",
     "kwargs": {"column": "temp", "fail_span": [-2.5, 40.0], "suspect_span": [0.0, 30.0]}},
    {"type": "expect_column_values_to_pass_qartod_gross_range",
     "kwargs": {"column": "temp", "fail_span": [-2.5, 40.0], "mostly": 0.95}},
    {"type": "expect_column_values_to_pass_qartod_gross_range",
     "kwargs": {"column": "count", "fail_span": [0, 90]}},
]}]


def table(seed: int, n: int = 2000) -> pa.Table:
    rng = np.random.default_rng(seed)
    temp = rng.normal(15, 15, n).astype(np.float32)
    temp[rng.random(n) < 0.03] = np.nan
    temp[:3] = [40.0, -2.5, 40.01]  # on the bounds (pass) and just outside (fail)
    return pa.table({"temp": pa.array(temp, mask=rng.random(n) < 0.02),
                     "count": pa.array(rng.integers(0, 100, n), pa.int64())})


def summary(suite_results):
    return [(r.expectation_config.type, r.success, r.result.get("element_count"),
             r.result.get("unexpected_count"), r.result.get("missing_count"))
            for suite in suite_results for r in suite.results]


def test_arrow_engine_matches_ges_own_engine_on_the_adapter():
    parts = [table(seed) for seed in (1, 2, 3)]
    checks = compile_checks(SUITE)
    arrow = merge_metrics(merge_metrics(*(chunk_metrics(t, checks, (0, "t", i))
                                          for i, t in enumerate(parts[:2]))),
                          chunk_metrics(parts[2], checks, (0, "t", 2)))
    whole = pa.concat_tables(parts)
    ge = ge_chunk_metrics(whole, SUITE)
    assert summary(results.suite_results(SUITE, arrow)) == summary(
        results.suite_results(SUITE, ge))


def test_unexpected_rows_are_exactly_the_qc_functions_fails():
    t = table(7)
    values = t.column("temp").to_numpy(zero_copy_only=False).astype(np.float64)
    fails = int(np.count_nonzero(qc.gross_range(values, (-2.5, 40.0), (0.0, 30.0)) == 4))
    entry = chunk_metrics(t, compile_checks(SUITE))["checks"]["qartod[0]"]
    assert entry["unexpected"] == fails > 0
    assert 40.01 == pytest.approx(entry["values"][0][2], abs=1e-4)  # the first failing row


@pytest.mark.parametrize("span", [[40.0, -2.5], [1.0], "wide", [True, 3]])
def test_bad_spans_are_refused_with_the_place(span):
    suite = [{"name": "s", "expectations": [
        {"type": "expect_column_values_to_pass_qartod_gross_range",
         "kwargs": {"column": "temp", "fail_span": span}}]}]
    with pytest.raises(SuiteError, match=r"suite 's', expectation 0, fail_span"):
        compile_checks(suite)
