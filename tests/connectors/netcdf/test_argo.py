"""argo connector: GDAC core, BGC synthetic and multi-profile files, checked against netCDF4."""
from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pyarrow as pa
import pytest

import connectors
from connectors.exceptions import MissingVariableError
from connectors.netcdf.argo import ArgoConfig, select_values
from connectors.pressure import pressure_to_depth
from pipelines.recipe import load
from tests.conftest import require_shared_data

REPO = Path(__file__).resolve().parents[3]
SHARED = (REPO / ".." / "shared" / "data").resolve()
EPOCH = np.datetime64("1950-01-01T00:00:00", "us")


def _data(rel: str) -> Path:
    return require_shared_data(rel)


def _read_all(config, path):
    connector = connectors.get("argo")
    plan = connector.plan(config, str(path), "0" * 64, path.stat().st_size)
    results = [connector.read(config, chunk, plan.schema) for chunk in plan.chunks]
    for r in results:
        assert r.rows_in == r.table.num_rows + r.rows_dropped + r.rows_quarantined
        assert r.table.schema.equals(plan.schema, check_metadata=True)
    return plan, pa.concat_tables([r.table for r in results]), results


def _recipe(name):
    recipe = load(REPO / "examples" / "recipes" / f"{name}.yaml")
    source = recipe.sources[0]
    path = (recipe.base_dir / source.uri).resolve()
    _data(str(path.relative_to(SHARED)))
    return source, path


def _nc(path, name):
    with netCDF4.Dataset(path) as nc:
        return np.ma.filled(nc[name][:].astype(np.float64), np.nan)


def _col(table, name):
    return table[name].to_numpy(zero_copy_only=False)


def test_core_delayed_mode_single_profile():
    source, path = _recipe("argo_d4901079_010")
    plan, table, results = _read_all(source, path)
    assert table.num_rows == 72 and results[0].rows_in == 72
    assert sum(r.rows_dropped + r.rows_quarantined for r in results) == 0
    assert set(table["platform_id"].to_pylist()) == {"4901079"}
    assert set(table["cycle_number"].to_pylist()) == {10}
    assert set(table["data_mode"].to_pylist()) == {"D"}
    assert set(table["profile_index"].to_pylist()) == {0}
    # D mode: adjusted values are used
    psal_adj = _nc(path, "PSAL_ADJUSTED")[0]
    assert _col(table, "sea_water_salinity")[0] == pytest.approx(psal_adj[0], rel=1e-6)
    assert _col(table, "sea_water_salinity")[0] == pytest.approx(36.08706, abs=1e-5)
    juld = _nc(path, "JULD")[0]
    expected = EPOCH + np.timedelta64(int(round(juld * 86_400_000_000)), "us")
    assert table["time"].to_numpy()[0].astype("datetime64[us]") == expected
    assert str(expected.astype("datetime64[m]")) == "2007-08-24T05:02"
    pres = _col(table, "sea_water_pressure")
    assert pres.min() == pytest.approx(4.3, abs=0.01) and pres.max() > 2000
    np.testing.assert_allclose(_col(table, "depth"), pressure_to_depth(pres, 40.204), rtol=1e-6)
    assert set(table["profile_sea_water_salinity_grade"].to_pylist()) == {"B"}
    assert set(_col(table, "sea_water_salinity_qc_source")) <= set(range(10))
    meta = plan.schema.field("depth").metadata
    assert b"UNESCO 1983" in meta[b"haina.conversion"]
    assert plan.schema.field("sea_water_salinity").metadata[b"haina.units"] == b"1e-3"


def test_prefer_adjusted_false_reads_raw():
    path = _data("argo_dsg_netcdf/D4901079_010.nc")
    config = ArgoConfig(kind="argo", uri=str(path), prefer_adjusted=False)
    _, table, _ = _read_all(config, path)
    np.testing.assert_allclose(_col(table, "sea_water_salinity"), _nc(path, "PSAL")[0],
                               rtol=1e-6)


def test_bgc_synthetic_profile():
    source, path = _recipe("argo_sd5904989_012")
    plan, table, results = _read_all(source, path)
    assert table.num_rows == 849
    doxy = _col(table, "moles_of_oxygen_per_unit_mass_in_sea_water")
    assert np.isfinite(doxy).sum() == np.isfinite(_nc(path, "DOXY")).sum() == 101
    # PARAMETER_DATA_MODE of DOXY is 'A' and adjusted values are valid: adjusted is used
    np.testing.assert_allclose(doxy, _nc(path, "DOXY_ADJUSTED")[0], rtol=1e-6, equal_nan=True)
    assert set(table["data_mode"].to_pylist()) == {"A"}      # least processed of D, D, D, A
    assert plan.schema.field("moles_of_oxygen_per_unit_mass_in_sea_water").metadata[
        b"haina.units"] == b"umol kg-1"
    doxy_qc = table["moles_of_oxygen_per_unit_mass_in_sea_water_qc_source"]
    assert doxy_qc.null_count == 849 - 101
    assert set(table["platform_id"].to_pylist()) == {"5904989"}
    assert set(table["cycle_number"].to_pylist()) == {12}


