"""The SQL catalog backend (SQLAlchemy 2.x Core): SQLite files and PostgreSQL (psycopg 3).

Concurrency: the dataset lock is one row per dataset in ``locks``, with its holder and lease
(:mod:`catalog.lease`). Taking it is one transaction: read the row ``FOR UPDATE``; none, an
``INSERT ... ON CONFLICT DO NOTHING`` whose RETURNING row says who won (PostgreSQL blocks the
second insert until the first commits; SQLite serialises writers); a stale holder, a takeover
that marks its run abandoned in the same transaction. On SQLite every transaction starts with
``BEGIN IMMEDIATE`` so that read-then-write transactions take the write lock up front and wait
(``timeout``) instead of failing with "database is locked" when two processes upgrade at once.
Leases are set and judged by the database's clock on PostgreSQL, so hosts whose clocks differ
still agree on when a lease ran out.

Engines, lost connections and "is there a catalog at all" live in :mod:`catalog.sql.engines`;
operations that are safe to repeat are marked ``@retry_once`` here.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine, make_url

from catalog import lease as lease_mod
from catalog.audit import log as audit_chain
from catalog.exceptions import (
    CatalogConnectionError,
    CatalogUnavailableError,
    DatasetLockedError,
    DatasetNotFoundError,
    DuplicateError,
    InvalidRecordError,
    LockNotHeldError,
    RunNotFoundError,
    RunStateError,
    VersionNotFoundError,
)
from catalog.jsonable import jsonable
from catalog.releases import semver as semver_mod
from catalog.sql import audit as audit_rows
from catalog.sql import lineage as lineage_rows
from catalog.sql import releases as release_rows
from catalog.sql.engines import (  # noqa: F401 - _ENGINES and the timeout are part of the API
    _ENGINES,
    SQLITE_BUSY_TIMEOUT,
    catalog_identity,
    open_error,
    query_value,
    raise_unavailable,
    refuse_writes,
    require_catalog,
    retry_once,
)
from catalog.sql.inserts import upsert_insert
from catalog.sql.tables import (  # noqa: F401 - the tables are part of the backend's API
    SOURCE_COUNTS,
    UtcDateTime,
    audit_head_t,
    audit_log_t,
    datasets_t,
    files_t,
    lineage_events_t,
    locks_t,
    metadata,
    releases_t,
    runs_t,
    schema_info_t,
    sources_t,
    transitions_t,
    versions_t,
)
from catalog.store import (
    COUNT_FIELDS,
    TERMINAL_STATUSES,
    UTC,
    AuditEntry,
    Catalog,
    ChainReader,
    DatasetRecord,
    FileRecord,
    LineageEventRecord,
    LockHolder,
    ReleaseRecord,
    RunRecord,
    SourceRecord,
    SourceUse,
    T,
    TransitionRecord,
    VersionMove,
    VersionRecord,
    check_status,
    check_totals,
    default_actor,
    process_is_alive,
    utcnow,
)

#: the Alembic revisions that build and upgrade the tables of :mod:`catalog.sql.tables`
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: how often a waiting ``acquire_lock`` polls the lock row
LOCK_POLL_SECONDS = 0.25


def create_tables(engine: Engine) -> None:
    """Bring the catalog's schema to the current revision (Alembic, ``catalog/sql/migrations``).

    A new database gets every revision; one created by an older Haina gets the missing ones;
    one created before migrations were versioned (Haina 0.1 made its tables directly) is stamped
    as revision 0001 first. Runs in one transaction, so a failed upgrade changes nothing.
    """
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


def require_current_schema(engine: Engine, where: str) -> None:
    """A read-only open's check that the catalog is at this Haina's revision: a reader never
    migrates, so an older catalog is refused with the command that upgrades it."""
    from alembic.script import ScriptDirectory  # alembic: as in create_tables

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engine.connect() as conn:
        found = None
        if sa.inspect(conn).has_table("alembic_version"):
            found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    if found != head:
        raise CatalogConnectionError(
            f"the catalog's schema is at revision {found or 'none (Haina 0.1)'}, this Haina "
            f"reads revision {head}; read-only commands do not upgrade it", where=where,
            fix="upgrade it once with a command that writes to it, e.g. `haina run RECIPE` or "
                "`haina release NAME@latest-draft` (back it up first if an older Haina still "
                "uses it), then run this command again")


# --- row <-> record --------------------------------------------------------------------------
def _row(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _records(cls: type, rows: Any) -> list[Any]:
    return [cls(**row._mapping) for row in rows]


def _db_now(conn: Connection) -> dt.datetime:
    """The database's clock where there is a server (PostgreSQL), so that leases written and
    judged by hosts with different clocks agree; SQLite files are shared by one host's clock."""
    if conn.dialect.name == "postgresql":
        return conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one().astimezone(UTC)
    return utcnow()


