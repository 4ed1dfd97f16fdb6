"""Release lifecycle end to end on the demo grid: run, release, add a day, run, MINOR proposal,
release, diff, read each version, deprecate, yank, list."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from examples.qingdao_demo import generate

from catalog import store
from catalog.read import open_dataset
from catalog.releases import diff as diff_mod
from catalog.releases import lifecycle as rel
from pipelines.cli.app import main
from tests.pipelines.conftest import demo_recipe

pytestmark = pytest.mark.slow
NAME = "demo-test"
DAY1, DAY2 = "date=2025-07-01", "date=2025-07-02"


def _wet_cells(path: Path) -> int:
    """Rows a source file yields, computed independently: cells where any variable is finite."""
    with xr.open_dataset(path) as ds:
        wet = np.isfinite(ds.thetao) | np.isfinite(ds.so) | np.isfinite(ds.uo) | np.isfinite(ds.vo)
        return int(wet.sum())


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_release_lifecycle_end_to_end(tmp_path, tmp_warehouse, capsys):
    sources = tmp_path / "sources"
    [day1] = generate(sources, days=1)
    recipe = str(demo_recipe(tmp_path))
    assert _run(capsys, "run", recipe)[0] == 0

    code, out, _ = _run(capsys, "release", f"{NAME}@latest-draft")
    assert code == 0 and f"released {NAME}@1.0.0" in out, out

    [day2] = generate(sources, days=1, start=dt.date(2025, 7, 2))
    assert _run(capsys, "run", recipe)[0] == 0
    added = _wet_cells(day2)

    code, out, _ = _run(capsys, "release", f"{NAME}@latest-draft", "--dry-run")
    assert code == 0 and "required bump: MINOR -> 1.1.0" in out, out
    assert f"{added:,} rows were added in partition {DAY2}" in out
    code, _, err = _run(capsys, "release", f"{NAME}@latest-draft", "--version", "1.0.1")
    assert code == 2
    assert (f"1.0.1 is a PATCH, but {added:,} rows were added in partition {DAY2}: needs MINOR "
            f"(1.1.0)") in " ".join(err.split()), err
    notes = tmp_path / "NOTES.md"
    notes.write_text("Adds 2 July 2025.\n")
    code, out, _ = _run(capsys, "release", f"{NAME}@latest-draft", "--notes", str(notes))
    assert code == 0 and f"released {NAME}@1.1.0" in out, out

    for command in ("verify", "lineage", "show", "report"):  # every command takes a semver
        code, out, err = _run(capsys, command, f"{NAME}@1.0.0")
        assert code == 0, (command, err)
    code, out, _ = _run(capsys, "diff", f"{NAME}@1.0.0", f"{NAME}@1.1.0", "--json")
    got = json.loads(out)
    parts = {p["partition"]: p for p in got["partitions"]}
    assert parts[DAY2]["method"] == "added" and parts[DAY2]["added"] == added
    assert parts[DAY1]["method"] == "same-content"  # same source, same row groups: not read
    day1_rows = _wet_cells(day1)
    assert (parts[DAY1]["unchanged"], parts[DAY1]["changed"], parts[DAY1]["added"]) == (
        day1_rows, 0, 0)
    assert [Path(p).parent.name for p in got["files_added"]] == [DAY2]
    assert got["files_removed"] == [] and got["schema"]["added"] == []
    assert got["totals"] == {"rows_a": day1_rows, "rows_b": day1_rows + added, "added": added,
                             "removed": 0, "changed": 0}
    code, out, _ = _run(capsys, "diff", f"{NAME}@1.0.0", f"{NAME}@1.1.0")
    assert code == 0 and "Rows per partition" in out and DAY2 in out

    catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")
    v1, v2 = rel.resolve(catalog, NAME, "1.0.0"), rel.resolve(catalog, NAME, "1.1.0")
    assert rel.release_of(catalog, v2.version_id).notes == "Adds 2 July 2025."
    for version, days, rows in ((v1, {DAY1}, day1_rows), (v2, {DAY1, DAY2}, day1_rows + added)):
        files = diff_mod.data_files(catalog, version)
        table = diff_mod.read_files(version, files)
        assert table.num_rows == rows == version.rows
        assert {f.partition for f in files} == days
        assert all(f.path.startswith("data/") for f in files)
        assert rel.check_unchanged(catalog, version) is None  # the second run's gc kept it
    # the consumer API serves each release its own rows
    for semver, rows in (("1.0.0", day1_rows), ("1.1.0", day1_rows + added)):
        assert open_dataset(NAME, version=semver, warehouse=str(tmp_warehouse),
                            verify=True).count_rows() == rows

    code, out, _ = _run(capsys, "deprecate", f"{NAME}@1.0.0", "--reason", "superseded by 1.1.0")
    assert code == 0 and "is now deprecated" in out
    code, _, err = _run(capsys, "yank", f"{NAME}@1.1.0")
    assert code == 2 and "a reason is required" in err
    code, out, _ = _run(capsys, "yank", f"{NAME}@1.1.0", "--reason", "wrong salinity units")
    assert code == 0 and "is now yanked" in out

    code, out, _ = _run(capsys, "versions", NAME)
    assert code == 0 and "deprecated" in out and "yanked" in out
    code, out, _ = _run(capsys, "releases", NAME)
    assert code == 0
    for text in ("draft -> released", "released -> deprecated", "superseded by 1.1.0",
                 "released -> yanked", "wrong salinity units", "1.1.0", "MINOR"):
        assert text in out, (text, out)
    with pytest.raises(rel.YankedVersionError, match="wrong salinity units"):
        rel.resolve(catalog, NAME, "1.1.0")
    with pytest.raises(rel.YankedVersionError):
        open_dataset(NAME, version="1.1.0", warehouse=str(tmp_warehouse))
    assert open_dataset(NAME, version="1.1.0", warehouse=str(tmp_warehouse),
                        allow_yanked=True).count_rows() == day1_rows + added
    with pytest.warns(rel.DeprecatedVersionWarning):
        assert open_dataset(NAME, version="1.0.0",
                            warehouse=str(tmp_warehouse)).count_rows() == day1_rows
    with pytest.warns(rel.DeprecatedVersionWarning):
        assert rel.resolve(catalog, NAME, "latest").version_id == v1.version_id
    catalog.close()
