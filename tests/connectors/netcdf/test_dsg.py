"""netcdf_dsg connector: real Copernicus / OOI / ERDDAP files, synthetic layouts, helpers."""
from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pyarrow as pa
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import connectors
from connectors.exceptions import MissingVariableError, UnitConversionError
from connectors.netcdf.decoding import qc_to_int8
from connectors.netcdf.dsg import DsgConfig, ragged_maps
from connectors.pressure import pressure_to_depth
from pipelines.recipe import load
from tests.conftest import require_shared_data

REPO = Path(__file__).resolve().parents[3]
RECIPES = REPO / "examples" / "recipes"
GL = "argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc"
OOI = "argo_dsg_netcdf/ooi_pco2w_pco2_netcdf_example.nc"
ERDDAP = "argo_dsg_netcdf/erddap_ifremer_ArgoFloats_lon-20_-16_lat0_1_200401.nc"


def _data(rel: str) -> Path:
    return require_shared_data(rel)


def _read_all(config, path):
    """Plan + read every chunk; check accounting per chunk; return plan, table, results."""
    connector = connectors.get(config.kind)
    plan = connector.plan(config, str(path), "0" * 64, path.stat().st_size)
    results = [connector.read(config, chunk, plan.schema) for chunk in plan.chunks]
    for r in results:
        assert r.rows_in == r.table.num_rows + r.rows_dropped + r.rows_quarantined
        assert r.table.schema.equals(plan.schema, check_metadata=True)
    return plan, pa.concat_tables([r.table for r in results]), results


def _recipe_source(name):
    recipe = load(RECIPES / f"{name}.yaml")
    source = recipe.sources[0]
    path = (recipe.base_dir / source.uri).resolve()
    _data(str(path.relative_to((REPO / ".." / "shared" / "data").resolve())))
    return source, path


def _meta(schema, column, key):
    return schema.field(column).metadata[f"haina.{key}".encode()].decode()


# ---------------------------------------------------------------- Copernicus In Situ timeSeries


@pytest.fixture(scope="module")
def gl():
    source, path = _recipe_source("dsg_copernicus_exec0220")
    return (source, path) + _read_all(source, path)


def test_copernicus_rows_ids_time(gl):
    _, path, plan, table, results = gl
    ds = xr.open_dataset(path)  # independent: xarray's own CF decoding
    assert table.num_rows == ds.sizes["TIME"] == 2069
    assert sum(r.rows_dropped + r.rows_quarantined for r in results) == 0
    assert plan.attributes["feature_type"] == "timeSeries"
    assert set(table["platform_id"].to_pylist()) == {"EXEC0220"}
    times = table["time"].to_numpy().astype("datetime64[s]")
    assert times.min() == ds.TIME.values.min().astype("datetime64[s]")
    assert str(times.max()) == "2013-12-01T09:21:58"
    assert table["latitude"].to_numpy() == pytest.approx(43.45, abs=1e-4)
    assert table["longitude"].to_numpy() == pytest.approx(-3.76666, abs=1e-4)
    assert table["depth"].to_numpy() == pytest.approx(0.0)


def test_copernicus_values_units_and_qc(gl):
    _, path, plan, table, _ = gl
    ds = xr.open_dataset(path)
    temp = ds.TEMP.values[:, 0]
    got = table["sea_water_temperature"].to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(got, temp, rtol=1e-6, equal_nan=True)
    doxy_qc = table["mole_concentration_of_dissolved_molecular_oxygen_in_sea_water_qc_source"]
    counts = dict(zip(*np.unique(doxy_qc.drop_null().to_numpy(), return_counts=True), strict=True))
    assert counts == {1: 112, 4: 1846, 6: 17}
    assert doxy_qc.null_count == int(np.isnan(ds.DOXY_QC.values).sum()) == 2069 - 1975
    doxy = table["mole_concentration_of_dissolved_molecular_oxygen_in_sea_water"].to_numpy(
        zero_copy_only=False)
    assert np.nanmax(doxy) == pytest.approx(float(np.nanmax(ds.DOXY.values)), rel=1e-6)
    assert np.nanmax(doxy) > 5000  # kept, flagged by the source QC, not dropped
    assert _meta(plan.schema, "oxygen_saturation", "units") == "%"
    assert _meta(plan.schema, "oxygen_saturation", "source_name") == "OSAT"
    assert _meta(plan.schema, "sea_water_practical_salinity", "units") == "1e-3"
    assert table.schema.field("sea_water_temperature_qc_source").type == pa.int8()
    assert table.column_names[:4] == ["time", "depth", "latitude", "longitude"]
    assert table.column_names[-1] == "source_file"


