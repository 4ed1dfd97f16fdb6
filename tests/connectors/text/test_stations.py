"""Tests of the station connectors (NDBC text, ERDDAP csv/csvp, CO-OPS JSON) on the real files.

Expected values come from pandas / the json module reading the same files independently, or are
literals checked by hand against the files.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors
from connectors.base import QUARANTINE_SCHEMA
from connectors.exceptions import MissingVariableError, UnreadableSourceError
from connectors.text.stations import NDBC_VARIABLES, ndbc_station_id, unpack_flags
from pipelines import recipe as recipes
from tests.conftest import require_shared_data

REPO = Path(__file__).resolve().parents[3]
RECIPES = REPO / "examples" / "recipes"
NDBC = "station_timeseries/ndbc_41002_realtime2.txt"
GLIDER = "station_timeseries/erddap_gliders_amelia-20180501T0000_temperature.csvp"
COOPS = "station_timeseries/coops_9414458_water_level_20050330.json"
UTC = dt.UTC



def require_file(shared_data: Path, rel: str) -> Path:
    return require_shared_data(rel)


def run(kind: str, config: dict, path: Path):
    connector = connectors.get(kind)
    cfg = connector.config_model.model_validate({"kind": kind, "uri": str(path), **config})
    plan = connector.plan(cfg, str(path), "0" * 64, path.stat().st_size)
    results = [connector.read(cfg, chunk, plan.schema) for chunk in plan.chunks]
    for result in results:
        assert result.table.schema.equals(plan.schema, check_metadata=True)
        assert result.rows_in == result.table.num_rows + result.rows_quarantined
        assert result.rows_dropped == 0
    table = pa.concat_tables([r.table for r in results])
    quarantine = pa.concat_tables([r.quarantine for r in results if r.quarantine is not None]
                                  or [QUARANTINE_SCHEMA.empty_table()])
    return plan, table, quarantine, results


# ---------------------------------------------------------------------------------- NDBC

@pytest.fixture(scope="module")
def ndbc(shared_data) -> Path:
    return require_file(shared_data, NDBC)


@pytest.fixture(scope="module")
def ndbc_pandas(ndbc) -> pd.DataFrame:
    names = ndbc.read_text().splitlines()[0].lstrip("#").split()
    frame = pd.read_csv(ndbc, sep=r"\s+", skiprows=2, header=None, names=names, dtype=str)
    frame["time"] = pd.to_datetime(
        frame[["YY", "MM", "DD", "hh", "mm"]].astype(int).set_axis(
            ["year", "month", "day", "hour", "minute"], axis=1), utc=True)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def test_ndbc_whole_file(ndbc, ndbc_pandas):
    plan, table, quarantine, results = run("ndbc_text", {}, ndbc)
    assert len(plan.chunks) == 1 and quarantine.num_rows == 0
    assert results[0].rows_in == table.num_rows == 6560 == len(ndbc_pandas)
    assert table.column_names == ["time", "depth", "latitude", "longitude", "station_id",
                                  *NDBC_VARIABLES.values(), "source_file"]
    assert pc.unique(table["station_id"]).to_pylist() == ["41002"]
    # the file runs in descending time; the output ascends
    times = table["time"].to_pandas()
    assert times.is_monotonic_increasing
    assert times.iloc[0] == pd.Timestamp("2018-06-17 00:00", tz="UTC")
    assert times.iloc[-1] == pd.Timestamp("2018-08-01 15:10", tz="UTC")
    assert (times.to_numpy() == ndbc_pandas["time"].to_numpy()).all()


def test_ndbc_missing_tokens_become_nulls(ndbc, ndbc_pandas):
    _, table, _, _ = run("ndbc_text", {}, ndbc)
    variables = list(NDBC_VARIABLES.values())
    assert sum(table[v].null_count for v in variables) == 52628
    assert (ndbc_pandas == "MM").to_numpy().sum() == 52628
    assert table["water_surface_height_above_reference_datum"].null_count == 6560  # TIDE all MM


def test_ndbc_values_and_units(ndbc, ndbc_pandas):
    plan, table, _, _ = run("ndbc_text", {}, ndbc)

    def expected(column, scale=1.0):
        return pd.to_numeric(ndbc_pandas[column].replace("MM", np.nan)).to_numpy() * scale

    for source, name in NDBC_VARIABLES.items():
        scale = {"VIS": 1852.0, "TIDE": 0.3048}.get(source, 1.0)
        np.testing.assert_allclose(table[name].to_numpy(zero_copy_only=False).astype(float),
                                   expected(source, scale), rtol=1e-6, equal_nan=True)
    # PTDY carries explicit '+' signs; the most recent row (last) has '+0.6' one line later
    assert table["pressure_tendency"].to_pylist()[-2] == pytest.approx(0.6)
    assert table["sea_surface_temperature"].to_pylist()[-1] == pytest.approx(28.0)
    meta = {f.name: f.metadata for f in plan.schema}
    assert meta["visibility_in_air"][b"haina.units"] == b"m"
    assert meta["visibility_in_air"][b"haina.source_units"] == b"nmi"
    assert meta["visibility_in_air"][b"haina.conversion"] == b"nmi -> m: x * 1852"
    assert meta["water_surface_height_above_reference_datum"][b"haina.source_units"] == b"ft"
    assert meta["pressure_tendency"][b"haina.units"] == b"hPa"
    assert meta["wind_from_direction"][b"haina.source_units"] == b"degT"
    assert plan.schema.field("wind_speed").type == pa.float32()


def test_ndbc_chunked_matches_whole(ndbc):
    _, whole, _, _ = run("ndbc_text", {}, ndbc)
    plan, table, _, results = run("ndbc_text", {"chunk_bytes": 8192}, ndbc)
    assert len(plan.chunks) > 10 and sum(r.rows_in for r in results) == 6560
    table = table.take(pc.sort_indices(table, [("time", "ascending")]))
    assert table.equals(whole)


def test_ndbc_config_overrides(ndbc):
    config = {"station_id": "X1", "latitude": 31.8, "longitude": 285.0,
              "variables": {"WTMP": "sea_surface_temperature", "PTDY": "pressure_tendency"}}
    _, table, _, _ = run("ndbc_text", config, ndbc)
    assert table.column_names[4:] == ["station_id", "sea_surface_temperature",
                                      "pressure_tendency", "source_file"]
    assert pc.unique(table["station_id"]).to_pylist() == ["X1"]
    assert pc.unique(table["longitude"]).to_pylist() == [-75.0]
    with pytest.raises(MissingVariableError, match="SALT"):
        run("ndbc_text", {"variables": {"SALT": "sea_water_salinity"}}, ndbc)


@pytest.mark.parametrize("name, expected", [
    ("41002.txt", "41002"), ("ndbc_41002_realtime2.txt", "41002"), ("burl1.txt", "BURL1"),
    ("station.txt", "station")])
def test_ndbc_station_id_from_file_name(name, expected):
    assert ndbc_station_id(f"/data/{name}") == expected


def test_ndbc_bad_lines_quarantined(tmp_path, ndbc):
    head = ndbc.read_text().splitlines()[:4]
    lines = head + ["2018 08 01 14 30 150  7.0  8.0    MM",           # 5 wrong field count
                    "2018 13 01 14 20 150  7.0  8.0    MM    MM    MM  MM 1023.0    MM  28.0"
                    "    MM   MM   MM    MM",                           # 6 month 13
                    "2018 08 01 14 10 1x0  7.0  8.0    MM    MM    MM  MM 1023.0    MM  28.0"
                    "    MM   MM   MM    MM"]                           # 7 bad number
    path = tmp_path / "41002.txt"
    path.write_text("\n".join(lines) + "\n")
    _, table, quarantine, results = run("ndbc_text", {}, path)
    assert results[0].rows_in == 5 and table.num_rows == 2
    assert quarantine.column("reason").to_pylist() == ["wrong_field_count", "bad_time",
                                                       "bad_number"]
    assert quarantine.column("position").to_pylist() == [5, 6, 7]


def test_ndbc_not_ndbc(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(UnreadableSourceError, match="two header lines"):
        run("ndbc_text", {}, path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.text(alphabet=st.sampled_from(list("0123456789 M.+-x")), max_size=90),
    st.builds(lambda h, v: f"2018 07 01 {h:02d} 00 {v} 1.0 2.0 MM MM MM MM 1000.0 MM 28.0 MM MM "
                           f"+0.2 MM", st.integers(0, 30), st.sampled_from(["90", "MM", "+1", "?"])),
), max_size=30))
def test_ndbc_random_lines_balance(tmp_path, ndbc, lines):
    path = tmp_path / "41002.txt"
    path.write_text("\n".join(ndbc.read_text().splitlines()[:2] + lines) + "\n")
    _, table, quarantine, results = run("ndbc_text", {"chunk_bytes": 4096}, path)
    data = [line for line in lines if line.strip()]
    assert sum(r.rows_in for r in results) == len(data) == table.num_rows + quarantine.num_rows
    assert set(quarantine.column("reason").to_pylist()) <= {
        "wrong_field_count", "bad_time", "bad_number", "missing_time"}
    for pos, raw in zip(quarantine.column("position").to_pylist(),
                        quarantine.column("raw").to_pylist(), strict=True):
        assert lines[pos - 3] == raw


def test_ndbc_recipe(ndbc):
    _check_recipe("station_ndbc_41002", "ndbc_text", ndbc, 6560)


# ---------------------------------------------------------------------------------- ERDDAP

@pytest.fixture(scope="module")
def glider(shared_data) -> Path:
    return require_file(shared_data, GLIDER)


def test_erddap_csvp(glider):
    frame = pd.read_csv(glider)
    config = {"station_id": "amelia-20180501T0000",
              "variables": {"temperature": "sea_water_temperature"}}
    plan, table, quarantine, results = run("erddap_csv", config, glider)
    assert results[0].rows_in == table.num_rows == 18113 == len(frame)
    assert quarantine.num_rows == 0
    temperature = table["sea_water_temperature"]
    assert temperature.null_count == 753 == frame["temperature (Celsius)"].isna().sum()
    np.testing.assert_allclose(pc.mean(temperature).as_py(),
                               frame["temperature (Celsius)"].mean(), rtol=1e-5)
    times = table["time"].to_pandas()
    assert times.iloc[0] == pd.Timestamp("2018-05-08T00:32:38Z")
    assert times.iloc[-1] == pd.Timestamp("2018-05-13T20:58:46Z")
    assert times.duplicated().sum() == 17268  # time is per profile: not a key
    assert pc.unique(table["station_id"]).to_pylist() == ["amelia-20180501T0000"]
    meta = plan.schema.field("sea_water_temperature").metadata
    assert meta[b"haina.units"] == b"degC" and meta[b"haina.source_units"] == b"Celsius"
    assert meta[b"haina.source_name"] == b"temperature"


def test_erddap_csv_with_units_line(tmp_path):
    path = tmp_path / "ds.csv"
    path.write_text("station,time,latitude,longitude,depth,sea_water_temperature,comment\n"
                    ",UTC,degrees_north,degrees_east,m,degF,\n"
                    "S1,2020-01-01T00:00:00Z,40.5,-70.25,1.5,50.0,ok\n"
                    "S1,2020-01-01T01:00:00Z,40.5,-70.25,2.5,NaN,\n"
                    "S2,2020-01-01T00:30:00Z,40.5,-70.25,1.5,bad,x\n")
    plan, table, quarantine, _ = run("erddap_csv", {"station_id_column": "station"}, path)
    assert table.column_names == ["time", "depth", "latitude", "longitude", "station_id",
                                  "sea_water_temperature", "source_file"]  # text column skipped
    assert table["sea_water_temperature"].to_pylist() == [pytest.approx(10.0), None]
    assert table["depth"].to_pylist() == [1.5, 2.5]
    assert table["station_id"].to_pylist() == ["S1", "S1"]
    assert quarantine.column("reason").to_pylist() == ["bad_number"]
    assert quarantine.column("position").to_pylist() == [5]


def test_erddap_recipe(glider):
    _check_recipe("station_erddap_glider_amelia", "erddap_csv", glider, 18113)


# ---------------------------------------------------------------------------------- CO-OPS

@pytest.fixture(scope="module")
def coops(shared_data) -> Path:
    return require_file(shared_data, COOPS)


def test_coops_water_level(coops):
    doc = json.loads(coops.read_text())
    plan, table, quarantine, results = run("coops_json", {"datum": "STND"}, coops)
    assert results[0].rows_in == table.num_rows == 21 == len(doc["data"])
    assert quarantine.num_rows == 0
    name = "water_surface_height_above_reference_datum"
    assert table[name].to_pylist() == pytest.approx([float(r["v"]) for r in doc["data"]])
    assert table[name][0].as_py() == pytest.approx(6.316)
    assert table["time"][-1].as_py() == dt.datetime(2005, 3, 30, 2, 0, tzinfo=UTC)
    assert pc.unique(table["station_id"]).to_pylist() == ["9414458"]
    assert pc.unique(table["latitude"]).to_pylist() == [37.58]
    assert pc.unique(table["longitude"]).to_pylist() == [-122.253]
    assert [plan.schema.field(f"coops_flag_{k}").type for k in ("o_or_i", "f", "r", "l_or_t")] \
        == [pa.int16(), pa.int8(), pa.int8(), pa.int8()]
    assert pc.sum(table["coops_flag_f"]).as_py() == 0
    assert pc.unique(table["coops_quality"]).to_pylist() == ["v"]
    assert plan.schema.field(name).metadata[b"haina.datum"] == b"STND"
    assert plan.attributes["station_name"] == "San Mateo Bridge"


def test_coops_bad_records(tmp_path, coops):
    doc = json.loads(coops.read_text())
    doc["data"][1]["t"] = "2005-03-30 25:00"        # bad time
    doc["data"][3]["v"] = "six"                     # bad number
    doc["data"][4]["f"] = "0,0,0"                   # wrong flag count
    doc["data"][5]["f"] = "0,300,0,0"               # out of range for int8
    doc["data"][6]["v"] = ""                        # missing value: kept as null
    doc["data"][7] = "oops"                         # not an object
    doc["data"][8]["f"] = "3,0,1,0"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    _, table, quarantine, results = run("coops_json", {"units": "english"}, path)
    assert results[0].rows_in == 21 and table.num_rows == 16
    assert quarantine.column("reason").to_pylist() == [
        "bad_time", "bad_number", "bad_flags", "bad_flags", "not_an_object"]
    assert quarantine.column("position").to_pylist() == [2, 4, 5, 6, 8]
    name = "water_surface_height_above_reference_datum"
    values = table[name].to_pylist()
    assert values.count(None) == 1
    assert values[0] == pytest.approx(6.316 * 0.3048)  # units=english: feet -> m
    row = table.filter(pc.equal(table["coops_flag_o_or_i"], 3))
    assert row["coops_flag_r"].to_pylist() == [1]


def test_coops_error_response(tmp_path):
    path = tmp_path / "e.json"
    path.write_text('{"error": {"message": "No data was found."}}')
    with pytest.raises(UnreadableSourceError, match="No data was found"):
        run("coops_json", {}, path)


@pytest.mark.parametrize("packed, expected_bad", [
    (["0,0,0,0", "1,0,1,0", None], [False, False, False]),
    (["0,0,0", "a,0,0,0", "0,0,0,0,0", "0.5,0,0,0", "0,-200,0,0"], [True] * 5),
])
def test_unpack_flags(packed, expected_bad):
    arrays, bad = unpack_flags(pa.array(packed, pa.string()), ["int16", "int8", "int8", "int8"])
    assert bad.tolist() == expected_bad
    assert len(arrays) == 4


def test_coops_recipe(coops):
    _check_recipe("station_coops_9414458", "coops_json", coops, 21)


def _check_recipe(name: str, kind: str, data: Path, rows: int):
    loaded = recipes.load(RECIPES / f"{name}.yaml")
    (source,) = loaded.sources
    assert source.kind == kind
    path = (loaded.base_dir / source.uri).resolve()
    assert path == data.resolve()
    config = source.model_dump(exclude={"kind", "uri"})
    _, table, quarantine, _ = run(kind, config, path)
    assert table.num_rows == rows and quarantine.num_rows == 0


_OCEAN = ("#YY  MM DD hh mm   DEPTH  OTMP   COND   SAL\n"
          "#yr  mo dy hr mn       m  degC  mS/cm   psu\n"
          "2018 08 01 14 00     1.5 28.10     MM 36.10\n"
          "2018 08 01 13 00    MM   28.00     MM 36.00\n"
          "2018 08 01 12 00    45.0 22.50     MM 36.40\n")


def test_ndbc_depth_column_built(tmp_path):
    """An NDBC ``.ocean`` file carries a depth per row: ``depth_column`` reads it (MM -> null)."""
    path = tmp_path / "41002.ocean"
    path.write_text(_OCEAN)
    config = {"depth_column": "DEPTH",
              "variables": {"OTMP": {"name": "sea_water_temperature", "units": "degC"}}}
    _, table, quarantine, _ = run("ndbc_text", config, path)
    assert table.column_names == ["time", "depth", "latitude", "longitude", "station_id",
                                  "sea_water_temperature", "source_file"]
    assert table["depth"].to_pylist() == [45.0, None, 1.5]   # ascending in time
    assert table["sea_water_temperature"].to_pylist() == pytest.approx([22.5, 28.0, 28.1])
    assert quarantine.num_rows == 0


def test_ndbc_depth_column_real_file(ndbc):
    """On the real buoy file, a column named as depth becomes the depth coordinate (TIDE is all
    MM there: every depth null) and is no longer also a variable."""
    _, table, _, _ = run("ndbc_text", {"depth_column": "TIDE"}, ndbc)
    assert table.num_rows == 6560
    assert table["depth"].null_count == 6560
    assert "water_surface_height_above_reference_datum" not in table.column_names
    _, table, _, _ = run("ndbc_text", {"depth_column": "WTMP"}, ndbc)
    assert pc.min(table["depth"]).as_py() > 20 and table["depth"].null_count < 6560
    with pytest.raises(MissingVariableError, match="DEPTH"):
        run("ndbc_text", {"depth_column": "DEPTH"}, ndbc)


def test_ndbc_depth_and_depth_column_exclusive(ndbc):
    with pytest.raises(ValueError, match="exclusive"):
        run("ndbc_text", {"depth": 1.0, "depth_column": "WTMP"}, ndbc)
