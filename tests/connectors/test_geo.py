"""The one longitude/latitude rule (connectors/geo.py), in the rule itself and in every kind that
reads positions: valid 0-360 longitudes are shifted into [-180, 180); sentinels and impossible
values are kept as in the source, never turned into a plausible position."""
from __future__ import annotations

import math
import shutil

import netCDF4
import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from connectors import geo
from tests.conftest import require_shared_data
from tests.connectors.reading import read_source

INF = math.inf


@pytest.mark.parametrize("value, expected", [
    (-180.0, -180.0), (-179.5, -179.5), (0.0, 0.0), (151.833333, 151.833333),
    (179.999, 179.999), (180.0, -180.0), (190.0, -170.0), (359.5, -0.5), (360.0, 0.0),
    # not a longitude in any convention: kept as in the source (was -999 -> 81, 400 -> 40)
    (-999.0, -999.0), (400.0, 400.0), (360.5, 360.5), (-180.5, -180.5), (99999.0, 99999.0),
    (INF, INF), (-INF, -INF),
])
def test_longitude_rule(value, expected):
    assert geo.longitude(np.array([value])).tolist() == [expected]


def test_longitude_nan_stays_missing_and_in_range_values_are_bit_identical():
    values = np.array([np.nan, 151.833333, -74.25, 32.466667])
    out = geo.longitude(values)
    assert np.isnan(out[0])
    assert out[1:].tobytes() == values[1:].tobytes()   # no (x + 180) % 360 - 180 rounding


@pytest.mark.parametrize("value, expected", [
    (180.0, -180.0), (200.2, 200.2), (359.0, 359.0), (-181.0, -181.0), (-73.5, -73.5)])
def test_longitude_without_east_convention_keeps_values_above_180(value, expected):
    assert geo.longitude(np.array([value]), east_convention=False).tolist() == [expected]


@given(st.floats(allow_nan=False, allow_infinity=True, width=64))
def test_longitude_is_a_shift_of_a_valid_value_or_the_value_itself(value):
    (out,) = geo.longitude(np.array([value])).tolist()
    if -180.0 <= value <= 360.0:
        assert -180.0 <= out < 180.0 and out in (value, value - 360.0)
    else:
        assert out == value


def test_longitude_arrow_keeps_nulls():
    import pyarrow as pa
    out = geo.longitude_arrow(pa.array([None, 200.0, -999.0], pa.float64()))
    assert out.to_pylist() == [None, -160.0, -999.0]


# ---------------------------------------------------------------- every kind that reads positions


def _time_attrs():
    return {"standard_name": "time", "units": "seconds since 2020-01-01", "calendar": "standard"}


def test_dsg_keeps_sentinel_longitudes_and_impossible_latitudes(tmp_path):
    ds = xr.Dataset({
        "time": ("obs", [0.0, 60.0, 120.0, 180.0, 240.0], _time_attrs()),
        "lat": ("obs", [95.0, -91.0, 0.0, 10.0, 20.0],
                {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("obs", [-999.0, 400.0, 200.0, 10.0, 360.0],
                {"standard_name": "longitude", "units": "degrees_east"}),
        "temp": ("obs", [10.0, 11.0, 12.0, 13.0, 14.0],
                 {"standard_name": "sea_water_temperature", "units": "degC"}),
    }, attrs={"featureType": "point"})
    path = tmp_path / "point.nc"
    ds.to_netcdf(path)
    plan, table, _, _ = read_source("netcdf_dsg", path, platform_id="P")
    assert table["longitude"].to_pylist() == [-999.0, 400.0, -160.0, 10.0, 0.0]
    assert table["latitude"].to_pylist() == [95.0, -91.0, 0.0, 10.0, 20.0]
    meta = plan.schema.field("longitude").metadata[b"haina.conversion"].decode()
    assert "kept as in the source" in meta


def test_grid_keeps_a_sentinel_in_a_curvilinear_longitude(tmp_path):
    lon = np.array([[200.0, 201.0], [-999.0, 202.0]])   # -999: an unflagged land sentinel
    ds = xr.Dataset({
        "temp": (("y", "x"), [[1.0, 2.0], [3.0, 4.0]],
                 {"standard_name": "sea_water_temperature", "units": "degC"}),
        "lat": (("y", "x"), [[10.0, 10.0], [11.0, 11.0]],
                {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": (("y", "x"), lon, {"standard_name": "longitude", "units": "degrees_east"}),
    })
    path = tmp_path / "grid.nc"
    ds.to_netcdf(path)
    _, table, _, _ = read_source("netcdf_grid", path)
    assert table["longitude"].to_pylist() == [-160.0, -159.0, -999.0, -158.0]


def test_argo_keeps_an_impossible_longitude(tmp_path):
    path = tmp_path / "D4901079_010.nc"
    shutil.copy(require_shared_data("argo_dsg_netcdf/D4901079_010.nc"), path)
    with netCDF4.Dataset(path, "a") as ds:
        ds["LONGITUDE"][0] = 400.0
    _, table, _, _ = read_source("argo", path)
    assert set(table["longitude"].to_pylist()) == {400.0}    # was 40.0


def test_delimited_longitude_column_and_constant(tmp_path):
    path = tmp_path / "pos.csv"
    path.write_text("time,lat,lon,temp\n"
                    "2020-01-01T00:00:00Z,95,-999,1\n"
                    "2020-01-01T01:00:00Z,10,400,2\n"
                    "2020-01-01T02:00:00Z,10,200.5,3\n"
                    "2020-01-01T03:00:00Z,10,10,4\n")
    _, table, _, _ = read_source("delimited", path, time={"columns": "time"},
                                 latitude_column="lat", longitude_column="lon",
                                 variables={"temp": {"name": "sea_water_temperature",
                                                     "units": "degC"}})
    assert table["longitude"].to_pylist() == [-999.0, 400.0, -159.5, 10.0]
    assert table["latitude"].to_pylist() == [95.0, 10.0, 10.0, 10.0]
    _, table, _, _ = read_source("delimited", path, time={"columns": "time"}, longitude=359.5,
                                 variables={"temp": {"name": "sea_water_temperature",
                                                     "units": "degC"}})
    assert set(table["longitude"].to_pylist()) == {-0.5}
