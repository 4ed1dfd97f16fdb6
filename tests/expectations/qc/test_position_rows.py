"""Position expectations count only rows of AIS message types that carry a position."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from connectors.ais.csv import AisCsv, AisCsvConfig
from connectors.ais.nmea import AisNmea, AisNmeaConfig
from expectations.exceptions import UnsupportedExpectationError
from expectations.quality_config import QualityConfig
from expectations.validation.arrow_metrics import chunk_metrics
from expectations.validation.checks import compile_checks
from expectations.validation.gate import evaluate_gate
from expectations.validation.ge.engine import ge_chunk_metrics
from expectations.validation.judgement import suite_results
from expectations.validation.merge import merge_metrics
from expectations.validation.suites import COORDINATES_SUITE, suites_for
from tests.conftest import require_shared_data

POSITION_TYPES = [1, 2, 3, 4, 9, 11, 18, 19, 21, 27]
CONDITION = f"msg_type in [{', '.join(map(str, POSITION_TYPES))}]"


def _coordinates(columns) -> dict:
    suites = suites_for(columns, QualityConfig(), None, Path("."))
    return next(s for s in suites if s["name"] == COORDINATES_SUITE)


def _not_null(suite: dict, column: str) -> dict:
    return next(e for e in suite["expectations"] if e["type"].endswith("not_be_null")
                and e["kwargs"]["column"] == column)


def _nmea_plan(path: Path):
    return AisNmea().plan(AisNmeaConfig(uri=str(path)), str(path), "0" * 64,
                          path.stat().st_size)


def test_nmea_position_checks_are_conditioned_on_message_type():
    path = require_shared_data("ais/libais_typeexamples.nmea")
    suite = _coordinates(_nmea_plan(path).columns)
    for column in ("latitude", "longitude"):
        kwargs = _not_null(suite, column)["kwargs"]
        assert kwargs["row_condition"] == CONDITION
        assert kwargs["condition_parser"] == "pandas"
    assert "row_condition" not in _not_null(suite, "time")["kwargs"]
    # a range check still covers every row: an impossible value is wrong in any message
    between = [e for e in suite["expectations"] if e["type"].endswith("be_between")]
    assert between and all("row_condition" not in e["kwargs"] for e in between)


def test_decoded_csv_rows_are_all_checked():
    """MarineCadastre rows have no msg_type (every row is a position report)."""
    path = require_shared_data("ais/aisdb_marinecadastre_test_data_noaa_20230101.csv")
    plan = AisCsv().plan(AisCsvConfig(uri=str(path)), str(path), "0" * 64, path.stat().st_size)
    assert "row_condition" not in _not_null(_coordinates(plan.columns), "latitude")["kwargs"]


SUITE = {"name": "s", "expectations": [
    {"type": "expect_column_values_to_not_be_null",
     "kwargs": {"column": "latitude", "row_condition": "msg_type in [1, 18]",
                "condition_parser": "pandas"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "latitude"}}]}


def _chunk(msg_types, latitudes) -> pa.Table:
    return pa.table({"msg_type": pa.array(msg_types, pa.int16()),
                     "latitude": pa.array(latitudes, pa.float64())})


def test_arrow_engine_counts_only_the_selected_rows():
    a = _chunk([1, 5, 24, 1, None], [10.0, None, None, None, None])
    b = _chunk([18, 5], [20.0, None])
    checks = compile_checks([SUITE])
    merged = merge_metrics(chunk_metrics(a, checks, [0]), chunk_metrics(b, checks, [1]))
    conditioned, every = merged["checks"]["s[0]"], merged["checks"]["s[1]"]
    assert (conditioned["rows"], conditioned["unexpected"], conditioned["nulls"]) == (3, 1, 1)
    assert conditioned["values"] == [[[0], 3, None]]  # row 3 of the first chunk
    assert every["nulls"] == 5
    result = suite_results([SUITE], merged)[0].results[0].result
    assert (result["element_count"], result["unexpected_count"]) == (3, 1)
    decision = evaluate_gate(suite_results([SUITE], merged), QualityConfig())
    assert len(decision.failures) == 2 and "1 of 3 rows" in decision.failures[0]


def test_arrow_engine_matches_great_expectations():
    chunk = _chunk([1, 5, 24, 1, 18, None, 3], [10.0, None, None, None, 95.0, None, -3.0])
    ours = chunk_metrics(chunk, compile_checks([SUITE]), [0])["checks"]
    ge = ge_chunk_metrics(chunk, [SUITE], [0])["checks"]
    assert ours["s[0]"] == ge["s[0]"]
    assert ours["s[1]"]["unexpected"] == ge["s[1]"]["unexpected"] == 4


@pytest.mark.parametrize("kwargs, word", [
    ({"row_condition": "msg_type > 3", "condition_parser": "pandas"}, "msg_type > 3"),
    ({"row_condition": 'col("msg_type").isin([1])', "condition_parser": "great_expectations"},
     "condition_parser"),
    ({"row_condition": "msg_type in [1]"}, "condition_parser"),
])
def test_other_row_conditions_are_refused(kwargs, word):
    suite = {"name": "s", "expectations": [{"type": "expect_column_values_to_not_be_null",
                                            "kwargs": {"column": "latitude", **kwargs}}]}
    with pytest.raises(UnsupportedExpectationError, match="great_expectations") as err:
        compile_checks([suite])
    assert word in str(err.value)


def test_table_expectations_still_refuse_a_row_condition():
    suite = {"name": "s", "expectations": [{"type": "expect_table_row_count_to_be_between",
                                            "kwargs": {"min_value": 1,
                                                "row_condition": "msg_type in [1]",
                                                "condition_parser": "pandas"}}]}
    with pytest.raises(UnsupportedExpectationError, match="row_condition"):
        compile_checks([suite])
