"""The arrow metrics engine against GE's own pandas engine, on seeded synthetic chunks."""
from __future__ import annotations

import datetime as dt
import json
import pickle
import time

import numpy as np
import pyarrow as pa
import pytest

from expectations.validation.arrow_metrics import chunk_metrics
from expectations.validation.checks import compile_checks
from expectations.validation.encoding import python_value
from expectations.validation.ge.engine import ge_chunk_metrics
from expectations.validation.merge import merge_all, merge_metrics

UTC = dt.UTC
START = dt.datetime(2020, 1, 1, tzinfo=UTC)

SUITES = [
    {"name": "coords", "expectations": [
        {"type": "expect_column_to_exist", "kwargs": {"column": "time"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "nope"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "time"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "time", "min_value": "2020-01-02T00:00:00+00:00",
            "max_value": "2020-01-20T00:00:00+00:00"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "longitude", "min_value": -180.0, "max_value": 180.0, "strict_max": True}},
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "depth", "min_value": -5.0, "max_value": 11000.0}},
        {"type": "expect_column_min_to_be_between", "kwargs": {
            "column": "time", "min_value": "2020-01-01T00:00:00+00:00"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1,
                                                                     "max_value": 100000}},
    ]},
    {"name": "temp", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "temp", "min_value": -2.5, "max_value": 40.0}},
        # float32(0.1) > 0.1 in float64 but not in float32: the precision case
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "temp", "min_value": 0.1, "strict_min": True}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "temp",
                                                                    "mostly": 0.9}},
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "temp", "min_value": 0.0, "max_value": 30.0, "mostly": 0.95}},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "temp",
                                                                "max_value": 40.0}},
        {"type": "expect_column_min_to_be_between", "kwargs": {"column": "temp",
                                                                "min_value": 0.1}},
    ]},
    {"name": "other", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "count", "min_value": 0, "max_value": 90}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {
            "column": "flag", "value_set": ["good", "suspect"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {
            "column": "count", "value_set": [1, 2, 3], "mostly": 0.01}},
        # QARTOD flag columns: uint8, checked against the five codes (the engine's count path)
        {"type": "expect_column_values_to_be_in_set", "kwargs": {
            "column": "qc_flag", "value_set": [1, 2, 3, 4, 9]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {
            "column": "qc_flag", "value_set": [1, 2, 9], "mostly": 0.5}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {
            "column": "qc_constant", "value_set": [1, 2, 3, 4, 9]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {
            "column": "qc_constant", "value_set": [3, 4]}},
        {"type": "expect_column_values_to_be_between", "kwargs": {
            "column": "missing_col", "min_value": 0}},
    ]},
]


def synthetic(n: int, seed: int) -> pa.Table:
    """Seeded table with nulls, NaNs, out-of-range values, boundary values and timestamps."""
    rng = np.random.default_rng(seed)
    times = np.datetime64("2020-01-01", "us") + rng.integers(0, 25 * 86400, n) * 10**6
    time_mask = rng.random(n) < 0.01
    temp = rng.normal(15, 12, n).astype(np.float32)
    temp[rng.random(n) < 0.02] = np.nan
    temp[rng.integers(0, n, 3)] = np.float32(0.1)
    temp[rng.integers(0, n, 3)] = np.float32(40.0)
    temp_mask = rng.random(n) < 0.02
    lon = rng.uniform(-181, 181, n)
    lon[rng.integers(0, n, 2)] = 180.0
    depth = rng.uniform(-10, 100, n)
    depth[rng.random(n) < 0.3] = np.nan  # NaN, not null: must count as missing like GE does
    flags = rng.choice(np.array(["good", "suspect", "bad"]), n, p=[0.9, 0.08, 0.02])
    return pa.table({
        "time": pa.array(times, pa.timestamp("us"), mask=time_mask).cast(
            pa.timestamp("us", tz="UTC")),
        "longitude": pa.array(lon, pa.float64()),
        "depth": pa.array(depth, pa.float64()),
        "temp": pa.array(temp, pa.float32(), mask=temp_mask),
        "count": pa.array(rng.integers(0, 100, n), pa.int64()),
        "flag": pa.array(flags, pa.string(), mask=rng.random(n) < 0.05),
        "qc_flag": pa.array(rng.choice(np.array([1, 1, 1, 2, 3, 4, 9, 7], np.uint8), n)),
        "qc_constant": pa.array(np.ones(n, np.uint8)),
    })


FIELDS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")


def summary(results) -> list[tuple]:
    """What parity means: GE's success and counts, per expectation."""
    out = []
    for suite in results:
        for r in suite.results:
            observed = r.result or {}
            out.append((suite.suite_name, r.expectation_config.type, r.success,
                        bool((r.exception_info or {}).get("raised_exception")),
                        *(observed.get(f) for f in FIELDS),
                        python_value(observed.get("observed_value")),
                        [python_value(v) for v in observed.get("partial_unexpected_list", [])]))
    return out


@pytest.fixture(scope="module")
def results_module():
    return pytest.importorskip("expectations.validation.judgement")


def test_single_chunk_parity(results_module):
    table = synthetic(3000, seed=1)
    checks = compile_checks(SUITES)
    arrow = results_module.suite_results(SUITES, chunk_metrics(table, checks))
    ge = results_module.suite_results(SUITES, ge_chunk_metrics(table, SUITES))
    assert summary(arrow) == summary(ge)
    # the data really exercises failures, nulls and NaNs
    assert any(not s for *_, s in [(r.success,) for suite in arrow for r in suite.results])
    temp_range = arrow[1].results[0].result
    assert temp_range["unexpected_count"] > 0 and temp_range["missing_count"] > 0


