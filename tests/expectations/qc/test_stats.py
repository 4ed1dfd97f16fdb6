"""QC statistics for the report: series envelopes and flagged-row samples merge exactly."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import ColumnInfo
from expectations.qc import stats as qc_stats
from expectations.qc.apply import apply_qc
from expectations.qc.config import QCConfig
from expectations.qc.plan import plan_qc
from expectations.qc.stats import merge_qc_stats

COLUMNS = (ColumnInfo("time", "coordinate"), ColumnInfo("station_id", "id"),
           ColumnInfo("sea_water_temperature", "variable"))
CONFIG = QCConfig(tests=["gross_range", "spike"])


def _table(minutes, values, stations) -> pa.Table:
    return pa.table({
        "time": pa.array(np.asarray(minutes, np.int64) * 60_000_000, pa.int64()).cast(
            pa.timestamp("us", tz="UTC")),
        "station_id": np.asarray(stations),
        "sea_water_temperature": np.asarray(values, np.float64)})


rows = st.lists(st.tuples(st.integers(0, 400_000),                     # minutes: up to 9 months
                          st.one_of(st.floats(-5, 45), st.just(np.nan), st.just(np.inf)),
                          st.sampled_from(["a", "b"])), min_size=1, max_size=150)


@settings(deadline=None, max_examples=60)
@given(rows, st.lists(st.integers(1, 149), max_size=4))
def test_series_and_samples_merge_to_the_one_pass_result(data, cuts):
    minutes, values, stations = (list(v) for v in zip(*data, strict=True))
    table = _table(minutes, values, stations)
    plan = plan_qc(COLUMNS, CONFIG)
    flagged = apply_qc(table, plan).table
    whole = qc_stats.qc_stats(flagged, plan)
    bounds = [0, *sorted(c for c in cuts if c < table.num_rows), table.num_rows]
    parts = [qc_stats.qc_stats(flagged.slice(a, b - a), plan)
             for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    merged = {}
    for part in parts:
        merged = merge_qc_stats(merged, part)
    backwards = {}
    for part in reversed(parts):
        backwards = merge_qc_stats(part, backwards)
    for key in ("series", "samples"):
        assert merged.get(key) == whole.get(key) == backwards.get(key)


def test_series_level_keeps_at_most_the_bin_limit():
    minutes = np.arange(0, 60 * 24 * 30, 10)  # 10-minute samples for 30 days
    table = _table(minutes, np.sin(minutes / 500.0) * 5 + 10, ["a"] * minutes.size)
    stats = apply_qc(table, plan_qc(COLUMNS, CONFIG)).stats["series"]["sea_water_temperature"]
    bins = stats["bins"]
    assert len(bins) <= qc_stats.SERIES_BINS
    width = 2 ** stats["level"]  # minutes per bin: the finest that fits
    assert len(set(minutes // (width // 2))) > qc_stats.SERIES_BINS
    assert sum(entry[0] for entry in bins.values()) == minutes.size
    assert min(entry[1] for entry in bins.values()) >= 5 - 1e-9


def test_samples_are_the_first_flagged_rows_with_their_tests():
    values = [10.0, 10.0, 50.0, 10.0, 10.0, 37.0, 10.0]
    table = _table(range(7), values, ["a"] * 7)
    stats = apply_qc(table, plan_qc(COLUMNS, CONFIG)).stats
    samples = stats["samples"]["sea_water_temperature"]
    # spike (default thresholds 2 and 6, average method) fails the peaks and their neighbours
    assert [(s["time"][11:16], s["value"], s["flag"]) for s in samples] == [
        ("00:01", 10.0, 4), ("00:02", 50.0, 4), ("00:03", 10.0, 4), ("00:04", 10.0, 4),
        ("00:05", 37.0, 4)]
    assert samples[1]["tests"] == {"gross_range": 4, "spike": 4}
    assert samples[4]["tests"] == {"gross_range": 3, "spike": 4}
    assert samples[1]["platform"] == "a" and samples[1]["quarantined"] is None
