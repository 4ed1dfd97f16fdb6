"""Generate the demo sources: a few daily CF netCDF files of a Yellow Sea coastal grid off Qingdao.

Offline and deterministic (seeded). Each file holds one day of six-hourly fields on a 0.02° grid
(119.6–121.6°E, 35.2–36.6°N) at five depths, in the shape regional ocean models deliver:

- ``thetao`` potential temperature, packed int16 (scale 0.001, offset 20, _FillValue -32767), °C;
- ``so`` salinity in PSU; ``uo``/``vo`` currents in cm s-1 (converted to m s-1 by Haina);
- land (the Shandong coast and Jiaozhou Bay's shores) and the sea floor are fill, so Haina drops
  those cells and counts them;
- a handful of bad values (a 45 °C hot pixel, a negative salinity, a 9 m/s current) that the
  validation suites catch and the demo recipe's gate tolerates.

Usage: python examples/qingdao_demo.py OUT_DIR [--days 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np

LON = np.round(np.arange(119.6, 121.6 + 1e-9, 0.02), 4)
LAT = np.round(np.arange(35.2, 36.6 + 1e-9, 0.02), 4)
DEPTH = np.array([0.5, 5.0, 10.0, 20.0, 35.0], dtype="f4")
HOURS = (0, 6, 12, 18)
EPOCH = dt.datetime(1950, 1, 1)
FILL_I2 = -32767
FILL_F4 = np.float32(1e20)


def bathymetry() -> np.ndarray:
    """Sea-floor depth in metres (<= 0 on land): a coast running SW-NE with Jiaozhou Bay."""
    lon, lat = np.meshgrid(LON, LAT)
    coast = 35.75 + 0.45 * (lon - 119.6) / 2.0 + 0.08 * np.sin(6 * lon)  # land north of this
    offshore = (coast - lat) * 60.0  # depth grows ~60 m per degree offshore
    bay = np.exp(-(((lon - 120.25) / 0.12) ** 2 + ((lat - 36.15) / 0.08) ** 2)) * 12.0
    depth = np.where(lat < coast, offshore, 0.0) + bay
    return np.clip(depth, -5.0, 60.0)


def fields(day: dt.date, hour: int, rng: np.random.Generator, floor: np.ndarray):
    lon, lat = np.meshgrid(LON, LAT)
    z = DEPTH[:, None, None]
    season = 1.0 + 0.02 * (day.toordinal() % 7)
    diurnal = 0.4 * np.sin(2 * np.pi * (hour - 9) / 24)
    surface = 24.5 * season + diurnal - 1.2 * (lat - 35.2)
    temp = surface - (surface - 9.5) * (1 - np.exp(-z / 18.0))  # Yellow Sea Cold Water Mass below
    temp = temp + rng.normal(0, 0.05, temp.shape)
    salt = 31.2 + 0.25 * (lon - 119.6) + 0.03 * z + rng.normal(0, 0.02, (len(DEPTH),) + lon.shape)
    tide = np.cos(2 * np.pi * hour / 12.42)
    u = (18.0 * tide * np.exp(-z / 30.0) + rng.normal(0, 1.0, salt.shape))  # cm/s
    v = (9.0 * tide * np.exp(-z / 30.0) + rng.normal(0, 1.0, salt.shape))
    wet = z < floor[None, :, :]
    return [np.where(wet, f, np.nan).astype("f4") for f in (temp, salt, u, v)]


def add_bad_values(temp, salt, u, rng):
    """A handful of implausible values, as real model output and sensors produce."""
    wet = np.argwhere(np.isfinite(temp))
    picks = wet[rng.choice(len(wet), size=6, replace=False)]
    temp[tuple(picks[0])] = 45.0
    temp[tuple(picks[1])] = -4.0
    salt[tuple(picks[2])] = -1.0
    salt[tuple(picks[3])] = 55.0
    u[tuple(picks[4])] = 900.0  # cm/s: 9 m/s
    u[tuple(picks[5])] = -1200.0


def write_day(path: Path, day: dt.date, rng: np.random.Generator, floor: np.ndarray,
              bad: bool) -> None:
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.8"
        nc.title = "Yellow Sea coastal model off Qingdao, six-hourly fields (Haina demo)"
        nc.institution = "Haina demo generator (synthetic data)"
        nc.source = "examples/qingdao_demo.py: synthetic, generated offline"
        nc.license = "CC0-1.0"
        for name, size in (("time", None), ("depth", len(DEPTH)), ("latitude", len(LAT)),
                           ("longitude", len(LON))):
            nc.createDimension(name, size)
        t = nc.createVariable("time", "f8", ("time",))
        t.standard_name, t.units, t.calendar, t.axis = "time", "days since 1950-01-01", "standard", "T"
        base = (dt.datetime.combine(day, dt.time()) - EPOCH).total_seconds() / 86400
        t[:] = [base + h / 24 for h in HOURS]
        d = nc.createVariable("depth", "f4", ("depth",))
        d.standard_name, d.units, d.positive, d.axis = "depth", "m", "down", "Z"
        d[:] = DEPTH
        for name, values, units, axis in (("latitude", LAT, "degrees_north", "Y"),
                                          ("longitude", LON, "degrees_east", "X")):
            var = nc.createVariable(name, "f8", (name,))
            var.standard_name, var.units, var.axis = name, units, axis
            var[:] = values
        dims = ("time", "depth", "latitude", "longitude")
        chunks = (1, len(DEPTH), len(LAT), len(LON))
        th = nc.createVariable("thetao", "i2", dims, fill_value=FILL_I2, zlib=True, complevel=4,
                               chunksizes=chunks)
        th.setncatts({"standard_name": "sea_water_potential_temperature", "units": "degrees_C",
                      "long_name": "Sea water potential temperature", "scale_factor": 0.001,
                      "add_offset": 20.0})
        specs = (("so", "sea_water_salinity", "PSU", "Salinity"),
                 ("uo", "eastward_sea_water_velocity", "cm s-1", "Eastward current"),
                 ("vo", "northward_sea_water_velocity", "cm s-1", "Northward current"))
        others = {}
        for name, standard, units, long_name in specs:
            var = nc.createVariable(name, "f4", dims, fill_value=FILL_F4, zlib=True, complevel=4,
                                    chunksizes=chunks)
            var.setncatts({"standard_name": standard, "units": units, "long_name": long_name})
            others[name] = var
        for i, hour in enumerate(HOURS):
            temp, salt, u, v = fields(day, hour, rng, floor)
            if bad and i == 2:
                add_bad_values(temp, salt, u, rng)
            th[i] = _masked(temp)
            others["so"][i] = _masked(salt)
            others["uo"][i] = _masked(u)
            others["vo"][i] = _masked(v)


def _masked(values: np.ndarray) -> np.ma.MaskedArray:
    # NaN under the mask would still be cast when netCDF4 packs to int16; give it a harmless value
    return np.ma.array(np.nan_to_num(values, nan=0.0), mask=~np.isfinite(values))


def generate(out_dir: Path, days: int = 3, start: dt.date = dt.date(2025, 7, 1)) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20250701)
    floor = bathymetry()
    paths = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        path = out_dir / f"qingdao_coastal_{day:%Y%m%d}.nc"
        write_day(path, day, rng, floor, bad=(offset == 1))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    for path in generate(args.out_dir, args.days):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