def test_copernicus_chunked_equals_whole(gl):
    source, path, _, whole, _ = gl
    plan, chunked, results = _read_all(source.model_copy(update={"max_chunk_rows": 500}), path)
    assert len(plan.chunks) == 5
    assert chunked.equals(whole)


# ---------------------------------------------------------------- OOI pCO2 (point -> timeSeries)


def test_ooi_pco2(tmp_path):
    source, path = _recipe_source("dsg_ooi_pco2w_ce01issm")
    plan, table, results = _read_all(source, path)
    assert table.num_rows == 7339
    assert plan.attributes["feature_type"] == "timeSeries"      # recipe overrides "point"
    assert plan.attributes["featureType"] == "point"
    with netCDF4.Dataset(path) as nc:
        seconds = nc["time"][:].astype(np.float64)
        pco2 = nc["pco2_seawater"][:].astype(np.float64)
    expected = np.datetime64("1900-01-01T00:00:00", "us") + (seconds * 1e6).round().astype(
        "timedelta64[us]")
    np.testing.assert_array_equal(table["time"].to_numpy().astype("datetime64[us]"), expected)
    got = table["partial_pressure_of_carbon_dioxide_in_sea_water"].to_numpy(zero_copy_only=False)
    assert np.nanmax(got) == pytest.approx(np.nanmax(pco2), rel=1e-6)
    assert np.nanmax(got) > 73_000
    assert _meta(plan.schema, "partial_pressure_of_carbon_dioxide_in_sea_water",
                 "units") == "uatm"
    assert _meta(plan.schema, "partial_pressure_of_carbon_dioxide_in_sea_water",
                 "source_units") == "µatm"
    assert table["partial_pressure_of_carbon_dioxide_in_sea_water_qc_source"].null_count == 7339
    assert set(table["platform_id"].to_pylist()) == {"CE01ISSM-RID16-05-PCO2WB000"}
    assert table["depth"].null_count == 7339


def test_ooi_thermistor_units_label_with_ordinal_sign_is_celsius():
    """OOI writes 'ºC' (masculine ordinal, not the degree sign): read as degrees Celsius."""
    path = _data(OOI)
    config = DsgConfig(kind="netcdf_dsg", uri=str(path),
                       variables={"pco2w_thermistor_temperature": "sea_water_temperature"})
    plan = connectors.get("netcdf_dsg").plan(config, str(path), "0", 0)
    info = {c.name: c for c in plan.columns}["sea_water_temperature"]
    assert (info.source_units, info.units) == ("ºC", "degC")


def test_unconvertible_units_label_names_it():
    path = _data(OOI)
    config = DsgConfig(kind="netcdf_dsg", uri=str(path),
                       variables={"pco2_seawater": "sea_water_temperature"})
    with pytest.raises(UnitConversionError, match="µatm"):
        connectors.get("netcdf_dsg").plan(config, str(path), "0", 0)


# ---------------------------------------------------------------- ERDDAP Argo row table


