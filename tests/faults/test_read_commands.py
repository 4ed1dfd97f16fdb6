"""Commands other than ``run`` never create a warehouse, a catalog file, a schema or tables.

Before, any command opened (and so created) ``./warehouse/catalog.db``; with ``--catalog``
forgotten on a warehouse whose catalog is elsewhere (PostgreSQL), ``audit verify`` then checked
an empty new catalog against the warehouse's head file and reported "audit log tampered". Now
each says where it looked and exits 2, and the warehouse's head file names its catalog.
"""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from catalog import read as api
from catalog.audit import log as audit
from catalog.exceptions import CatalogNotFoundError
from catalog.store import DatasetRecord, open_catalog
from pipelines.cli.app import _parser, main
from tests.conftest import psycopg_url

NAME = "demo-test"
#: every subcommand but ``run``, with arguments; a new subcommand must be added here
COMMANDS: dict[str, list[str]] = {
    "datasets": ["datasets"],
    "versions": ["versions", NAME],
    "runs": ["runs", NAME],
    "show": ["show", f"{NAME}@latest"],
    "releases": ["releases", NAME],
    "diff": ["diff", f"{NAME}@a", f"{NAME}@b"],
    "lineage": ["lineage", f"{NAME}@latest"],
    "audit": ["audit", "verify"],
    "verify": ["verify", f"{NAME}@latest"],
    "report": ["report", f"{NAME}@latest"],
    "card": ["card", f"{NAME}@latest"],
    "release": ["release", f"{NAME}@latest-draft"],
    "deprecate": ["deprecate", f"{NAME}@1.0.0", "--reason", "old"],
    "undeprecate": ["undeprecate", f"{NAME}@1.0.0"],
    "yank": ["yank", f"{NAME}@1.0.0", "--reason", "bad"],
    "unlock": ["unlock", NAME],
}
MORE = [["audit", "log"], ["lineage", "--downstream", "x.nc"]]
#: subcommands that read no catalog at all: they exit 0 in an empty folder, creating nothing
NO_CATALOG: dict[str, list[list[str]]] = {"kinds": [["kinds"], ["kinds", "argo"]]}


def _subcommands() -> set[str]:
    [sub] = [a for a in _parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(sub.choices)


def test_every_command_but_run_and_check_is_listed_here():
    assert _subcommands() - {"run", "check"} == set(COMMANDS) | set(NO_CATALOG)


@pytest.fixture
def empty_dir(tmp_path, monkeypatch):
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("HAINA_WAREHOUSE", "HAINA_CATALOG_URL"):
        monkeypatch.delenv(name, raising=False)
    return folder


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("argv", list(COMMANDS.values()) + MORE, ids=" ".join)
def test_in_an_empty_folder_a_command_says_where_it_looked_and_creates_nothing(
        empty_dir, capsys, argv):
    code, err = _run(capsys, argv)
    assert code == 2, err
    assert "Traceback" not in err
    looked = empty_dir / "warehouse" / "catalog.db"
    assert f"no catalog at {looked}" in err, err
    assert f"the warehouse folder {empty_dir / 'warehouse'} does not exist" in err
    assert "--catalog" in err and "$HAINA_CATALOG_URL" in err and "nothing was created" in err
    assert list(empty_dir.iterdir()) == []


@pytest.mark.parametrize("argv", [a for argvs in NO_CATALOG.values() for a in argvs],
                         ids=" ".join)
def test_a_command_that_needs_no_catalog_succeeds_and_creates_nothing(empty_dir, capsys, argv):
    code, err = _run(capsys, argv)
    assert code == 0, err
    assert list(empty_dir.iterdir()) == []


def test_check_plans_without_creating_the_warehouse(empty_dir, capsys):
    from examples.qingdao_demo import generate

    from tests.pipelines.conftest import demo_recipe

    recipes = empty_dir.parent / "recipes"
    generate(recipes / "sources", days=1)
    code = main(["--warehouse", str(empty_dir / "warehouse"), "check",
                 str(demo_recipe(recipes))])
    assert code == 0, capsys.readouterr().err
    assert list(empty_dir.iterdir()) == []


# --- both backends: a catalog URL with nothing behind it ---------------------------------------
def _tables_or_schema(url: str) -> bool:
    """Whether anything exists at ``url``: the SQLite file, or the PostgreSQL schema."""
    if url.startswith("sqlite"):
        return os.path.exists(url.removeprefix("sqlite:///"))
    base, _, schema = url.partition("?schema=")
    engine = sa.create_engine(psycopg_url(base))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM information_schema.schemata WHERE "
                                        "schema_name = :s"), {"s": schema}).scalar() > 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("argv", [COMMANDS["audit"], COMMANDS["versions"], ["audit", "log"]],
                         ids=" ".join)
def test_a_catalog_url_with_no_catalog_is_refused_and_left_alone(empty_dir, catalog_url, capsys,
                                                                 argv):
    url = catalog_url.replace("catalog.db", "missing.db")
    code, err = _run(capsys, ["--catalog", url, *argv])
    assert code == 2, err
    assert "Traceback" not in err
    assert "no catalog at" in err or "no Haina catalog tables" in err, err
    assert not _tables_or_schema(url)
    assert list(empty_dir.iterdir()) == []
    with pytest.raises(CatalogNotFoundError):  # the consumer API reads the same way
        api.connect(catalog=url)
    assert not _tables_or_schema(url)


def _warehouse_of(url: str, root) -> None:
    """A warehouse whose catalog is at ``url`` (not inside it): one audited change."""
    catalog = open_catalog(url)
    try:
        audit.use_warehouse(catalog, str(root))
        catalog.ensure_dataset(DatasetRecord(name=NAME, created_at=None))
    finally:
        catalog.close()


def test_a_warehouse_whose_catalog_is_elsewhere_says_which_catalog_to_pass(tmp_path, catalog_url,
                                                                           capsys, monkeypatch):
    url = catalog_url.replace("/warehouse/catalog.db", "/elsewhere/catalog.db")
    root = tmp_path / "shared-warehouse"
    _warehouse_of(url, root)
    monkeypatch.delenv("HAINA_CATALOG_URL", raising=False)
    identity = open_catalog(url, create=False).identity
    before = sorted(p.name for p in root.iterdir())

    code, err = _run(capsys, ["--warehouse", str(root), "audit", "verify"])  # --catalog forgotten
    assert code == 2, err
    assert "tampered" not in err and "Traceback" not in err
    assert f"its runs used the catalog {identity}" in err and f"--catalog {identity}" in err
    assert sorted(p.name for p in root.iterdir()) == before  # no catalog.db appeared

    code = main(["--warehouse", str(root), "--catalog", url, "audit", "verify"])
    assert code == 0, capsys.readouterr().err
    assert "audit log intact" in capsys.readouterr().out


def test_audit_verify_against_another_catalog_names_both_instead_of_tampered(
        tmp_path, catalog_url, capsys):
    root = tmp_path / "shared-warehouse"
    _warehouse_of(catalog_url.replace("/warehouse/catalog.db", "/elsewhere/catalog.db"), root)
    other = f"sqlite:///{tmp_path / 'other' / 'catalog.db'}"
    _warehouse_of(other, tmp_path / "other-warehouse")  # an existing, unrelated catalog
    code, err = _run(capsys, ["--warehouse", str(root), "--catalog", other, "audit", "verify"])
    assert code == 2, err
    assert "tampered" not in err
    assert "belongs to the catalog" in err and "but the catalog opened is" in err
