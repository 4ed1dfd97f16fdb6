"""One CF time decoder for every calendar: each kind that reads CF times (grids, DSG, Argo and
delimited text with ``time.units``) decodes every CF calendar exactly as
:func:`connectors.cf_time.decode` does, and that decoder agrees with cftime (the oracle; model
calendars through the documented mapping of cftime's model dates onto the real year)."""
from __future__ import annotations

import shutil
from pathlib import Path

import cftime
import netCDF4
import numpy as np
import pyarrow.compute as pc
import pytest

from connectors import cf_time
from tests.conftest import require_shared_data
from tests.connectors.reading import read_source

CALENDARS = ["standard", "gregorian", "proleptic_gregorian", "julian", "noleap", "365_day",
             "all_leap", "366_day", "360_day"]
#: hours around leap days, month ends and year ends, before and after the epoch
HOURS = np.array([-9600.0, -0.25, 0.0, 36.5, 1434.0, 1439.75, 1463.5, 8766.0, 36012.5])
UNITS = "hours since 1999-12-30 06:00:00"
_REAL = {"standard", "gregorian", "proleptic_gregorian", "julian"}
_YEAR_DAYS = {"all_leap": 366, "366_day": 366, "360_day": 360}


def _oracle(values: np.ndarray, units: str, calendar: str) -> np.ndarray:
    """cftime's dates as UTC instants: real calendars moved onto the proleptic Gregorian
    calendar, noleap dates kept, 360/366-day dates placed at the same fraction of the year."""
    dates = cftime.num2date(values, units, calendar, only_use_cftime_datetimes=True)
    return np.array([_instant(d, calendar) for d in dates], dtype="datetime64[us]")


def _instant(date: cftime.datetime, calendar: str) -> np.datetime64:
    if calendar in _REAL:
        date = date.change_calendar("proleptic_gregorian") \
            if calendar != "proleptic_gregorian" else date
    clock = np.timedelta64(((date.hour * 60 + date.minute) * 60 + date.second) * 1_000_000
                           + date.microsecond, "us")
    if calendar not in _YEAR_DAYS:
        return np.datetime64(f"{date.year:04d}-{date.month:02d}-{date.day:02d}", "us") + clock
    elapsed = (date.dayofyr - 1) * 86_400_000_000 + int(clock.astype(np.int64))
    leap = date.year % 4 == 0 and (date.year % 100 != 0 or date.year % 400 == 0)
    real_year = (366 if leap else 365) * 86_400_000_000
    jan1 = np.datetime64(f"{date.year:04d}-01-01", "us")
    return jan1 + np.timedelta64(round(elapsed * real_year / (_YEAR_DAYS[calendar]
                                                              * 86_400_000_000)), "us")


def _times(table) -> np.ndarray:
    return pc.cast(table["time"], "int64").to_numpy().astype("datetime64[us]")


@pytest.mark.parametrize("calendar", CALENDARS)
def test_the_decoder_matches_cftime(calendar):
    ours = cf_time.decode(HOURS, UNITS, calendar)
    gap = np.abs(ours.astype(np.int64) - _oracle(HOURS, UNITS, calendar).astype(np.int64))
    assert gap.max() <= 1, f"{calendar}: differs from cftime by {gap.max()} us"


def _grid_file(path: Path, calendar: str) -> Path:
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", HOURS.size)
        nc.createDimension("lat", 1)
        nc.createDimension("lon", 1)
        time = nc.createVariable("time", "f8", ("time",))
        time.setncatts({"standard_name": "time", "axis": "T", "units": UNITS,
                        "calendar": calendar})
        time[:] = HOURS
        for name, value, units in (("lat", 45.0, "degrees_north"), ("lon", -30.0, "degrees_east")):
            var = nc.createVariable(name, "f8", (name,))
            var.setncatts({"standard_name": {"lat": "latitude", "lon": "longitude"}[name],
                           "units": units})
            var[:] = [value]
        temp = nc.createVariable("temp", "f4", ("time", "lat", "lon"))
        temp.setncatts({"standard_name": "sea_water_temperature", "units": "degC"})
        temp[:] = np.arange(HOURS.size, dtype=np.float32).reshape(-1, 1, 1)
    return path