def test_erddap_argo_profiles_regrouped():
    source, path = _recipe_source("dsg_erddap_argo_1900207")
    plan, table, _ = _read_all(source, path)
    ds = xr.open_dataset(path)
    assert table.num_rows == 55
    assert plan.attributes["feature_type"] == "trajectoryProfile"  # file says TrajectoryProfile
    assert set(table["platform_id"].to_pylist()) == {"1900207"}
    profiles = table["profile_id"].to_pylist()
    assert sorted(set(profiles)) == ["24", "25", "26"]
    # each profile's rows are contiguous: the id changes exactly twice
    assert sum(a != b for a, b in zip(profiles, profiles[1:], strict=False)) == 2
    qc = table["sea_water_temperature_qc_source"].to_numpy(zero_copy_only=False)
    assert (qc == 4).sum() == (ds.temp_adjusted_qc.values.astype(str) == "4").sum() > 0
    pres = table["sea_water_pressure"].to_numpy(zero_copy_only=False)
    depth = table["depth"].to_numpy()
    np.testing.assert_allclose(depth, pressure_to_depth(pres, table["latitude"].to_numpy()))
    assert np.all(depth < pres) and np.all(depth > 0.98 * pres)
    assert "UNESCO 1983" in _meta(plan.schema, "depth", "conversion")


def test_missing_variable_is_named():
    path = _data(GL)
    config = DsgConfig(kind="netcdf_dsg", uri=str(path), variables={"TEMPX": {}})
    with pytest.raises(MissingVariableError, match="TEMPX"):
        connectors.get("netcdf_dsg").plan(config, str(path), "0", 0)


def test_feature_type_is_case_insensitive():
    config = DsgConfig(kind="netcdf_dsg", uri="x.nc", feature_type="timeseriesprofile")
    assert config.feature_type == "timeSeriesProfile"
    with pytest.raises(ValueError):
        DsgConfig(kind="netcdf_dsg", uri="x.nc", bogus=1)


# ---------------------------------------------------------------- synthetic layouts


def _write(ds: xr.Dataset, tmp_path: Path, name="f.nc") -> Path:
    path = tmp_path / name
    ds.to_netcdf(path)
    return path


def _time_attrs():
    return {"standard_name": "time", "units": "seconds since 2020-01-01", "calendar": "standard"}


