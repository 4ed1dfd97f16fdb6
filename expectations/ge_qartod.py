"""QARTOD tests as Great Expectations expectations: thin adapters over :mod:`expectations.qc`.

Importing this module registers with GE (its registry is filled when a class is defined):

- metric ``column_values.qartod_gross_range``: a row passes unless
  :func:`expectations.qc.gross_range` flags it FAIL (outside ``fail_span``). SUSPECT rows pass,
  missing values are left to GE's own null handling, as for every column map expectation;
- expectation ``expect_column_values_to_pass_qartod_gross_range`` (``column``, ``fail_span``,
  optional ``suspect_span``, ``mostly``).

The adapters hold no test logic: the pandas metric calls the QC function, and Haina's arrow engine
(:mod:`expectations.engine`) calls the same function per chunk, so a suite using them gives the
same counts on either engine (``tests/expectations/test_ge_qartod.py``). Use them in your own
suites (``quality.suites``); the run's QC step already writes the flags of every test as columns.
"""
from __future__ import annotations

from typing import ClassVar, List, Optional

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

from expectations import flags, qc

GROSS_RANGE = "expect_column_values_to_pass_qartod_gross_range"


class ColumnValuesPassQartodGrossRange(ColumnMapMetricProvider):
    condition_metric_name = "column_values.qartod_gross_range"
    condition_value_keys = ("fail_span", "suspect_span")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, fail_span, suspect_span=None, **_kwargs) -> pd.Series:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        verdict = qc.gross_range(values, fail_span, suspect_span)
        return pd.Series(verdict != flags.FAIL, index=column.index)


class ExpectColumnValuesToPassQartodGrossRange(ColumnMapExpectation):
    """Expect no value outside the QARTOD gross range test's ``fail_span`` (sensor limits)."""

    fail_span: List[float]
    suspect_span: Optional[List[float]] = None

    map_metric = "column_values.qartod_gross_range"
    args_keys = ("column", "fail_span", "suspect_span")
    success_keys = ("fail_span", "suspect_span", "mostly")
    library_metadata: ClassVar[dict] = {
        "maturity": "experimental", "tags": ["qartod", "haina"], "contributors": ["haina"]}
