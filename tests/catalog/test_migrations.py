"""Versioned schema migrations: a catalog created by an older Haina opens, data intact."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from catalog import sql
from catalog.store import open_catalog

UTC = dt.timezone.utc
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
                == "0004"
            assert conn.execute(sa.text("SELECT version FROM schema_info")).scalar() == 4
    finally:
        catalog.close()


def test_migrations_build_exactly_the_tables_the_code_defines(catalog_url):
    """A changed table without a revision would make new and upgraded catalogs differ."""
    catalog = open_catalog(catalog_url)
    try:
        inspector = sa.inspect(catalog._engine)
        for name, table in sql.metadata.tables.items():
            in_db = {c["name"] for c in inspector.get_columns(name)}
            assert in_db == set(table.columns.keys()), name
    finally:
        catalog.close()
