"""``haina report NAME@VERSION [--open]`` on SQLite and PostgreSQL catalogs, and once after a
real ``haina run``."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from examples.qingdao_demo import generate

from catalog.store import (
    DatasetRecord,
    FileRecord,
    RunRecord,
    SourceRecord,
    VersionRecord,
    open_catalog,
)
from pipelines.cli.app import main
from tests.pipelines.conftest import demo_recipe

UTC = dt.UTC
REPO = Path(__file__).resolve().parents[3]


# --- two backends (the pattern of tests/catalog/test_store_contract.py) ---------------------


def _t(minute: int) -> dt.datetime:
    return dt.datetime(2025, 7, 1, 12, minute, tzinfo=UTC)


def _record_run(catalog, run_id: str, report: Path | None, version_id: str | None,
                minute: int) -> None:
    catalog.begin_run(RunRecord(run_id=run_id, dataset="demo", version_id=version_id,
                                recipe_path="recipes/demo.yaml", started_at=_t(minute)),
                      [SourceRecord(run_id, "/data/a.nc", "a" * 64, 10, "netcdf_grid")])
    if version_id:
        files = [FileRecord(path="date=2025-07-01/part-0.parquet", sha256="1" * 64, rows=10,
                            bytes=100, partition="date=2025-07-01")]
        catalog.commit_version(VersionRecord(
            version_id=version_id, dataset="demo", run_id=run_id, path=f"/wh/{version_id}",
            manifest_sha256="f" * 64, rows=10, bytes=100, file_count=1,
            created_at=_t(minute + 1)), files)
    # the Runner's order: the version is committed while the run is running, then it finishes
    status = "succeeded" if version_id else "gate_failed"
    catalog.finish_run(run_id, status=status, counts={"rows_in": 10, "rows_out": 10,
                                                      "rows_dropped": 0, "rows_rejected": 0},
                       report_path=str(report) if report else None)


@pytest.fixture
def reports(catalog_url, tmp_path):
    """Two versions with reports, a gate-failed run with a report, a version whose report
    file is gone."""
    paths = {}
    for run_id in ("r1", "r2", "r3"):
        paths[run_id] = tmp_path / "_runs" / run_id / "validation.html"
        paths[run_id].parent.mkdir(parents=True)
        paths[run_id].write_text("<!DOCTYPE html><title>report</title>")
    catalog = open_catalog(catalog_url)
    catalog.ensure_dataset(DatasetRecord(name="demo", title="Demo", created_at=_t(0)))
    _record_run(catalog, "r1", paths["r1"], "v1", 1)
    _record_run(catalog, "r2", paths["r2"], "v2", 3)
    _record_run(catalog, "r3", paths["r3"], None, 5)  # refused by the gate: no version
    _record_run(catalog, "r4", tmp_path / "gone.html", "v4", 7)
    catalog.close()
    paths["r4"] = tmp_path / "gone.html"
    return catalog_url, paths


def _haina(url: str, *argv: str) -> int:
    return main(["--catalog", url, *argv])


def test_prints_the_report_of_a_version_latest_and_a_run(reports, capsys):
    url, paths = reports
    assert _haina(url, "report", "demo@v1") == 0
    assert capsys.readouterr().out.strip() == str(paths["r1"])
    assert _haina(url, "report", "demo@v2") == 0
    assert capsys.readouterr().out.strip() == str(paths["r2"])
    assert _haina(url, "report", "r3") == 0  # a gate-failed run has a report but no version
    assert capsys.readouterr().out.strip() == str(paths["r3"])


def test_open_uses_the_web_browser(reports, capsys, monkeypatch):
    url, paths = reports
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda uri: opened.append(uri) or True)
    assert _haina(url, "report", "demo@v1", "--open") == 0
    assert opened == [paths["r1"].resolve().as_uri()]
    monkeypatch.setattr("webbrowser.open", lambda uri: False)
    assert _haina(url, "report", "demo@v1", "--open") == 2
    assert "no web browser could be started" in capsys.readouterr().err


@pytest.mark.parametrize("ref, message", [
    ("demo@v9", "v9"),
    ("ghost@latest", "ghost"),
    ("demo@", "is not NAME@VERSION"),
    ("nothing", "neither NAME@VERSION nor a known run id"),
    ("demo@v4", "does not exist"),
])
def test_errors_name_the_problem_and_the_fix(reports, capsys, ref, message):
    url, _paths = reports
    assert _haina(url, "report", ref) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert message in err and "Fix:" in err


def test_a_run_without_report_says_how_to_get_one(catalog_url, capsys):
    catalog = open_catalog(catalog_url)
    catalog.ensure_dataset(DatasetRecord(name="demo", title="Demo", created_at=_t(0)))
    _record_run(catalog, "r1", None, "v1", 1)
    catalog.close()
    assert _haina(catalog_url, "report", "demo@latest") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "has no validation report recorded" in err and "haina run recipes/demo.yaml" in err


def test_after_a_real_run(tmp_path, tmp_warehouse, capsys):
    """``haina run`` then ``haina report NAME@latest``: the path the run recorded, a real page."""
    generate(tmp_path / "sources", days=1)  # one file of 4 time steps, read as one chunk
    recipe = demo_recipe(tmp_path, name="demo-report", output="{partition_by: none}")
    recipe.write_text(recipe.read_text().replace("chunk_size: 1", "chunk_size: 4"))
    assert main(["run", str(recipe)]) == 0
    run_output = capsys.readouterr().out
    assert main(["report", "demo-report@latest"]) == 0
    printed = capsys.readouterr().out.strip()
    assert f"validation report: {printed}" in " ".join(run_output.split())
    assert Path(printed).parent.parent == tmp_warehouse / "_runs"
    page = Path(printed).read_text(encoding="utf-8")
    assert "Validation report: demo-report" in page and "Gate: PASSED" in page