def _dsg_file(path: Path, calendar: str) -> Path:
    with netCDF4.Dataset(path, "w") as nc:
        nc.featureType = "timeSeries"
        nc.createDimension("obs", HOURS.size)
        time = nc.createVariable("time", "f8", ("obs",))
        time.setncatts({"standard_name": "time", "units": UNITS, "calendar": calendar})
        time[:] = HOURS
        for name in ("latitude", "longitude"):
            var = nc.createVariable(name, "f8", ())
            var.setncatts({"standard_name": name,
                           "units": "degrees_north" if name == "latitude" else "degrees_east"})
            var.assignValue(10.0)
        temp = nc.createVariable("temp", "f4", ("obs",))
        temp.setncatts({"standard_name": "sea_water_temperature", "units": "degC",
                        "coordinates": "time latitude longitude"})
        temp[:] = np.arange(HOURS.size, dtype=np.float32)
    return path


def _argo_file(path: Path, calendar: str) -> tuple[Path, np.ndarray]:
    """A real multi-profile Argo file whose JULD is rewritten in ``calendar`` (days)."""
    shutil.copy(require_shared_data("argo_dsg_netcdf/1901462_prof.nc"), path)
    days = HOURS / 24
    with netCDF4.Dataset(path, "a") as nc:
        juld = nc["JULD"]
        juld.setncattr("units", UNITS.replace("hours", "days"))
        juld.setncattr("calendar", calendar)
        n_prof = juld.shape[0]
        values = np.resize(days, n_prof) + np.repeat(np.arange(-(-n_prof // days.size)),
                                                     days.size)[:n_prof] * 40_000
        juld[:] = values
    return path, values


def _csv_file(path: Path) -> Path:
    path.write_text("t,temp\n" + "".join(f"{float(h)!r},{i}.5\n" for i, h in enumerate(HOURS)))
    return path


@pytest.mark.parametrize("calendar", CALENDARS)
def test_every_kind_decodes_every_calendar_alike(tmp_path, calendar):
    expected = cf_time.decode(HOURS, UNITS, calendar)
    _, grid, _, _ = read_source("netcdf_grid", _grid_file(tmp_path / "grid.nc", calendar))
    _, dsg, _, _ = read_source("netcdf_dsg", _dsg_file(tmp_path / "dsg.nc", calendar))
    _, text, _, _ = read_source(
        "delimited", _csv_file(tmp_path / "t.csv"),
        time={"columns": "t", "units": UNITS, "calendar": calendar},
        variables={"temp": {"name": "sea_water_temperature", "units": "degC"}})
    for kind, table in (("netcdf_grid", grid), ("netcdf_dsg", dsg), ("delimited", text)):
        np.testing.assert_array_equal(_times(table), expected, err_msg=kind)


@pytest.mark.parametrize("calendar", CALENDARS)
def test_argo_decodes_every_calendar_alike(tmp_path, calendar):
    path, days = _argo_file(tmp_path / "argo.nc", calendar)
    plan, table, _, _ = read_source("argo", path)
    expected = cf_time.decode(days, UNITS.replace("hours", "days"), calendar)
    index = table["profile_index"].to_numpy()
    np.testing.assert_array_equal(_times(table), expected[index])
    assert f"calendar {calendar}" in plan.schema.field("time").metadata[
        b"haina.conversion"].decode()


def test_dsg_time_metadata_names_the_calendar(tmp_path):
    plan, _, _, _ = read_source("netcdf_dsg", _dsg_file(tmp_path / "dsg.nc", "360_day"))
    conversion = plan.schema.field("time").metadata[b"haina.conversion"].decode()
    assert conversion == cf_time.describe(UNITS, "360_day")
