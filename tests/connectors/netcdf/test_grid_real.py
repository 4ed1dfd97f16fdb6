"""The netcdf_grid connector on the four real gridded files in ../shared/data/gridded_netcdf.

Expected values are computed independently with xarray's own CF decoding (times included).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import xarray as xr

from connectors.netcdf import grid as gridded
from connectors.netcdf.grid import GriddedConfig, GriddedNetCDF

pytestmark = pytest.mark.realdata

GEBCO = "GEBCO_2020_erddap_subset_lat-67_-54_lon81_123.nc"
HFR = "ndbc_hfradar_uswc_1km_rtv_20250602T0000Z.nc"
GLO = ("cmems_mod_glo_phy-so_anfc_0.083deg_P1D-m_so_13.00W-5.00E_47.00N-64.00N_0.49m_"
       "2025-09-24-2025-09-25.nc")
IBI = ("cmems_mod_ibi_phy_my_0.083deg-3D_P1Y-m_thetao_9.83W-9.67W_34.00N-34.17N_0.51-1.56m_"
       "1993-01-01-2021-01-01.nc")

# file -> (source vars, output columns, rows_in, rows_dropped, canonical units)
CASES = {
    GEBCO: (["elevation"], ["height_above_reference_ellipsoid"], 313 * 1009, None, ["m"]),
    HFR: (["u", "v"], ["surface_eastward_sea_water_velocity",
                       "surface_northward_sea_water_velocity"],
          2197 * 1399, 2197 * 1399 - 4105, ["m s-1", "m s-1"]),
    GLO: (["so"], ["sea_water_salinity"], 2 * 205 * 217, None, ["1e-3"]),
    IBI: (["thetao"], ["sea_water_potential_temperature"], 29 * 2 * 3 * 3, 0, ["degC"]),
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    gridded.clear_cache()
    yield
    gridded.clear_cache()


def _run(path, **options):
    config = GriddedConfig(kind="netcdf_grid", uri=str(path), **options)
    connector = GriddedNetCDF()
    plan = connector.plan(config, str(path), "sha", path.stat().st_size)
    results = [connector.read(config, chunk, plan.schema) for chunk in plan.chunks]
    for result in results:
        assert result.table.schema.equals(plan.schema, check_metadata=True)
    table = pa.concat_tables(r.table for r in results)
    return plan, table, sum(r.rows_in for r in results), sum(r.rows_dropped for r in results)


def _expected(ds: xr.Dataset, names: list[str]) -> tuple[dict, np.ndarray]:
    """Each variable's kept values, and the keep mask, from xarray's decoded arrays."""
    arrays = {n: ds[n].values.ravel() for n in names}
    keep = np.logical_or.reduce([np.isfinite(a) for a in arrays.values()])
    return {n: a[keep] for n, a in arrays.items()}, keep


@pytest.mark.parametrize("name", list(CASES))
def test_real_file_values_match_xarray(shared_data, name):
    path = shared_data / "gridded_netcdf" / name
    sources, columns, rows_in, dropped, canonical = CASES[name]
    plan, table, got_in, got_dropped = _run(path)
    with xr.open_dataset(path) as ds:
        expected, keep = _expected(ds, sources)
        assert got_in == rows_in == keep.size
        assert got_dropped == int((~keep).sum())
        if dropped is not None:
            assert got_dropped == dropped
        assert table.num_rows == rows_in - got_dropped
        for source, column, units in zip(sources, columns, canonical, strict=True):
            got = table[column].to_numpy(zero_copy_only=False)
            np.testing.assert_array_equal(got, expected[source].astype(np.float32))
            meta = plan.schema.field(column).metadata
            assert meta[b"haina.units"] == units.encode()
            assert meta[b"haina.source_name"] == source.encode()


@pytest.mark.parametrize("name", list(CASES))
def test_real_file_coordinates_match_xarray(shared_data, name):
    path = shared_data / "gridded_netcdf" / name
    sources = CASES[name][0]
    _, table, _, _ = _run(path)
    with xr.open_dataset(path) as ds:
        grid = ds[sources[0]]
        _, keep = _expected(ds, sources)
        lat_name, lon_name = ("lat", "lon") if name == HFR else ("latitude", "longitude")
        lat, lon = (xr.broadcast(grid[c], grid)[0].transpose(*grid.dims)
                    for c in (lat_name, lon_name))
        want_lat = lat.values.astype(np.float64).ravel()[keep]
        want_lon = lon.values.astype(np.float64).ravel()[keep]
        np.testing.assert_array_equal(table["latitude"].to_numpy(), want_lat)
        np.testing.assert_array_equal(table["longitude"].to_numpy(), want_lon)
        assert -180 <= table["longitude"].to_numpy().min()
        assert table["longitude"].to_numpy().max() < 180
        if "time" in grid.dims:
            times = xr.broadcast(grid.time, grid)[0].transpose(*grid.dims).values.ravel()[keep]
            np.testing.assert_array_equal(table["time"].to_numpy().astype("datetime64[ns]"),
                                          times.astype("datetime64[ns]"))
        else:
            assert table["time"].null_count == table.num_rows


def test_gebco_has_no_time_and_positive_land(shared_data):
    plan, table, rows_in, dropped = _run(shared_data / "gridded_netcdf" / GEBCO)
    assert (rows_in, dropped) == (315_817, 0)
    assert table["time"].null_count == table["depth"].null_count == rows_in
    elevation = table["height_above_reference_ellipsoid"].to_numpy()
    assert elevation.max() == 1643.0  # land, per the data README
    lat = table["latitude"].to_numpy()
    assert lat.min() == pytest.approx(-66.99791667) and lat.max() == pytest.approx(-53.99791667)
    assert plan.attributes["institution"] == "GEBCO, BODC"
    assert plan.chunks[0].dim == "latitude"


def test_hf_radar_fill_time_depth_and_chunking(shared_data):
    path = shared_data / "gridded_netcdf" / HFR
    plan, table, rows_in, dropped = _run(path, target_chunk_cells=500_000)
    assert len(plan.chunks) == 7 and {c.dim for c in plan.chunks} == {"lat"}
    assert table.num_rows == 4105 and rows_in - dropped == 4105
    assert set(table["time"].to_pylist()) == {
        dt.datetime(2025, 6, 2, tzinfo=dt.UTC)}
    assert set(table["depth"].to_pylist()) == {float(np.float32(0.3))}
    u = table["surface_eastward_sea_water_velocity"]
    # packed int16 * 0.01: every value sits on the 0.01 grid
    values = u.to_numpy(zero_copy_only=False)
    finite = values[np.isfinite(values)]
    np.testing.assert_allclose(finite * 100, np.round(finite * 100), atol=1e-3)


def test_cmems_glo_salinity_and_licence(shared_data):
    plan, table, rows_in, dropped = _run(shared_data / "gridded_netcdf" / GLO)
    assert rows_in == 88_970
    assert 0.2 < dropped / rows_in < 0.25  # 23 % land per the data README
    assert plan.attributes["credit"] == "E.U. Copernicus Marine Service Information (CMEMS)"
    assert "licence" in plan.attributes
    assert set(table["depth"].to_pylist()) == {float(np.float32(0.494025))}
    meta = plan.schema.field("sea_water_salinity").metadata
    assert meta[b"haina.conversion"] == b"none (1e-3 is 1e-3)"
    times = sorted(set(table["time"].to_numpy().astype("datetime64[D]").astype(str)))
    assert times == ["2025-09-24", "2025-09-25"]


def test_cmems_ibi_packed_thetao(shared_data):
    plan, table, rows_in, dropped = _run(shared_data / "gridded_netcdf" / IBI)
    assert (rows_in, dropped) == (522, 0)
    years = table["time"].to_numpy().astype("datetime64[Y]").astype(int) + 1970
    assert sorted(set(years)) == list(range(1993, 2022))
    assert set(table["time"].to_numpy().astype("datetime64[D]").astype(str)) == {
        f"{y}-01-01" for y in range(1993, 2022)}
    field = plan.schema.field("sea_water_potential_temperature")
    assert field.type == pa.float32()
    assert field.metadata[b"haina.source_units"] == b"degrees_C"
    assert sorted(set(table["depth"].to_pylist()))[0] == pytest.approx(0.50576, abs=1e-5)
    with xr.open_dataset(shared_data / "gridded_netcdf" / IBI) as ds:
        first = float(ds.thetao.isel(time=0, depth=0, latitude=0, longitude=0))
    assert table["sea_water_potential_temperature"][0].as_py() == pytest.approx(first, abs=1e-6)
