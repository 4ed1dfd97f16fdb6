"""Warehouse layout, publish (folder rename and per-file), and gc against a real catalog."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from catalog.exceptions import PublishError, WarehouseError
from catalog.storage.warehouse import Warehouse, publish_per_file
from catalog.store import DatasetRecord, RunRecord, VersionRecord, open_catalog

UTC = dt.UTC


def test_layout(tmp_path):
    wh = Warehouse(str(tmp_path))
    assert wh.catalog_url == f"sqlite:///{tmp_path}/catalog.db"
    assert wh.staging_dir("r1") == f"{tmp_path}/_staging/r1"
    assert wh.run_dir("r1") == f"{tmp_path}/_runs/r1"
    assert wh.version_dir("argo", "v1") == f"{tmp_path}/datasets/argo/versions/v1"


def test_relative_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Warehouse("wh").staging_dir("r1") == f"{tmp_path}/wh/_staging/r1"


def test_remote_root_needs_a_catalog_url():
    wh = Warehouse("gs://bucket/warehouse/")
    with pytest.raises(WarehouseError, match="postgresql"):
        _ = wh.catalog_url


@pytest.mark.parametrize("root", ["gs://bucket/warehouse", "gs://bucket/warehouse/",
                                  "gs://bucket/warehouse//"])
def test_remote_layout_keeps_the_scheme_and_drops_trailing_slashes(root):
    wh = Warehouse(root)
    assert wh.staging_dir("r1") == "gs://bucket/warehouse/_staging/r1"
    assert wh.version_dir("argo", "v1") == "gs://bucket/warehouse/datasets/argo/versions/v1"


def test_a_file_uri_root_is_the_local_folder(tmp_path):
    wh = Warehouse(tmp_path.as_uri())
    assert wh.run_dir("r1") == f"{tmp_path}/_runs/r1"
    assert wh.catalog_url == f"sqlite:///{tmp_path}/catalog.db"


def _stage(folder: Path, names=("date=2024-01-01/part-a.parquet", "manifest.json")) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())


@pytest.mark.parametrize("mover", ["folder_rename", "per_file"])
def test_publish_moves_everything(tmp_path, mover):
    wh = Warehouse(str(tmp_path))
    staging = Path(wh.staging_dir("r1")) / "data"
    _stage(staging)
    target = wh.version_dir("argo", "v1")
    if mover == "folder_rename":
        wh.publish(str(staging), target)
        assert not staging.exists()
    else:
        publish_per_file(str(staging), target)
    assert (Path(target) / "date=2024-01-01/part-a.parquet").read_bytes() == (
        b"date=2024-01-01/part-a.parquet")
    assert (Path(target) / "manifest.json").exists()
    assert not [p for p in staging.rglob("*") if p.is_file()]  # nothing left behind


@pytest.mark.parametrize("mover", ["folder_rename", "per_file"])
def test_publish_refuses_an_existing_version(tmp_path, mover):
    wh = Warehouse(str(tmp_path))
    staging, target = tmp_path / "s", Path(wh.version_dir("argo", "v1"))
    _stage(staging)
    _stage(target)
    move = wh.publish if mover == "folder_rename" else publish_per_file
    with pytest.raises(PublishError, match="already"):
        move(str(staging), str(target))
    with pytest.raises(PublishError, match="staging"):
        move(str(tmp_path / "missing"), str(tmp_path / "other"))


def test_gc_removes_only_unreferenced_folders(tmp_path):
    wh = Warehouse(str(tmp_path))
    cat = open_catalog(wh.catalog_url)
    for name in ("argo", "busy"):
        cat.ensure_dataset(DatasetRecord(name=name, created_at=None))
    for run_id in ("r_done", "r_commit"):
        cat.begin_run(RunRecord(run_id=run_id, dataset="argo"), [])
    cat.begin_run(RunRecord(run_id="r_live", dataset="busy"), [])
    cat.finish_run("r_done", status="failed", counts={})
    for run_id in ("r_done", "r_live", "r_unknown"):
        _stage(Path(wh.staging_dir(run_id)))
    Path(wh.staging_dir("r_empty")).mkdir(parents=True)
    committed = wh.version_dir("argo", "v1")  # committed: kept
    _stage(Path(committed))
    cat.commit_version(VersionRecord(version_id="v1", dataset="argo", run_id="r_commit",
                                     path=committed, manifest_sha256="", rows=0, bytes=0,
                                     file_count=0), [])
    cat.finish_run("r_commit", status="succeeded", counts={})
    _stage(Path(wh.version_dir("argo", "v2")))  # published, never committed: orphan
    _stage(Path(wh.version_dir("busy", "v3")))  # r_live may be about to commit it: kept
    _stage(Path(wh.version_dir("ghost", "v4")), names=("part.parquet",))  # unknown dataset

    removed = wh.gc(cat)
    assert sorted(removed) == sorted([
        wh.staging_dir("r_done"), wh.staging_dir("r_unknown"), wh.staging_dir("r_empty"),
        wh.version_dir("argo", "v2"), wh.version_dir("ghost", "v4")])
    assert all(not Path(p).exists() for p in removed)
    for kept in (wh.staging_dir("r_live"), committed, wh.version_dir("busy", "v3")):
        assert Path(kept).is_dir()
    assert wh.gc(cat) == []
    cat.finish_run("r_live", status="failed", counts={})
    assert wh.gc(cat) == [wh.staging_dir("r_live"), wh.version_dir("busy", "v3")]
    cat.close()
