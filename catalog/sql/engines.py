"""Engines of the SQL catalog: SQLite files and PostgreSQL (psycopg 3), what happens when a
database connection is lost, and how a reader checks that a catalog is there.

Lost connections: PostgreSQL connections are checked before use (``pool_pre_ping``), so one
killed while idle in the pool is replaced silently. A database error that ends an operation (a
connection lost mid-transaction, a server that does not answer, SQLite locked past its timeout)
becomes :class:`~catalog.exceptions.CatalogUnavailableError` (exit 3, one line) through the
engine's ``handle_error`` hook, which covers every statement, including those of the release,
audit and lineage modules; :func:`retry_once` gives operations that are safe to repeat (reads,
lock renewals and releases, upserts) one more try on a fresh connection after a lost one.
"""
from __future__ import annotations

import functools
import os
import re
import sqlite3
import urllib.parse
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from catalog.exceptions import (
    CatalogConnectionError,
    CatalogNotFoundError,
    CatalogReadOnlyError,
    CatalogUnavailableError,
    MissingDependencyError,
)

#: how long a writer waits for another process's SQLite write transaction, in seconds
SQLITE_BUSY_TIMEOUT = 30.0
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


# --- engines ---------------------------------------------------------------------------------
#: PostgreSQL ``application_name`` of catalog connections unless the URL sets one (operators
#: find Haina's sessions in pg_stat_activity by it)
APPLICATION_NAME = "haina"


def _sqlite_engine(url: sa.URL, create: bool = True, read_only: bool = False) -> Engine:
    if create and not read_only and url.database and url.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
    if read_only:
        engine = sa.create_engine(url, creator=_read_only_sqlite(url.database or ""))
    else:
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # a reader asks for no write lock; its deferred transaction's shared lock still keeps
        # what it reads one state (writers cannot commit meanwhile)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def query_value(url: sa.URL, key: str) -> str | None:
    """The URL's ``?key=value`` (the last one when given twice), or None."""
    value = url.query.get(key)
    if isinstance(value, tuple):
        return value[-1] if value else None
    return value


def _read_only_sqlite(path: str) -> Callable[[], sqlite3.Connection]:
    """Connections that SQLite itself refuses to write through (``mode=ro``): a read-only
    command that tried to write would fail loudly, and no file is ever created."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    return lambda: sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT,
                                   check_same_thread=False)


def _postgres_engine(url: sa.URL, create: bool = True, read_only: bool = False) -> Engine:
    """``read_only`` creates no schema, and every session starts with
    ``default_transaction_read_only``: the server itself refuses a write."""
    schema = query_value(url, "schema")
    url = url.set(drivername="postgresql+psycopg").difference_update_query(["schema"])
    try:
        import psycopg  # noqa: F401  (imported only to give a helpful error)
    except ImportError as err:
        raise MissingDependencyError(
            "PostgreSQL catalogs need the psycopg 3 driver", where=url.render_as_string(),
            fix="pip install 'haina[postgres]'") from err
    connect_args: dict[str, Any] = {}
    if "application_name" not in url.query:
        connect_args["application_name"] = APPLICATION_NAME
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise CatalogConnectionError(
                f"schema name {schema!r} is not a plain SQL identifier",
                where="catalog URL ?schema=",
                fix="use letters, digits and underscores, starting with a letter")
        connect_args["options"] = f"-csearch_path={schema}"
    if read_only:
        options = connect_args.get("options", "")
        connect_args["options"] = f"{options} -cdefault_transaction_read_only=on".strip()
    # pre-ping: a pooled connection the server dropped while idle is replaced, not handed out
    engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    if schema is not None and create and not read_only:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return engine


#: URL drivername -> engine factory
_ENGINES: dict[str, Callable[..., Engine]] = {
    "sqlite": _sqlite_engine,
    "sqlite+pysqlite": _sqlite_engine,
    "postgresql": _postgres_engine,
    "postgres": _postgres_engine,
    "postgresql+psycopg": _postgres_engine,
}


def catalog_identity(url: str) -> str:
    """The catalog ``url`` names, without password or connection options: ``sqlite:////abs/
    catalog.db`` or ``postgresql://user@host:port/db[?schema=s]``. A warehouse records it (in
    ``_audit/head.json``) so that a reader pointed at another catalog is told which one."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database or ""
        path = database if database == ":memory:" else os.path.abspath(database)
        return f"sqlite:///{path}"
    schema = query_value(parsed, "schema")
    port = f":{parsed.port}" if parsed.port else ""
    user = f"{parsed.username}@" if parsed.username else ""
    base = f"postgresql://{user}{parsed.host or ''}{port}/{parsed.database or ''}"
    return f"{base}?schema={schema}" if schema else base


