"""Fixtures shared by every test package: the real data folder and a throwaway warehouse."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


SPECS = (REPO / ".." / "shared" / "specs").resolve()


def missing(message: str):
    """A test's real input is absent: fail in CI (where it must be there), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_shared_data(subpath: str = "") -> Path:
    """The path under ``../shared/data``; fail when CI is set and it is missing, else skip."""
    path = SHARED_DATA / subpath
    if not path.exists():
        missing(f"real test data not found at {path} (expected ../shared/data next to the repo)")
    return path


def require_chromium() -> str:
    """Debian's chromium, which renders the HTML report and card (.ci/run installs it)."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    missing("chromium is not installed (apt-get install -y chromium)")


@pytest.fixture(scope="session")
def specs() -> Path:
    """The OpenLineage JSON schemas in ``../shared/specs/openlineage``."""
    path = SPECS / "openlineage"
    if not (path / "OpenLineage.json").exists():
        missing(f"OpenLineage schemas not found at {path}")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``: real public files, referenced in place, never copied."""
    return require_shared_data()


@pytest.fixture
def tmp_warehouse(tmp_path, monkeypatch) -> Path:
    """An empty warehouse folder, also exported as ``$HAINA_WAREHOUSE`` for the test."""
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    monkeypatch.setenv("HAINA_WAREHOUSE", str(warehouse))
    return warehouse


# --- catalog backends: one contract, run against SQLite and the real PostgreSQL --------------
PG_USERS = ("postgres", "root")


def psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def postgres_url() -> str | None:
    """The URL of the PostgreSQL server at 127.0.0.1:5432 (database ``test``), if reachable."""
    import sqlalchemy as sa

    for user in PG_USERS:
        url = f"postgresql://{user}@127.0.0.1:5432/test"  # open_catalog maps it to psycopg 3
        engine = sa.create_engine(psycopg_url(url), connect_args={"connect_timeout": 3})
        try:
            with engine.connect():
                return url
        except sa.exc.OperationalError:
            continue
        finally:
            engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    url = postgres_url()
    if url is None:
        message = "PostgreSQL at 127.0.0.1:5432 (database 'test') is unreachable"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def _fresh_catalog_url(kind: str, request, tmp_path):
    """A fresh, empty catalog of ``kind``: a SQLite file, a PostgreSQL schema of its own, or an
    in-memory catalog of its own name."""
    import secrets

    import sqlalchemy as sa

    if kind == "memory":
        yield f"memory://test-{secrets.token_hex(8)}"
        return
    if kind == "sqlite":
        (tmp_path / "warehouse").mkdir(exist_ok=True)
        yield f"sqlite:///{tmp_path / 'warehouse' / 'catalog.db'}"
        return
    base = request.getfixturevalue("postgres_base_url")
    schema = f"haina_test_{os.getpid()}_{secrets.token_hex(4)}"
    yield f"{base}?schema={schema}"
    engine = sa.create_engine(psycopg_url(base))
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request, tmp_path):
    """A fresh, empty catalog URL per test: a SQLite file, or a PostgreSQL schema of its own.
    The catalogs other processes can open too (multi-process tests, the CLI, pipelines)."""
    yield from _fresh_catalog_url(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        "memory"])
def any_catalog_url(request, tmp_path):
    """Every catalog backend, the in-memory one included: for suites that stay in one
    process (the contract suite and the suites of what the contract stores)."""
    yield from _fresh_catalog_url(request.param, request, tmp_path)
