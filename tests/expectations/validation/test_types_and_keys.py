"""Column types and compound-key uniqueness: the arrow engine against GE's own pandas engine.

Uniqueness is the one check no chunk can decide alone: these tests spread duplicates over
chunks, bucket every chunk's keys as the pipeline does, and compare the run-level result with GE
validating the whole table in one pandas frame.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from expectations.exceptions import SuiteError
from expectations.validation import arrow_metrics, keys, merge
from expectations.validation import judgement as results
from expectations.validation.checks import compile_checks
from expectations.validation.ge import engine as ge_engine

TYPES = {
    "f32": pa.float32(), "f64": pa.float64(), "i64": pa.int64(), "u8": pa.uint8(),
    "flag": pa.bool_(), "name": pa.string(), "time": pa.timestamp("us", tz="UTC"),
    "cat": pa.dictionary(pa.int32(), pa.string()),
}
EXPECTED = {"f32": "float32", "f64": "float64", "i64": "int64", "u8": "uint8", "flag": "bool",
            "name": "str", "time": "datetime64[us, UTC]", "cat": "category"}


def typed_table(n: int, nulls: bool) -> pa.Table:
    rng = np.random.default_rng(n)
    mask = (rng.random(n) < 0.3) if nulls else None
    return pa.table({
        "f32": pa.array(rng.random(n).astype(np.float32), mask=mask),
        "f64": pa.array(rng.random(n), mask=mask),
        "i64": pa.array(rng.integers(0, 9, n), pa.int64(), mask=mask),
        "u8": pa.array(rng.integers(0, 9, n).astype(np.uint8)),
        "flag": pa.array(rng.random(n) < 0.5, mask=mask),
        "name": pa.array(rng.choice(["a", "b"], n), pa.string(), mask=mask),
        "time": pa.array(rng.integers(0, 10**12, n), pa.int64()).cast(TYPES["time"]),
        "cat": pa.array(rng.choice(["x", "y"], n)).dictionary_encode(),
    })


def type_suites(expected: dict[str, str]) -> list[dict]:
    return [{"name": "types", "expectations": [
        {"type": "expect_column_type_to_be", "kwargs": {"column": c, "type_": t}}
        for c, t in expected.items()]}]


def outcome(suite_results) -> list[tuple]:
    return [(r.expectation_config.kwargs.get("column"), r.success,
             (r.result or {}).get("observed_value"),
             bool((r.exception_info or {}).get("raised_exception")))
            for suite in suite_results for r in suite.results]


@pytest.mark.parametrize("nulls", [False, True])
def test_types_match_ge_on_one_chunk(nulls):
    table = typed_table(500, nulls)
    suites = type_suites(EXPECTED)
    arrow = results.suite_results(suites, arrow_metrics.chunk_metrics(table, compile_checks(suites)))
    ge = results.suite_results(suites, ge_engine.ge_chunk_metrics(table, suites))
    assert outcome(arrow) == outcome(ge)
    failed = {column for column, success, *_ in outcome(arrow) if not success}
    # pandas turns integers with nulls into float64 and booleans with nulls into object
    assert failed == ({"i64", "flag"} if nulls else set())


def test_run_level_type_is_the_whole_tables_as_ge_sees_it():
    """One chunk with a null makes the whole int column float64 in pandas: merged metrics say so."""
    whole = pa.concat_tables([typed_table(300, False), typed_table(200, True)])
    suites = type_suites(EXPECTED)
    checks = compile_checks(suites)
    parts = [arrow_metrics.chunk_metrics(whole.slice(0, 300), checks, order=(0,)),
             arrow_metrics.chunk_metrics(whole.slice(300), checks, order=(1,))]
    merged = results.suite_results(suites, merge.merge_all(parts))
    ge = results.suite_results(suites, ge_engine.ge_chunk_metrics(whole, suites))
    assert outcome(merged) == outcome(ge)
    assert ("i64", False, "float64", False) in outcome(merged)


def test_a_column_whose_type_differs_between_chunks_fails_with_both_types():
    suites = type_suites({"x": "int64"})
    checks = compile_checks(suites)
    parts = [arrow_metrics.chunk_metrics(pa.table({"x": pa.array([1], pa.int64())}), checks),
             arrow_metrics.chunk_metrics(pa.table({"x": pa.array([1], pa.int32())}), checks)]
    (result,) = results.suite_results(suites, merge.merge_all(parts))[0].results
    assert not result.success
    assert "different types in different chunks: int32, int64" in \
        result.exception_info["exception_message"]


def test_type_of_a_missing_column_fails_as_ge_reports_it():
    suites = type_suites({"absent": "float64"})
    metrics = arrow_metrics.chunk_metrics(pa.table({"x": [1.0]}), compile_checks(suites))
    (result,) = results.suite_results(suites, metrics)[0].results
    assert not result.success and "does not exist" in result.exception_info["exception_message"]


@pytest.mark.parametrize("kwargs, message", [
    ({"column": "x", "type_": "no_such_dtype"}, "is not a dtype pandas knows"),
    ({"column": "x", "type_": 3}, "type_ must be a pandas dtype name"),
])
def test_bad_type_names_are_refused_before_any_work(kwargs, message):
    with pytest.raises(SuiteError, match=message):
        compile_checks([{"name": "s", "expectations": [
            {"type": "expect_column_type_to_be", "kwargs": kwargs}]}])


# ---------------------------------------------------------------- uniqueness


def keyed_table(n: int, seed: int) -> pa.Table:
    """Stations x times with repeats far apart, nulls and NaNs in every key column."""
    rng = np.random.default_rng(seed)
    station = rng.choice(np.array(["A", "B", "C"]), n)
    times = rng.integers(0, n // 2, n) * 60 * 10**6  # about half the rows repeat a key
    depth = rng.choice(np.array([0.0, -0.0, 5.0, np.nan]), n)
    return pa.table({
        "station": pa.array(station, pa.string(), mask=rng.random(n) < 0.05),
        "time": pa.array(times, pa.int64(), mask=rng.random(n) < 0.05).cast(TYPES["time"]),
        "depth": pa.array(depth, pa.float64(), mask=rng.random(n) < 0.05),
        "value": pa.array(rng.random(n)),
    })


def unique_suites(ignore: str) -> list[dict]:
    return [{"name": "keys", "expectations": [
        {"type": "expect_compound_columns_to_be_unique",
         "kwargs": {"column_list": ["station", "time", "depth"], "ignore_row_if": ignore}},
        {"type": "expect_compound_columns_to_be_unique",
         "kwargs": {"column_list": ["station", "time"], "ignore_row_if": ignore, "mostly": 0.2}},
    ]}]


def run_level_metrics(table: pa.Table, suites: list[dict], bounds: list[int]) -> dict:
    """What the pipeline computes: chunk metrics, plus each bucket's keys from all chunks."""
    checks = compile_checks(suites)
    by_id = {c.id: c for c in checks}
    chunks = [(i, table.slice(a, b - a)) for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))]
    parts = [arrow_metrics.chunk_metrics(c, checks, order=(i,)) for i, c in chunks]
    buckets = collections.defaultdict(list)
    for i, chunk in reversed(chunks):  # arrival order must not matter
        for key, value in keys.key_parts(chunk, checks, order=(i,)):
            buckets[key].append(value)
    parts += [keys.duplicate_metrics(by_id[check_id], values)
              for (check_id, _), values in buckets.items()]
    return merge.merge_all(parts)


