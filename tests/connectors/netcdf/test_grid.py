"""The netcdf_grid connector on tiny synthetic files written by the tests themselves."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import netCDF4
import numpy as np
import pyarrow as pa
import pytest

import connectors
from connectors.exceptions import (
    MissingVariableError,
    SourceNotFoundError,
    UnitConversionError,
    UnreadableSourceError,
)
from connectors.netcdf import grid as gridded
from connectors.netcdf.grid import GriddedConfig, GriddedNetCDF

NaN = np.nan
LAT = ("lat", "f8", ("lat",), [10.0, 20.0], {"units": "degrees_north"})
LON = ("lon", "f8", ("lon",), [-5.0, 0.0, 5.0], {"units": "degrees_east"})


def write_nc(path: Path, dims: dict, variables: list, fmt: str = "NETCDF4",
             attrs: dict | None = None) -> str:
    """Write raw (already packed) values; each variable is (name, dtype, dims, values, attrs)."""
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.setncatts(attrs or {})
        for name, size in dims.items():
            nc.createDimension(name, size)
        for name, dtype, vdims, values, vattrs in variables:
            vattrs = dict(vattrs)
            var = nc.createVariable(name, dtype, vdims, fill_value=vattrs.pop("_FillValue", None))
            var.set_auto_maskandscale(False)
            var.setncatts(vattrs)
            var[...] = np.asarray(values, dtype=dtype)
    return str(path)


def run(path: str, **options) -> tuple:
    """Plan and read every chunk; return the plan, the concatenated table and the totals."""
    config = GriddedConfig(kind="netcdf_grid", uri=path, **options)
    connector = GriddedNetCDF()
    plan = connector.plan(config, path, "sha", 0)
    results = [connector.read(config, chunk, plan.schema) for chunk in plan.chunks]
    for result in results:
        assert result.table.schema.equals(plan.schema, check_metadata=True)
        assert result.rows_in == result.table.num_rows + result.rows_dropped
    table = pa.concat_tables([r.table for r in results])
    return plan, table, sum(r.rows_in for r in results), sum(r.rows_dropped for r in results)


def temp(values, **attrs) -> tuple:
    spec = {"standard_name": "sea_water_temperature", "units": "degC", "_FillValue": np.float32(-999)}
    return ("temp", "f4", ("time", "lat", "lon"), values, {**spec, **attrs})


def time_var(values, units="days since 2000-01-01", **attrs) -> tuple:
    return ("time", "f8", ("time",), values, {"standard_name": "time", "units": units, **attrs})


GRID = np.arange(12, dtype=np.float32).reshape(2, 2, 3)


# --------------------------------------------------------------------------- time encodings


@pytest.mark.parametrize("time_values, units, calendar, expected", [
    ([0, 366], "days since 1900-01-01", "standard", ["1900-01-01", "1901-01-02"]),
    ([-1, 0], "days since 1950-01-01", None, ["1949-12-31", "1950-01-01"]),
    ([59, 365], "days since 2000-01-01", "noleap", ["2000-03-01", "2001-01-01"]),
    ([0, 720], "hours since 1900-01-01 00:00:00", "360_day",
     ["1900-01-01T00:00", "1900-01-31T10:00"]),
], ids=["pre1970", "negative", "noleap", "360_day"])
def test_time_axis_is_decoded_to_utc(tmp_path, time_values, units, calendar, expected):
    tattrs = {"calendar": calendar} if calendar else {}
    path = write_nc(tmp_path / "t.nc", {"time": 2, "lat": 2, "lon": 3},
                    [time_var(time_values, units, **tattrs), LAT, LON, temp(GRID)])
    plan, table, rows_in, dropped = run(path)
    assert (rows_in, dropped, table.num_rows) == (12, 0, 12)
    want = np.repeat(np.array(expected, "datetime64[us]"), 6)
    np.testing.assert_array_equal(table["time"].to_numpy(), want)
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    meta = plan.schema.field("time").metadata
    assert (calendar or "standard").encode() in meta[b"haina.conversion"]
    assert meta[b"haina.source_units"] == units.encode()


def test_rows_are_time_major_with_broadcast_coordinates(tmp_path):
    grid = GRID.copy()
    grid[0, 1, 2] = -999  # fill: dropped
    path = write_nc(tmp_path / "g.nc", {"time": 2, "lat": 2, "lon": 3},
                    [time_var([0, 1]), LAT, LON, temp(grid)])
    plan, table, rows_in, dropped = run(path)
    assert (rows_in, dropped, table.num_rows) == (12, 1, 11)
    assert table.column_names == ["time", "depth", "latitude", "longitude",
                                  "sea_water_temperature", "source_file"]
    assert table["sea_water_temperature"].to_pylist() == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert table["latitude"].to_pylist() == [10, 10, 10, 20, 20] + [10, 10, 10, 20, 20, 20]
    assert table["longitude"].to_pylist() == [-5, 0, 5, -5, 0] + [-5, 0, 5, -5, 0, 5]
    assert table["depth"].null_count == 11
    assert set(table["source_file"].to_pylist()) == {path}
    assert table.schema.field("sea_water_temperature").type == pa.float32()
    assert table.schema.field("depth").type == pa.float64()


def test_cell_kept_when_any_variable_is_present(tmp_path):
    u = np.full((1, 2, 3), -999, np.float32)
    v = np.full((1, 2, 3), -999, np.float32)
    u[0, 0, 0], v[0, 0, 1] = 1.5, 2.5
    vel = {"units": "m s-1", "_FillValue": np.float32(-999)}
    path = write_nc(tmp_path / "uv.nc", {"time": 1, "lat": 2, "lon": 3}, [
        time_var([0]), LAT, LON,
        ("u", "f4", ("time", "lat", "lon"), u, {"standard_name": "eastward_sea_water_velocity", **vel}),
        ("v", "f4", ("time", "lat", "lon"), v, {"standard_name": "northward_sea_water_velocity", **vel}),
    ])
    _, table, rows_in, dropped = run(path)
    assert (rows_in, dropped) == (6, 4)
    assert table["eastward_sea_water_velocity"].to_pylist() == [1.5, None]
    assert table["northward_sea_water_velocity"].to_pylist() == [None, 2.5]


# --------------------------------------------------------------------------- decoding


def test_packed_int16_with_scale_offset_and_fill(tmp_path):
    raw = np.array([[[0, 100, -32767], [250, -32767, -32767]]], np.int16)
    packed = {"standard_name": "sea_water_temperature", "units": "degC", "scale_factor": 0.01,
              "add_offset": 20.0, "_FillValue": np.int16(-32767)}
    path = write_nc(tmp_path / "p.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0]), LAT, LON, ("temp", "i2", ("time", "lat", "lon"), raw, packed)])
    _, table, rows_in, dropped = run(path)
    assert (rows_in, dropped) == (6, 3)
    values = table["sea_water_temperature"].to_numpy()
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, np.array([20.0, 21.0, 22.5], np.float32))


def test_float64_mapping_keeps_precision(tmp_path):
    path = write_nc(tmp_path / "d.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0]), LAT, LON, temp(np.full((1, 2, 3), 0.1, np.float32))])
    _, table, _, _ = run(path, variables={"temp": {"dtype": "float64"}})
    assert table.schema.field("sea_water_temperature").type == pa.float64()
    assert table["sea_water_temperature"][0].as_py() == float(np.float32(0.1))


def test_curvilinear_2d_coordinates(tmp_path):
    nav_lat = [[40.0, 40.5, 41.0], [42.0, 42.5, 43.0]]
    nav_lon = [[350.0, 355.0, 0.0], [349.0, 354.0, 359.0]]
    path = write_nc(tmp_path / "c.nc", {"time_counter": 1, "y": 2, "x": 3}, [
        ("time_counter", "f8", ("time_counter",), [0], {"units": "seconds since 2000-01-01",
                                                        "standard_name": "time"}),
        ("nav_lat", "f4", ("y", "x"), nav_lat, {"units": "degrees_north", "standard_name": "latitude"}),
        ("nav_lon", "f4", ("y", "x"), nav_lon, {"units": "degrees_east", "standard_name": "longitude"}),
        ("votemper", "f4", ("time_counter", "y", "x"), np.arange(6).reshape(1, 2, 3),
         {"standard_name": "sea_water_potential_temperature", "units": "degC"}),
    ])
    plan, table, rows_in, _ = run(path)
    assert rows_in == 6
    assert table["latitude"].to_pylist() == [40.0, 40.5, 41.0, 42.0, 42.5, 43.0]
    assert table["longitude"].to_pylist() == [-10.0, -5.0, 0.0, -11.0, -6.0, -1.0]
    assert table["sea_water_potential_temperature"].to_pylist() == [0, 1, 2, 3, 4, 5]
    assert plan.schema.field("latitude").metadata[b"haina.source_name"] == b"nav_lat"


def test_longitudes_0_360_are_normalised(tmp_path):
    lon = ("lon", "f8", ("lon",), [0.0, 180.0, 359.5], {"units": "degrees_east"})
    path = write_nc(tmp_path / "l.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0]), LAT, lon, temp(GRID[:1])])
    _, table, _, _ = run(path)
    assert table["longitude"].to_pylist() == [0.0, -180.0, -0.5] * 2


def test_unit_conversions_kelvin_and_cm_per_s(tmp_path):
    kelvin = np.array([[[273.15, 283.15, 293.15], [300.0, 250.0, 273.65]]], np.float32)
    cms = np.array([[[100, -50, 0], [1, 2, 3]]], np.float32)
    path = write_nc(tmp_path / "u.nc", {"time": 1, "lat": 2, "lon": 3}, [
        time_var([0]), LAT, LON,
        ("sst", "f4", ("time", "lat", "lon"), kelvin,
         {"standard_name": "sea_surface_temperature", "units": "K"}),
        ("uo", "f4", ("time", "lat", "lon"), cms,
         {"standard_name": "eastward_sea_water_velocity", "units": "cm/s"}),
    ])
    plan, table, _, _ = run(path)
    np.testing.assert_allclose(table["sea_surface_temperature"].to_numpy(),
                               [0.0, 10.0, 20.0, 26.85, -23.15, 0.5], atol=2e-5)
    np.testing.assert_allclose(table["eastward_sea_water_velocity"].to_numpy(),
                               [1.0, -0.5, 0.0, 0.01, 0.02, 0.03], rtol=1e-6)
    sst = plan.schema.field("sea_surface_temperature").metadata
    assert sst[b"haina.units"] == b"degC" and sst[b"haina.source_units"] == b"K"
    assert b"- 273.15" in sst[b"haina.conversion"]
    assert plan.schema.field("eastward_sea_water_velocity").metadata[b"haina.units"] == b"m s-1"


def test_salinity_labelled_psu_is_canonical(tmp_path):
    salt = np.full((1, 2, 3), 35.5, np.float32)
    path = write_nc(tmp_path / "s.nc", {"time": 1, "lat": 2, "lon": 3}, [
        time_var([0]), LAT, LON,
        ("salt", "f4", ("time", "lat", "lon"), salt,
         {"standard_name": "sea_water_practical_salinity", "units": "PSU"})])
    plan, table, _, _ = run(path)
    assert table["sea_water_practical_salinity"].to_pylist() == [35.5] * 6
    meta = plan.schema.field("sea_water_practical_salinity").metadata
    assert meta[b"haina.units"] == b"1e-3" and meta[b"haina.source_units"] == b"PSU"


def test_no_time_axis_gives_null_time(tmp_path):
    elev = ("elevation", "i2", ("lat", "lon"), [[-10, 5, 32767], [-3000, 0, 1]],
            {"standard_name": "height_above_reference_ellipsoid", "units": "m",
             "_FillValue": np.int16(32767)})
    path = write_nc(tmp_path / "n.nc", {"lat": 2, "lon": 3}, [LAT, LON, elev], fmt="NETCDF3_CLASSIC")
    plan, table, rows_in, dropped = run(path)
    assert (rows_in, dropped) == (6, 1)
    assert table["time"].null_count == 5
    assert table["height_above_reference_ellipsoid"].to_pylist() == [-10, 5, -3000, 0, 1]
    assert plan.chunks[0].dim == "lat"


@pytest.mark.parametrize("depth_attrs, values, setting, expected", [
    ({"positive": "up", "units": "m"}, [-1.0, -10.0], "auto", [1.0, 10.0]),
    ({"standard_name": "height", "units": "m"}, [-2.0, -4.0], "auto", [2.0, 4.0]),
    ({"positive": "down", "units": "cm", "axis": "Z"}, [50.0, 150.0], "auto", [0.5, 1.5]),
    ({"standard_name": "depth", "units": "m"}, [5.0, 10.0], "up", [-5.0, -10.0]),
], ids=["positive-up", "height", "cm-down", "forced-up"])
def test_depth_is_metres_positive_down(tmp_path, depth_attrs, values, setting, expected):
    depth = ("lev", "f8", ("lev",), values, depth_attrs)
    grid = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
    path = write_nc(tmp_path / "z.nc", {"time": 1, "lev": 2, "lat": 2, "lon": 3}, [
        time_var([0]), depth, LAT, LON,
        ("temp", "f4", ("time", "lev", "lat", "lon"), grid,
         {"standard_name": "sea_water_temperature", "units": "degC"})])
    _, table, _, _ = run(path, depth_positive=setting)
    assert table["depth"].to_pylist() == [expected[0]] * 6 + [expected[1]] * 6
    assert table["sea_water_temperature"].to_pylist() == list(range(12))


def test_scalar_depth_and_explicit_coordinates(tmp_path):
    path = write_nc(tmp_path / "e.nc", {"t": 2, "j": 2, "i": 3}, [
        ("t", "f8", ("t",), [0, 1], {"units": "hours since 2020-01-01"}),
        ("z", "f4", (), 3.0, {"units": "m"}),
        ("yy", "f8", ("j",), [1.0, 2.0], {}),
        ("xx", "f8", ("i",), [7.0, 8.0, 9.0], {}),
        ("sst", "f4", ("t", "j", "i"), GRID, {"units": "degC"}),
    ])
    _, table, _, _ = run(path, variables={"sst": {"name": "sea_surface_temperature"}},
                         coordinates={"latitude": "yy", "longitude": "xx", "depth": "z"})
    assert table["depth"].to_pylist() == [3.0] * 12
    assert table["latitude"].to_pylist()[:6] == [1, 1, 1, 2, 2, 2]
    assert str(table["time"][6].as_py()) == "2020-01-01 01:00:00+00:00"


def test_dimension_order_is_transposed_to_time_major(tmp_path):
    path = write_nc(tmp_path / "o.nc", {"lat": 2, "lon": 3, "time": 2}, [
        time_var([0, 1]), LAT, LON,
        ("temp", "f4", ("lat", "lon", "time"), np.moveaxis(GRID, 0, -1),
         {"standard_name": "sea_water_temperature", "units": "degC"})])
    _, table, _, _ = run(path)
    assert table["sea_water_temperature"].to_pylist() == list(range(12))


# --------------------------------------------------------------------------- chunking and memory


def _big_file(tmp_path, nt=40, ny=50, nx=60) -> str:
    rng = np.random.default_rng(3)
    values = rng.normal(15, 3, (nt, ny, nx)).astype(np.float32)
    values[:, :5, :7] = -999  # a land corner
    lat = ("lat", "f8", ("lat",), np.linspace(-10, 10, ny), {"units": "degrees_north"})
    lon = ("lon", "f8", ("lon",), np.linspace(170, 200, nx), {"units": "degrees_east"})
    return write_nc(tmp_path / "big.nc", {"time": nt, "lat": ny, "lon": nx},
                    [time_var(np.arange(nt)), lat, lon, temp(values)])


@pytest.mark.parametrize("options, n_chunks", [
    ({"chunk_size": 1}, 40), ({"chunk_size": 7}, 6), ({"chunk_size": 40}, 1),
    ({"target_chunk_cells": 10_000}, 14), ({}, 1),
])
def test_chunk_sizes_give_the_same_table(tmp_path, options, n_chunks):
    path = _big_file(tmp_path)
    _, whole, rows_in, dropped = run(path, chunk_size=40)
    plan, table, chunked_in, chunked_dropped = run(path, **options)
    assert len(plan.chunks) == n_chunks
    assert [c.ordinal for c in plan.chunks] == list(range(n_chunks))
    assert (chunked_in, chunked_dropped) == (rows_in, dropped) == (40 * 3000, 40 * 35)
    assert table.equals(whole)


def test_chunking_along_another_dim_gives_the_same_rows(tmp_path):
    path = _big_file(tmp_path)
    _, whole, _, _ = run(path)
    plan, table, _, _ = run(path, chunk_dim="lat", chunk_size=9)
    assert {c.dim for c in plan.chunks} == {"lat"} and len(plan.chunks) == 6
    keys = ["time", "latitude", "longitude"]
    assert table.sort_by([(k, "ascending") for k in keys]).equals(
        whole.sort_by([(k, "ascending") for k in keys]))


def test_reading_a_chunk_loads_only_its_slab(tmp_path):
    path = _big_file(tmp_path, nt=100, ny=100, nx=100)  # 4 MB of float32 on disk
    config = GriddedConfig(kind="netcdf_grid", uri=path, chunk_size=1)
    connector = GriddedNetCDF()
    plan = connector.plan(config, path, "sha", 0)
    chunk = plan.chunks[57]
    assert (chunk.dim, chunk.start, chunk.stop) == ("time", 57, 58)
    tracemalloc.start()
    result = connector.read(config, chunk, plan.schema)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.rows_in == 10_000
    assert result.table["time"][0].as_py().isoformat() == "2000-02-27T00:00:00+00:00"
    assert peak < 1_500_000, f"reading one 40 kB slab peaked at {peak} bytes"


# --------------------------------------------------------------------------- plan details


def test_registry_and_plan_attributes(tmp_path):
    path = write_nc(tmp_path / "a.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0]), LAT, LON, temp(GRID[:1])],
                    attrs={"title": "T", "licence": "CC-BY-4.0", "credit": "C", "history": "h"})
    assert isinstance(connectors.get("netcdf_grid"), GriddedNetCDF)
    plan, _, _, _ = run(path)
    assert plan.attributes == {"title": "T", "licence": "CC-BY-4.0", "credit": "C"}
    assert [f.metadata[b"haina.role"] for f in plan.schema] == [
        b"coordinate"] * 4 + [b"variable", b"source"]


# --------------------------------------------------------------------------- errors


def _assert_names_file(err, path) -> None:
    message = str(err.value)
    assert Path(path).name in message and "Fix:" in message


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET",
                                 "NETCDF3_64BIT_DATA"])
def test_truncated_file(tmp_path, fmt):
    # netCDF-3 opens fine when cut and reads zeros past the end: the header check must catch it
    path = write_nc(tmp_path / "whole.nc", {"time": 500, "lat": 2, "lon": 3},
                    [time_var(np.arange(500)), LAT, LON, temp(np.ones((500, 2, 3)))], fmt=fmt)
    data = Path(path).read_bytes()
    cut = tmp_path / "cut.nc"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableSourceError) as err:
        run(str(cut))
    _assert_names_file(err, cut)


def test_text_file_named_nc(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("time,temp\n2020-01-01,12.5\n")
    with pytest.raises(UnreadableSourceError) as err:
        run(str(path))
    _assert_names_file(err, path)


def test_missing_file(tmp_path):
    with pytest.raises(SourceNotFoundError) as err:
        run(str(tmp_path / "gone.nc"))
    _assert_names_file(err, "gone.nc")


def test_mapped_variable_absent(tmp_path):
    path = write_nc(tmp_path / "m.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0]), LAT, LON, temp(GRID[:1])])
    with pytest.raises(MissingVariableError) as err:
        run(path, variables={"thetao": {}})
    _assert_names_file(err, path)
    assert "'thetao'" in str(err.value) and "temp" in str(err.value)


def test_no_known_variable_without_mapping(tmp_path):
    path = write_nc(tmp_path / "k.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0]), LAT, LON, ("foo", "f4", ("time", "lat", "lon"), GRID[:1], {})])
    with pytest.raises(MissingVariableError) as err:
        run(path)
    _assert_names_file(err, path)
    assert "foo" in str(err.value)


def test_units_that_cannot_be_converted(tmp_path):
    path = write_nc(tmp_path / "bad.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0]), LAT, LON, temp(GRID[:1], units="m")])
    with pytest.raises(UnitConversionError) as err:
        run(path)
    _assert_names_file(err, path)
    assert "'m'" in str(err.value) and "degC" in str(err.value)


def test_missing_latitude_names_the_recipe_key(tmp_path):
    path = write_nc(tmp_path / "nolat.nc", {"time": 1, "y": 2, "lon": 3},
                    [time_var([0]), LON, ("temp", "f4", ("time", "y", "lon"), GRID[:1],
                                          {"standard_name": "sea_water_temperature",
                                           "units": "degC"})])
    with pytest.raises(MissingVariableError) as err:
        run(path)
    _assert_names_file(err, path)
    assert "coordinates: {latitude:" in str(err.value)


def test_bad_time_units_fail_at_plan(tmp_path):
    path = write_nc(tmp_path / "tu.nc", {"time": 1, "lat": 2, "lon": 3},
                    [time_var([0], units="months since 2000-01-01"), LAT, LON, temp(GRID[:1])])
    with pytest.raises(UnreadableSourceError) as err:
        run(path)
    _assert_names_file(err, path)


@pytest.fixture(autouse=True)
def _fresh_cache():
    gridded.clear_cache()
    yield
    gridded.clear_cache()