def test_merged_chunks_equal_whole_table_and_ge(results_module):
    table = synthetic(4000, seed=2)
    checks = compile_checks(SUITES)
    bounds = [0, 700, 701, 2500, 4000]  # includes a 1-row chunk
    chunks = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)]
    parts = [chunk_metrics(c, checks, order=(i,)) for i, c in enumerate(chunks)]
    merged = merge_all(reversed(parts))  # merge order must not matter
    whole = chunk_metrics(table, checks)
    ge_parts = merge_all(ge_chunk_metrics(c, SUITES, order=(i,)) for i, c in enumerate(chunks))
    expected = summary(results_module.suite_results(SUITES, ge_chunk_metrics(table, SUITES)))
    assert summary(results_module.suite_results(SUITES, merged)) == expected
    assert summary(results_module.suite_results(SUITES, whole)) == expected
    assert summary(results_module.suite_results(SUITES, ge_parts)) == expected


def test_null_and_nan_counted_as_missing_like_ge():
    table = pa.table({"x": pa.array([1.0, None, float("nan"), 50.0], pa.float32())})
    suites = [{"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "x", "min_value": 0, "max_value": 10}}]}]
    entry = chunk_metrics(table, compile_checks(suites))["checks"]["s[0]"]
    assert (entry["nulls"], entry["unexpected"]) == (2, 1)
    assert entry["values"] == [[[], 3, 50.0]]


def test_merge_is_associative_commutative_with_identity():
    checks = compile_checks(SUITES)
    table = synthetic(900, seed=3)
    a, b, c = (chunk_metrics(table.slice(i * 300, 300), checks, order=(i,)) for i in range(3))
    left = merge_metrics(merge_metrics(a, b), c)
    right = merge_metrics(a, merge_metrics(b, c))
    assert left == right == merge_metrics(c, merge_metrics(b, a))
    assert merge_metrics({}, a) == a == merge_metrics(a, {})
    assert left["rows"] == 900
    assert json.loads(json.dumps(left)) == left  # JSON-able
    assert pickle.loads(pickle.dumps(left)) == left


def test_first_unexpected_values_in_row_order_across_chunks():
    table = pa.table({"v": pa.array(np.arange(100, dtype=np.float64))})
    suites = [{"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "v", "max_value": 9}}]}]
    checks = compile_checks(suites)
    parts = [chunk_metrics(table.slice(i * 25, 25), checks, order=(i,)) for i in range(4)]
    merged = merge_all([parts[3], parts[1], parts[0], parts[2]])
    values = [v for _, _, v in merged["checks"]["s[0]"]["values"]]
    assert merged["checks"]["s[0]"]["unexpected"] == 90
    assert values == [float(x) for x in range(10, 30)]


def test_chunk_metrics_does_not_import_great_expectations():
    import subprocess
    import sys
    code = ("import sys, pyarrow as pa; from expectations.validation.arrow_metrics import chunk_metrics; "
            "from expectations.validation.checks import compile_checks; from expectations.validation.suites import "
            "suites_for; from expectations.validation.gate import evaluate_gate; "
            "assert 'great_expectations' not in sys.modules, 'GE imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_float32_aggregate_compares_in_float32_like_ge(results_module):
    # pandas' Series.min() of float32 is np.float32, which NumPy compares with 0.1 in float32
    table = pa.table({"x": pa.array([0.1, 0.5], pa.float32())})
    suites = [{"name": "s", "expectations": [
        {"type": "expect_column_min_to_be_between",
         "kwargs": {"column": "x", "min_value": 0.1, "strict_min": True}}]}]
    arrow = results_module.suite_results(suites, chunk_metrics(table, compile_checks(suites)))
    ge = results_module.suite_results(suites, ge_chunk_metrics(table, suites))
    assert summary(arrow) == summary(ge)
    assert arrow[0].results[0].success is False


def _clean(n: int) -> pa.Table:
    rng = np.random.default_rng(5)
    times = np.datetime64("2020-01-03", "us") + rng.integers(0, 10 * 86400, n) * 10**6
    return pa.table({
        "time": pa.array(times, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
        "longitude": pa.array(rng.uniform(-179, 179, n)),
        "depth": pa.array(rng.uniform(0, 100, n)),
        "temp": pa.array(rng.uniform(1, 29, n).astype(np.float32)),
    })


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def test_measure_per_chunk_cost(results_module, capsys):
    """Prints (does not assert) the cost of both engines on a 1M-row chunk."""
    suites = SUITES[:2]
    checks = compile_checks(suites)
    failing = synthetic(1_000_000, seed=4).drop_columns(["flag", "count"])
    clean = _clean(1_000_000)
    chunk_metrics(clean, checks)  # warm-up
    clean_s, failing_s = _timed(chunk_metrics, clean, checks), _timed(chunk_metrics, failing, checks)
    ge_s = _timed(ge_chunk_metrics, clean.slice(0, 100_000), suites) * 10
    with capsys.disabled():
        print(f"\n[expectations] 1M rows, {len(checks)} checks: arrow chunk_metrics "
              f"{clean_s * 1000:.1f} ms (all in range), {failing_s * 1000:.1f} ms (failures in "
              f"every column); GE pandas engine ~{ge_s * 1000:.0f} ms (100k rows x 10)")