def ge_whole_table(table: pa.Table, suites: list[dict]) -> list:
    """GE's pandas engine on the whole table in one frame: the truth for uniqueness."""
    by_id = ge_engine.ge_validate_chunk(table, suites)
    return [by_id[check.id] for check in compile_checks(suites)]


def comparable(outcomes) -> list[tuple]:
    out = []
    for r in outcomes:
        res = r.result
        keys = [json.dumps({k: _plain(v) for k, v in row.items()}, sort_keys=True,
                           default=str) for row in res["partial_unexpected_list"]]
        out.append((r.success, res["element_count"], res["unexpected_count"],
                    res["missing_count"], res["unexpected_percent"], keys))
    return out


def _plain(value):
    import pandas as pd

    if value is None or pd.isna(value):  # None, NaN and NaT: missing, however pandas spells it
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
    return value


@pytest.mark.parametrize("ignore", ["all_values_are_missing", "any_value_is_missing", "never"])
def test_uniqueness_across_chunks_equals_ge_on_the_whole_table(ignore):
    table = keyed_table(3000, seed=7)
    suites = unique_suites(ignore)
    merged = results.suite_results(suites, run_level_metrics(table, suites,
                                                             [0, 1, 900, 901, 2200, 3000]))
    expected = comparable(ge_whole_table(table, suites))
    expected_counts = [row[:5] for row in expected]
    got = comparable(merged[0].results)
    assert [row[:5] for row in got] == expected_counts
    # first unexpected keys in row order, as GE lists them
    assert [row[5] for row in got] == [row[5] for row in expected]
    assert expected_counts[0][2] > 0 and not expected_counts[0][0]


