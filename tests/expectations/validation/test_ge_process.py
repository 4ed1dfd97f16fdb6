"""The Great Expectations helper process: same results as in-process, errors and fallbacks."""
from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pytest

from expectations.exceptions import SuiteError
from expectations.validation.arrow_metrics import chunk_metrics
from expectations.validation.checks import compile_checks
from expectations.validation.ge.process import Judge, evaluate

SUITES = [{"name": "ranges", "expectations": [
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "x", "min_value": 0.0, "max_value": 10.0}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x", "mostly": 0.5}},
    {"type": "expect_column_max_to_be_between", "kwargs": {"column": "x", "max_value": 5.0}},
]}]
TABLE = pa.table({"x": pa.array(np.array([1.0, 12.0, np.nan, 4.0, -3.0], np.float32))})


def metrics():
    return chunk_metrics(TABLE, compile_checks(SUITES), order=(0, "t", 0))


def test_helper_gives_the_results_computed_in_process():
    with Judge() as judge:
        from_helper = judge.results(SUITES, metrics())
    assert from_helper == evaluate(SUITES, metrics())
    (suite,) = from_helper
    assert suite["suite_name"] == "ranges" and suite["success"] is False
    between = suite["results"][0]["result"]
    assert (between["element_count"], between["unexpected_count"]) == (5, 2)


def test_a_rejected_suite_raises_the_same_error_as_in_process():
    bad = [{"name": "bad", "expectations": [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "x", "min_value": "ten"}}]}]
    with pytest.raises(SuiteError) as in_process:
        evaluate(bad, metrics())
    with Judge() as judge, pytest.raises(SuiteError) as from_helper:
        judge.results(bad, metrics())
    assert str(from_helper.value) == str(in_process.value)


def test_a_dead_helper_falls_back_to_this_process(caplog):
    judge = Judge().start()
    judge._process.kill()
    judge._process.wait()
    with caplog.at_level(logging.WARNING, logger="expectations.validation.ge.process"):
        results = judge.results(SUITES, metrics())
    judge.close()
    assert results == evaluate(SUITES, metrics())
    assert "computing results in this process" in caplog.text


def test_no_suites_need_no_helper():
    judge = Judge()  # never started
    assert judge.results([], {}) == []
    judge.close()


def test_the_reply_is_read_without_waiting_for_the_helper_to_exit():
    """A process that imported GE takes ~0.5 s to shut down: the run must not wait for it."""
    import subprocess
    import sys

    from expectations.validation.ge.process import _exchange

    helper = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.readline(); "
                               "print('{\"results\": []}', flush=True); time.sleep(60)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert _exchange(helper, b"{}\n", timeout=60) == b'{"results": []}\n'
        assert helper.poll() is None  # still alive (sleeping): the reply did not wait for exit
    finally:
        helper.kill()
        helper.wait()
