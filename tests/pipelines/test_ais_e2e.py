"""`haina run` on raw AIS NMEA with the default quality gate (no `quality:` section)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import require_shared_data

HAINA = [sys.executable, "-m", "pipelines.cli.app"]
#: libais typeexamples lines whose position is impossible (types 2, 9: latitude -101.5, -99.4;
#: type 27: longitude 200.2) or declared not available (type 4: 91/181)
BAD_POSITION_LINES = {1, 11, 21, 24}


def _recipe(tmp_path: Path, source: Path, name: str) -> Path:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(f"""name: {name}
title: AIS NMEA end to end
description: raw AIVDM sentences from the libais type examples
licence: Apache-2.0
attribution: schwehr/libais test/data/typeexamples.nmea
owner: {{name: tests}}
sources:
  - kind: ais_nmea
    uri: {source}
    fields: [rot, rot_raw, to_bow, eta_month]
""")
    return recipe


def _run(recipe: Path, warehouse: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HAINA_WAREHOUSE": str(warehouse)}
    return subprocess.run([*HAINA, "run", str(recipe)], env=env, capture_output=True,
                          text=True, timeout=300)


def test_static_messages_pass_the_default_gate(tmp_path, tmp_warehouse):
    real = require_shared_data("ais/libais_typeexamples.nmea")
    lines = real.read_text().splitlines()
    good = tmp_path / "good.nmea"
    good.write_text("\n".join(ln for i, ln in enumerate(lines, 1)
                              if i not in BAD_POSITION_LINES) + "\n")
    done = _run(_recipe(tmp_path, good, "ais_static"), tmp_warehouse)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    files = list((tmp_warehouse / "datasets" / "ais_static").rglob("*.parquet"))
    table = pq.ParquetDataset(files).read()
    types = set(table["msg_type"].to_pylist())
    assert {5, 24} <= types and table.num_rows == 22   # static rows kept, without a position
    assert {"rot", "rot_raw", "to_bow", "eta_month"} <= set(table.column_names)


def test_impossible_positions_still_fail_the_gate(tmp_path, tmp_warehouse):
    real = require_shared_data("ais/libais_typeexamples.nmea")
    done = _run(_recipe(tmp_path, real, "ais_bad"), tmp_warehouse)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "-101.547042" in done.stderr and "200.231667" in done.stderr
    # the not-null checks count the 9 position reports only: the type 4 whose position is
    # "not available", not the 17 static, binary and other messages
    assert "on column 'latitude': 1 of 9 rows" in done.stderr
    assert not (tmp_warehouse / "datasets" / "ais_bad").exists() or \
        not list((tmp_warehouse / "datasets" / "ais_bad").rglob("*.parquet"))