def test_multi_profile_file_and_chunking():
    source, path = _recipe("argo_1901462_prof")
    plan, table, results = _read_all(source, path)
    assert len(plan.chunks) == 3
    assert sum(r.rows_in for r in results) == 21 * 67
    assert sum(r.rows_dropped for r in results) == 1          # the one fill-padded level
    assert table.num_rows == 21 * 67 - 1
    assert sorted(set(table["cycle_number"].to_pylist())) == list(range(21))
    assert sorted(set(table["profile_index"].to_pylist())) == list(range(21))
    with netCDF4.Dataset(path) as nc:
        modes = [m.decode() for m in np.ma.filled(nc["DATA_MODE"][:], b" ")]
    per_profile = dict(zip(table["profile_index"].to_pylist(), table["data_mode"].to_pylist(), strict=True))
    assert [per_profile[i] for i in range(21)] == modes
    juld = _nc(path, "JULD")
    times = table["time"].to_numpy().astype("datetime64[us]")
    assert times.min() == EPOCH + np.timedelta64(int(round(juld.min() * 86_400_000_000)), "us")
    assert str(times.min())[:10] == "2010-05-02" and str(times.max())[:10] == "2010-11-18"
    # one chunk and three chunks give the same rows
    whole = _read_all(source.model_copy(update={"profiles_per_chunk": 100}), path)[1]
    assert whole.equals(table)


def test_select_values_in_delayed_mode_never_falls_back_to_raw():
    raw = np.array([[1.0, 2.0, 3.0, 4.0]])
    adj = np.array([[1.5, np.nan, 3.5, np.nan]])
    raw_qc = np.array([[b"1", b"3", b"4", b"4"]])
    adj_qc = np.array([[b"1", b"4", b"2", b" "]])
    values, codes, missing = select_values(raw, raw_qc, adj, adj_qc, np.array(["D"]), True)
    # level 1: the operator rejected the value (fill, QC 4): missing with flag 4, not raw 2.0 / 3;
    # level 3: no adjusted flag at all: the raw flag is kept, never a better one
    np.testing.assert_array_equal(values, [[1.5, np.nan, 3.5, np.nan]])
    assert codes.tolist() == [[1, 4, 2, 4]] and not missing.any()
    values, codes, _ = select_values(raw, raw_qc, adj, adj_qc, np.array(["R"]), True)
    assert values.tolist() == raw.tolist() and codes.tolist() == [[1, 3, 4, 4]]


def test_unknown_parameter_is_named():
    path = _data("argo_dsg_netcdf/D4901079_010.nc")
    config = ArgoConfig(kind="argo", uri=str(path), variables={"CHLA": {}})
    with pytest.raises(MissingVariableError, match="CHLA"):
        connectors.get("argo").plan(config, str(path), "0", 0)


# ---------------------------------------------------------------- delayed mode: no raw fallback


def test_rejected_adjusted_value_is_missing_not_the_raw_value():
    """D4901079 cycle 10, level 71 (0-based): PSAL_ADJUSTED is fill with PSAL_ADJUSTED_QC '4'
    (rejected in delayed mode); raw PSAL is 34.943 with QC '3'. Publishing the raw value under
    flag 3 was a plausible wrong value with a better flag."""
    path = _data("argo_dsg_netcdf/D4901079_010.nc")
    _, table, results = _read_all(ArgoConfig(kind="argo", uri=str(path)), path)
    assert table.num_rows == 72 and results[0].rows_dropped == 0   # the level is still a row
    assert table["sea_water_salinity"][71].as_py() is None
    assert table["sea_water_salinity_qc_source"][71].as_py() == 4
    # the level's other parameters are there, adjusted, with their own flags
    assert table["sea_water_temperature"][71].as_py() == pytest.approx(3.518, abs=1e-6)
    assert table["sea_water_temperature_qc_source"][71].as_py() == 3
    assert table["sea_water_pressure"][71].as_py() == pytest.approx(2008.6, abs=1e-3)
    # levels 0-70 are unchanged: adjusted values where the adjusted QC is not 4
    psal = _col(table, "sea_water_salinity")[:71]
    assert np.isfinite(psal).all()
    np.testing.assert_allclose(psal, _nc(path, "PSAL_ADJUSTED")[0, :71], rtol=1e-6)
    # raw everywhere when the recipe asks for raw values: then the raw flag goes with it
    _, raw, _ = _read_all(ArgoConfig(kind="argo", uri=str(path), prefer_adjusted=False), path)
    assert raw["sea_water_salinity"][71].as_py() == pytest.approx(34.943, abs=1e-4)
    assert raw["sea_water_salinity_qc_source"][71].as_py() == 3


def test_values_outside_valid_min_max_are_kept_for_qc(tmp_path):
    """netCDF4's auto mask hid every value outside valid_min/valid_max (TEMP 40, LONGITUDE 180):
    an implausible value became null instead of reaching QC."""
    path = tmp_path / "D4901079_010.nc"
    path.write_bytes(_data("argo_dsg_netcdf/D4901079_010.nc").read_bytes())
    with netCDF4.Dataset(path, "a") as nc:
        nc["TEMP_ADJUSTED"][0, 0] = 45.0
        nc["TEMP_ADJUSTED"][0, 1] = np.inf
    _, table, _ = _read_all(ArgoConfig(kind="argo", uri=str(path)), path)
    assert _col(table, "sea_water_temperature")[:2].tolist() == [45.0, np.inf]
