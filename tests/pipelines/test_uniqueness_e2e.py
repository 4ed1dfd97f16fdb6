"""Key uniqueness through ``haina run``: duplicates far apart in a file, read in many chunks.

The timeseries kind's key is (source_file, station_id, time, depth). A station file that repeats
some timestamps thousands of lines apart must fail the gate with GE's exact count (every row of a
repeated key, as pandas' ``duplicated(keep=False)``), whatever the chunking and worker count.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog import store
from pipelines.cli.app import main

ROWS = 20_000


def station_csv(path: Path, repeats: int) -> pd.DataFrame:
    """A one-minute station series; the last ``repeats`` lines repeat early timestamps."""
    rng = np.random.default_rng(5)
    times = pd.date_range("2024-03-01", periods=ROWS, freq="min", tz="UTC")
    frame = pd.DataFrame({"time": times, "temp": rng.normal(12, 2, ROWS).round(3)})
    if repeats:
        again = frame.iloc[rng.choice(ROWS // 2, repeats, replace=False)].copy()
        frame = pd.concat([frame, again], ignore_index=True)
    frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    return frame


def recipe(tmp_path: Path, source: Path, extra: str = "") -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(f"""\
name: keys-test
title: Station with repeated timestamps
description: A generated one-minute series whose tail repeats earlier lines.
licence: CC-BY-4.0
owner: {{name: tests}}
sources:
  - kind: delimited
    uri: {source}
    delimiter: ","
    chunk_bytes: 8192
    time: {{columns: time, format: "%Y-%m-%dT%H:%M:%SZ"}}
    station_id: S1
    variables:
      temp: {{name: sea_water_temperature, units: degC}}
quality:
  max_failing_fraction: 0.0
{extra}""")
    return path


def kind_result(warehouse: Path) -> dict:
    runs = sorted((warehouse / "_runs").iterdir())
    report = json.loads((runs[-1] / "validation.json").read_text())
    for suite in report["results"]:
        if suite["suite_name"] == "haina.kind.timeseries":
            return next(r for r in suite["results"]
                        if r["expectation_config"]["type"] == "expect_compound_columns_to_be_unique")
    raise AssertionError("no timeseries kind suite in the validation report")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_repeats_far_apart_fail_the_gate_with_ges_count(tmp_path, capsys, workers):
    frame = station_csv(tmp_path / "s1.csv", repeats=37)
    warehouse = tmp_path / "wh"
    code = main(["--warehouse", str(warehouse), "run", "--workers", workers,
                 str(recipe(tmp_path, tmp_path / "s1.csv"))])
    err = capsys.readouterr().err
    assert code != 0
    assert "expect_compound_columns_to_be_unique: 74 of 20037 rows unexpected" in err
    result = kind_result(warehouse)
    expected = int(frame.duplicated(subset=["time"], keep=False).sum())
    assert result["result"]["unexpected_count"] == expected == 74
    assert result["expectation_config"]["kwargs"]["column_list"] == [
        "source_file", "station_id", "time", "depth"]
    assert not list(warehouse.glob("keys-test/v*")), "a failed gate commits no version"


def test_a_clean_file_passes_and_the_recipe_can_waive_the_key(tmp_path, capsys):
    station_csv(tmp_path / "clean.csv", repeats=0)
    warehouse = tmp_path / "wh"
    assert main(["--warehouse", str(warehouse), "run",
                 str(recipe(tmp_path, tmp_path / "clean.csv"))]) == 0
    assert kind_result(warehouse)["result"]["unexpected_count"] == 0

    station_csv(tmp_path / "dup.csv", repeats=5)
    waived = recipe(tmp_path, tmp_path / "dup.csv", "  unique_key: []\n")
    assert main(["--warehouse", str(tmp_path / "wh2"), "run", str(waived)]) == 0
    catalog = store.open_catalog(f"sqlite:///{tmp_path / 'wh2'}/catalog.db")
    (version,) = catalog.versions("keys-test")
    assert version.rows == ROWS + 5
