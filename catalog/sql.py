"""The SQL catalog backend (SQLAlchemy 2.x Core): SQLite files and PostgreSQL (psycopg 3).

Concurrency: the dataset lock is one row per dataset in ``locks``; taking it is an
``INSERT ... ON CONFLICT DO NOTHING`` whose row count says who won, which both engines make atomic
across processes (PostgreSQL blocks the second insert until the first commits; SQLite serialises
writers). On SQLite every transaction starts with ``BEGIN IMMEDIATE`` so that read-then-write
transactions take the write lock up front and wait (``timeout``) instead of failing with
"database is locked" when two processes upgrade at once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import os
import re
import socket
import time
from pathlib import Path
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url

from catalog.exceptions import (
    CatalogConnectionError,
    DatasetLockedError,
    DatasetNotFoundError,
    DuplicateError,
    InvalidRecordError,
    MissingDependencyError,
    RunNotFoundError,
    RunStateError,
    VersionNotFoundError,
)
from catalog.store import (
    COUNT_FIELDS,
    TERMINAL_STATUSES,
    UTC,
    Catalog,
    default_actor,
    DatasetRecord,
    FileRecord,
    RunRecord,
    SourceRecord,
    VersionRecord,
    check_status,
    process_is_alive,
    utcnow,
)

#: bumped by every change of the tables below; a migration tool (Alembic) takes over from here
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: how long a writer waits for another process's SQLite write transaction, in seconds
SQLITE_BUSY_TIMEOUT = 30.0
#: how often a waiting ``acquire_lock`` polls the lock row
LOCK_POLL_SECONDS = 0.25


class UtcDateTime(sa.TypeDecorator):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()
_text = sa.Text
#: a source file's row accounting in its run
SOURCE_COUNTS = ("rows_in", "rows_out", "rows_dropped", "rows_quarantined")
schema_info = sa.Table("schema_info", metadata, sa.Column("version", sa.Integer, nullable=False))
datasets_t = sa.Table(
    "datasets", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    *(sa.Column(c, _text) for c in (
        "title", "description", "licence", "owner_name", "owner_email", "attribution",
        "classification")),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
runs_t = sa.Table(
    "runs", metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), nullable=False),
    sa.Column("version_id", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("recipe_path", _text),
    sa.Column("recipe_sha256", sa.String(64)),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("code_version", _text),
    sa.Column("runner", _text),
    sa.Column("host", _text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),
    *(sa.Column(c, sa.BigInteger, nullable=False) for c in COUNT_FIELDS),
    sa.Column("error", _text),
    sa.Column("report_path", _text),
    sa.Index("ix_runs_dataset_started", "dataset", "started_at"),
)
sources_t = sa.Table(
    "sources", metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("uri", _text, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    *(sa.Column(c, sa.BigInteger) for c in SOURCE_COUNTS),
)
versions_t = sa.Table(
    "versions", metadata,
    sa.Column("version_id", sa.String(64), primary_key=True),
    sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), nullable=False),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("path", _text, nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Index("ix_versions_dataset_created", "dataset", "created_at"),
)
files_t = sa.Table(
    "files", metadata,
    sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"),
              primary_key=True),
    sa.Column("path", _text, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("partition", _text, nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("time_min", UtcDateTime),
    sa.Column("time_max", UtcDateTime),
    sa.Column("content_sha256", sa.String(64)),
)
locks_t = sa.Table(
    "locks", metadata,
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("host", _text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
)

#: dialect name -> its INSERT construct that supports ``on_conflict_do_*``
_INSERTS: dict[str, Callable[[sa.Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}
_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+([-+].*)?$")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


# --- engines ---------------------------------------------------------------------------------
def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: sa.URL) -> Engine:
    schema = url.query.get("schema")
    url = url.set(drivername="postgresql+psycopg").difference_update_query(["schema"])
    try:
        import psycopg  # noqa: F401  (imported only to give a helpful error)
    except ImportError as err:
        raise MissingDependencyError(
            "PostgreSQL catalogs need the psycopg 3 driver", where=url.render_as_string(),
            fix="pip install 'haina[postgres]'") from err
    if schema is None:
        return sa.create_engine(url)
    if not _SCHEMA_NAME.match(schema):
        raise CatalogConnectionError(
            f"schema name {schema!r} is not a plain SQL identifier", where="catalog URL ?schema=",
            fix="use letters, digits and underscores, starting with a letter")
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return engine


def _open_error(url: sa.URL, err: Exception) -> CatalogConnectionError:
    """The one-line reason a catalog database could not be opened, and what to do about it."""
    reason = " ".join(str(getattr(err, "orig", None) or err).split())
    if url.get_backend_name() != "sqlite":
        return CatalogConnectionError(
            f"cannot open the catalog database ({reason})", where=url.render_as_string(),
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


#: URL drivername -> engine factory
_ENGINES: dict[str, Callable[[sa.URL], Engine]] = {
    "sqlite": _sqlite_engine,
    "sqlite+pysqlite": _sqlite_engine,
    "postgresql": _postgres_engine,
    "postgres": _postgres_engine,
    "postgresql+psycopg": _postgres_engine,
}


#: modules that define more tables on ``metadata`` (releases, audit log, lineage events); each is
#: imported before tables are created, so one ``create_all`` sees the whole schema
TABLE_MODULES: tuple[str, ...] = ("catalog.release", "catalog.audit", "catalog.lineage")


def _import_table_modules() -> None:
    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a missing dependency inside the module is a real error
                raise


def create_tables(engine: Engine) -> None:
    """Bring the catalog's schema to the current revision (Alembic, ``catalog/migrations``).

    A new database gets every revision; one created by an older Haina gets the missing ones;
    one created before migrations were versioned (Haina 0.1 made its tables directly) is stamped
    as revision 0001 first. Runs in one transaction, so a failed upgrade changes nothing.
    """
    from alembic import command
    from alembic.config import Config

    _import_table_modules()
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        if conn.dialect.name == "postgresql":  # two first opens at once: one migrates, one waits
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4848494100)")
        inspector = sa.inspect(conn)
        if inspector.has_table("datasets") and not inspector.has_table("alembic_version"):
            command.stamp(config, "0001")
        command.upgrade(config, "head")


# --- row <-> record --------------------------------------------------------------------------
def _jsonable(values: Mapping) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in values.items()}


def _row(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _records(cls: type, rows: Any) -> list[Any]:
    return [cls(**row._mapping) for row in rows]


@dataclasses.dataclass(frozen=True)
class _Holder:
    run_id: str
    host: str
    pid: int
    acquired_at: dt.datetime


class SqlCatalog(Catalog):
    """The catalog in a SQL database reached through a SQLAlchemy engine."""

    def __init__(self, engine: Engine):
        self._engine = engine
        #: who performs mutations (CLI --actor, $HAINA_ACTOR, or the login name); never empty
        self.actor: str = default_actor()
        #: called inside every mutation's transaction as f(conn, action, target, details, actor),
        #: so a listener's writes (the audit log) commit or roll back with the change itself
        self.listeners: list[Callable[..., None]] = []

    def _mutated(self, conn: Connection, action: str, target: str, details: Mapping) -> None:
        for listener in self.listeners:
            listener(conn, action, target, dict(details), self.actor)

    @classmethod
    def from_url(cls, url: str) -> SqlCatalog:
        parsed = make_url(url)
        factory = _ENGINES.get(parsed.drivername)
        if factory is None:
            raise CatalogConnectionError(
                f"driver {parsed.drivername!r} is not supported", where=url,
                fix=f"use one of {', '.join(sorted(_ENGINES))}")
        try:
            engine = factory(parsed)
            create_tables(engine)
        except (sa.exc.DatabaseError, OSError) as err:
            raise _open_error(parsed, err) from err
        return cls(engine)

    def close(self) -> None:
        self._engine.dispose()

    # --- datasets ----------------------------------------------------------------------------
    def ensure_dataset(self, rec: DatasetRecord) -> None:
        values = {**_row(rec), "created_at": rec.created_at or utcnow()}
        stmt = _INSERTS[self._engine.dialect.name](datasets_t).values(**values)
        changed = {k: v for k, v in values.items() if k not in ("name", "created_at")}
        with self._engine.begin() as conn:
            before = conn.execute(sa.select(datasets_t).where(datasets_t.c.name == rec.name)).first()
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=changed))
            if before is None:
                self._mutated(conn, "dataset.create", rec.name, _jsonable(changed))
            else:
                diff = {k: v for k, v in changed.items() if getattr(before, k) != v}
                if diff:
                    self._mutated(conn, "dataset.update", rec.name, _jsonable(diff))

    def datasets(self) -> list[DatasetRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(datasets_t).order_by(datasets_t.c.name))
            return _records(DatasetRecord, rows)

    def _require_dataset(self, conn: Connection, name: str) -> None:
        found = conn.execute(sa.select(datasets_t.c.name).where(datasets_t.c.name == name))
        if found.first() is None:
            known = conn.execute(sa.select(datasets_t.c.name)).scalars().all()
            raise DatasetNotFoundError(
                f"dataset {name!r} is not in the catalog (known: {', '.join(known) or 'none'})",
                where=self._where, fix="check the dataset name, or run its recipe first")

    @property
    def _where(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    # --- runs --------------------------------------------------------------------------------
    def begin_run(self, run: RunRecord, sources: Sequence[SourceRecord]) -> None:
        bad = [s.run_id for s in sources if s.run_id != run.run_id]
        if bad:
            raise InvalidRecordError(
                f"sources carry run ids {sorted(set(bad))} instead of {run.run_id!r}",
                where="begin_run", fix="build the SourceRecords with the run's id")
        values = _row(dataclasses.replace(run, status="running", ended_at=None))
        with self._engine.begin() as conn:
            self._require_dataset(conn, run.dataset)
            if self._run_row(conn, run.run_id) is not None:
                raise DuplicateError(f"run id {run.run_id!r} already exists", where=self._where,
                                     fix="generate a fresh id with catalog.store.new_run_id()")
            conn.execute(runs_t.insert().values(**values))
            if sources:
                conn.execute(sources_t.insert(), [_row(s) for s in sources])
            self._mutated(conn, "run.start", run.run_id, {
                "dataset": run.dataset, "recipe_sha256": run.recipe_sha256,
                "code_version": run.code_version, "runner": run.runner,
                "sources": len(sources)})

    def finish_run(self, run_id: str, *, status: str, counts: Mapping[str, int],
                   error: str | None = None, report_path: str | None = None) -> None:
        check_status(status, where=f"finish_run({run_id})")
        if status == "running":
            raise InvalidRecordError("finish_run needs a terminal status, got 'running'",
                                     where=f"run {run_id}",
                                     fix=f"use one of {', '.join(sorted(TERMINAL_STATUSES))}")
        unknown = sorted(set(counts) - set(COUNT_FIELDS))
        if unknown:
            raise InvalidRecordError(f"unknown counters {unknown}", where=f"run {run_id}",
                                     fix=f"use only {', '.join(COUNT_FIELDS)}")
        values = {**dict(counts), "status": status, "error": error, "ended_at": utcnow()}
        if report_path is not None:
            values["report_path"] = report_path
        with self._engine.begin() as conn:
            current = self._run_row(conn, run_id)
            if current is None:
                raise RunNotFoundError(f"run {run_id!r} is not in the catalog", where=self._where,
                                       fix="call begin_run before finish_run")
            if current.status != "running":
                raise RunStateError(
                    f"run {run_id!r} is already {current.status!r}; cannot set it to {status!r}",
                    where=self._where, fix="a run's final status is set once; start a new run")
            conn.execute(runs_t.update().where(runs_t.c.run_id == run_id).values(**values))
            self._mutated(conn, "run.end", run_id, {"dataset": current.dataset, "status": status,
                                                    **dict(counts), "error": error})

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        return conn.execute(sa.select(runs_t).where(runs_t.c.run_id == run_id)).first()

    def run(self, run_id: str) -> RunRecord:
        with self._engine.connect() as conn:
            row = self._run_row(conn, run_id)
        if row is None:
            raise RunNotFoundError(f"run {run_id!r} is not in the catalog", where=self._where,
                                   fix="list the dataset's runs to find the right id")
        return RunRecord(**row._mapping)

    def runs(self, dataset: str) -> list[RunRecord]:
        query = (sa.select(runs_t).where(runs_t.c.dataset == dataset)
                 .order_by(runs_t.c.started_at, runs_t.c.run_id))
        with self._engine.connect() as conn:
            self._require_dataset(conn, dataset)
            return _records(RunRecord, conn.execute(query))

    def sources(self, run_id: str) -> list[SourceRecord]:
        self.run(run_id)  # raises RunNotFoundError for an unknown id
        query = sa.select(sources_t).where(sources_t.c.run_id == run_id).order_by(sources_t.c.uri)
        with self._engine.connect() as conn:
            return _records(SourceRecord, conn.execute(query))

    def record_source_counts(self, run_id: str, counts: Mapping[str, Mapping[str, int]]) -> None:
        with self._engine.begin() as conn:
            for uri, rec in counts.items():
                values = {c: int(rec[c]) for c in SOURCE_COUNTS}
                conn.execute(sources_t.update().where(sources_t.c.run_id == run_id,
                                                      sources_t.c.uri == uri).values(**values))
            self._mutated(conn, "run.source_counts", run_id, {"sources": len(counts)})

    def abandon_stale_runs(self, dataset: str,
                           is_alive: Callable[[RunRecord], bool] = process_is_alive) -> list[str]:
        running = [r for r in self.runs(dataset) if r.status == "running"]
        dead = [r.run_id for r in running if not is_alive(r)]
        if not dead:
            return []
        error = "abandoned: its process was gone when a later run checked"
        with self._engine.begin() as conn:
            # the status condition keeps a run that finished meanwhile from being overwritten
            conn.execute(runs_t.update()
                         .where(runs_t.c.run_id.in_(dead), runs_t.c.status == "running")
                         .values(status="abandoned", ended_at=utcnow(), error=error))
            conn.execute(locks_t.delete().where(locks_t.c.run_id.in_(dead)))
            for run_id in dead:
                self._mutated(conn, "run.abandon", run_id, {"dataset": dataset, "error": error})
        return dead

    # --- versions ----------------------------------------------------------------------------
    def commit_version(self, version: VersionRecord, files: Sequence[FileRecord]) -> None:
        _check_totals(version, files)
        with self._engine.begin() as conn:
            self._require_dataset(conn, version.dataset)
            self._require_running_run(conn, version)
            exists = conn.execute(sa.select(versions_t.c.version_id)
                                  .where(versions_t.c.version_id == version.version_id)).first()
            if exists is not None:
                raise DuplicateError(f"version {version.version_id!r} already exists",
                                     where=f"{self._where} dataset {version.dataset}",
                                     fix="generate a fresh id with catalog.store.new_version_id()")
            conn.execute(versions_t.insert().values(**_row(version)))
            if files:
                conn.execute(files_t.insert(),
                             [{**_row(f), "version_id": version.version_id} for f in files])
            conn.execute(runs_t.update().where(runs_t.c.run_id == version.run_id)
                         .values(version_id=version.version_id))
            self._mutated(conn, "version.commit", f"{version.dataset}@{version.version_id}", {
                "run_id": version.run_id, "manifest_sha256": version.manifest_sha256,
                "rows": version.rows, "files": len(files)})

    def _require_running_run(self, conn: Connection, version: VersionRecord) -> None:
        run = self._run_row(conn, version.run_id)
        if run is None or run.dataset != version.dataset:
            raise RunNotFoundError(
                f"run {version.run_id!r} of dataset {version.dataset!r} is not in the catalog",
                where=f"version {version.version_id}", fix="call begin_run before commit_version")
        if run.status != "running":
            raise RunStateError(
                f"run {version.run_id!r} is {run.status!r}, so it can no longer commit a version",
                where=f"version {version.version_id}",
                fix="start a new run; this one was finished or abandoned meanwhile")

    def versions(self, dataset: str) -> list[VersionRecord]:
        query = (sa.select(versions_t).where(versions_t.c.dataset == dataset)
                 .order_by(versions_t.c.created_at, versions_t.c.version_id))
        with self._engine.connect() as conn:
            self._require_dataset(conn, dataset)
            return _records(VersionRecord, conn.execute(query))

    def version(self, dataset: str, ref: str) -> VersionRecord:
        versions = self.versions(dataset)
        if ref == "latest" and versions:
            return versions[-1]
        wanted = self._released_as(dataset, ref) or ref
        for v in versions:
            if v.version_id == wanted:
                return v
        known = ", ".join(v.version_id for v in versions[-10:]) or "none yet"
        raise VersionNotFoundError(
            f"dataset {dataset!r} has no version {ref!r} (latest versions: {known})",
            where=self._where, fix="pass one of the listed ids, a released semver, or 'latest'")

    def _released_as(self, dataset: str, ref: str) -> str | None:
        """The version id released as semver ``ref`` (``1.2.0`` or ``v1.2.0``), if any."""
        releases = metadata.tables.get("releases")
        if releases is None or not _SEMVER.match(ref):
            return None
        query = sa.select(releases.c.version_id).where(releases.c.dataset == dataset,
                                                       releases.c.semver == ref.lstrip("v"))
        with self._engine.connect() as conn:
            return conn.execute(query).scalar()

    def files(self, version_id: str) -> list[FileRecord]:
        cols = [c for c in files_t.c if c.name != "version_id"]
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(versions_t.c.version_id)
                                 .where(versions_t.c.version_id == version_id)).first()
            if found is None:
                raise VersionNotFoundError(f"version {version_id!r} is not in the catalog",
                                           where=self._where,
                                           fix="list the dataset's versions to find the id")
            rows = conn.execute(sa.select(*cols).where(files_t.c.version_id == version_id)
                                .order_by(files_t.c.path))
            return _records(FileRecord, rows)

    # --- lock --------------------------------------------------------------------------------
    def acquire_lock(self, dataset: str, run_id: str, *, wait_seconds: float = 0,
                     is_alive: Callable[[RunRecord], bool] = process_is_alive) -> None:
        deadline = time.monotonic() + wait_seconds
        while True:
            holder = self._try_lock(dataset, run_id, is_alive)
            if holder is None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatasetLockedError(
                    f"dataset {dataset!r} is locked by run {holder.run_id} (host {holder.host}, "
                    f"pid {holder.pid}, since {holder.acquired_at.isoformat()})",
                    holder_run_id=holder.run_id, where=self._where,
                    fix="wait for that run to finish, or if its process is gone, run again: "
                        "stale locks are taken over")
            time.sleep(min(LOCK_POLL_SECONDS, remaining))

    def _try_lock(self, dataset: str, run_id: str,
                  is_alive: Callable[[RunRecord], bool]) -> _Holder | None:
        """Take the lock and return None, or return the live holder."""
        if self._insert_lock(dataset, run_id, stale_holder=None):
            return None
        holder = self._holder(dataset)
        if holder is None:  # released between our insert and our read: try again
            return self._try_lock(dataset, run_id, is_alive)
        if holder.run_id == run_id:  # re-entrant: this run already holds it
            return None
        if self._holder_alive(dataset, holder, is_alive):
            return holder
        if self._insert_lock(dataset, run_id, stale_holder=holder.run_id):
            return None
        return self._holder(dataset) or self._try_lock(dataset, run_id, is_alive)

    def _insert_lock(self, dataset: str, run_id: str, *, stale_holder: str | None) -> bool:
        row = {"dataset": dataset, "run_id": run_id, "host": socket.gethostname(),
               "pid": os.getpid(), "acquired_at": utcnow()}
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING
        stmt = (_INSERTS[self._engine.dialect.name](locks_t).values(**row)
                .on_conflict_do_nothing().returning(locks_t.c.run_id))
        with self._engine.begin() as conn:
            if stale_holder is not None:
                # only the exact stale holder is removed: of two racers taking over, the second
                # deletes nothing and its insert then conflicts with the first one's row
                conn.execute(locks_t.delete().where(locks_t.c.dataset == dataset,
                                                    locks_t.c.run_id == stale_holder))
            return conn.execute(stmt).first() is not None

    def _holder(self, dataset: str) -> _Holder | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(locks_t).where(locks_t.c.dataset == dataset)).first()
        if row is None:
            return None
        return _Holder(row.run_id, row.host, row.pid, row.acquired_at)

    def _holder_alive(self, dataset: str, holder: _Holder,
                      is_alive: Callable[[RunRecord], bool]) -> bool:
        with self._engine.connect() as conn:
            row = self._run_row(conn, holder.run_id)
        if row is None:  # the lock was taken before begin_run: judge by the lock row alone
            run = RunRecord(run_id=holder.run_id, dataset=dataset, host=holder.host,
                            pid=holder.pid, started_at=holder.acquired_at)
        else:
            run = RunRecord(**row._mapping)
        return run.status == "running" and is_alive(run)

    def release_lock(self, dataset: str, run_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(locks_t.delete().where(locks_t.c.dataset == dataset,
                                                locks_t.c.run_id == run_id))


QUARANTINE_PARTITION = "quarantine"


def _check_totals(version: VersionRecord, files: Sequence[FileRecord]) -> None:
    """A version's totals must be the sums of its data files: the catalog never stores a mismatch.

    Quarantine files (partition ``quarantine``) belong to the version and are recorded with their
    hashes, but their rows are rejects, not data, so they are not part of the version's totals.
    """
    data = [f for f in files if f.partition != QUARANTINE_PARTITION]
    totals = {"rows": sum(f.rows for f in data), "bytes": sum(f.bytes for f in data),
              "file_count": len(data)}
    wrong = {k: (getattr(version, k), v) for k, v in totals.items() if getattr(version, k) != v}
    paths = [f.path for f in files]
    if wrong or len(set(paths)) != len(paths):
        detail = ", ".join(f"{k}={got} but files sum to {want}" for k, (got, want) in wrong.items())
        raise InvalidRecordError(
            detail or "two files share one path", where=f"version {version.version_id}",
            fix="build the VersionRecord from the FileRecords it commits, with unique paths")
