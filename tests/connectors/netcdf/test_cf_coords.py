"""Choosing a DSG file's coordinates by CF evidence (connectors/netcdf/cf_coords.py): a per-sample
time beats a profile's nominal time, the coordinates attribute designates, and the plan exposes
the candidates so that ``haina check`` can name both."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from connectors.exceptions import MissingVariableError
from connectors.netcdf import cf_coords as cf
from tests.conftest import require_shared_data
from tests.connectors.reading import plan_source, read_source

N_SAMPLES = 453


def _time(long_name):
    return {"standard_name": "time", "units": "seconds since 2020-01-01", "calendar": "standard",
            "long_name": long_name}


def _profile_file(tmp_path, *, coordinates: str | None, ragged: bool = False):
    """One CTD cast of 453 samples: ``time`` is the cast's nominal time (one value), written
    first; ``sample_time`` is each sample's own time (one second apart)."""
    n = N_SAMPLES
    temp_attrs = {"standard_name": "sea_water_temperature", "units": "degC"}
    if coordinates:
        temp_attrs["coordinates"] = coordinates
    obs = "obs" if ragged else ("profile", "z")
    shape = (lambda a: a) if ragged else (lambda a: a[None, :])
    data = {
        "time": ("profile", [100.0], _time("nominal time of the cast")),
        "lat": ("profile", [45.0], {"standard_name": "latitude", "units": "degrees_north"}),
        "lon": ("profile", [-30.0], {"standard_name": "longitude", "units": "degrees_east"}),
        "sample_time": (obs, shape(100.0 + np.arange(n)), _time("time of each sample")),
        "depth": (obs, shape(np.arange(n) * 0.5),
                  {"standard_name": "depth", "units": "m", "positive": "down"}),
        "temp": (obs, shape(np.linspace(20.0, 4.0, n)), temp_attrs),
    }
    if ragged:
        data["row_size"] = ("profile", np.array([n], "i4"), {"sample_dimension": "obs"})
    path = tmp_path / ("ragged.nc" if ragged else "multidim.nc")
    xr.Dataset(data, attrs={"featureType": "profile"}).to_netcdf(path)
    return path


@pytest.mark.parametrize("coordinates", ["sample_time lat lon depth", None])
@pytest.mark.parametrize("ragged", [False, True])
def test_per_sample_time_wins_over_the_profile_time(tmp_path, coordinates, ragged):
    path = _profile_file(tmp_path, coordinates=coordinates, ragged=ragged)
    plan, table, _, _ = read_source("netcdf_dsg", path)
    assert table.num_rows == N_SAMPLES
    times = table["time"].to_numpy()
    assert len(np.unique(times)) == N_SAMPLES          # was 1: every sample at the cast time
    assert str(times[0].astype("datetime64[s]")) == "2020-01-01T00:01:40"
    assert str(times[-1].astype("datetime64[s]")) == "2020-01-01T00:09:12"
    assert plan.schema.field("time").metadata[b"haina.source_name"] == b"sample_time"
    assert plan.attributes["time_candidates"] == ["sample_time", "time"]
    (note,) = plan.attributes["notes"]
    assert "'sample_time' (per observation)" in note and "'time'" in note
    assert "time_variable:" in note


def test_recipe_time_variable_pins_the_other_candidate(tmp_path):
    path = _profile_file(tmp_path, coordinates="sample_time lat lon depth")
    plan, table, _, _ = read_source("netcdf_dsg", path, time_variable="time")
    assert len(np.unique(table["time"].to_numpy())) == 1
    assert "time_candidates" not in plan.attributes and "notes" not in plan.attributes


def test_the_coordinates_attribute_designates(tmp_path):
    """A file that says its data's time is the nominal one is taken at its word (CF 5)."""
    path = _profile_file(tmp_path, coordinates="time lat lon depth")
    plan, table, _, _ = read_source("netcdf_dsg", path)
    assert len(np.unique(table["time"].to_numpy())) == 1
    assert plan.attributes["time_candidates"] == ["time", "sample_time"]
    assert "(named in the coordinates attribute)" in plan.attributes["notes"][0]


def test_axis_alone_never_beats_a_standard_name():
    """D4901079's PRES_ADJUSTED says axis: X; LONGITUDE (standard_name longitude) stays the
    longitude even though PRES_ADJUSTED varies per level."""
    path = require_shared_data("argo_dsg_netcdf/D4901079_010.nc")
    plan = plan_source("netcdf_dsg", path, pressure_to_depth=True)
    assert plan.schema.field("longitude").metadata[b"haina.source_name"] == b"LONGITUDE"
    assert "longitude_candidates" not in plan.attributes
    # PRES and PRES_ADJUSTED are both pressures: the first is used, both are listed
    assert plan.attributes["pressure_candidates"] == ["PRES", "PRES_ADJUSTED"]


def test_single_candidate_files_have_no_note():
    path = require_shared_data("argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc")
    plan = plan_source("netcdf_dsg", path)
    assert not any(k.endswith("_candidates") for k in plan.attributes)
    assert "notes" not in plan.attributes


def test_choose_names_the_missing_role(tmp_path):
    ds = xr.Dataset({"x": ("obs", [1.0])})
    with pytest.raises(MissingVariableError, match="time_variable"):
        cf.choose(ds, cf.TIME, None, ("obs",), False, "f.nc")
    assert cf.choose(ds, cf.DEPTH, None, ("obs",), False, "f.nc", required=False).variable is None