def test_duplicates_that_only_meet_across_chunks_are_found():
    table = pa.table({"k": pa.array(["a", "b", "c", "a"]), "t": pa.array([1, 2, 3, 1])})
    suites = [{"name": "keys", "expectations": [
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["k", "t"]}}]}]
    merged = run_level_metrics(table, suites, [0, 2, 4])
    entry = merged["checks"]["keys[0]"]
    assert entry["unexpected"] == 2
    assert [(order, row, value) for order, row, value in entry["values"]] == [
        ([0], 0, {"k": "a", "t": 1}), ([1], 1, {"k": "a", "t": 1})]
    assert json.loads(json.dumps(merged)) == merged


def test_signed_zero_and_nan_keys_are_equal_like_pandas():
    table = pa.table({"d": pa.array([0.0, -0.0, float("nan"), None, 1.0]), "k": ["a"] * 5})
    suites = [{"name": "keys", "expectations": [
        {"type": "expect_compound_columns_to_be_unique",
         "kwargs": {"column_list": ["d", "k"], "ignore_row_if": "never"}}]}]
    merged = run_level_metrics(table, suites, [0, 1, 2, 3, 5])
    got = results.suite_results(suites, merged)[0].results[0].result["unexpected_count"]
    want = ge_whole_table(table, suites)[0].result["unexpected_count"]
    assert got == want == 4


def test_key_buckets_are_the_same_in_every_process():
    """Workers on a portable runner must send equal keys to the same bucket: no salted hash."""
    code = ("import pyarrow as pa; from expectations.validation import keys; "
            "t = pa.table({'s': ['A', 'B', None, 'AIS-\u00e9'], 't': [1, 2, 3, None], "
            "'d': [0.0, -0.0, float('nan'), 2.5]}); "
            "print((keys._key_hash(t, ['s', 't', 'd']) % keys.KEY_BUCKETS).tolist())")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1
    buckets = json.loads(outputs.pop())
    assert buckets == (keys._key_hash(pa.table(
        {"s": ["A", "B", None, "AIS-\u00e9"], "t": [1, 2, 3, None],
         "d": [0.0, -0.0, float("nan"), 2.5]}), ["s", "t", "d"]) % keys.KEY_BUCKETS).tolist()


def test_a_missing_key_column_fails_as_ge_reports_it():
    suites = [{"name": "keys", "expectations": [
        {"type": "expect_compound_columns_to_be_unique",
         "kwargs": {"column_list": ["k", "absent"]}}]}]
    metrics = run_level_metrics(pa.table({"k": [1, 1]}), suites, [0, 2])
    (result,) = results.suite_results(suites, metrics)[0].results
    assert not result.success and "does not exist" in result.exception_info["exception_message"]


@pytest.mark.parametrize("kwargs, message", [
    ({"column_list": []}, "two or more distinct column names"),
    ({"column_list": ["a"]}, "two or more distinct column names"),
    ({"column_list": ["a", "a"]}, "two or more distinct column names"),
    ({"column_list": ["a", "b"], "ignore_row_if": "sometimes"}, "ignore_row_if must be one of"),
])
def test_bad_compound_kwargs_are_refused(kwargs, message):
    with pytest.raises(SuiteError, match=message):
        compile_checks([{"name": "s", "expectations": [
            {"type": "expect_compound_columns_to_be_unique", "kwargs": kwargs}]}])


def test_key_step_cost_per_row_is_printed(capsys):
    """Not a timing assertion: prints the per-row cost of keys + duplicates for the record."""
    import time

    table = keyed_table(200_000, seed=1)
    suites = unique_suites("all_values_are_missing")
    start = time.perf_counter()
    metrics = run_level_metrics(table, suites, [0, 50_000, 100_000, 150_000, 200_000])
    elapsed = time.perf_counter() - start
    assert metrics["checks"]["keys[0]"]["unexpected"] > 0
    with capsys.disabled():
        print(f"\nkeys + duplicates: {elapsed * 1e9 / table.num_rows:.0f} ns/row "
              f"(2 checks, 4 chunks, {keys.KEY_BUCKETS} buckets)")