#: what SQLite (``mode=ro``) and PostgreSQL (``default_transaction_read_only``) say to a write
_READ_ONLY_REFUSALS = ("attempt to write a readonly database", "read-only transaction")


def refuse_writes(ctx: sa.engine.ExceptionContext) -> None:
    """``handle_error`` hook of a read-only catalog: the database's refusal of a write becomes
    one named error, :class:`CatalogReadOnlyError`, on every backend alike."""
    reason = " ".join(str(ctx.original_exception).split())[:300]
    if any(refusal in reason for refusal in _READ_ONLY_REFUSALS):
        url = ctx.engine.url.render_as_string(hide_password=True) if ctx.engine else "catalog"
        raise CatalogReadOnlyError(
            f"this catalog was opened read-only; nothing was changed ({reason})", where=url,
            fix="open it with open_catalog(url) to write")


def raise_unavailable(ctx: sa.engine.ExceptionContext) -> None:
    """``handle_error`` hook: a lost connection or an unanswered database becomes one named
    error (the connection is still invalidated by SQLAlchemy: the pool opens a new one)."""
    if ctx.is_pre_ping:  # the pool's own liveness check: it reconnects by itself
        return
    if not (ctx.is_disconnect or isinstance(ctx.sqlalchemy_exception, sa.exc.OperationalError)):
        return
    reason = str(getattr(ctx.original_exception, "args", [""])[0] or ctx.original_exception)
    reason = " ".join(reason.split())[:300]
    url = ctx.engine.url.render_as_string(hide_password=True) if ctx.engine else "catalog"
    if ctx.is_disconnect:
        message = f"the connection to the catalog database was lost ({reason})"
    else:
        message = f"the catalog database failed the operation ({reason})"
    raise CatalogUnavailableError(
        message, disconnect=bool(ctx.is_disconnect), where=url,
        fix="check that the database server is up and reachable, then run again (runs and "
            "releases are safe to repeat)")


def open_error(url: sa.URL, where: str, err: Exception) -> CatalogConnectionError:
    """The one-line reason a catalog database could not be opened, and what to do about it."""
    reason = err.reason if isinstance(err, CatalogUnavailableError) else \
        " ".join(str(getattr(err, "orig", None) or err).split())
    if url.get_backend_name() != "sqlite":
        return CatalogConnectionError(
            f"cannot open the catalog database ({reason})", where=where,
            fix="check that the server is running and the URL's host, port, user and database "
                "are right")
    path = url.database or ":memory:"
    if "file is not a database" in reason:
        return CatalogConnectionError(
            f"catalog file {path} is not an SQLite database ({reason}).",
            fix="point --catalog, $HAINA_CATALOG_URL or the recipe's catalog: at a Haina "
                "catalog (or at a new file), or move this file out of the way")
    return CatalogConnectionError(
        f"cannot open or create the SQLite catalog {path} ({reason}).",
        fix="check that the file's folder exists and is writable, or point --catalog at a "
            "writable place")


def retry_once(method: Callable) -> Callable:
    """Operations safe to repeat get one more try on a fresh connection after a lost one."""
    @functools.wraps(method)
    def retrying(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except CatalogUnavailableError as err:
            if not err.disconnect:
                raise
        return method(self, *args, **kwargs)
    return retrying


def require_catalog(engine: Engine, where: str, schema: str | None) -> None:
    """A reader's check that a catalog is there, creating nothing (no file, no schema)."""
    fix = ("pass --catalog URL (or set $HAINA_CATALOG_URL) to the catalog your runs use, or "
           "--warehouse (or $HAINA_WAREHOUSE) to the folder a `haina run` wrote; nothing was "
           "created")
    database = engine.url.database
    if engine.dialect.name == "sqlite" and (
            not database or database == ":memory:" or not os.path.isfile(database)):
        raise CatalogNotFoundError(f"no catalog at {database or ':memory:'}", where=where, fix=fix)
    with engine.connect() as conn:
        found = sa.inspect(conn).has_table("datasets", schema=schema)
    if not found:
        raise CatalogNotFoundError("no Haina catalog tables there", where=where, fix=fix)
