"""Numeric CF times in a delimited file (``days since 1700-01-01``) through the CLI.

``haina check`` refuses a numeric time column whose recipe gives no ``time.units`` (exit 2, one
line naming the column and the fix); with ``units`` the run decodes the times and commits them.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc

from catalog.read import open_dataset
from pipelines.cli.app import main

UTC = dt.UTC


def write_files(tmp_path: Path, time: str) -> Path:
    data = tmp_path / "days.csv"
    # days since 1700-01-01: 1992-04-12 00:00 plus 6-hourly steps
    data.write_text("t,temp\n" + "".join(f"{106752 + i / 4},{10 + i / 10}\n" for i in range(8)))
    recipe = tmp_path / "days.yaml"
    recipe.write_text(f"""\
name: days-test
title: Numeric times
description: Times as days since 1700-01-01.
licence: CC0-1.0
owner: {{name: tests}}
sources:
  - kind: delimited
    uri: {data}
    time: {time}
    station_id: S1
    variables:
      temp: {{name: sea_water_temperature, units: degC}}
""")
    return recipe


def test_check_refuses_numbers_without_time_units(tmp_path, capsys):
    recipe = write_files(tmp_path, "{columns: t}")
    code = main(["--warehouse", str(tmp_path / "wh"), "check", str(recipe)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "days.csv" in lines[0] and "'t' holds numbers" in lines[0]
    assert "units: 'days since" in lines[0]


def test_run_decodes_days_since_1700(tmp_path, capsys):
    recipe = write_files(tmp_path, "{columns: t, units: days since 1700-01-01}")
    warehouse = tmp_path / "wh"
    assert main(["--warehouse", str(warehouse), "check", str(recipe)]) == 0
    assert main(["--warehouse", str(warehouse), "run", str(recipe)]) == 0, \
        capsys.readouterr().err
    table = open_dataset("days-test", warehouse=warehouse).to_table()
    times = pc.sort_indices(table, [("time", "ascending")])
    got = table.take(times)["time"].to_pylist()
    assert got[0] == dt.datetime(1992, 4, 12, tzinfo=UTC)
    assert got[-1] == dt.datetime(1992, 4, 13, 18, tzinfo=UTC)
    assert table.num_rows == 8
