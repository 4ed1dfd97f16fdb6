"""Commands that only look never write: not the catalog, not the warehouse, not the folder they
run in. Each runs on a copy of a warehouse made by real runs (a release and a newer draft), and
every file's bytes and modification time, and the list of paths, are compared before and after
(the tests run as root, so file modes would not stop a write). The catalog is opened read-only
besides (SQLite ``mode=ro``), so a write would fail loudly."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from examples.qingdao_demo import generate

from catalog.exceptions import CatalogConnectionError, CatalogError
from catalog.sql import backend as sql
from catalog.store import DatasetRecord, open_catalog
from pipelines.cli.app import main
from tests.pipelines.cli.conftest import NAME, Released
from tests.pipelines.conftest import demo_recipe

Snapshot = dict[str, tuple[str, int] | None]


def snapshot(*roots: Path) -> Snapshot:
    """Every path under ``roots``: a file's sha256 and mtime, a folder as None."""
    found: Snapshot = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_dir():
                found[str(path)] = None
            else:
                found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                    path.stat().st_mtime_ns)
    return found


def _read_commands(made: Released, copy: Path) -> list[list[str]]:
    source = sorted((copy / "sources").iterdir())[0]
    return [
        ["check", str(copy / made.recipe.name)],
        ["datasets"], ["versions", NAME], ["runs", NAME], ["releases", NAME],
        ["show", f"{NAME}@latest"], ["show", f"{NAME}@latest-draft", "--json"],
        ["diff", f"{NAME}@1.0.0", f"{NAME}@latest-draft"],
        ["lineage", f"{NAME}@latest"], ["lineage", f"{NAME}@latest-draft", "--format", "prov"],
        ["lineage", "--downstream", str(source)],
        ["verify", f"{NAME}@latest"], ["verify", f"{NAME}@latest-draft", "--json"],
        ["audit", "log"], ["audit", "verify"],
        ["report", f"{NAME}@latest"], ["kinds"], ["kinds", "argo"],
    ]


@pytest.fixture
def copy(released_then_draft: Released, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the made warehouse, its sources and recipe; the command runs in ``cwd``."""
    folder = tmp_path / "copy"
    shutil.copytree(released_then_draft.root, folder)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for name in ("HAINA_WAREHOUSE", "HAINA_CATALOG_URL"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.mark.slow
def test_read_only_commands_change_and_create_nothing(released_then_draft, copy, tmp_path,
                                                      capsys):
    made = released_then_draft
    # the catalog's paths name the original warehouse: a command may read either tree
    watched = (copy, made.root, tmp_path / "cwd")
    before = snapshot(*watched)
    for argv in _read_commands(made, copy):
        code = main(["--warehouse", str(copy / "warehouse"), *argv])
        out, err = capsys.readouterr()
        assert code == 0, (argv, out, err)
        after = snapshot(*watched)
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p)
                         or (p in before) != (p in after))
        assert changed == [], (argv, changed)


def test_check_with_a_warehouse_that_does_not_exist_creates_nothing(tmp_path, monkeypatch,
                                                                    capsys):
    generate(tmp_path / "sources", days=1)
    recipe = demo_recipe(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in ("HAINA_WAREHOUSE", "HAINA_CATALOG_URL"):
        monkeypatch.delenv(name, raising=False)
    before = snapshot(tmp_path)
    assert main(["check", str(recipe)]) == 0
    assert main(["--warehouse", str(tmp_path / "elsewhere"), "check", str(recipe)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("`haina run` creates it") == 2, out
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "warehouse").exists() and not (tmp_path / "elsewhere").exists()


# --- the read-only catalog itself --------------------------------------------------------------
def test_a_write_through_a_read_only_catalog_fails_loudly(tmp_path):
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    open_catalog(catalog_url).close()  # a current catalog
    catalog = open_catalog(catalog_url, create=False, read_only=True)
    try:
        assert catalog.datasets() == []
        with pytest.raises(CatalogError, match="attempt to write a readonly database"):
            catalog.ensure_dataset(DatasetRecord(name="x"))
    finally:
        catalog.close()
    writable = open_catalog(catalog_url, create=False)
    try:
        assert writable.datasets() == []
    finally:
        writable.close()


def _old_catalog(path: Path, revision: str) -> None:
    """A SQLite catalog at ``revision``, as an older Haina left it."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(sql.MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def test_a_catalog_that_needs_an_upgrade_is_refused_with_the_fix(tmp_path, capsys):
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    _old_catalog(warehouse / "catalog.db", "0004")
    before = snapshot(tmp_path)
    with pytest.raises(CatalogConnectionError, match="revision 0004.*do not upgrade.*haina run"):
        open_catalog(f"sqlite:///{warehouse / 'catalog.db'}", create=False, read_only=True)
    assert main(["--warehouse", str(warehouse), "datasets"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "schema is at revision 0004" in err and "`haina run RECIPE`" in err, err
    assert snapshot(tmp_path) == before
    # a writing open still upgrades it, as before
    open_catalog(f"sqlite:///{warehouse / 'catalog.db'}", create=False).close()
    open_catalog(f"sqlite:///{warehouse / 'catalog.db'}", create=False, read_only=True).close()
