"""Direct chunk reads (connectors.netcdf.h5direct) against netCDF4 and xarray, value for value.

The direct path must return exactly what netCDF4 returns with auto mask-and-scale off, and the
gridded connector must decode it exactly as xarray does, for every layout it accepts; every
other layout must fall back to xarray.
"""
from __future__ import annotations

import os
import threading

import netCDF4
import numpy as np
import pytest

from connectors.base import ChunkSpec
from connectors.exceptions import UnreadableSourceError
from connectors.netcdf import grid as gridded
from connectors.netcdf import h5direct
from connectors.netcdf.files import HDF5_LOCK
from connectors.netcdf.grid import GriddedConfig

T, Z, Y, X = 7, 3, 23, 31


def grid_config(path: str, **extra) -> GriddedConfig:
    return GriddedConfig.model_validate({"kind": "netcdf_grid", "uri": path, "chunk_dim": "t",
                                         "chunk_size": 2, "variables": {"temp": {}}, **extra})


def make(path, *, chunks=(2, 2, 10, 16), zlib=True, shuffle=True, dtype="f4", endian="native",
         packed=False, partial=False, fletcher32=False, contiguous=False, unsigned=False):
    rng = np.random.default_rng(len(str(path)))
    with netCDF4.Dataset(path, "w") as nc:
        for name, size in zip("tzyx", (T, Z, Y, X), strict=True):
            nc.createDimension(name, size)
            coord = nc.createVariable(name, "f8", (name,))
            coord[:] = np.arange(size, dtype="f8")
        nc["t"].units = "days since 2020-01-01"
        nc["y"].standard_name, nc["y"].units = "latitude", "degrees_north"
        nc["x"].standard_name, nc["x"].units = "longitude", "degrees_east"
        nc["z"].standard_name, nc["z"].units, nc["z"].positive = "depth", "m", "down"
        kind = "i2" if packed else ("u1" if unsigned else dtype)
        fill = {"i2": -32767, "u1": 255}.get(kind, 1e20)
        var = nc.createVariable(
            "temp", kind, ("t", "z", "y", "x"), zlib=zlib, shuffle=shuffle, endian=endian,
            fletcher32=fletcher32, fill_value=fill,
            **({"contiguous": True} if contiguous else {"chunksizes": chunks}))
        var.standard_name, var.units = "sea_water_temperature", "degC"
        if packed:
            var.scale_factor, var.add_offset = np.float32(0.001), np.float32(10.0)
        if unsigned:
            var.setncattr("_Unsigned", "true")
            var.set_auto_maskandscale(False)
        values = rng.normal(10, 5, (T, Z, Y, X))
        values[rng.random(values.shape) < 0.2] = np.nan  # land / fill cells
        if packed or unsigned:
            raw = np.where(np.isnan(values), fill, np.clip(values * 10, 0, 254)).astype(kind)
            var.set_auto_maskandscale(False)
            if partial:
                var[:3] = raw[:3]
            else:
                var[:] = raw
        else:
            data = np.where(np.isnan(values), 1e20, values).astype(np.dtype(dtype).newbyteorder("="))
            if partial:  # later chunks never written: HDF5 returns the fill value there
                var[:3] = data[:3]
            else:
                var[:] = data
    return path