def _lock_holder(row: Any) -> LockHolder:
    return LockHolder(row.dataset, row.run_id, row.host, row.pid, row.acquired_at,
                      row.lease_expires_at)


class SqlCatalog(Catalog):
    """The catalog in a SQL database reached through a SQLAlchemy engine."""

    def __init__(self, engine: Engine, identity: str | None = None, read_only: bool = False):
        self._engine = engine
        self._read_only = read_only
        if read_only and not sa.event.contains(engine, "handle_error", refuse_writes):
            sa.event.listen(engine, "handle_error", refuse_writes)  # before raise_unavailable
        self.identity = identity or catalog_identity(
            engine.url.render_as_string(hide_password=True))
        if not sa.event.contains(engine, "handle_error", raise_unavailable):
            sa.event.listen(engine, "handle_error", raise_unavailable)
        audit_rows.listen(engine)
        self.actor = default_actor()
        #: where the audit head is mirrored: by default next to a SQLite catalog.db (the
        #: warehouse's), none for PostgreSQL until a caller that knows the warehouse sets it
        self._head_file = _default_head_file(engine)
        #: called inside every mutation's transaction, after its audit entry, as
        #: f(conn, action, target, details, actor): their writes commit or roll back with it
        self.listeners: list[Callable[..., None]] = []

    def _mutated(self, conn: Connection, action: str, target: str, details: Mapping) -> None:
        """Audit the mutation (and tell the listeners) inside its transaction."""
        audit_rows.append(conn, action, target, details, self.actor, self._head_file,
                          self.identity)
        for listener in self.listeners:
            listener(conn, action, target, dict(details), self.actor)

    @classmethod
    def from_url(cls, url: str, *, create: bool = True, read_only: bool = False) -> SqlCatalog:
        """Open the catalog at ``url``. ``read_only``: nothing is created and no migration
        runs (a catalog that needs an upgrade is an error naming the fix); a SQLite file is
        opened ``mode=ro``, so that SQLite itself refuses writes."""
        parsed = make_url(url)
        factory = _ENGINES.get(parsed.drivername)
        if factory is None:
            raise CatalogConnectionError(
                f"driver {parsed.drivername!r} is not supported", where=url,
                fix=f"use one of {', '.join(sorted(_ENGINES))}")
        where = parsed.render_as_string(hide_password=True)
        try:
            engine = factory(parsed, create and not read_only, read_only=read_only)
            catalog = cls(engine, catalog_identity(url), read_only)
            if not create or read_only:
                require_catalog(engine, where, query_value(parsed, "schema"))
            if read_only:
                require_current_schema(engine, where)
            else:
                create_tables(engine)  # an existing catalog of an older Haina is upgraded
        except (sa.exc.DatabaseError, OSError, CatalogUnavailableError) as err:
            raise open_error(parsed, where, err) from err
        return catalog

    def close(self) -> None:
        self._engine.dispose()

    # --- datasets ----------------------------------------------------------------------------
    @retry_once
    def ensure_dataset(self, rec: DatasetRecord) -> None:
        values = {**_row(rec), "created_at": rec.created_at or utcnow()}
        changed = {k: v for k, v in values.items() if k not in ("name", "created_at")}
        with self._engine.begin() as conn:
            stmt = upsert_insert(conn, datasets_t).values(**values)
            before = conn.execute(sa.select(datasets_t).where(datasets_t.c.name == rec.name)).first()
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=changed))
            if before is None:
                self._mutated(conn, "dataset.create", rec.name, jsonable(changed))
            else:
                diff = {k: v for k, v in changed.items() if getattr(before, k) != v}
                if diff:
                    self._mutated(conn, "dataset.update", rec.name, jsonable(diff))

    @retry_once
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

    @retry_once
    def run(self, run_id: str) -> RunRecord:
        with self._engine.connect() as conn:
            row = self._run_row(conn, run_id)
        if row is None:
            raise RunNotFoundError(f"run {run_id!r} is not in the catalog", where=self._where,
                                   fix="list the dataset's runs to find the right id")
        return RunRecord(**row._mapping)

    @retry_once
    def runs(self, dataset: str) -> list[RunRecord]:
        query = (sa.select(runs_t).where(runs_t.c.dataset == dataset)
                 .order_by(runs_t.c.started_at, runs_t.c.run_id))
        with self._engine.connect() as conn:
            self._require_dataset(conn, dataset)
            return _records(RunRecord, conn.execute(query))

    @retry_once
    def sources(self, run_id: str) -> list[SourceRecord]:
        self.run(run_id)  # raises RunNotFoundError for an unknown id
        query = (sa.select(sources_t).where(sources_t.c.run_id == run_id)
                 .order_by(sources_t.c.uri, sources_t.c.source_index))
        with self._engine.connect() as conn:
            return _records(SourceRecord, conn.execute(query))

    @retry_once
    def record_source_counts(self, run_id: str, counts: Mapping[str, Mapping[str, int]]) -> None:
        with self._engine.begin() as conn:
            for key, rec in counts.items():
                values = {c: int(rec[c]) for c in SOURCE_COUNTS}
                conn.execute(sources_t.update().where(
                    sources_t.c.run_id == run_id, sources_t.c.uri == rec.get("uri", key),
                    sources_t.c.source_index == rec.get("source_index", 0)).values(**values))
            self._mutated(conn, "run.source_counts", run_id, {"sources": len(counts)})

    @retry_once
    def abandon_stale_runs(self, dataset: str,
                           is_alive: Callable[[RunRecord], bool] = process_is_alive) -> list[str]:
        running = [r for r in self.runs(dataset) if r.status == "running"]
        if not running:
            return []
        holder, now = self.lock_holder(dataset), self._now()
        dead = {}
        for run in running:
            if holder is not None and holder.run_id == run.run_id:  # judged by lease and pid
                reason = lease_mod.stale_reason(holder, run, now, is_alive)
            else:
                reason = None if is_alive(run) else (f"its process (pid {run.pid} on "
                                                     f"{run.host}) is gone")
            if reason is not None:
                dead[run.run_id] = reason
        with self._engine.begin() as conn:
            for run_id, reason in dead.items():
                self._abandon(conn, run_id, f"abandoned: {reason} (checked by a later run)")
            conn.execute(locks_t.delete().where(locks_t.c.run_id.in_(list(dead))))
            for run_id, reason in dead.items():
                self._mutated(conn, "run.abandon", run_id, {"dataset": dataset,
                                                            "error": f"abandoned: {reason}"})
        return list(dead)

    def _abandon(self, conn: Connection, run_id: str, error: str) -> bool:
        """Mark a running run abandoned; False when it is not running (finished meanwhile)."""
        # the status condition keeps a run that finished meanwhile from being overwritten
        done = conn.execute(runs_t.update()
                            .where(runs_t.c.run_id == run_id, runs_t.c.status == "running")
                            .values(status="abandoned", ended_at=utcnow(), error=error)
                            .returning(runs_t.c.run_id)).first()
        return done is not None

    # --- versions ----------------------------------------------------------------------------
    def commit_version(self, version: VersionRecord, files: Sequence[FileRecord]) -> None:
        check_totals(version, files)
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

    @retry_once
    def versions(self, dataset: str) -> list[VersionRecord]:
        query = (sa.select(versions_t).where(versions_t.c.dataset == dataset)
                 .order_by(versions_t.c.created_at, versions_t.c.version_id))
        with self._engine.connect() as conn:
            self._require_dataset(conn, dataset)
            return _records(VersionRecord, conn.execute(query))

    @retry_once
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

    @retry_once
    def _released_as(self, dataset: str, ref: str) -> str | None:
        """The version id released as semver ``ref`` (``1.2.0`` or ``v1.2.0``), if any."""
        if not semver_mod.is_semver(ref):
            return None
        release = str(semver_mod.parse(ref))  # "v1.2.0" is stored as "1.2.0"
        query = sa.select(releases_t.c.version_id).where(releases_t.c.dataset == dataset,
                                                         releases_t.c.semver == release)
        with self._engine.connect() as conn:
            return conn.execute(query).scalar()

    @retry_once
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
    def _now(self) -> dt.datetime:
        with self._engine.connect() as conn:
            return _db_now(conn)

    def acquire_lock(self, dataset: str, run_id: str, *, wait_seconds: float = 0,
                     is_alive: Callable[[RunRecord], bool] = process_is_alive) -> None:
        deadline = time.monotonic() + wait_seconds
        lease = lease_mod.lease_seconds()
        while True:
            try:
                holder = self._try_lock(dataset, run_id, lease, is_alive)
            except _LockRace:
                continue
            if holder is None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._locked_error(holder)
            time.sleep(min(LOCK_POLL_SECONDS, remaining))

    @retry_once  # re-entrant: a retry after a lock taken but not acknowledged finds it ours
    def _try_lock(self, dataset: str, run_id: str, lease: float,
                  is_alive: Callable[[RunRecord], bool]) -> LockHolder | None:
        """Take the lock (taking over a stale holder) and return None, or return the live
        holder. One transaction: the holder is judged on the row it read, locked."""
        with self._engine.begin() as conn:
            now = _db_now(conn)
            expires = now + dt.timedelta(seconds=lease)
            mine = {"dataset": dataset, "run_id": run_id, "host": socket.gethostname(),
                    "pid": os.getpid(), "acquired_at": now, "lease_expires_at": expires}
            row = self._lock_row(conn, dataset)
            if row is None:
                # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING
                inserted = conn.execute(upsert_insert(conn, locks_t).values(**mine)
                                        .on_conflict_do_nothing()
                                        .returning(locks_t.c.run_id)).first()
                if inserted is not None:
                    return None
                row = self._lock_row(conn, dataset)  # a racer's, committed while we waited
                if row is None:  # taken and released meanwhile: try again from the start
                    raise _LockRace()
            holder = _lock_holder(row)
            if holder.run_id == run_id:  # re-entrant: this run already holds it
                self._renew(conn, dataset, run_id, expires)
                return None
            run_row = self._run_row(conn, holder.run_id)
            run = RunRecord(**run_row._mapping) if run_row is not None else None
            reason = lease_mod.stale_reason(holder, run, now, is_alive)
            if reason is None:
                return holder
            self._take_over(conn, holder, reason, mine)
            return None

    def _lock_row(self, conn: Connection, dataset: str) -> Any:
        # FOR UPDATE: on PostgreSQL two takers queue on the row and the second sees the first's
        # takeover (SQLite ignores it; BEGIN IMMEDIATE already serialises the transaction)
        return conn.execute(sa.select(locks_t).where(locks_t.c.dataset == dataset)
                            .with_for_update()).first()

    def _take_over(self, conn: Connection, holder: LockHolder, reason: str,
                   mine: Mapping[str, Any]) -> None:
        conn.execute(locks_t.delete().where(locks_t.c.dataset == holder.dataset,
                                            locks_t.c.run_id == holder.run_id))
        conn.execute(locks_t.insert().values(**mine))
        error = f"abandoned: {reason}; run {mine['run_id']} took the dataset lock over"
        abandoned = self._abandon(conn, holder.run_id, error)
        details = {"from_run": holder.run_id, "host": holder.host, "pid": holder.pid,
                   "lease_expires_at": holder.lease_expires_at, "reason": reason,
                   "to_run": mine["run_id"]}
        self._mutated(conn, "lock.takeover", holder.dataset, details)
        if abandoned:
            self._mutated(conn, "run.abandon", holder.run_id,
                          {"dataset": holder.dataset, "error": error})

    def _locked_error(self, holder: LockHolder) -> DatasetLockedError:
        return lease_mod.locked_error(holder, self._now(), self._where)

    @retry_once
    def renew_lock(self, dataset: str, run_id: str, lease_seconds: float) -> dt.datetime | None:
        with self._engine.begin() as conn:
            expires = _db_now(conn) + dt.timedelta(seconds=lease_seconds)
            return expires if self._renew(conn, dataset, run_id, expires) else None

    def _renew(self, conn: Connection, dataset: str, run_id: str, expires: dt.datetime) -> bool:
        renewed = conn.execute(locks_t.update()
                               .where(locks_t.c.dataset == dataset, locks_t.c.run_id == run_id)
                               .values(lease_expires_at=expires)
                               .returning(locks_t.c.run_id)).first()
        return renewed is not None

    @retry_once
    def lock_holder(self, dataset: str) -> LockHolder | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(locks_t).where(locks_t.c.dataset == dataset)).first()
        return _lock_holder(row) if row is not None else None

    def break_lock(self, dataset: str, *, reason: str | None = None,
                   run_id: str | None = None) -> LockHolder:
        """Remove the lock (only if ``run_id`` still holds it, when given), abandon its run."""
        with self._engine.begin() as conn:
            row = self._lock_row(conn, dataset)
            if row is None or (run_id is not None and row.run_id != run_id):
                self._require_dataset(conn, dataset)
                raise LockNotHeldError(
                    f"dataset {dataset!r} is not locked" + (
                        f" by run {run_id} (now: run {row.run_id})" if row is not None else ""),
                    where=self._where, fix="nothing to unlock; `haina runs NAME` shows its runs")
            holder = _lock_holder(row)
            conn.execute(locks_t.delete().where(locks_t.c.dataset == dataset,
                                                locks_t.c.run_id == holder.run_id))
            error = f"abandoned: its lock was removed by {self.actor} (haina unlock)" + (
                f": {reason}" if reason else "")
            abandoned = self._abandon(conn, holder.run_id, error)
            self._mutated(conn, "lock.break", dataset, {
                "run_id": holder.run_id, "host": holder.host, "pid": holder.pid,
                "acquired_at": holder.acquired_at, "lease_expires_at": holder.lease_expires_at,
                "reason": reason})
            if abandoned:
                self._mutated(conn, "run.abandon", holder.run_id,
                              {"dataset": dataset, "error": error})
        return holder

    @retry_once
    def release_lock(self, dataset: str, run_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(locks_t.delete().where(locks_t.c.dataset == dataset,
                                                locks_t.c.run_id == run_id))

    # --- releases and transitions -------------------------------------------------------------
    @retry_once
    def releases(self, dataset: str) -> list[ReleaseRecord]:
        with self._engine.connect() as conn:
            found = release_rows.release_rows(conn, releases_t.c.dataset == dataset)
        return sorted(found, key=lambda r: semver_mod.parse(r.semver))

    @retry_once
    def release_of(self, version_id: str) -> ReleaseRecord | None:
        with self._engine.connect() as conn:
            found = release_rows.release_rows(conn, releases_t.c.version_id == version_id)
        return found[0] if found else None

    @retry_once
    def transitions(self, dataset: str, version_id: str | None = None) -> list[TransitionRecord]:
        with self._engine.connect() as conn:
            return release_rows.transition_rows(conn, dataset, version_id)

    def record_release(self, release: ReleaseRecord, move: VersionMove, *,
                       newest_only: bool = False) -> None:
        try:
            with self._engine.begin() as conn:
                from_state = release_rows.move(conn, move, self.actor)
                if newest_only:
                    release_rows.require_newest(conn, self._version_of(conn, move))
                release_rows.require_free(conn, release.dataset, release.semver)
                release_rows.require_previous(conn, release.dataset, release.previous,
                                              release.semver)
                release_rows.insert_release(conn, release)
                self._audit_move(conn, move, from_state)
        except sa.exc.IntegrityError as err:
            with self._engine.connect() as conn:
                raise release_rows.conflict(conn, release) from err

    def move_version(self, move: VersionMove) -> str:
        with self._engine.begin() as conn:
            from_state = release_rows.move(conn, move, self.actor)
            self._audit_move(conn, move, from_state)
        return from_state

    def _version_of(self, conn: Connection, move: VersionMove) -> VersionRecord:
        return VersionRecord(**release_rows.version_row(conn, move.version_id)._mapping)

    def _audit_move(self, conn: Connection, move: VersionMove, from_state: str) -> None:
        self._mutated(conn, f"version.{move.action}",
                      f"{move.dataset}@{move.semver or move.version_id}",
                      {"version_id": move.version_id, "from_state": from_state,
                       "to_state": move.to_state, "semver": move.semver, "reason": move.reason})

    def mark_documented(self, dataset: str, semver: str, files: Sequence[str]) -> None:
        with self._engine.begin() as conn:
            version_id = conn.execute(
                releases_t.update()
                .where(releases_t.c.dataset == dataset, releases_t.c.semver == semver)
                .values(documented_at=utcnow()).returning(releases_t.c.version_id)).scalar()
            self._mutated(conn, "release.documents", f"{dataset}@{semver}",
                          {"version_id": version_id, "files": list(files)})

    # --- lineage events ----------------------------------------------------------------------
    def add_lineage_event(self, event: LineageEventRecord, details: Mapping[str, Any]) -> None:
        with self._engine.begin() as conn:
            lineage_rows.insert_event(conn, event)
            self._mutated(conn, "lineage.emit", f"{event.dataset}@{event.version_id}", details)

    @retry_once
    def lineage_events(self, *, run_id: str | None = None, dataset: str | None = None,
                       version_id: str | None = None,
                       event_type: str | None = None) -> list[LineageEventRecord]:
        query = lineage_rows.events_query(run_id=run_id, dataset=dataset, version_id=version_id,
                                          event_type=event_type)
        with self._engine.connect() as conn:
            return _records(LineageEventRecord, conn.execute(query))

    @retry_once
    def source_uses(self, *, uris: Sequence[str] = (),
                    sha256s: Sequence[str] = ()) -> list[SourceUse]:
        with self._engine.connect() as conn:
            return lineage_rows.source_uses(conn, uris, sha256s)

    # --- audit log ---------------------------------------------------------------------------
    def record_action(self, action: str, target: str, details: Mapping[str, Any]) -> None:
        with self._engine.begin() as conn:
            self._mutated(conn, action, target, details)

    @retry_once
    def audit_entries(self, *, action: str | None = None, target: str | None = None,
                      actor: str | None = None, since: dt.datetime | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        query = audit_rows.entries_query(action=action, target=target, actor=actor,
                                         since=since, limit=limit)
        with self._engine.connect() as conn:
            found = [audit_rows.to_entry(row) for row in conn.execute(query)]
        return sorted(found, key=lambda e: e.seq)

    def read_audit_chain(self, reader: ChainReader[T]) -> T:
        # SQLite: BEGIN IMMEDIATE (BEGIN, read-only) keeps writers out; PostgreSQL: the head row
        # is read FOR SHARE, or, in a read-only session (which refuses FOR SHARE), the whole chain
        # is read in one REPEATABLE READ snapshot, which appends after it cannot change
        with self._engine.connect() as conn:
            snapshot = self._read_only and conn.dialect.name == "postgresql"
            if snapshot:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            return reader(audit_rows.read_head(conn, lock=not snapshot), audit_rows.walk(conn))

    def set_audit_head_file(self, uri: str) -> None:
        self._head_file = uri

    def audit_head_file(self) -> str | None:
        return self._head_file


def _default_head_file(engine: Engine) -> str | None:
    """SQLite catalogs live at ``<warehouse>/catalog.db``: the head file goes next to it."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return audit_chain.head_file_uri(os.path.dirname(os.path.abspath(database)))


class _LockRace(Exception):
    """The lock row vanished between a conflicting insert and the re-read (released at once)."""
