"""Whole runs of the demo grid: commit, atomicity under crashes, locks, runners and engines."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import xarray as xr

from catalog import store
from catalog.exceptions import DatasetLockedError
from pipelines import recipe as recipe_mod
from pipelines.cli.app import main
from pipelines.driver import Runner
from tests.pipelines.conftest import demo_recipe

pytestmark = pytest.mark.slow
HAINA = [sys.executable, "-m", "pipelines.cli.app"]


def _catalog(warehouse: Path):
    return store.open_catalog(f"sqlite:///{warehouse}/catalog.db")


def _read_version(version) -> "pa.Table":
    paths = [f"{version.path}/{f.path}" for f in _files(version) if f.partition != "quarantine"]
    return pads.dataset(paths, format="parquet").to_table()


def _files(version):
    return store.open_catalog(f"sqlite:///{Path(version.path).parents[3]}/catalog.db").files(
        version.version_id)


def test_demo_run_commits_a_complete_version(tmp_path, demo_sources, tmp_warehouse, capsys):
    recipe = demo_recipe(tmp_path)
    assert main(["run", str(recipe)]) == 0
    printed = capsys.readouterr().out
    assert "committed demo-test@v" in printed and "validation report:" in printed

    catalog = _catalog(tmp_warehouse)
    version = catalog.version("demo-test", "latest")
    run = catalog.run(version.run_id)
    assert (run.status, version.state) == ("succeeded", "draft")

    # independent expectation from xarray: every wet cell is a row
    expected = 0
    for path in sorted(demo_sources.glob("*.nc")):
        with xr.open_dataset(path) as ds:
            wet = np.isfinite(ds.thetao) | np.isfinite(ds.so) | np.isfinite(ds.uo) | np.isfinite(ds.vo)
            expected += int(wet.sum())
            total = int(wet.size)
    assert version.rows == expected == run.rows_out
    assert run.rows_in == 2 * total and run.rows_in == run.rows_out + run.rows_dropped

    table = _read_version(version)
    assert table.num_rows == expected
    assert pc.min(table["eastward_sea_water_velocity"]).as_py() == pytest.approx(-12.0)  # -1200 cm/s
    assert pc.max(table["sea_water_potential_temperature"]).as_py() == pytest.approx(45.0)

    files = list(catalog.files(version.version_id))
    assert {f.partition for f in files} == {"date=2025-07-01", "date=2025-07-02"}
    for f in files:
        path = Path(version.path) / f.path
        assert path.parent.name == f.partition
        meta = pq.ParquetFile(path)
        kv = meta.metadata.metadata
        assert kv[b"haina.dataset"] == b"demo-test"
        assert kv[b"haina.version"] == version.version_id.encode()
        columns = json.loads(kv[b"haina.columns"])
        units = {c["name"]: c.get("units") for c in columns} if isinstance(columns, list) \
            else {k: v.get("units") for k, v in columns.items()}
        assert units["eastward_sea_water_velocity"] == "m s-1"
        assert meta.metadata.row_group(0).column(0).compression == "ZSTD"
        # QC flags are never null (9 is "missing"): stored REQUIRED, without definition levels
        levels = {meta.schema.column(i).name: meta.schema.column(i).max_definition_level
                  for i in range(len(meta.schema))}
        flags = {name for name in levels if name.endswith("_qc") or "_qc_" in name}
        assert flags and all(levels[name] == 0 for name in flags)
        assert levels["sea_water_potential_temperature"] == 1  # variables may be null
        times = meta.read(columns=["time"]).column("time").to_numpy()
        assert (np.diff(times.astype("int64")) >= 0).all(), "rows are time-ordered in a file"
    manifest = json.loads((Path(version.path) / "manifest.json").read_text())
    assert {f["sha256"] for f in manifest["files"]} == {f.sha256 for f in files}


def test_show_json_and_versions(tmp_path, demo_sources, tmp_warehouse, capsys):
    assert main(["run", str(demo_recipe(tmp_path))]) == 0
    capsys.readouterr()
    assert main(["versions", "demo-test"]) == 0
    listing = capsys.readouterr().out
    assert main(["show", "demo-test@latest", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    version_id = _catalog(tmp_warehouse).version("demo-test", "latest").version_id
    assert version_id in listing
    assert json.dumps(shown).count(version_id) >= 1


def _spawn_run(recipe: Path, warehouse: Path, *run_args: str) -> subprocess.Popen:
    env = {**os.environ, "HAINA_WAREHOUSE": str(warehouse)}
    args = [*HAINA, "run", str(recipe), *run_args]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_while_writing_leaves_no_version_and_rerun_succeeds(tmp_path, tmp_warehouse):
    from examples.qingdao_demo import generate
    generate(tmp_path / "sources", days=6)
    recipe = demo_recipe(tmp_path, output="{partition_by: date, target_file_mb: 0.01}")
    proc = _spawn_run(recipe, tmp_warehouse)
    staging = tmp_warehouse / "_staging"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(staging.glob("*/data/*/*.parquet")):
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    catalog = _catalog(tmp_warehouse)
    assert catalog.versions("demo-test") == []
    assert [r.status for r in catalog.runs("demo-test")] == ["running"]
    assert not (tmp_warehouse / "datasets" / "demo-test" / "versions").exists() or \
        not any((tmp_warehouse / "datasets" / "demo-test" / "versions").iterdir())

    rerun = _spawn_run(recipe, tmp_warehouse)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    assert b"marked abandoned" in out
    statuses = sorted(r.status for r in catalog.runs("demo-test"))
    assert statuses == ["abandoned", "succeeded"]
    (version,) = catalog.versions("demo-test")
    assert not any(staging.iterdir()), "staging of the killed run was cleaned"
    assert _read_version(version).num_rows == version.rows


def test_crash_between_publish_and_commit(tmp_path, demo_sources, tmp_warehouse, monkeypatch):
    """The folder is moved but the catalog never hears of it: the failing run removes it (a
    process killed there leaves it to the next run's gc, see tests/faults/test_signals.py)."""
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    runner = Runner(recipe)

    def crash(*_args, **_kwargs):
        raise OSError("power cut")
    monkeypatch.setattr(runner.catalog, "commit_version", crash)
    with pytest.raises(OSError, match="power cut"):
        runner.run()
    versions_dir = tmp_warehouse / "datasets" / "demo-test" / "versions"
    assert list(versions_dir.iterdir()) == []
    catalog = _catalog(tmp_warehouse)
    assert catalog.versions("demo-test") == []
    assert [r.status for r in catalog.runs("demo-test")] == ["failed"]

    outcome = Runner(recipe_mod.load(demo_recipe(tmp_path))).run()
    assert [v.version_id for v in catalog.versions("demo-test")] == [outcome.version_id]


def test_second_run_fails_clearly_while_the_lock_is_held(tmp_path, demo_sources, tmp_warehouse,
                                                         capsys):
    catalog = _catalog(tmp_warehouse)
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    Runner(recipe)._lock("r-holder")  # a live run of this very process holds the dataset
    assert main(["run", str(demo_recipe(tmp_path))]) == 4
    err = capsys.readouterr().err
    assert "r-holder" in err and "Traceback" not in err
    assert catalog.versions("demo-test") == []
    with pytest.raises(DatasetLockedError):
        catalog.acquire_lock("demo-test", "r-other")


def _content(version):
    table = _read_version(version).drop_columns(["source_file"])
    return table.sort_by([(n, "ascending") for n in ("time", "depth", "latitude", "longitude")])


def test_multiprocess_runner_gives_the_same_rows(tmp_path, demo_sources, tmp_warehouse):
    """Portable-runner discipline: workers in other processes share nothing but the plan."""
    recipe = demo_recipe(tmp_path)
    single = _spawn_run(recipe, tmp_warehouse, "--workers", "1")
    assert single.wait(timeout=300) == 0, single.stderr.read().decode()
    multi = _spawn_run(recipe, tmp_warehouse, "--full", "--", "--direct_num_workers=2",
                       "--direct_running_mode=multi_processing")
    assert multi.wait(timeout=300) == 0, multi.stderr.read().decode()
    first, second = _catalog(tmp_warehouse).versions("demo-test")
    assert first.rows == second.rows
    assert _content(first).equals(_content(second))


def test_worker_threads_give_the_same_rows_and_the_same_files_every_time(tmp_path, demo_sources,
                                                                          tmp_warehouse,
                                                                          monkeypatch):
    """Chunk ranges go whole to a worker: the file layout depends on the plan, not on timing."""
    from pipelines.beam import transforms

    monkeypatch.setattr(transforms, "MIN_CHUNKS_PER_RANGE", 2)  # cut each 5-chunk file in two
    recipe = demo_recipe(tmp_path, output="{partition_by: date, target_file_mb: 0.05}")
    recipe.write_text(recipe.read_text().replace("chunk_dim: time", "chunk_dim: depth"))
    runs = [Runner(recipe_mod.load(recipe), workers=w, full=True).run() for w in (1, 3, 3)]
    one, three, again = (_catalog(tmp_warehouse).version("demo-test", r.version_id) for r in runs)
    assert runs[1].counts["chunks"] == 10  # 2 files x 5 depth levels
    assert _content(one).equals(_content(three))

    def layout(version):
        return sorted((f.path, f.rows, f.content_sha256) for f in _files(version)
                      if f.partition != "quarantine")

    assert layout(three) == layout(again)


def test_great_expectations_engine_agrees_with_the_arrow_engine(tmp_path, demo_sources,
                                                                tmp_warehouse):
    outcomes = []  # day two of the demo holds the planted bad values
    for engine in ("arrow", "great_expectations"):
        recipe = demo_recipe(tmp_path, name=f"demo-{engine.replace('_', '-')}",
                             quality=f"{{max_failing_fraction: 0.001, engine: {engine}}}")
        outcomes.append(Runner(recipe_mod.load(recipe)).run())
    arrow, ge = outcomes
    assert arrow.validation == ge.validation
    assert any(s["unexpected"] for s in arrow.validation)


def test_qc_flags_can_stop_a_run(tmp_path, demo_sources, tmp_warehouse, capsys):
    """The demo's planted bad values are QC FAILs: a zero FAIL allowance refuses the version."""
    recipe = demo_recipe(tmp_path, quality="{max_failing_fraction: 0.001, "
                                           "qc_gate: {max_fail_fraction: 0.0}}")
    assert main(["run", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert "haina.qc" in err and "sea_water_salinity_qc" in err
    assert _catalog(tmp_warehouse).versions("demo-test") == []


def test_monthly_partitions_are_folders_and_a_column(tmp_path, demo_sources, tmp_warehouse):
    """partition_by: month writes month=YYYY-MM folders; open_dataset reads them as a column."""
    from catalog import open_dataset

    recipe = demo_recipe(tmp_path, output="{partition_by: month}")
    outcome = Runner(recipe_mod.load(recipe)).run()
    version = _catalog(tmp_warehouse).version("demo-test", outcome.version_id)
    data = [f for f in _files(version) if f.partition != "quarantine"]
    assert {f.partition for f in data} == {"month=2025-07"}
    assert all(f.path.startswith("data/month=2025-07/") for f in data)
    table = open_dataset("demo-test", outcome.version_id, warehouse=tmp_warehouse).to_table(
        columns=["month", "time"])
    assert table.num_rows == version.rows
    assert table.column("month").unique().to_pylist() == ["2025-07"]
