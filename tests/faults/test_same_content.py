"""Identical files under two names: a copy. It is ingested once, both names are sources of the
version, and a warning says so. (They used to write the same output paths and fail with an
internal message, leaving an orphan version folder.) A failing run leaves no version folder.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from catalog import store
from pipelines import recipe as recipe_mod
from pipelines.cli.app import main
from pipelines.driver import Runner
from tests.pipelines.conftest import demo_recipe

pytestmark = pytest.mark.slow


def _wet_cells(path: Path) -> int:
    """Rows one demo file yields: its cells with any finite value (as tests/pipelines/test_run)."""
    with xr.open_dataset(path) as ds:
        wet = np.isfinite(ds.thetao) | np.isfinite(ds.so) | np.isfinite(ds.uo) | np.isfinite(ds.vo)
        return int(wet.sum())


def _version_folders(warehouse: Path) -> set[str]:
    versions = warehouse / "datasets" / "demo-test" / "versions"
    return {p.name for p in versions.iterdir()} if versions.exists() else set()


@pytest.fixture
def copies(tmp_path) -> tuple[Path, Path]:
    from examples.qingdao_demo import generate

    (original,) = generate(tmp_path / "sources", days=1)
    copy = original.with_name(f"{original.stem}_copy.nc")  # sorts after the original
    shutil.copyfile(original, copy)
    return original, copy


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_identical_files_are_ingested_once(tmp_path, copies, tmp_warehouse, capsys):
    original, copy = copies
    recipe = demo_recipe(tmp_path)

    assert main(["run", str(recipe)]) == 0
    err = capsys.readouterr().err
    sha = hashlib.sha256(original.read_bytes()).hexdigest()
    assert _warnings(err) == [f"warning: {copy} has the same content as {original} "
                              f"(sha256 {sha}); ingested once"], err

    catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")
    (version,) = catalog.versions("demo-test")
    assert version.rows == _wet_cells(original)
    run = catalog.run(version.run_id)
    assert run.rows_in == run.rows_out + run.rows_dropped
    manifest = json.loads((Path(version.path) / "manifest.json").read_text())
    assert {(s["uri"], s["sha256"]) for s in manifest["sources"]} == {
        (str(original), sha), (str(copy), sha)}
    assert _version_folders(tmp_warehouse) == {version.version_id}

    # unchanged since: nothing to do, and no warning about the copy again
    assert main(["run", str(recipe)]) == 0
    out, err = capsys.readouterr()
    assert "nothing new" in out and not _warnings(err)


def test_a_new_copy_of_an_ingested_file_adds_no_rows(tmp_path, copies, tmp_warehouse, capsys):
    original, copy = copies
    copy.unlink()
    recipe = demo_recipe(tmp_path)
    assert main(["run", str(recipe)]) == 0
    shutil.copyfile(original, copy)
    capsys.readouterr()

    assert main(["run", str(recipe)]) == 0
    err = capsys.readouterr().err
    assert len(_warnings(err)) == 1 and f"{copy} has the same content as {original}" in err
    catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")
    first, second = catalog.versions("demo-test")
    assert second.rows == first.rows == _wet_cells(original)
    assert _version_folders(tmp_warehouse) == {first.version_id, second.version_id}


def test_a_failure_after_publishing_leaves_no_version_folder(tmp_path, copies, tmp_warehouse,
                                                              monkeypatch):
    copies[1].unlink()
    runner = Runner(recipe_mod.load(demo_recipe(tmp_path)))

    def crash(*_args, **_kwargs):
        raise OSError("power cut")
    monkeypatch.setattr(runner.catalog, "commit_version", crash)
    with pytest.raises(OSError, match="power cut"):
        runner.run()
    assert _version_folders(tmp_warehouse) == set()
    assert not any((tmp_warehouse / "_staging").iterdir())
    catalog = store.open_catalog(f"sqlite:///{tmp_warehouse}/catalog.db")
    assert [r.status for r in catalog.runs("demo-test")] == ["failed"]
