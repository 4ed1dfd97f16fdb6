"""QARTOD tests as Great Expectations expectations: thin adapters over :mod:`expectations.qc.qartod`.

Importing this module registers with GE (its registry is filled when a class is defined):

- metric ``column_values.qartod_gross_range``: a row passes unless
  :func:`expectations.qc.qartod.gross_range` flags it FAIL (outside ``fail_span``). SUSPECT rows pass,
  missing values are left to GE's own null handling, as for every column map expectation;
- expectation ``expect_column_values_to_pass_qartod_gross_range`` (``column``, ``fail_span``,
  optional ``suspect_span``, ``mostly``);
- metric ``column_pair_values.qartod_location``: a (latitude, longitude) row passes unless
  :func:`expectations.qc.position.location` flags it FAIL (impossible or one-sided coordinates, or
  outside the optional ``bbox``); rows with both missing are ignored, GE's default;
- expectation ``expect_column_pair_values_to_pass_qartod_location`` (``column_A`` latitude,
  ``column_B`` longitude, optional ``bbox`` ``[lon_min, lat_min, lon_max, lat_max]``,
  ``ignore_row_if``, ``mostly``).

The adapters hold no test logic: the pandas metric calls the QC function, and Haina's arrow engine
(:mod:`expectations.validation.arrow_metrics`) calls the same function per chunk, so a suite using them gives the
same counts on either engine (``tests/expectations/validation/test_ge_qartod.py``). Use them in your own
suites (``quality.suites``); the run's QC step already writes the flags of every test as columns.
"""
from __future__ import annotations

from typing import ClassVar, List, Literal

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)

from expectations.qc import flags
from expectations.qc import position as qc_position
from expectations.qc import qartod as qc

GROSS_RANGE = "expect_column_values_to_pass_qartod_gross_range"
LOCATION = "expect_column_pair_values_to_pass_qartod_location"


def _floats(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


class ColumnValuesPassQartodGrossRange(ColumnMapMetricProvider):
    condition_metric_name = "column_values.qartod_gross_range"
    condition_value_keys = ("fail_span", "suspect_span")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, fail_span, suspect_span=None, **_kwargs) -> pd.Series:
        verdict = qc.gross_range(_floats(column), fail_span, suspect_span)
        return pd.Series(verdict != flags.FAIL, index=column.index)


class ExpectColumnValuesToPassQartodGrossRange(ColumnMapExpectation):
    """Expect no value outside the QARTOD gross range test's ``fail_span`` (sensor limits)."""

    fail_span: List[float]
    suspect_span: List[float] | None = None

    map_metric = "column_values.qartod_gross_range"
    args_keys = ("column", "fail_span", "suspect_span")
    success_keys = ("fail_span", "suspect_span", "mostly")
    library_metadata: ClassVar[dict] = {
        "maturity": "experimental", "tags": ["qartod", "haina"], "contributors": ["haina"]}


class ColumnPairValuesPassQartodLocation(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.qartod_location"
    condition_domain_keys = ("batch_id", "table", "column_A", "column_B", "row_condition",
                             "condition_parser", "ignore_row_if")
    condition_value_keys = ("bbox",)

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: pd.Series, column_B: pd.Series, bbox=None,
                **_kwargs) -> pd.Series:
        verdict = qc_position.location(_floats(column_A), _floats(column_B), bbox=bbox)
        return pd.Series(verdict != flags.FAIL, index=column_A.index)


class ExpectColumnPairValuesToPassQartodLocation(ColumnPairMapExpectation):
    """Expect valid positions (QARTOD location test): ``column_A`` latitude, ``column_B``
    longitude, optionally inside ``bbox`` = [lon_min, lat_min, lon_max, lat_max]."""

    bbox: List[float] | None = None
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing",
                           "neither"] = "both_values_are_missing"

    map_metric = "column_pair_values.qartod_location"
    args_keys = ("column_A", "column_B", "bbox")
    success_keys = ("column_A", "column_B", "bbox", "ignore_row_if", "mostly")
    library_metadata: ClassVar[dict] = {
        "maturity": "experimental", "tags": ["qartod", "haina"], "contributors": ["haina"]}
