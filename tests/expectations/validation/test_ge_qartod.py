"""The QARTOD gross range expectation: a GE adapter over expectations.qc.qartod, on both engines."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from expectations.exceptions import SuiteError
from expectations.qc import position as qc_position
from expectations.qc import qartod as qc
from expectations.validation.arrow_metrics import chunk_metrics
from expectations.validation.checks import compile_checks
from expectations.validation.ge.engine import ge_chunk_metrics
from expectations.validation.merge import merge_metrics

results = pytest.importorskip("expectations.validation.judgement")  # imports GE and registers the adapter

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


# ---------------------------------------------------------------- location (a column pair)


def positions(seed: int, n: int = 1500) -> pa.Table:
    """Positions with impossible values, one-sided and two-sided gaps, and bbox edges."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(-95, 95, n)
    lon = rng.uniform(-185, 185, n)
    lat[:4], lon[:4] = [35.0, 36.5, 90.0, 35.0], [119.0, 121.5, 180.0, 200.0]  # bbox corners
    lat[rng.random(n) < 0.05] = np.nan
    lon[rng.random(n) < 0.05] = np.nan
    return pa.table({"latitude": pa.array(lat, mask=rng.random(n) < 0.03),
                     "longitude": pa.array(lon)})


def location_suite(ignore: str) -> list[dict]:
    return [{"name": "where", "expectations": [
        {"type": "expect_column_pair_values_to_pass_qartod_location",
         "kwargs": {"column_A": "latitude", "column_B": "longitude", "ignore_row_if": ignore}},
        {"type": "expect_column_pair_values_to_pass_qartod_location",
         "kwargs": {"column_A": "latitude", "column_B": "longitude", "ignore_row_if": ignore,
                    "bbox": [119.0, 35.0, 121.5, 36.5], "mostly": 0.01}},
    ]}]


def pair_summary(suite_results):
    out = []
    for suite in suite_results:
        for r in suite.results:
            res = r.result
            first = [tuple(None if v is None or np.isnan(v) else float(v) for v in pair)
                     for pair in res["partial_unexpected_list"]]
            out.append((r.success, res["element_count"], res["unexpected_count"],
                        res["missing_count"], first))
    return out


@pytest.mark.parametrize("ignore", ["both_values_are_missing", "either_value_is_missing",
                                    "neither"])
def test_location_adapter_matches_ges_own_engine_across_chunks(ignore):
    suite = location_suite(ignore)
    parts = [positions(seed) for seed in (1, 2, 3)]
    checks = compile_checks(suite)
    arrow = chunk_metrics(parts[0], checks, (0, "t", 0))
    for i, part in enumerate(parts[1:], 1):
        arrow = merge_metrics(arrow, chunk_metrics(part, checks, (0, "t", i)))
    whole = pa.concat_tables(parts)
    expected = pair_summary(results.suite_results(suite, ge_chunk_metrics(whole, suite)))
    assert pair_summary(results.suite_results(suite, arrow)) == expected
    assert expected[0][2] > 0 and expected[1][2] > expected[0][2]


def test_location_adapter_fails_exactly_the_rows_qc_fails():
    t = positions(9)
    lat = t.column("latitude").cast(pa.float64()).to_numpy(zero_copy_only=False)
    lon = t.column("longitude").to_numpy(zero_copy_only=False)
    fails = int(np.count_nonzero(qc_position.location(lat, lon) == 4))
    entry = chunk_metrics(t, compile_checks(location_suite("both_values_are_missing")))
    assert entry["checks"]["where[0]"]["unexpected"] == fails > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"column_A": "latitude"}, "column_A and column_B must be column names"),
    ({"column_A": "latitude", "column_B": "longitude", "bbox": [10, 0, 5, 1]},
     r"bbox must be \[lon_min, lat_min, lon_max, lat_max\]"),
    ({"column_A": "latitude", "column_B": "longitude", "ignore_row_if": "never"},
     "ignore_row_if must be one of"),
])
def test_bad_location_kwargs_are_refused(kwargs, message):
    with pytest.raises(SuiteError, match=message):
        compile_checks([{"name": "s", "expectations": [
            {"type": "expect_column_pair_values_to_pass_qartod_location", "kwargs": kwargs}]}])