LAYOUTS = {
    "deflate+shuffle, edge chunks": {},
    "deflate only": {"shuffle": False},
    "uncompressed chunks": {"zlib": False, "shuffle": False},
    "shuffle only": {"zlib": False},
    "big-endian float64": {"dtype": ">f8", "endian": "big"},
    "packed int16 with scale/offset": {"packed": True},
    "unsigned bytes (_Unsigned)": {"unsigned": True},
    "chunks never written": {"partial": True},
    "one chunk per time step": {"chunks": (1, Z, Y, X)},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_direct_reads_equal_netcdf4_and_decoded_values_equal_xarray(tmp_path, layout):
    path = str(make(tmp_path / "g.nc", **LAYOUTS[layout]))
    key = gridded._file_key(path)
    reader = h5direct.variable_reader(path, "temp", key)
    assert reader is not None, "this layout is one the direct path decodes"
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        stored = nc["temp"][:]
        for selection in [(slice(0, T), slice(0, Z), slice(0, Y), slice(0, X)),
                          (slice(1, 2), slice(0, Z), slice(0, Y), slice(0, X)),
                          (slice(2, 7), slice(1, 3), slice(5, 21), slice(15, 31))]:
            got = reader.read(selection)
            assert got.dtype == stored.dtype.newbyteorder("=")
            np.testing.assert_array_equal(got, stored[selection])

    config = grid_config(path)
    layout_ = gridded.layout_for(config, path)
    with gridded.open_dataset(path) as ds:
        for start in range(0, T, 2):
            chunk = ChunkSpec(0, path, "0" * 64, start // 2, "t", start, min(start + 2, T))
            fast = gridded._load_variable(ds, "temp", layout_, chunk, path)
            slow = gridded._load(ds, "temp", layout_, chunk, path)
            assert fast.dtype == slow.dtype and fast.shape == slow.shape
            np.testing.assert_array_equal(fast, slow)  # NaN positions included


@pytest.mark.parametrize("layout", [{"fletcher32": True}, {"contiguous": True, "zlib": False,
                                                          "shuffle": False}])
def test_other_storage_falls_back_to_xarray(tmp_path, layout):
    path = str(make(tmp_path / "g.nc", **layout))
    assert h5direct.variable_reader(path, "temp", gridded._file_key(path)) is None
    assert h5direct.variable_reader("gs://bucket/g.nc", "temp", ("k",)) is None


def test_a_netcdf3_file_falls_back(tmp_path):
    path = str(tmp_path / "classic.nc")
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as nc:
        nc.createDimension("x", 3)
        nc.createVariable("v", "f4", ("x",))[:] = [1, 2, 3]
    assert h5direct.variable_reader(path, "v", gridded._file_key(path)) is None


def test_a_corrupt_chunk_is_a_named_error(tmp_path):
    path = make(tmp_path / "g.nc")
    reader = h5direct.variable_reader(str(path), "temp", gridded._file_key(str(path)))
    first = min(reader.index.values(), key=lambda c: c.offset)
    with open(path, "r+b") as handle:  # same size, same mtime granularity aside: new key below
        handle.seek(first.offset)
        handle.write(b"\0" * 16)
    os.utime(path, ns=(1, 1))
    gridded.clear_cache()
    config = grid_config(str(path))
    with pytest.raises(UnreadableSourceError, match="cannot read variable 'temp'") as err:
        gridded.GriddedNetCDF().read(config, ChunkSpec(0, str(path), "0" * 64, 0, "t", 0, 2),
                                     gridded.build_schema(gridded.layout_for(config, str(path))))
    assert str(path) in str(err.value)


def test_threads_read_while_another_holds_the_hdf5_lock(tmp_path):
    """The point of the module: a direct read never waits for the netCDF/HDF5 lock."""
    path = str(make(tmp_path / "g.nc"))
    reader = h5direct.variable_reader(path, "temp", gridded._file_key(path))

    done = threading.Event()
    with HDF5_LOCK:  # as if another thread were inside a netCDF4 read
        thread = threading.Thread(target=lambda: (reader.read(
            (slice(0, T), slice(0, Z), slice(0, Y), slice(0, X))), done.set()))
        thread.start()
        thread.join(timeout=30)
    assert done.is_set()


def test_real_hf_radar_grid_reads_the_same_both_ways(shared_data):
    path = str(shared_data / "gridded_netcdf" / "ndbc_hfradar_uswc_1km_rtv_20250602T0000Z.nc")
    config = GriddedConfig.model_validate({"kind": "netcdf_grid", "uri": path,
                                           "variables": {"u": {}, "v": {}}})
    layout = gridded.layout_for(config, path)
    with gridded.open_dataset(path) as ds:
        chunk = gridded.build_chunks(ds, layout, config, path, "0" * 64)[0]
        for name in ("u", "v"):
            reader = h5direct.variable_reader(path, name, gridded._file_key(path))
            assert reader is not None and len(reader.index) > 1  # several chunks, edge chunks
            fast = gridded._load_variable(ds, name, layout, chunk, path)
            np.testing.assert_array_equal(fast, gridded._load(ds, name, layout, chunk, path))
            assert np.isfinite(fast).sum() > 1000
