"""Versioned schema migrations: a catalog created by an older Haina opens, data intact."""
from __future__ import annotations

import ast
import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from catalog.sql import backend as sql
from catalog.sql import tables
from catalog.store import SourceRecord, open_catalog

UTC = dt.UTC
T0 = dt.datetime(2025, 7, 1, tzinfo=UTC)


def _engine(url: str) -> sa.Engine:
    return sql._ENGINES[sa.make_url(url).drivername](sa.make_url(url))


def _migrate(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(sql.MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _haina_01_catalog(url: str, *, versioned: bool) -> None:
    """The schema Haina 0.1 made (revision 0001), holding one committed version."""
    engine = _engine(url)
    _migrate(engine, "0001")
    with engine.begin() as conn:
        if not versioned:  # 0.1 made its tables directly, with no alembic_version table
            conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.execute(sa.text("INSERT INTO datasets (name, title, licence, created_at) "
                             "VALUES ('old', 'Old dataset', 'CC0-1.0', :t)"), {"t": T0})
        conn.execute(sa.text(
            "INSERT INTO runs (run_id, dataset, status, parameters, host, pid, started_at, "
            "rows_in, rows_out, rows_dropped, rows_rejected) VALUES ('r1', 'old', 'succeeded', "
            "'{}', 'h', 1, :t, 10, 10, 0, 0)"), {"t": T0})
        conn.execute(sa.text(
            "INSERT INTO versions (version_id, dataset, run_id, state, created_at, path, "
            "manifest_sha256, rows, bytes, file_count) VALUES ('v1', 'old', 'r1', 'draft', :t, "
            "'/w/v1', :m, 10, 100, 1)"), {"t": T0, "m": "a" * 64})
        conn.execute(sa.text(
            "INSERT INTO files (version_id, path, sha256, rows, bytes, partition, source_sha256) "
            "VALUES ('v1', 'data/a.parquet', :s, 10, 100, 'date=2025-07-01', :s)"),
            {"s": "b" * 64})
        conn.execute(sa.text("INSERT INTO sources (run_id, uri, sha256, size, kind) VALUES "
                             "('r1', '/d/roms.nc', :s, 100, 'netcdf_grid')"), {"s": "c" * 64})
    engine.dispose()


@pytest.mark.parametrize("versioned", [True, False], ids=["alembic-0001", "pre-alembic"])
def test_an_older_catalog_opens_and_keeps_its_data(catalog_url, versioned):
    _haina_01_catalog(catalog_url, versioned=versioned)
    catalog = open_catalog(catalog_url)
    try:
        (version,) = catalog.versions("old")
        (file,) = catalog.files(version.version_id)
        assert (version.version_id, version.rows, file.path) == ("v1", 10, "data/a.parquet")
        assert file.content_sha256 is None  # the column 0.2 added, empty for old files
        with catalog._engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() \
                == "0005"
            assert conn.execute(sa.text("SELECT version FROM schema_info")).scalar() == 5
    finally:
        catalog.close()


def test_migrations_build_exactly_the_tables_the_code_defines(catalog_url):
    """A changed table without a revision would make new and upgraded catalogs differ."""
    catalog = open_catalog(catalog_url)
    try:
        inspector = sa.inspect(catalog._engine)
        in_db = set(inspector.get_table_names()) - {"alembic_version"}
        assert in_db == set(tables.metadata.tables)
        for name, table in tables.metadata.tables.items():
            columns = {c["name"] for c in inspector.get_columns(name)}
            assert columns == set(table.columns.keys()), name
            indexes = {i["name"] for i in inspector.get_indexes(name)
                       if i["name"] and not i["name"].startswith(("sqlite_", f"{name}_"))}
            assert indexes == {i.name for i in table.indexes}, name
            key = inspector.get_pk_constraint(name)["constrained_columns"]
            assert sorted(key) == sorted(c.name for c in table.primary_key), name
    finally:
        catalog.close()


def test_revisions_are_frozen_snapshots():
    """A revision that imported the live tables would build a different schema once they
    change: every revision writes its operations out and imports nothing of Haina."""
    for path in sorted((sql.MIGRATIONS / "versions").glob("0*.py")):
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] == "catalog"}, path.name


def test_an_older_catalog_takes_two_entries_on_one_file(catalog_url):
    """Revision 0005: sources are unique per (run, recipe entry, URI); an old run's source is
    entry 0, and a new run may record two entries (u grid, v grid) reading one file."""
    _haina_01_catalog(catalog_url, versioned=True)
    catalog = open_catalog(catalog_url)
    try:
        (old,) = catalog.sources("r1")
        assert (old.uri, old.source_index, old.key) == ("/d/roms.nc", 0, "/d/roms.nc")
        run = catalog.run("r1")
        new = dataclasses.replace(run, run_id="r2", status="running")
        both = [SourceRecord("r2", "/d/roms.nc", "c" * 64, 100, "netcdf_grid", source_index=i)
                for i in (0, 1)]
        catalog.begin_run(new, both)
        catalog.record_source_counts("r2", {
            s.key: {"uri": s.uri, "source_index": s.source_index, "rows_in": 5 + s.source_index,
                    "rows_out": 5 + s.source_index, "rows_dropped": 0, "rows_quarantined": 0}
            for s in both})
        got = catalog.sources("r2")
        assert [(s.source_index, s.key, s.rows_in) for s in got] == [
            (0, "/d/roms.nc", 5), (1, "/d/roms.nc#1", 6)]
    finally:
        catalog.close()
