"""A full disk under a real ``haina run``: the warehouse volume, the catalog's, and after the
commit. Each volume is a small tmpfs of its own (mounting needs root: CI fails without it,
elsewhere the tests skip).

Before the commit: exit 3, one line "disk full at PATH", nothing left behind. After the commit:
the version stands, the run exits 0, and what could not be written is a warning on stderr.
"""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import missing
from tests.faults.conftest import (
    DATASET,
    assert_nothing_left,
    catalog_of,
    error_lines,
    finish,
    haina_args,
    spawn,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def tmpfs(tmp_path):
    """``mount(name, size)``: a tmpfs of ``size`` at ``tmp_path/name``, unmounted afterwards."""
    mounted = []

    def mount(name: str, size: str):
        path = tmp_path / name
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            missing(f"cannot mount a tmpfs to fill ({done.stderr.strip() or done.returncode}); "
                    f"the disk-full tests need root")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def _one_error(stderr: str) -> str:
    lines = error_lines(stderr)
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_full_warehouse_volume(tmp_path, one_day, tmpfs):
    warehouse = tmpfs("warehouse", "256k")  # one day of the demo grid is ~600 kB of Parquet
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"

    code, _out, err = finish(spawn(haina_args(warehouse, catalog, "run", str(one_day))))

    assert code == 3, err
    line = _one_error(err)
    assert line.startswith(f"error: disk full at {warehouse}/"), line
    assert "schema" not in line  # the Parquet writer's generic advice does not apply
    assert f"df -h {warehouse}" in line
    (run,) = catalog_of(warehouse, catalog).runs(DATASET)
    assert run.status == "failed" and "disk full" in run.error
    assert_nothing_left(warehouse, catalog)


def test_full_catalog_volume(tmp_path, one_day, tmpfs):
    """The catalog's volume fills while the pipeline runs: the run cannot even be marked failed,
    but it says so, leaves no files, and the next run (with room again) recovers."""
    volume = tmpfs("catalog", "1m")
    catalog, warehouse = f"sqlite:///{volume / 'catalog.db'}", tmp_path / "warehouse"
    args = haina_args(warehouse, catalog, "run", str(one_day))

    code, _out, err = finish(spawn(args, fault=("ingested", "fill", str(volume))))

    assert code == 3, err
    line = _one_error(err)
    assert line.startswith(f"error: disk full at {volume / 'catalog.db'}:"), line
    assert "next run marks the run abandoned" in line
    assert not any((warehouse / "_staging").iterdir())
    assert not (warehouse / "datasets" / DATASET / "versions").exists()

    (volume / "filler.bin").unlink()
    code, _out, err = finish(spawn(args))
    assert code == 0, err
    statuses = sorted(r.status for r in catalog_of(warehouse, catalog).runs(DATASET))
    assert statuses == ["abandoned", "succeeded"]
    assert_nothing_left(warehouse, catalog)


@pytest.mark.parametrize("point, full, step", [
    # the lineage file beside the version, on the warehouse volume
    pytest.param("succeeded", "warehouse", "recording its COMPLETE lineage event",
                 id="lineage-file"),
    # every catalog write after the commit: the run's record, then its lineage event
    pytest.param("committed", "catalog", "marking the run succeeded", id="run-record"),
])
def test_full_disk_after_the_commit_is_a_warning(tmp_path, one_day, tmpfs, point, full, step):
    volumes = {"warehouse": tmpfs("warehouse", "16m"), "catalog": tmpfs("catalog", "2m")}
    warehouse, catalog = volumes["warehouse"], f"sqlite:///{volumes['catalog'] / 'catalog.db'}"

    code, out, err = finish(spawn(haina_args(warehouse, catalog, "run", str(one_day)),
                                  fault=(point, "fill", str(volumes[full]))))

    assert code == 0, err
    assert "committed demo-test@" in out
    lines = error_lines(err)
    assert lines and all(line.startswith("warning: ") for line in lines), err
    assert "Traceback" not in err
    assert any(f"is committed, but {step} failed: disk full at {volumes[full]}/" in line
               for line in lines), lines
    (volumes[full] / "filler.bin").unlink()
    (version,) = catalog_of(warehouse, catalog).versions(DATASET)
    assert f"@{version.version_id}" in out
    assert not any((warehouse / "_staging").iterdir())
    if step == "marking the run succeeded":  # recorded by the next run, which finds it dead
        code, _out, err = finish(spawn(haina_args(warehouse, catalog, "run", str(one_day))))
        assert code == 0, err
    assert_nothing_left(warehouse, catalog)
