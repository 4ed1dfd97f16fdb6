"""A staggered (ROMS-style Arakawa C) grid through the CLI: one file, one recipe entry per grid.

``u`` lives on ``(eta_u, xi_u)``, ``v`` on ``(eta_v, xi_v)``, ``zeta`` on the rho grid; the
recipe lists the file twice, once per grid, as ``haina check`` advises for variables on
different grids. Before sources were keyed by recipe entry the run died on the catalog's unique
key (``sources.run_id, sources.uri``), and the two entries would have shared output file names.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import xarray as xr

from catalog.read import open_dataset
from catalog.store import open_catalog
from pipelines.cli.app import main

ETA, XI = 3, 4
U_ROWS = 2 * ETA * (XI - 1)      # 2 times x 3 x 3
V_ROWS = 2 * (ETA - 1) * XI      # 2 times x 2 x 4


def _coord(values, dims, standard_name, units):
    return xr.DataArray(values, dims=dims, attrs={"standard_name": standard_name, "units": units})


def roms_file(path: Path) -> Path:
    """rho points 3 x 4; u at the east/west faces (3 x 3), v at the north/south faces (2 x 4)."""
    lat, lon = np.meshgrid(np.linspace(30, 31, ETA), np.linspace(-120, -119, XI), indexing="ij")
    grids = {"rho": (lat, lon),
             "u": ((lat[:, :-1] + lat[:, 1:]) / 2, (lon[:, :-1] + lon[:, 1:]) / 2),
             "v": ((lat[:-1] + lat[1:]) / 2, (lon[:-1] + lon[1:]) / 2)}
    coords = {"ocean_time": ("ocean_time", np.array([0.0, 3600.0]),
                             {"units": "seconds since 2020-01-01", "standard_name": "time"})}
    for grid, (glat, glon) in grids.items():
        dims = (f"eta_{grid}", f"xi_{grid}")
        coords[f"lat_{grid}"] = _coord(glat, dims, "latitude", "degree_north")
        coords[f"lon_{grid}"] = _coord(glon, dims, "longitude", "degree_east")

    def var(grid, values, standard_name, units):
        return ((("ocean_time", f"eta_{grid}", f"xi_{grid}")), values.astype("f4"),
                {"standard_name": standard_name, "units": units,
                 "coordinates": f"lon_{grid} lat_{grid} ocean_time"})
    ds = xr.Dataset(
        {"u": var("u", np.arange(U_ROWS).reshape(2, ETA, XI - 1) / 100, "sea_water_x_velocity",
                  "m s-1"),
         "v": var("v", -np.arange(V_ROWS).reshape(2, ETA - 1, XI) / 100,
                  "sea_water_y_velocity", "m s-1"),
         "zeta": var("rho", np.ones((2, ETA, XI)), "sea_surface_height", "m")},
        coords=coords, attrs={"Conventions": "CF-1.6", "title": "ROMS-like staggered grid"})
    ds.to_netcdf(path)
    return path


@pytest.fixture
def staggered(tmp_path) -> tuple[Path, Path]:
    data = roms_file(tmp_path / "roms.nc")
    recipe = tmp_path / "roms.yaml"
    recipe.write_text("""\
name: roms-test
title: ROMS staggered grid
licence: CC0-1.0
owner: {name: tests}
sources:
  - kind: netcdf_grid
    uri: roms.nc
    variables: {u: {name: sea_water_x_velocity}}
  - kind: netcdf_grid
    uri: roms.nc
    variables: {v: {name: sea_water_y_velocity}}
""")
    return data, recipe


def _cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_two_entries_on_one_file_run_end_to_end(staggered, tmp_path, capsys):
    data, recipe = staggered
    wh = str(tmp_path / "wh")
    code, _, err = _cli(capsys, "--warehouse", wh, "check", str(recipe))
    assert code == 0, err
    code, _, err = _cli(capsys, "--warehouse", wh, "run", str(recipe))
    assert code == 0, err

    catalog = open_catalog(f"sqlite:///{wh}/catalog.db")
    (version,) = catalog.versions("roms-test")
    assert version.rows == U_ROWS + V_ROWS
    sources = catalog.sources(version.run_id)
    assert [(s.source_index, s.uri, s.rows_in, s.rows_out) for s in sources] == [
        (0, str(data), U_ROWS, U_ROWS), (1, str(data), V_ROWS, V_ROWS)]
    for s in sources:
        assert s.rows_in == s.rows_out + s.rows_dropped + s.rows_quarantined
    run = catalog.run(version.run_id)
    assert (run.status, run.rows_in, run.rows_out) == ("succeeded", U_ROWS + V_ROWS,
                                                       U_ROWS + V_ROWS)
    assert catalog.lock_holder("roms-test") is None

    # one output file per entry, never shared
    files = [f.path for f in catalog.files(version.version_id)]
    assert len(files) == 2 and any("-e1-" in f for f in files), files
    manifest = json.loads((Path(version.path) / "manifest.json").read_text())
    assert sorted(manifest["extra"]["row_accounting"]["per_source"]) == [str(data),
                                                                         f"{data}#1"]
    assert [s["source_index"] for s in manifest["sources"]] == [0, 1]

    # u rows sit on the u grid, v rows on the v grid
    table = open_dataset("roms-test", warehouse=wh).to_table()
    u_rows = table.filter(pc.is_valid(table["sea_water_x_velocity"]))
    v_rows = table.filter(pc.is_valid(table["sea_water_y_velocity"]))
    assert (u_rows.num_rows, v_rows.num_rows) == (U_ROWS, V_ROWS)
    assert sorted(set(u_rows["longitude"].to_pylist())) == pytest.approx(
        [-119.8333333, -119.5, -119.1666667])
    assert sorted(set(v_rows["latitude"].to_pylist())) == pytest.approx([30.25, 30.75])
    assert pc.sum(v_rows["sea_water_y_velocity"]).as_py() == pytest.approx(
        -sum(range(V_ROWS)) / 100, rel=1e-5)

    code, out, _ = _cli(capsys, "--warehouse", wh, "lineage", "roms-test@latest",
                        "--format", "json")
    assert code == 0
    named = [(s["uri"], s["source_index"]) for s in json.loads(out)["sources"]]
    assert named == [(str(data), 0), (str(data), 1)]
    code, out, _ = _cli(capsys, "--warehouse", wh, "lineage", "--downstream", str(data),
                        "--format", "json")
    assert code == 0 and len(json.loads(out)) == 1, out  # one version used the file once
    code, _, err = _cli(capsys, "--warehouse", wh, "verify", "roms-test@latest")
    assert code == 0, err

    # unchanged: both entries are carried, no new version
    code, out, err = _cli(capsys, "--warehouse", wh, "run", str(recipe))
    assert code == 0 and "2 unchanged" in out + err
    assert len(catalog.versions("roms-test")) == 1
    catalog.close()
