"""The connector contract (connectors/base.py) across kinds: one padding rule with exact
accounting, infinite values passed through as values, and no output column name twice."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xarray as xr

from connectors.base import check_column_names, padding
from connectors.exceptions import ColumnNameClashError, IncompatibleSourceError
from tests.conftest import require_shared_data
from tests.connectors.reading import plan_source, read_source

REPO = Path(__file__).resolve().parents[2]
INF = math.inf
NAN = math.nan


def _time_attrs():
    return {"standard_name": "time", "units": "seconds since 2020-01-01", "calendar": "standard"}


def _temp_attrs():
    return {"standard_name": "sea_water_temperature", "units": "degC"}


# ---------------------------------------------------------------- padding


@pytest.mark.parametrize("has_value, located, expected", [
    (True, True, False), (True, False, False), (False, True, False), (False, False, True)])
def test_padding_rule(has_value, located, expected):
    assert padding(np.array([has_value]), np.array([located])).tolist() == [expected]


def _trajectory_profile(tmp_path: Path) -> Path:
    """3 casts x 4 levels with a 2-D depth, fill-padded after each cast's last level, as CF's
    incomplete multidimensional representation writes short profiles."""
    depth = [[1.0, 2.0, 3.0, NAN], [1.0, 2.0, NAN, NAN], [1.0, 2.0, 3.0, 4.0]]
    temp = [[10.0, 9.0, NAN, NAN],       # level 2: a depth without a value -> a row
            [NAN, 8.0, NAN, NAN],        # level 0: no value at a sampled depth -> a row
            [10.0, 9.0, 8.0, 7.0]]
    ds = xr.Dataset({
        "trajectory": ((), np.array(b"G1"), {"cf_role": "trajectory_id"}),
        "time": ("profile", [0.0, 600.0, 1200.0], _time_attrs()),
        "lat": ("profile", [40.0, 40.1, 40.2], {"standard_name": "latitude",
                                                "units": "degrees_north"}),
        "lon": ("profile", [-60.0, -60.1, -60.2], {"standard_name": "longitude",
                                                   "units": "degrees_east"}),
        "z": (("profile", "level"), depth, {"standard_name": "depth", "units": "m",
                                            "positive": "down"}),
        "temp": (("profile", "level"), temp, _temp_attrs()),
    }, attrs={"featureType": "trajectoryProfile"})
    path = tmp_path / "tp.nc"
    ds.to_netcdf(path)
    return path


def test_fill_padded_cells_of_a_2d_depth_are_dropped_and_counted(tmp_path):
    _, table, quarantine, (result,) = read_source("netcdf_dsg", _trajectory_profile(tmp_path))
    # 12 cells: 3 padding cells (no depth, no value) dropped; was 12 rows and "dropped 0"
    assert (result.rows_in, table.num_rows, result.rows_dropped, quarantine.num_rows) == \
        (12, 9, 3, 0)
    assert table["depth"].null_count == 0
    assert table["depth"].to_pylist() == [1.0, 2.0, 3.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0]
    assert table["sea_water_temperature"].to_pylist() == [10.0, 9.0, None, None, 8.0, 10.0,
                                                          9.0, 8.0, 7.0]


def test_real_multi_profile_file_read_as_dsg_drops_its_padded_level():
    """1901462_prof (21 x 67) has one fill-padded level: no PRES, no value. It was written as a
    row with no depth and no value, and reported as "dropped 0"."""
    path = require_shared_data("argo_dsg_netcdf/1901462_prof.nc")
    _, table, quarantine, results = read_source("netcdf_dsg", path, pressure_to_depth=True)
    assert sum(r.rows_in for r in results) == 21 * 67
    assert (table.num_rows, sum(r.rows_dropped for r in results), quarantine.num_rows) == \
        (1406, 1, 0)
    values = [c for c in table.column_names if c.startswith("sea_water_") and
              not c.endswith("_qc_source")]
    empty = np.logical_and.reduce([table[c].is_null().to_numpy(zero_copy_only=False)
                                   for c in [*values, "depth"]])
    assert not empty.any()


# ---------------------------------------------------------------- infinite values


def test_grid_keeps_an_infinite_value_as_a_value(tmp_path):
    ds = xr.Dataset({
        "temp": (("lat", "lon"), [[1.0, INF], [NAN, -INF]], _temp_attrs()),
    }, coords={"lat": ("lat", [10.0, 11.0], {"standard_name": "latitude",
                                             "units": "degrees_north"}),
               "lon": ("lon", [20.0, 21.0], {"standard_name": "longitude",
                                             "units": "degrees_east"})})
    path = tmp_path / "g.nc"
    ds.to_netcdf(path)
    _, table, _, (result,) = read_source("netcdf_grid", path)
    # was: the inf cells dropped as fill, like the NaN cell
    assert table["sea_water_temperature"].to_pylist() == [1.0, INF, -INF]
    assert result.rows_dropped == 1


def test_dsg_observation_with_only_an_infinite_value_is_not_padding(tmp_path):
    ds = xr.Dataset({
        "time": ("obs", [0.0, NAN, 120.0], _time_attrs()),
        "lat": ("obs", [1.0, 1.0, 1.0], {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("obs", [2.0, 2.0, 2.0], {"standard_name": "longitude", "units": "degrees_east"}),
        "temp": ("obs", [INF, INF, 3.0], _temp_attrs()),
    }, attrs={"featureType": "point"})
    path = tmp_path / "p.nc"
    ds.to_netcdf(path)
    _, table, quarantine, (result,) = read_source("netcdf_dsg", path, platform_id="P")
    assert table["sea_water_temperature"].to_pylist() == [INF, 3.0]
    # an observation without time but with a value: quarantined, not dropped as padding
    assert quarantine["reason"].to_pylist() == ["missing_time"] and result.rows_dropped == 0


def test_delimited_and_port_tables_pass_inf_through(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("time,temp\n2020-01-01T00:00:00Z,inf\n2020-01-01T01:00:00Z,-Infinity\n")
    _, table, quarantine, _ = read_source(
        "delimited", csv, time={"columns": "time"},
        variables={"temp": {"name": "sea_water_temperature", "units": "degC"}})
    assert table["sea_water_temperature"].to_pylist() == [INF, -INF] and quarantine.num_rows == 0
    ports = tmp_path / "p.csv"
    ports.write_text("id,lat,lon,depth\nA,10,20,inf\nB,11,21,3.5\n")
    _, table, quarantine, _ = read_source("port_table", ports, id_column="id",
                                          latitude_column="lat", longitude_column="lon")
    assert table["depth"].to_pylist() == [INF, 3.5]      # was: quarantined as bad_value
    assert quarantine.num_rows == 0


# ---------------------------------------------------------------- one name, one column


def _grid(tmp_path: Path) -> Path:
    ds = xr.Dataset({"temp": (("lat", "lon"), [[1.0]], _temp_attrs())},
                    coords={"lat": ("lat", [10.0], {"standard_name": "latitude"}),
                            "lon": ("lon", [20.0], {"standard_name": "longitude"})})
    path = tmp_path / "g.nc"
    ds.to_netcdf(path)
    return path


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "s.csv"
    path.write_text("time,temp\n2020-01-01T00:00:00Z,1\n")
    return path


CLASHES = {  # kind: (file, recipe fields, the variable mapped onto a coordinate)
    "netcdf_dsg": (lambda t: require_shared_data("argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc"),
                   {"variables": {"TEMP": "depth"}}, "TEMP"),
    "argo": (lambda t: require_shared_data("argo_dsg_netcdf/D4901079_010.nc"),
             {"variables": {"TEMP": {"name": "depth"}}}, "TEMP"),
    "netcdf_grid": (_grid, {"variables": {"temp": "depth"}}, "temp"),
    "delimited": (_csv, {"time": {"columns": "time"}, "variables": {"temp": "depth"}}, "temp"),
    "ndbc_text": (lambda t: require_shared_data("station_timeseries/ndbc_41002_realtime2.txt"),
                  {"variables": {"WTMP": "latitude"}}, "WTMP"),
    "erddap_csv": (lambda t: require_shared_data(
        "station_timeseries/erddap_gliders_amelia-20180501T0000_temperature.csvp"),
        {"variables": {"temperature": "station_id"}}, "temperature"),
    "coops_json": (lambda t: require_shared_data(
        "station_timeseries/coops_9414458_water_level_20050330.json"),
        {"variables": {"v": "source_file"}}, "v"),
}


@pytest.mark.parametrize("kind", sorted(CLASHES))
def test_a_variable_named_like_a_coordinate_is_refused_at_plan_time(tmp_path, kind):
    make, fields, variable = CLASHES[kind]
    with pytest.raises(ColumnNameClashError) as err:
        plan_source(kind, make(tmp_path), **fields)
    message = str(err.value)
    assert f"sources[].variables.{variable}" in message
    assert "Fix: give it another output name" in message
    assert isinstance(err.value, IncompatibleSourceError)


def test_two_variables_with_one_name_are_refused():
    path = require_shared_data("argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc")
    with pytest.raises(ColumnNameClashError, match="'TEMP' and 'PSAL'"):
        plan_source("netcdf_dsg", path, variables={"TEMP": "x", "PSAL": "x"})


def test_every_plan_checks_its_schema():
    schema = pa.schema([pa.field("depth", pa.float64()), pa.field("depth", pa.float32())])
    with pytest.raises(ColumnNameClashError, match="'depth' occurs 2 times"):
        check_column_names(schema, "f.nc")


def test_haina_check_names_the_recipe_key_and_exits_2(tmp_path):
    data = require_shared_data("argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: clash\ntitle: t\ndescription: d\nlicence: CC0-1.0\nowner: {name: x}\n"
        f"sources:\n  - kind: netcdf_dsg\n    uri: {data}\n    variables: {{TEMP: depth}}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HAINA_WAREHOUSE": str(tmp_path / "wh")}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli.app", "check", str(recipe)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr   # was 0, then a crash in `run`
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "sources[].variables.TEMP" in lines[0] and "'depth'" in lines[0]
