"""Worker threads reading many netCDF-4 files at once never crash and read what one thread reads.

netCDF-C/HDF5 are not thread-safe; before ``connectors.netcdf.files`` two worker threads on a
valid 30-file grid crashed the demo run at random (SIGSEGV, HDF5 errors, valid files reported as
corrupt). These tests drive many small files - so files are opened, evicted from the worker's
cache and closed all the time - through the connector from several threads, and through
``haina run --full`` with 2 and 4 workers, repeatedly.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import netCDF4
import numpy as np
import pyarrow as pa
import pytest

from catalog import store
from connectors.netcdf import grid as gridded
from connectors.netcdf.grid import GriddedConfig, GriddedNetCDF

FILES = 36
STEPS = 4
SHAPE = (2, 12, 10)  # depth, latitude, longitude
HAINA = [sys.executable, "-m", "pipelines.cli.app"]


def write_grid(path: Path, day: int) -> None:
    """One small daily file: a chunked+deflated variable (read directly by h5direct) and a
    contiguous one (read through netCDF4/xarray under the lock)."""
    rng = np.random.default_rng(day)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for name, size in zip(("time", "depth", "latitude", "longitude"), (STEPS, *SHAPE), strict=True):
            nc.createDimension(name, size)
        t = nc.createVariable("time", "f8", ("time",))
        t.standard_name, t.units, t.axis = "time", "days since 2025-01-01", "T"
        t[:] = day + np.arange(STEPS) / STEPS
        d = nc.createVariable("depth", "f4", ("depth",))
        d.standard_name, d.units, d.positive, d.axis = "depth", "m", "down", "Z"
        d[:] = [1.0, 10.0]
        for name, n, units, axis, origin in (("latitude", SHAPE[1], "degrees_north", "Y", 35.0),
                                             ("longitude", SHAPE[2], "degrees_east", "X", 120.0)):
            var = nc.createVariable(name, "f8", (name,))
            var.standard_name, var.units, var.axis = name, units, axis
            var[:] = origin + 0.05 * np.arange(n)
        dims = ("time", "depth", "latitude", "longitude")
        temp = nc.createVariable("thetao", "f4", dims, zlib=True, chunksizes=(1, *SHAPE))
        temp.standard_name, temp.units = "sea_water_potential_temperature", "degrees_C"
        temp[:] = 15 + rng.normal(0, 1, (STEPS, *SHAPE))
        salt = nc.createVariable("so", "f4", dims, contiguous=True)
        salt.standard_name, salt.units = "sea_water_salinity", "1e-3"
        salt[:] = 31 + rng.normal(0, 0.1, (STEPS, *SHAPE))


@pytest.fixture(scope="module")
def grid_files(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("grids")
    paths = []
    for day in range(FILES):
        write_grid(folder / f"grid_{day:03d}.nc", day)
        paths.append(str(folder / f"grid_{day:03d}.nc"))
    return paths


def _config(folder: str) -> GriddedConfig:
    return GriddedConfig.model_validate({"kind": "netcdf_grid", "uri": f"{folder}/*.nc",
                                         "chunk_dim": "time", "chunk_size": 1,
                                         "variables": {"thetao": {}, "so": {}}})


def test_threads_read_every_chunk_as_one_thread_does(grid_files):
    connector = GriddedNetCDF()
    config = _config(os.path.dirname(grid_files[0]))
    plans = [connector.plan(config, path, "0" * 64, os.path.getsize(path)) for path in grid_files]
    work = [(chunk, plan.schema) for plan in plans for chunk in plan.chunks]
    assert len(work) == FILES * STEPS

    def read(item) -> pa.Table:
        chunk, schema = item
        return connector.read(config, chunk, schema).table

    expected = [read(item) for item in work]
    for workers in (2, 4, 8, 2, 4, 8):  # repeated: each round evicts and reopens every file
        gridded.clear_cache()
        order = list(range(len(work)))
        random.Random(workers).shuffle(order)
        with ThreadPoolExecutor(workers) as pool:
            got = list(pool.map(lambda i: (i, read(work[i])), order))
        for i, table in got:
            assert table.equals(expected[i]), f"chunk {i} differs with {workers} threads"


def test_the_default_run_with_2_and_4_workers_never_crashes(grid_files, tmp_path):
    folder = os.path.dirname(grid_files[0])
    recipe = tmp_path / "stress.yaml"
    recipe.write_text(textwrap.dedent(f"""\
        name: stress
        title: Thread stress grid
        licence: CC0-1.0
        owner: {{name: tests}}
        sources:
          - kind: netcdf_grid
            uri: {folder}/*.nc
            chunk_dim: time
            chunk_size: 1
            variables: {{thetao: {{}}, so: {{}}}}
        quality: {{max_failing_fraction: 1.0}}
        output: {{partition_by: none}}
        """))
    rows = FILES * STEPS * int(np.prod(SHAPE))
    for attempt, workers in enumerate((2, 4)):
        warehouse = tmp_path / f"wh{attempt}"
        env = {**os.environ, "HAINA_WAREHOUSE": str(warehouse)}
        done = subprocess.run([*HAINA, "run", str(recipe), "--full", "--workers", str(workers)],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (f"run {attempt} with {workers} workers: exit "
                                      f"{done.returncode}\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
        assert "Traceback" not in done.stderr
        catalog = store.open_catalog(f"sqlite:///{warehouse}/catalog.db")
        assert [r.status for r in catalog.runs("stress")] == ["succeeded"]
        (version,) = catalog.versions("stress")
        assert version.rows == rows


def test_worker_output_is_never_flushed_by_the_timer():
    """Beam's timed flush can split an element in two (pipelines.driver.no_partial_flushes); if a
    Beam upgrade renames what it reads, this fails instead of the runs failing at random."""
    import inspect

    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    from pipelines.driver import no_partial_flushes

    source = inspect.getsource(worker_handlers.EmbeddedGrpcWorkerHandler.__init__)
    assert "DATA_BUFFER_TIME_LIMIT_MS" in source
    no_partial_flushes()
    assert worker_handlers.DATA_BUFFER_TIME_LIMIT_MS >= 10**9
