"""Tests of the generic ``delimited`` connector and of the text machinery stations reuse.

Real data: the CMOP SATURN salinity CSV (single quotes, a '#' URL comment, PST times). Expected
values come from pandas reading the same file its own way, or are literals checked by hand.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import connectors
from connectors.base import QUARANTINE_SCHEMA
from connectors.exceptions import (
    IncompatibleSourceError,
    MissingVariableError,
    UnitConversionError,
)
from connectors.text.delimited import DelimitedConfig, DelimitedText
from connectors.text.layout import TextLayout
from connectors.text.lines import read_byte_range, scan_lines
from pipelines import recipe as recipes
from tests.conftest import require_shared_data

REPO = Path(__file__).resolve().parents[3]
CMOP = "station_timeseries/cmop_attenuated_salinity_example.csv"
CMOP_CONFIG = {
    "kind": "delimited", "uri": "x", "quote_char": "'", "comment": "#", "station_id": "sandi",
    "time": {"columns": "time PST", "format": "%Y-%m-%d %H:%M:%S", "timezone": "Etc/GMT+8"},
    "variables": {"sandi.790.A.CTD": {"name": "sea_water_practical_salinity"}},
}
REASONS = {"wrong_field_count", "unbalanced_quote", "bad_number", "bad_time", "missing_time"}



def require_file(shared_data: Path, rel: str) -> Path:
    return require_shared_data(rel)


def run(config: dict, path: Path, **overrides):
    """Plan + read every chunk; returns plan, concatenated table, quarantine, results."""
    connector = connectors.get("delimited")
    cfg = DelimitedConfig.model_validate({**config, **overrides, "uri": str(path)})
    plan = connector.plan(cfg, str(path), "0" * 64, path.stat().st_size)
    results = [connector.read(cfg, chunk, plan.schema) for chunk in plan.chunks]
    for result in results:
        assert result.table.schema.equals(plan.schema, check_metadata=True)
        assert result.rows_in == result.table.num_rows + result.rows_dropped + \
            result.rows_quarantined
        assert result.rows_dropped == 0
    table = pa.concat_tables([r.table for r in results])
    quarantine = pa.concat_tables(
        [r.quarantine for r in results if r.quarantine is not None]
        or [QUARANTINE_SCHEMA.empty_table()])
    return plan, table, quarantine, results


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


# ---------------------------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def cmop(shared_data) -> Path:
    return require_file(shared_data, CMOP)


@pytest.fixture(scope="module")
def cmop_pandas(cmop) -> pd.DataFrame:
    frame = pd.read_csv(cmop, comment="#", quotechar="'", skipinitialspace=True)
    frame.columns = ["time", "salinity"]
    frame["time"] = pd.to_datetime(frame["time"]) + pd.Timedelta(hours=8)  # PST = UTC-8
    return frame


def test_cmop_whole_file(cmop, cmop_pandas):
    plan, table, quarantine, results = run(CMOP_CONFIG, cmop)
    assert len(plan.chunks) == 1 and plan.chunks[0].dim is None
    assert sum(r.rows_in for r in results) == 24436 == table.num_rows == len(cmop_pandas)
    assert quarantine.num_rows == 0
    assert table.column_names == ["time", "depth", "latitude", "longitude", "station_id",
                                  "sea_water_practical_salinity", "source_file"]
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("sea_water_practical_salinity").type == pa.float32()
    # first line '2001-08-15 19:06:55' PST is 03:06:55 UTC the next day
    assert table["time"][0].as_py() == dt.datetime(2001, 8, 16, 3, 6, 55, tzinfo=dt.UTC)
    expected = cmop_pandas["time"].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    assert (table["time"].to_pandas() == expected).all()
    np.testing.assert_allclose(table["sea_water_practical_salinity"].to_numpy(),
                               cmop_pandas["salinity"].to_numpy(), rtol=1e-6)
    assert pc.min(table["sea_water_practical_salinity"]).as_py() == pytest.approx(7.1, abs=1e-5)
    assert pc.max(table["sea_water_practical_salinity"]).as_py() == pytest.approx(30.65, abs=1e-5)
    assert pc.unique(table["station_id"]).to_pylist() == ["sandi"]
    assert table["latitude"].null_count == table.num_rows


def test_cmop_units_metadata(cmop):
    plan, *_ = run(CMOP_CONFIG, cmop)
    meta = plan.schema.field("sea_water_practical_salinity").metadata
    assert meta[b"haina.units"] == b"1e-3"
    assert meta[b"haina.source_units"] == b"psu"  # taken from the header '[psu]'
    assert meta[b"haina.source_name"] == b"sandi.790.A.CTD"
    assert plan.schema.field("time").metadata[b"haina.conversion"] == \
        b"local time in Etc/GMT+8 -> UTC"
    assert [c.name for c in plan.columns] == plan.schema.names


@pytest.mark.parametrize("chunk_bytes", [4096, 10_000, 65_537])
def test_cmop_chunks_tile_the_file(cmop, chunk_bytes):
    _, whole, _, _ = run(CMOP_CONFIG, cmop)
    plan, table, quarantine, results = run(CMOP_CONFIG, cmop, chunk_bytes=chunk_bytes)
    assert len(plan.chunks) > 1
    assert [c.ordinal for c in plan.chunks] == list(range(len(plan.chunks)))
    assert table.equals(whole)
    assert sum(r.rows_in for r in results) == 24436 and quarantine.num_rows == 0


def test_cmop_recipe(cmop):
    loaded = recipes.load(REPO / "examples" / "recipes" / "station_cmop_sandi_salinity.yaml")
    (source,) = loaded.sources
    path = (loaded.base_dir / source.uri).resolve()
    assert path == cmop.resolve()
    _, table, quarantine, _ = run(source.model_dump(), path)
    assert table.num_rows == 24436 and quarantine.num_rows == 0


# ---------------------------------------------------------------------------------- synthetic

BASIC = {"kind": "delimited", "uri": "x", "time": {"columns": "time"},
             "variables": {"temp": {"name": "sea_water_temperature", "units": "degF"}}}


def test_bad_lines_are_quarantined_with_line_numbers(tmp_path):
    text = ("time,temp\n"                      # 1 header
            "2020-01-01T00:00:00Z,50\n"        # 2 ok
            "2020-01-01T01:00:00Z,51,9\n"      # 3 wrong field count
            "\n"                               # 4 blank: not a record
            "not a time,52\n"                  # 5 bad time
            "2020-01-01T03:00:00Z,abc\n"       # 6 bad number
            ",53\n"                            # 7 missing time
            "\"2020-01-01T04:00:00Z,54\n"      # 8 unbalanced quote
            "2020-01-01T05:00:00Z,NaN\n"       # 9 ok, missing value
            "2020-01-01T06:00:00+01:00,212\n")  # 10 ok, offset honoured
    _, table, quarantine, results = run(BASIC, write(tmp_path, text))
    assert results[0].rows_in == 8
    assert table.num_rows == 3
    assert quarantine.column("reason").to_pylist() == [
        "wrong_field_count", "bad_time", "bad_number", "missing_time", "unbalanced_quote"]
    assert quarantine.column("position").to_pylist() == [3, 5, 6, 7, 8]
    assert quarantine.column("raw")[0].as_py() == "2020-01-01T01:00:00Z,51,9"
    assert "'abc'" in quarantine.column("detail")[2].as_py()
    # degF -> degC; NaN -> null; rows sorted by time (05:00Z on line 10 comes first)
    assert table["time"].to_pylist()[0] == dt.datetime(2020, 1, 1, 0, tzinfo=dt.UTC)
    assert table["time"].to_pylist()[1] == dt.datetime(2020, 1, 1, 5, tzinfo=dt.UTC)
    temps = table["sea_water_temperature"].to_pylist()
    assert temps[0] == pytest.approx(10.0) and temps[1] is None and temps[2] == pytest.approx(100)


def test_line_numbers_survive_chunking(tmp_path):
    rows = [f"2020-01-01T00:{i // 60:02d}:{i % 60:02d}Z,{i}" for i in range(3000)]
    rows[2500] = "2020-01-01T00:00:00Z,oops"
    path = write(tmp_path, "time,temp\n" + "\n".join(rows) + "\n")
    plan, table, quarantine, results = run(BASIC, path, chunk_bytes=4096)
    assert len(plan.chunks) > 5
    assert table.num_rows == 2999 and sum(r.rows_in for r in results) == 3000
    assert quarantine.column("position").to_pylist() == [2502]  # header + 0-based 2500 + 1
    assert quarantine.column("raw").to_pylist() == ["2020-01-01T00:00:00Z,oops"]


def test_whitespace_tabs_comments_and_sentinels(tmp_path):
    text = ("# a preamble comment\n"
            "  date   hour\ttemp  sal\n"
            "2020-01-01  00  \t 10.5  -999\n"
            "# a comment in the middle\n"
            "2020-01-01 01 -999 35.1   \n")
    config = {"kind": "delimited", "uri": "x", "delimiter": "whitespace", "comment": "#",
                  "fill_values": [-999], "time": {"columns": ["date", "hour"], "format": "%Y-%m-%d %H"},
                  "variables": {"temp": {"name": "sea_water_temperature", "units": "degC"},
                             "sal": {"name": "sea_water_salinity", "units": "PSU"}}}
    _, table, quarantine, results = run(config, write(tmp_path, text))
    assert results[0].rows_in == 2 and quarantine.num_rows == 0
    assert table["sea_water_temperature"].to_pylist() == [10.5, None]
    assert table["sea_water_salinity"].to_pylist()[0] is None
    assert table["sea_water_salinity"].to_pylist()[1] == pytest.approx(35.1)
    assert table["time"][1].as_py() == dt.datetime(2020, 1, 1, 1, tzinfo=dt.UTC)


def test_units_line_and_coordinate_columns(tmp_path):
    text = ("time,latitude,longitude,depth,station,temp\n"
            "UTC,degrees_north,degrees_east,m,,Celsius\n"
            "2020-01-01T00:00:00Z,45.5,200.0,5,A1,12.5\n"
            "2020-01-01T00:10:00Z,45.6,-120.0,10,A2,13\n")
    config = {"kind": "delimited", "uri": "x", "units_line": True, "time": {"columns": "time"},
                  "latitude_column": "latitude", "longitude_column": "longitude",
                  "depth_column": "depth", "station_id_column": "station",
                  "variables": {"temp": "sea_water_temperature"}}
    plan, table, quarantine, _ = run(config, write(tmp_path, text))
    assert table["longitude"].to_pylist() == [-160.0, -120.0]  # wrapped into [-180, 180)
    assert table["depth"].to_pylist() == [5.0, 10.0]
    assert table["station_id"].to_pylist() == ["A1", "A2"]
    assert plan.schema.field("sea_water_temperature").metadata[b"haina.source_units"] == \
        b"Celsius"


def test_no_header_with_column_names_and_crlf(tmp_path):
    text = "2020-06-01 12:00,7.25\r\n2020-06-01 13:00,7.5\r\n"
    config = {"kind": "delimited", "uri": "x", "header": False, "column_names": ["t", "wl"],
                  "time": {"columns": "t", "format": "%Y-%m-%d %H:%M", "timezone": "Etc/GMT-2"},
                  "variables": {"wl": {"name": "water_surface_height_above_reference_datum",
                                    "units": "ft"}}}
    _, table, quarantine, _ = run(config, write(tmp_path, text))
    assert quarantine.num_rows == 0
    assert table["time"][0].as_py() == dt.datetime(2020, 6, 1, 10, tzinfo=dt.UTC)
    assert table["water_surface_height_above_reference_datum"].to_pylist() == \
        pytest.approx([7.25 * 0.3048, 7.5 * 0.3048])


def test_recipe_errors_name_the_problem(tmp_path):
    path = write(tmp_path, "time,temp\n2020-01-01T00:00:00Z,1\n")
    with pytest.raises(MissingVariableError, match="'salt'.*use one of: time, temp"):
        run({**BASIC, "variables": {"salt": "sea_water_salinity"}}, path)
    with pytest.raises(UnitConversionError, match="temp"):
        run({**BASIC, "variables": {"temp": {"name": "sea_water_temperature", "units": "m"}}},
            path)
    with pytest.raises(ValidationError, match="time zone"):
        DelimitedConfig.model_validate({**BASIC, "time": {"columns": "t", "timezone": "PST8"}})
    with pytest.raises(ValidationError, match="column_names"):
        DelimitedConfig.model_validate({**BASIC, "header": False})
    with pytest.raises(ValidationError, match="extra"):
        DelimitedConfig.model_validate({**BASIC, "delimeter": ";"})


def test_registered_kind():
    assert isinstance(connectors.get("delimited"), DelimitedText)


# ---------------------------------------------------------------------------------- properties

LAYOUT = TextLayout(("time", "a", "b"), (None, "m", "m"), 0, ",", '"', "#")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(lines=[',","'])  # a quoted delimiter made a 2-field line count as 3
@given(st.lists(st.one_of(
    st.text(alphabet=st.sampled_from(list('0123456789-:TZ.,"# \tabc+e')), max_size=40),
    st.builds(lambda t, a, b: f"2021-03-04T05:06:{t:02d}Z,{a},{b}",
              st.integers(0, 59), st.floats(allow_nan=True, width=32), st.floats(-1e6, 1e6)),
), max_size=40))
def test_random_lines_never_crash_and_always_balance(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_text("time,a,b\n" + "\n".join(lines) + "\n")
    config = {"kind": "delimited", "uri": "x", "comment": "#", "time": {"columns": "time"},
                  "variables": {"a": {"units": "m"}, "b": {"units": "m"}}}
    try:
        _, table, quarantine, results = run(config, path, chunk_bytes=4096)
    except IncompatibleSourceError as err:
        # a time column of plain numbers (e.g. '0') is refused at plan time: numeric times
        # need their CF units (time: {units: ...}); it is a named one-line error, not a crash
        assert "holds numbers" in str(err) and "units" in str(err)
        return
    data_lines = [line for line in lines if line.strip(" \t") and not line.startswith("#")]
    assert sum(r.rows_in for r in results) == len(data_lines)
    assert table.num_rows + quarantine.num_rows == len(data_lines)
    assert set(quarantine.column("reason").to_pylist()) <= REASONS
    positions = quarantine.column("position").to_pylist()
    assert all(2 <= p <= len(lines) + 1 for p in positions)
    for p, raw in zip(positions, quarantine.column("raw").to_pylist(), strict=True):
        assert lines[p - 2] == raw


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab,\n ", max_size=30), max_size=30), st.integers(1, 50))
def test_byte_ranges_tile_every_line_once(tmp_path_factory, pieces, step):
    data = "".join(pieces).encode()
    path = tmp_path_factory.mktemp("tile") / "t.txt"
    path.write_bytes(data)
    got = b"".join(read_byte_range(str(path), s, min(s + step, len(data)), 0)[0]
                   for s in range(0, max(len(data), 1), step))
    assert got == data


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.sampled_from(["1", "x", "", " 2 ", '"3"'])),
                max_size=30))
def test_scan_counts_fields_outside_quotes(rows):
    lines = [",".join(["t"] + [cell] * max(k, 0)) for k, cell in rows]
    scanned = scan_lines(("\n".join(lines) + "\n").encode(), LAYOUT)
    expected_good = [i for i, (k, _) in enumerate(rows) if max(k, 0) == 2]
    assert scanned.good_lines.tolist() == expected_good
    assert scanned.rows_in == len(rows)


def test_typed_time_fast_path_falls_back_on_a_bad_time(tmp_path):
    text = "t,v\n2020-06-01 12:00,1\n2020-06-31 12:00,2\n2020-06-01 11:00,3\n"
    config = {"kind": "delimited", "uri": "x", "time": {"columns": "t", "format": "%Y-%m-%d %H:%M"},
                  "variables": {"v": {"units": "m"}}}
    _, table, quarantine, _ = run(config, write(tmp_path, text))
    assert quarantine.column("reason").to_pylist() == ["bad_time"]
    assert quarantine.column("position").to_pylist() == [3]
    assert table["v"].to_pylist() == [3.0, 1.0]  # sorted ascending in time


# ------------------------------------------------------------------------ numeric CF times

NUMERIC = "t,temp\n0,1.0\n0.5,2.0\n106752.25,3.0\nxx,4.0\n,5.0\n"
CELSIUS = {"temp": {"name": "sea_water_temperature", "units": "degC"}}


@pytest.mark.parametrize("units, calendar, expected", [
    ("days since 1700-01-01", "standard",
     ["1700-01-01T00:00", "1700-01-01T12:00", "1992-04-12T06:00"]),  # = datetime(1700, 1, 1) + timedelta
    ("hours since 2001-08-15 00:00 -08:00", "standard",
     ["2001-08-15T08:00", "2001-08-15T08:30", "2013-10-19T08:15"]),
    ("days since 2000-01-01", "360_day",
     # proportional: 0.5 of 360 days -> 0.5083 of 366; 192.25 -> 195.454
     ["2000-01-01T00:00", "2000-01-01T12:12", "2296-07-14T10:54"]),
])
def test_numeric_times_with_cf_units(tmp_path, units, calendar, expected):
    path = write(tmp_path, NUMERIC)
    config = {**BASIC, "variables": CELSIUS,
              "time": {"columns": "t", "units": units, "calendar": calendar}}
    plan, table, quarantine, _ = run(config, path)
    got = [v.strftime("%Y-%m-%dT%H:%M") for v in table["time"].to_pylist()]
    assert got == expected
    assert table["sea_water_temperature"].to_pylist() == [1.0, 2.0, 3.0]
    assert quarantine.column("reason").to_pylist() == ["bad_time", "missing_time"]
    assert units in quarantine.column("detail")[0].as_py()
    time_meta = plan.schema.field("time").metadata
    assert time_meta[b"haina.source_units"] == units.encode()
    assert calendar.encode() in time_meta[b"haina.conversion"]


def test_numeric_times_chunked_match_whole(tmp_path):
    rows = "\n".join(f"{i * 0.25},{i}" for i in range(4000))
    path = write(tmp_path, "t,temp\n" + rows + "\n")
    config = {**BASIC, "time": {"columns": "t", "units": "days since 1950-01-01"}}
    _, whole, _, _ = run(config, path)
    _, chunked, _, results = run(config, path, chunk_bytes=4096)
    assert len(results) > 5 and chunked.equals(whole)
    assert whole["time"][-1].as_py() == dt.datetime(1952, 9, 26, 18, tzinfo=dt.UTC)


@pytest.mark.parametrize("time, says", [
    ({"columns": "t", "units": "fortnights since 1700-01-01"}, "not '<seconds"),
    ({"columns": "t", "units": "days since 1700-01-01", "calendar": "lunar"}, "calendar"),
    ({"columns": "t", "units": "days since 1700-01-01", "format": "%Y"}, "no format"),
    ({"columns": "t", "units": "days since 1700-01-01", "timezone": "Etc/GMT+8"}, "offset"),
    ({"columns": ["t", "temp"], "units": "days since 1700-01-01"}, "one column"),
    ({"columns": "t", "calendar": "noleap"}, "numeric times only"),
])
def test_numeric_time_recipe_errors(time, says):
    with pytest.raises(ValidationError, match=says):
        DelimitedConfig.model_validate({**BASIC, "time": time})


def test_numeric_time_column_without_units_is_refused_at_plan(tmp_path):
    """Numbers in the time column and no ``time.units``: planning (``haina check``) stops."""
    path = write(tmp_path, NUMERIC)
    with pytest.raises(IncompatibleSourceError, match=r"'t' holds numbers.*units: 'days since"):
        run({**BASIC, "variables": CELSIUS, "time": {"columns": "t"}}, path)
    dates = write(tmp_path, "t,temp\n20200101,1\n20200102,2\n", "dates.csv")
    _, table, _, _ = run({**BASIC, "variables": CELSIUS,
                          "time": {"columns": "t", "format": "%Y%m%d"}}, dates)
    assert table.num_rows == 2     # digits that the format reads as dates pass
