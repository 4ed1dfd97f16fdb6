"""The pipeline's step functions, without Beam."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa
import pytest

from connectors.base import QUARANTINE_SCHEMA, ChunkSpec, quarantine_table
from expectations.validation.checks import compile_checks
from pipelines.beam import steps
from pipelines.splits import SplitConfig

UTC = dt.UTC
SCHEMA = pa.schema([
    pa.field("time", pa.timestamp("us", tz="UTC")),
    pa.field("latitude", pa.float64()),
    pa.field("temp", pa.float32(), metadata={b"haina.units": b"degC"}),
    pa.field("source_file", pa.string()),
])


def chunk(ordinal=0, uri="a.nc"):
    return ChunkSpec(source_index=0, uri=uri, sha256="ab" * 32, ordinal=ordinal)


def test_conform_orders_casts_and_fills_missing_columns():
    table = pa.table({"latitude": pa.array([1, 2], pa.int32()),
                      "time": pa.array([dt.datetime(2025, 1, 1, tzinfo=UTC)] * 2,
                                       pa.timestamp("us", tz="UTC"))})
    out = steps.conform(table, SCHEMA)
    assert out.schema.names == ["time", "latitude", "temp", "source_file"]
    assert out.column("latitude").type == pa.float64()
    assert out.column("temp").null_count == 2
    assert out.schema.field("temp").metadata == {b"haina.units": b"degC"}


def test_chunk_summary_counts_quarantine_reasons():
    q = quarantine_table(["bad_time", "bad_time", "bad_number"], ["", "", ""], "a.csv",
                         [3, 9, 12], ["x", "y", "z"])
    out = steps.ChunkOutput(chunk(), SCHEMA.empty_table(), rows_in=3, rows_dropped=0,
                            quarantine=q)
    summary = steps.chunk_summary(out)
    rec = summary["sources"]["a.nc"]
    assert rec["rows_quarantined"] == 3
    assert rec["quarantine_reasons"] == {"bad_time": 2, "bad_number": 1}
    assert q.schema == QUARANTINE_SCHEMA


def test_chunk_summary_keys_sources_by_recipe_entry():
    """Entry 1 reading a.nc (a staggered grid's second grid) is counted apart from entry 0."""
    out = steps.ChunkOutput(dataclasses.replace(chunk(), source_index=1), SCHEMA.empty_table(),
                            rows_in=0, rows_dropped=0, quarantine=None)
    (key, rec), = steps.chunk_summary(out)["sources"].items()
    assert (key, rec["uri"], rec["source_index"]) == ("a.nc#1", "a.nc", 1)


def test_merge_summaries_is_exact_and_order_free():
    def summary(uri, rows_in, out, dropped, reasons=None, errors=()):
        return {"sources": {uri: {"sha256": "s", "chunks": 1, "rows_in": rows_in,
                                  "rows_out": out, "rows_dropped": dropped,
                                  "rows_quarantined": sum((reasons or {}).values()),
                                  "quarantine_reasons": reasons or {}, "errors": list(errors)}},
                "metrics": {}}
    parts = [summary("a", 10, 7, 3), summary("a", 5, 4, 0, {"x": 1}), summary("b", 2, 2, 0),
             summary("a", 1, 0, 0, {"x": 1}, errors=["boom"])]
    forward = steps.merge_summaries(parts)
    backward = steps.merge_summaries(parts[::-1])
    assert forward == backward  # one error only, so even the error lists agree
    a = forward["sources"]["a"]
    assert (a["chunks"], a["rows_in"], a["rows_out"], a["rows_dropped"], a["rows_quarantined"]) \
        == (3, 16, 11, 3, 2)
    assert a["quarantine_reasons"] == {"x": 2} and a["errors"] == ["boom"]
    assert forward["sources"]["b"]["rows_in"] == 2


def _table(n):
    return pa.table({"x": pa.array(range(n), pa.int64())})


def test_file_buffer_flushes_at_target_size_in_ordinal_order():
    table = _table(1000)  # 8000 bytes in memory
    buffer = steps.FileBuffer(target_bytes=int(8000 * 0.35 * 2.5), max_buffered_bytes=10**9)
    assert buffer.add(0, "s", "date=2025-01-01", 2, table) == []
    assert buffer.add(0, "s", "date=2025-01-01", 1, table) == []
    ready = buffer.add(0, "s", "date=2025-01-01", 0, table)
    assert len(ready) == 1
    entry, sha, partition, parts = ready[0]
    assert (entry, sha, partition) == (0, "s", "date=2025-01-01")
    assert [ordinal for ordinal, _ in parts] == [0, 1, 2]
    assert buffer.drain() == []


def test_file_buffer_bounds_memory_by_flushing_the_largest():
    buffer = steps.FileBuffer(target_bytes=10**12, max_buffered_bytes=19_000)
    assert buffer.add(0, "s", "p1", 0, _table(1000)) == []
    assert buffer.add(0, "s", "p2", 0, _table(500)) == []
    ready = buffer.add(0, "s", "p3", 0, _table(1000))  # 8 000 + 4 000 + 8 000 buffered > 19 000
    assert [r[2] for r in ready] == ["p1"]
    left = buffer.drain()
    assert sorted(r[2] for r in left) == ["p2", "p3"]


def test_file_buffer_keeps_two_entries_on_one_file_apart():
    """A staggered grid: entries 0 (u) and 1 (v) read one file (one sha256); their rows never
    share an output file."""
    buffer = steps.FileBuffer(target_bytes=10**12, max_buffered_bytes=10**9)
    buffer.add(0, "s", "p", 0, _table(10))
    buffer.add(1, "s", "p", 0, _table(20))
    assert [(e, sha, p, [t.num_rows for _, t in parts]) for e, sha, p, parts in buffer.drain()] \
        == [(0, "s", "p", [10]), (1, "s", "p", [20])]


@pytest.mark.parametrize("arrow_bytes, file_bytes, ratio", [(1000, 250, 0.25), (0, 10, 0.35)])
def test_file_buffer_learns_the_compression_ratio(arrow_bytes, file_bytes, ratio):
    buffer = steps.FileBuffer(1, 1)
    buffer.observe(arrow_bytes, file_bytes)
    assert buffer.ratio == ratio


def test_qc_chunk_quarantines_hard_failed_rows_with_their_content():
    """A row a hard QC test fails leaves the dataset for the quarantine with its time, position
    and values (``raw``, JSON), not only its reason; the chunk's summary samples it."""
    import json

    from connectors.base import ColumnInfo
    from expectations.qc.apply import extend_schema
    from expectations.qc.config import QCConfig
    from expectations.qc.plan import plan_qc

    columns = [ColumnInfo("time", "coordinate"), ColumnInfo("latitude", "coordinate"),
               ColumnInfo("sea_water_temperature", "variable"),
               ColumnInfo("source_file", "source")]
    table = pa.table({
        "time": pa.array([dt.datetime(2025, 1, 1, h, tzinfo=UTC) for h in range(3)],
                         pa.timestamp("us", tz="UTC")),
        "latitude": [10.0, 10.5, 11.0], "sea_water_temperature": [12.0, 99.5, 13.0],
        "source_file": ["a.nc"] * 3})
    plan = plan_qc(columns, QCConfig(hard_tests=["gross_range"]))
    out = steps.ChunkOutput(chunk(), table, rows_in=3, rows_dropped=0, quarantine=None)
    out = steps.qc_chunk(out, plan, extend_schema(table.schema, plan))
    assert out.table.num_rows == 2 and out.rows_quarantined == 1
    assert out.quarantine.schema == QUARANTINE_SCHEMA
    record = out.quarantine.to_pylist()[0]
    assert record["reason"] == "qc_fail:sea_water_temperature:gross_range"
    assert record["detail"] == "sea_water_temperature=99.5 failed the gross_range test"
    row = json.loads(record["raw"])
    assert (row["time"], row["latitude"], row["sea_water_temperature"]) == \
        ("2025-01-01T01:00:00.000000Z", 10.5, 99.5)
    sample = steps.chunk_summary(out)["qc"]["quarantine_sample"]
    assert [r["raw"] for r in sample] == [record["raw"]]


def test_chunk_output_is_frozen_and_steps_return_new_elements():
    """Beam forbids mutating an input: a step makes a new element and leaves its input alone."""
    table = pa.table({"station_id": ["a", "b"], "temp": [1.0, 50.0]})
    out = steps.ChunkOutput(chunk(), table, rows_in=2, rows_dropped=0, quarantine=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.table = table.slice(1)  # type: ignore[misc]
    checks = compile_checks([{"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "temp", "min_value": 0, "max_value": 40}}]}])
    split = steps.split_chunk(out, SplitConfig(by="station_id"))
    validated = steps.validate_chunk(out, checks, [], "arrow")
    assert split is not out and "split" in split.table.column_names
    assert validated is not out and validated.metrics["checks"]["s[0]"]["unexpected"] == 1
    assert out.table.column_names == ["station_id", "temp"] and dict(out.metrics) == {}