def test_contiguous_ragged_time_series_profile(tmp_path):
    """2 stations, 3 profiles (indexed to stations), 6 obs (contiguous per profile)."""
    ds = xr.Dataset({
        "station_name": ("station", np.array(["S1", "S2"], dtype="S2"),
                         {"cf_role": "timeseries_id"}),
        "lat": ("station", [10.0, 20.0], {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("station", [190.0, -5.0], {"standard_name": "longitude", "units": "degrees_east"}),
        "station_index": ("profile", np.array([1, 0, 1], dtype="i4"),
                          {"instance_dimension": "station"}),
        "row_size": ("profile", np.array([2, 1, 3], dtype="i4"), {"sample_dimension": "obs"}),
        "time": ("profile", [0.0, 60.0, 120.0], _time_attrs()),
        "z": ("obs", [1.0, 2.0, 5.0, 1.0, 2.0, 3.0],
              {"standard_name": "depth", "units": "m", "positive": "down"}),
        "temp": ("obs", [10.0, 11.0, 12.0, 13.0, np.nan, 15.0],
                 {"standard_name": "sea_water_temperature", "units": "K"}),
    }, attrs={"featureType": "timeSeriesProfile"})
    path = _write(ds, tmp_path)
    config = DsgConfig(kind="netcdf_dsg", uri=str(path))
    plan, table, results = _read_all(config, path)
    assert plan.attributes["layout"] == "ragged"
    assert table["platform_id"].to_pylist() == ["S2", "S2", "S1", "S2", "S2", "S2"]
    assert table["latitude"].to_pylist() == [20.0, 20.0, 10.0, 20.0, 20.0, 20.0]
    assert table["longitude"].to_pylist() == [-5.0, -5.0, -170.0, -5.0, -5.0, -5.0]
    assert table["time"].to_numpy().astype("datetime64[s]").astype(str).tolist()[2] == \
        "2020-01-01T00:01:00"
    temps = table["sea_water_temperature"].to_pylist()
    assert temps[0] == pytest.approx(10.0 - 273.15) and temps[4] is None
    assert table["depth"].to_pylist() == [1.0, 2.0, 5.0, 1.0, 2.0, 3.0]
    assert results[0].rows_in == 6


def test_incomplete_multidim_padding_dropped_and_missing_time_quarantined(tmp_path):
    nan = np.nan
    ds = xr.Dataset({
        "trajectory": ("traj", np.array(["A", "B"], dtype="S1"), {"cf_role": "trajectory_id"}),
        "time": (("traj", "obs"), [[0.0, 1.0, nan], [0.0, nan, nan]], _time_attrs()),
        "lat": (("traj", "obs"), [[1.0, 1.1, nan], [2.0, 2.1, nan]],
                {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": (("traj", "obs"), [[3.0, 3.1, nan], [4.0, 4.1, nan]],
                {"standard_name": "longitude", "units": "degrees_east"}),
        "psal": (("traj", "obs"), [[35.0, 35.1, nan], [34.0, 34.5, nan]],
                 {"standard_name": "sea_water_salinity", "units": "PSU"}),
        "psal_qc": (("traj", "obs"), np.array([[1, 4, -127], [1, 2, -127]], dtype="i1"),
                    {"_FillValue": np.int8(-127), "flag_values": np.arange(10, dtype="i1")}),
    }, attrs={"featureType": "trajectory"})
    ds["psal"].attrs["ancillary_variables"] = "psal_qc"
    path = _write(ds, tmp_path)
    plan, table, results = _read_all(DsgConfig(kind="netcdf_dsg", uri=str(path)), path)
    (r,) = results
    assert (r.rows_in, table.num_rows, r.rows_dropped, r.rows_quarantined) == (6, 3, 2, 1)
    assert r.quarantine["reason"].to_pylist() == ["missing_time"]
    assert r.quarantine["position"].to_pylist() == [4]     # traj B, obs 1 (0-based flat index)
    assert table["sea_water_salinity_qc_source"].to_pylist() == [1, 4, 1]
    assert table["platform_id"].to_pylist() == ["A", "A", "B"]


def test_pressure_to_depth_reference_value():
    # UNESCO Tech. Pap. Mar. Sci. 44 check value: 10 000 dbar at 30 degrees -> 9712.653 m
    assert pressure_to_depth(10_000.0, 30.0) == pytest.approx(9712.653, abs=1e-3)
    assert pressure_to_depth(0.0, 45.0) == 0.0
    assert np.isnan(pressure_to_depth(np.nan, 10.0))


# ---------------------------------------------------------------- property tests


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.data())
def test_ragged_maps_match_brute_force(counts, data):
    n_obs = sum(counts)
    parents = data.draw(st.lists(st.integers(0, 2), min_size=len(counts), max_size=len(counts)))
    ds = xr.Dataset({
        "row_size": ("profile", np.array(counts, "i4"), {"sample_dimension": "obs"}),
        "station_index": ("profile", np.array(parents, "i4"), {"instance_dimension": "station"}),
        "x": ("obs", np.zeros(n_obs)),
    })
    maps = ragged_maps(ds, "obs")
    oracle_profile = [p for p, c in enumerate(counts) for _ in range(c)]
    assert maps["profile"].tolist() == oracle_profile
    assert maps["station"].tolist() == [parents[p] for p in oracle_profile]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=1), min_size=1, max_size=30))
def test_qc_bytes_decode(chars):
    codes, missing = qc_to_int8(np.array(chars, dtype="S1"))
    for char, code, miss in zip(chars, codes, missing, strict=True):
        if char.isdigit():
            assert not miss and code == int(char)
        else:
            assert miss


# ---------------------------------------------------------------- profile ids


def _casts(tmp_path, with_ids: bool) -> Path:
    """trajectoryProfile, 2 trajectories x 2 profiles x 3 levels; the two casts of trajectory A
    are duplicates (same time, position, depths, values), as a re-sent cast would be."""
    t = np.array([[0.0, 0.0], [60.0, 120.0]])
    data = {
        "trajectory": ("traj", np.array(["A", "B"], dtype="S1"), {"cf_role": "trajectory_id"}),
        "time": (("traj", "profile"), t, _time_attrs()),
        "lat": (("traj", "profile"), np.full((2, 2), 10.0),
                {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": (("traj", "profile"), np.full((2, 2), 20.0),
                {"standard_name": "longitude", "units": "degrees_east"}),
        "z": (("traj", "profile", "level"), np.tile([1.0, 2.0, 3.0], (2, 2, 1)),
              {"standard_name": "depth", "units": "m", "positive": "down"}),
        "temp": (("traj", "profile", "level"), np.tile([10.0, 9.0, 8.0], (2, 2, 1)),
                 {"standard_name": "sea_water_temperature", "units": "degC"}),
    }
    if with_ids:
        data["cast"] = (("traj", "profile"), np.array([[7, 8], [9, 10]], "i4"),
                        {"cf_role": "profile_id"})
    return _write(xr.Dataset(data, attrs={"featureType": "trajectoryProfile"}), tmp_path)


@pytest.mark.parametrize("max_chunk_rows", [1_000_000, 6])
def test_trajectory_profile_without_ids_numbers_its_profiles(tmp_path, max_chunk_rows):
    path = _casts(tmp_path, with_ids=False)
    config = DsgConfig(kind="netcdf_dsg", uri=str(path), max_chunk_rows=max_chunk_rows)
    plan, table, results = _read_all(config, path)
    assert len(results) == (1 if max_chunk_rows > 12 else 2)
    assert table["profile_id"].to_pylist() == ["0"] * 3 + ["1"] * 3 + ["2"] * 3 + ["3"] * 3
    assert _meta(plan.schema, "profile_id", "source_name") == "index along profile"
    # the duplicated casts of trajectory A now differ in their key
    keys = set(zip(*(table[c].to_pylist() for c in ("platform_id", "profile_id", "time",
                                                     "depth")), strict=True))
    assert len(keys) == table.num_rows == 12


def test_trajectory_profile_with_a_profile_id_variable_uses_it(tmp_path):
    path = _casts(tmp_path, with_ids=True)
    _, table, _ = _read_all(DsgConfig(kind="netcdf_dsg", uri=str(path)), path)
    assert table["profile_id"].to_pylist() == [str(i) for i in (7, 8, 9, 10) for _ in range(3)]


def test_ragged_profiles_are_numbered_by_their_counts(tmp_path):
    ds = xr.Dataset({
        "row_size": ("profile", np.array([2, 0, 3], "i4"), {"sample_dimension": "obs"}),
        "time": ("profile", [0.0, 0.0, 0.0], _time_attrs()),
        "lat": ("profile", [1.0, 1.0, 1.0], {"standard_name": "latitude",
                                             "units": "degrees_north"}),
        "lon": ("profile", [2.0, 2.0, 2.0], {"standard_name": "longitude",
                                             "units": "degrees_east"}),
        "z": ("obs", [1.0, 2.0, 1.0, 2.0, 3.0], {"standard_name": "depth", "units": "m"}),
        "temp": ("obs", [5.0, 6.0, 5.0, 6.0, 7.0],
                 {"standard_name": "sea_water_temperature", "units": "degC"}),
    }, attrs={"featureType": "profile"})
    path = _write(ds, tmp_path)
    _, table, _ = _read_all(DsgConfig(kind="netcdf_dsg", uri=str(path), platform_id="P"), path)
    assert table["profile_id"].to_pylist() == ["0", "0", "2", "2", "2"]


def test_real_argo_file_read_as_dsg_has_a_profile_per_cycle():
    path = _data("argo_dsg_netcdf/1901462_prof.nc")
    config = DsgConfig(kind="netcdf_dsg", uri=str(path), pressure_to_depth=True)
    _, table, _ = _read_all(config, path)
    ids = table["profile_id"].to_pylist()
    assert sorted(set(ids), key=int) == [str(i) for i in range(21)]
