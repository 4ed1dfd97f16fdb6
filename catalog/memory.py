"""The in-memory catalog backend (``memory://name``): the whole contract, in one process.

For tests and for embedding Haina where no database is wanted. It keeps the same rules as the
SQL backend (errors, lock leases and takeovers, release conflicts, the audit chain), so the
contract suite runs unchanged on it. ``memory://name`` opened twice in one process is one
catalog (like one database file); ``memory://`` alone is a new, private one. Nothing survives
the process.

Concurrency: one re-entrant lock per catalog serialises every operation, which is what SQLite's
``BEGIN IMMEDIATE`` does for the SQL backend. A mutation works on the live tables and, if it
raises, restores the copies taken when it began, so it is all or nothing like a transaction:
records are frozen, so copying the containers (not the records) is enough.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from catalog import lease as lease_mod
from catalog.audit import log as chain
from catalog.exceptions import (
    CatalogNotFoundError,
    CatalogReadOnlyError,
    DatasetNotFoundError,
    DuplicateError,
    InvalidRecordError,
    LockNotHeldError,
    RunNotFoundError,
    RunStateError,
    VersionNotFoundError,
)
from catalog.releases import semver as semver_mod
from catalog.releases import states
from catalog.store import (
    COUNT_FIELDS,
    TERMINAL_STATUSES,
    AuditEntry,
    AuditHead,
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

#: how often a waiting ``acquire_lock`` looks at the lock again
LOCK_POLL_SECONDS = 0.05
#: FileRecord fields a SQL catalog declares NOT NULL: refused here too, with a named error
_FILE_REQUIRED = ("sha256", "rows", "bytes", "partition", "source_sha256")


@dataclasses.dataclass
class _Tables:
    """Everything one in-memory catalog stores; replaced wholesale by a failed mutation."""

    datasets: dict[str, DatasetRecord] = dataclasses.field(default_factory=dict)
    runs: dict[str, RunRecord] = dataclasses.field(default_factory=dict)
    sources: dict[str, list[SourceRecord]] = dataclasses.field(default_factory=dict)
    versions: dict[str, VersionRecord] = dataclasses.field(default_factory=dict)
    files: dict[str, list[FileRecord]] = dataclasses.field(default_factory=dict)
    locks: dict[str, LockHolder] = dataclasses.field(default_factory=dict)
    releases: dict[tuple[str, str], ReleaseRecord] = dataclasses.field(default_factory=dict)
    transitions: list[TransitionRecord] = dataclasses.field(default_factory=list)
    lineage: list[LineageEventRecord] = dataclasses.field(default_factory=list)
    audit: list[AuditEntry] = dataclasses.field(default_factory=list)
    head: AuditHead | None = None

    def copy(self) -> _Tables:
        """A copy of the containers: every mutation replaces inner lists, never edits them."""
        return _Tables(**{f.name: _shallow(getattr(self, f.name))
                          for f in dataclasses.fields(self)})


def _shallow(value: Any) -> Any:
    return value.copy() if isinstance(value, (dict, list)) else value


class _Store:
    """The tables of one named catalog and the lock every operation on them takes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables = _Tables()


#: name -> store of the ``memory://name`` catalogs of this process
_STORES: dict[str, _Store] = {}
_STORES_LOCK = threading.Lock()


def _json(value: Any) -> Any:
    """What a JSON column gives back: the caller's later edits do not reach the catalog."""
    return json.loads(json.dumps(value))


def _like(pattern: str | None) -> Callable[[str], bool]:
    """``*`` is a wildcard (``version.*``); without one the match is exact."""
    if not pattern:
        return lambda value: True
    regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
    return lambda value: regex.fullmatch(value) is not None


class MemoryCatalog(Catalog):
    """A catalog in this process's memory; see the module docstring."""

    def __init__(self, store: _Store, name: str, read_only: bool = False):
        self._store = store
        self._read_only = read_only
        self._where = f"memory://{name}"
        self.identity = self._where
        self.actor = default_actor()
        self._head_file: str | None = None
        self._pending_head: AuditEntry | None = None

    @classmethod
    def from_url(cls, url: str, *, create: bool = True, read_only: bool = False) -> MemoryCatalog:
        name = url.split("://", 1)[1].strip("/")
        with _STORES_LOCK:
            store = _STORES.get(name) if name else None
            if store is None:
                if not create:
                    raise CatalogNotFoundError(
                        f"no in-memory catalog named {name!r} in this process", where=url,
                        fix="open it with create=True first, under a name (memory://NAME) "
                            "to open it again; in-memory catalogs live as long as their process")
                store = _Store()
                if name:
                    _STORES[name] = store
        return cls(store, name or f"private-{secrets.token_hex(4)}", read_only)

    @property
    def _t(self) -> _Tables:
        return self._store.tables

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Tables]:
        """All or nothing: on an exception the tables are put back as they were."""
        if self._read_only:
            raise CatalogReadOnlyError("this catalog was opened read-only; nothing was changed",
                                       where=self._where,
                                       fix="open it with open_catalog(url) to write")
        with self._store.lock:
            before = self._t.copy()
            self._pending_head = None
            try:
                yield self._t
            except BaseException:
                self._store.tables = before
                self._pending_head = None
                raise
            self._write_head_file()

    # --- audit: appended inside every mutation ---------------------------------------------
    def _mutated(self, action: str, target: str, details: Mapping[str, Any]) -> None:
        seq, prev = self._t.head or (0, chain.GENESIS)
        entry = chain.new_entry(seq + 1, prev, self.actor, action, target, details)
        self._t.audit = [*self._t.audit, entry]
        self._t.head = (entry.seq, entry.hash)
        self._pending_head = entry

    def _write_head_file(self) -> None:
        entry, self._pending_head = self._pending_head, None
        if entry is not None and self._head_file:
            chain.write_head_file(self._head_file, entry.seq, entry.hash, entry.at,
                                  catalog=chain.head_catalog_name(self._head_file, self.identity))

    # --- datasets ----------------------------------------------------------------------------
    def ensure_dataset(self, rec: DatasetRecord) -> None:
        with self._tx() as t:
            before = t.datasets.get(rec.name)
            created = before.created_at if before else (rec.created_at or utcnow())
            t.datasets[rec.name] = dataclasses.replace(rec, created_at=created)
            changed = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)
                       if f.name not in ("name", "created_at")}
            if before is None:
                self._mutated("dataset.create", rec.name, changed)
                return
            diff = {k: v for k, v in changed.items() if getattr(before, k) != v}
            if diff:
                self._mutated("dataset.update", rec.name, diff)

    def datasets(self) -> list[DatasetRecord]:
        with self._store.lock:
            return sorted(self._t.datasets.values(), key=lambda d: d.name)

    def _require_dataset(self, name: str) -> None:
        if name not in self._t.datasets:
            known = ", ".join(sorted(self._t.datasets)) or "none"
            raise DatasetNotFoundError(
                f"dataset {name!r} is not in the catalog (known: {known})", where=self.identity,
                fix="check the dataset name, or run its recipe first")

    # --- runs --------------------------------------------------------------------------------
    def begin_run(self, run: RunRecord, sources: Sequence[SourceRecord]) -> None:
        bad = [s.run_id for s in sources if s.run_id != run.run_id]
        if bad:
            raise InvalidRecordError(
                f"sources carry run ids {sorted(set(bad))} instead of {run.run_id!r}",
                where="begin_run", fix="build the SourceRecords with the run's id")
        with self._tx() as t:
            self._require_dataset(run.dataset)
            if run.run_id in t.runs:
                raise DuplicateError(f"run id {run.run_id!r} already exists", where=self.identity,
                                     fix="generate a fresh id with catalog.store.new_run_id()")
            t.runs[run.run_id] = dataclasses.replace(run, status="running", ended_at=None,
                                                     parameters=_json(dict(run.parameters)))
            t.sources[run.run_id] = list(sources)
            self._mutated("run.start", run.run_id, {
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
        with self._tx() as t:
            current = t.runs.get(run_id)
            if current is None:
                raise RunNotFoundError(f"run {run_id!r} is not in the catalog",
                                       where=self.identity, fix="call begin_run before finish_run")
            if current.status != "running":
                raise RunStateError(
                    f"run {run_id!r} is already {current.status!r}; cannot set it to {status!r}",
                    where=self.identity, fix="a run's final status is set once; start a new run")
            values: dict[str, Any] = {**{k: int(v) for k, v in counts.items()},
                                      "status": status, "error": error, "ended_at": utcnow()}
            if report_path is not None:
                values["report_path"] = report_path
            t.runs[run_id] = dataclasses.replace(current, **values)
            self._mutated("run.end", run_id, {"dataset": current.dataset, "status": status,
                                              **dict(counts), "error": error})

    def run(self, run_id: str) -> RunRecord:
        with self._store.lock:
            found = self._t.runs.get(run_id)
        if found is None:
            raise RunNotFoundError(f"run {run_id!r} is not in the catalog", where=self.identity,
                                   fix="list the dataset's runs to find the right id")
        return found

    def runs(self, dataset: str) -> list[RunRecord]:
        with self._store.lock:
            self._require_dataset(dataset)
            found = [r for r in self._t.runs.values() if r.dataset == dataset]
        return sorted(found, key=lambda r: (r.started_at, r.run_id))

    def sources(self, run_id: str) -> list[SourceRecord]:
        self.run(run_id)  # raises RunNotFoundError for an unknown id
        with self._store.lock:
            found = list(self._t.sources.get(run_id, []))
        return sorted(found, key=lambda s: (s.uri, s.source_index))

    def record_source_counts(self, run_id: str, counts: Mapping[str, Mapping[str, int]]) -> None:
        with self._tx() as t:
            by_key = {(rec.get("uri", key), rec.get("source_index", 0)): rec
                      for key, rec in counts.items()}
            t.sources[run_id] = [self._counted(s, by_key) for s in t.sources.get(run_id, [])]
            self._mutated("run.source_counts", run_id, {"sources": len(counts)})

    @staticmethod
    def _counted(source: SourceRecord,
                 by_key: Mapping[tuple[Any, Any], Mapping[str, int]]) -> SourceRecord:
        rec = by_key.get((source.uri, source.source_index))
        if rec is None:
            return source
        return dataclasses.replace(source, rows_in=int(rec["rows_in"]),
                                   rows_out=int(rec["rows_out"]),
                                   rows_dropped=int(rec["rows_dropped"]),
                                   rows_quarantined=int(rec["rows_quarantined"]))

    def abandon_stale_runs(self, dataset: str,
                           is_alive: Callable[[RunRecord], bool] = process_is_alive) -> list[str]:
        running = [r for r in self.runs(dataset) if r.status == "running"]
        if not running:
            return []
        holder, now = self.lock_holder(dataset), utcnow()
        dead = {}
        for run in running:
            if holder is not None and holder.run_id == run.run_id:  # judged by lease and pid
                reason = lease_mod.stale_reason(holder, run, now, is_alive)
            else:
                reason = None if is_alive(run) else (f"its process (pid {run.pid} on "
                                                     f"{run.host}) is gone")
            if reason is not None:
                dead[run.run_id] = reason
        with self._tx() as t:
            for run_id, reason in dead.items():
                self._abandon(run_id, f"abandoned: {reason} (checked by a later run)")
            t.locks = {k: v for k, v in t.locks.items() if v.run_id not in dead}
            for run_id, reason in dead.items():
                self._mutated("run.abandon", run_id, {"dataset": dataset,
                                                      "error": f"abandoned: {reason}"})
        return list(dead)

    def _abandon(self, run_id: str, error: str) -> bool:
        """Mark a running run abandoned; False when it is not running (finished meanwhile)."""
        run = self._t.runs.get(run_id)
        if run is None or run.status != "running":
            return False
        self._t.runs[run_id] = dataclasses.replace(run, status="abandoned", ended_at=utcnow(),
                                                   error=error)
        return True

    # --- versions ----------------------------------------------------------------------------
    def commit_version(self, version: VersionRecord, files: Sequence[FileRecord]) -> None:
        check_totals(version, files)
        _check_required(version, files)
        with self._tx() as t:
            self._require_dataset(version.dataset)
            self._require_running_run(version)
            if version.version_id in t.versions:
                raise DuplicateError(f"version {version.version_id!r} already exists",
                                     where=f"{self.identity} dataset {version.dataset}",
                                     fix="generate a fresh id with catalog.store.new_version_id()")
            t.versions[version.version_id] = version
            t.files[version.version_id] = list(files)
            t.runs[version.run_id] = dataclasses.replace(t.runs[version.run_id],
                                                         version_id=version.version_id)
            self._mutated("version.commit", f"{version.dataset}@{version.version_id}", {
                "run_id": version.run_id, "manifest_sha256": version.manifest_sha256,
                "rows": version.rows, "files": len(files)})

    def _require_running_run(self, version: VersionRecord) -> None:
        run = self._t.runs.get(version.run_id)
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
        with self._store.lock:
            self._require_dataset(dataset)
            found = [v for v in self._t.versions.values() if v.dataset == dataset]
        return sorted(found, key=lambda v: (v.created_at, v.version_id))

    def version(self, dataset: str, ref: str) -> VersionRecord:
        versions = self.versions(dataset)
        if ref == "latest" and versions:
            return versions[-1]
        wanted = ref
        if semver_mod.is_semver(ref):
            with self._store.lock:
                release = self._t.releases.get((dataset, str(semver_mod.parse(ref))))
            wanted = release.version_id if release else ref
        for v in versions:
            if v.version_id == wanted:
                return v
        known = ", ".join(v.version_id for v in versions[-10:]) or "none yet"
        raise VersionNotFoundError(
            f"dataset {dataset!r} has no version {ref!r} (latest versions: {known})",
            where=self.identity, fix="pass one of the listed ids, a released semver, or 'latest'")

    def files(self, version_id: str) -> list[FileRecord]:
        with self._store.lock:
            if version_id not in self._t.versions:
                raise VersionNotFoundError(f"version {version_id!r} is not in the catalog",
                                           where=self.identity,
                                           fix="list the dataset's versions to find the id")
            found = list(self._t.files.get(version_id, []))
        return sorted(found, key=lambda f: f.path)

    # --- lock --------------------------------------------------------------------------------
    def acquire_lock(self, dataset: str, run_id: str, *, wait_seconds: float = 0,
                     is_alive: Callable[[RunRecord], bool] = process_is_alive) -> None:
        deadline = time.monotonic() + wait_seconds
        lease = lease_mod.lease_seconds()
        while True:
            holder = self._try_lock(dataset, run_id, lease, is_alive)
            if holder is None:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise lease_mod.locked_error(holder, utcnow(), self._where)
            time.sleep(min(LOCK_POLL_SECONDS, remaining))

    def _try_lock(self, dataset: str, run_id: str, lease: float,
                  is_alive: Callable[[RunRecord], bool]) -> LockHolder | None:
        """Take the lock (taking over a stale holder) and return None, or the live holder."""
        with self._tx() as t:
            now = utcnow()
            mine = LockHolder(dataset, run_id, socket.gethostname(), os.getpid(), now,
                              now + dt.timedelta(seconds=lease))
            holder = t.locks.get(dataset)
            if holder is None:
                t.locks[dataset] = mine
                return None
            if holder.run_id == run_id:  # re-entrant: this run already holds it
                t.locks[dataset] = dataclasses.replace(holder,
                                                       lease_expires_at=mine.lease_expires_at)
                return None
            reason = lease_mod.stale_reason(holder, t.runs.get(holder.run_id), now, is_alive)
            if reason is None:
                return holder
            self._take_over(holder, reason, mine)
            return None

    def _take_over(self, holder: LockHolder, reason: str, mine: LockHolder) -> None:
        self._t.locks[holder.dataset] = mine
        error = f"abandoned: {reason}; run {mine.run_id} took the dataset lock over"
        abandoned = self._abandon(holder.run_id, error)
        self._mutated("lock.takeover", holder.dataset, {
            "from_run": holder.run_id, "host": holder.host, "pid": holder.pid,
            "lease_expires_at": holder.lease_expires_at, "reason": reason,
            "to_run": mine.run_id})
        if abandoned:
            self._mutated("run.abandon", holder.run_id,
                          {"dataset": holder.dataset, "error": error})

    def renew_lock(self, dataset: str, run_id: str, lease_seconds: float) -> dt.datetime | None:
        with self._tx() as t:
            holder = t.locks.get(dataset)
            if holder is None or holder.run_id != run_id:
                return None
            expires = utcnow() + dt.timedelta(seconds=lease_seconds)
            t.locks[dataset] = dataclasses.replace(holder, lease_expires_at=expires)
            return expires

    def lock_holder(self, dataset: str) -> LockHolder | None:
        with self._store.lock:
            return self._t.locks.get(dataset)

    def break_lock(self, dataset: str, *, reason: str | None = None,
                   run_id: str | None = None) -> LockHolder:
        """Remove the lock (only if ``run_id`` still holds it, when given), abandon its run."""
        with self._tx() as t:
            holder = t.locks.get(dataset)
            if holder is None or (run_id is not None and holder.run_id != run_id):
                self._require_dataset(dataset)
                raise LockNotHeldError(
                    f"dataset {dataset!r} is not locked" + (
                        f" by run {run_id} (now: run {holder.run_id})" if holder else ""),
                    where=self.identity, fix="nothing to unlock; `haina runs NAME` shows its runs")
            del t.locks[dataset]
            error = f"abandoned: its lock was removed by {self.actor} (haina unlock)" + (
                f": {reason}" if reason else "")
            abandoned = self._abandon(holder.run_id, error)
            self._mutated("lock.break", dataset, {
                "run_id": holder.run_id, "host": holder.host, "pid": holder.pid,
                "acquired_at": holder.acquired_at, "lease_expires_at": holder.lease_expires_at,
                "reason": reason})
            if abandoned:
                self._mutated("run.abandon", holder.run_id, {"dataset": dataset, "error": error})
        return holder

    def release_lock(self, dataset: str, run_id: str) -> None:
        with self._tx() as t:
            holder = t.locks.get(dataset)
            if holder is not None and holder.run_id == run_id:
                del t.locks[dataset]

    # --- releases and transitions -------------------------------------------------------------
    def releases(self, dataset: str) -> list[ReleaseRecord]:
        with self._store.lock:
            found = [r for r in self._t.releases.values() if r.dataset == dataset]
        return sorted(found, key=lambda r: semver_mod.parse(r.semver))

    def release_of(self, version_id: str) -> ReleaseRecord | None:
        with self._store.lock:
            return next((r for r in self._t.releases.values() if r.version_id == version_id),
                        None)

    def transitions(self, dataset: str, version_id: str | None = None) -> list[TransitionRecord]:
        with self._store.lock:
            found = [m for m in self._t.transitions if m.dataset == dataset
                     and (version_id is None or m.version_id == version_id)]
        return sorted(found, key=lambda m: (m.at, m.id))

    def record_release(self, release: ReleaseRecord, move: VersionMove, *,
                       newest_only: bool = False) -> None:
        with self._tx() as t:
            from_state = self._move(move)
            if newest_only:
                labels = {r.version_id: r.semver for r in t.releases.values()}
                error = states.newest_conflict(
                    t.versions[move.version_id],
                    [v for v in t.versions.values() if v.dataset == move.dataset], labels)
                if error is not None:
                    raise error
            holder = t.releases.get((release.dataset, release.semver))
            if holder is not None:
                raise states.semver_taken(release.dataset, release.semver, holder.version_id)
            taken = [semver_mod.parse(r.semver) for r in t.releases.values() if r.dataset == release.dataset]
            highest = str(max(taken)) if taken else None
            if highest != release.previous:
                raise states.previous_moved(release.dataset, highest, release.previous,
                                            release.semver)
            t.releases[(release.dataset, release.semver)] = dataclasses.replace(
                release, changelog=_json(release.changelog))
            self._audit_move(move, from_state)

    def move_version(self, move: VersionMove) -> str:
        with self._tx():
            from_state = self._move(move)
            self._audit_move(move, from_state)
        return from_state

    def _move(self, move: VersionMove) -> str:
        version = self._t.versions.get(move.version_id)
        current = version.state if version else None
        if version is None or current not in move.from_states:
            raise states.state_error(move.dataset, move.version_id, move.action, current)
        self._t.versions[move.version_id] = dataclasses.replace(version, state=move.to_state)
        next_id = self._t.transitions[-1].id + 1 if self._t.transitions else 1
        self._t.transitions = [*self._t.transitions, TransitionRecord(
            id=next_id, dataset=move.dataset, version_id=move.version_id,
            from_state=version.state, to_state=move.to_state, semver=move.semver,
            actor=self.actor, at=utcnow(), reason=move.reason)]
        return version.state

    def _audit_move(self, move: VersionMove, from_state: str) -> None:
        self._mutated(f"version.{move.action}", f"{move.dataset}@{move.semver or move.version_id}",
                      {"version_id": move.version_id, "from_state": from_state,
                       "to_state": move.to_state, "semver": move.semver, "reason": move.reason})

    def mark_documented(self, dataset: str, semver: str, files: Sequence[str]) -> None:
        with self._tx() as t:
            release = t.releases.get((dataset, semver))
            if release is not None:
                t.releases[(dataset, semver)] = dataclasses.replace(release,
                                                                    documented_at=utcnow())
            self._mutated("release.documents", f"{dataset}@{semver}",
                          {"version_id": release.version_id if release else None,
                           "files": list(files)})

    # --- lineage events ----------------------------------------------------------------------
    def add_lineage_event(self, event: LineageEventRecord, details: Mapping[str, Any]) -> None:
        with self._tx() as t:
            if event.run_id not in t.runs:
                raise RunNotFoundError(f"run {event.run_id!r} is not in the catalog",
                                       where=self.identity,
                                       fix="store a run's events after begin_run")
            t.lineage = [*t.lineage, dataclasses.replace(event, event=_json(dict(event.event)))]
            self._mutated("lineage.emit", f"{event.dataset}@{event.version_id}", details)

    def lineage_events(self, *, run_id: str | None = None, dataset: str | None = None,
                       version_id: str | None = None,
                       event_type: str | None = None) -> list[LineageEventRecord]:
        wanted = {"run_id": run_id, "dataset": dataset, "version_id": version_id,
                  "event_type": event_type}
        with self._store.lock:
            return [e for e in self._t.lineage
                    if all(v is None or getattr(e, k) == v for k, v in wanted.items())]

    def source_uses(self, *, uris: Sequence[str] = (),
                    sha256s: Sequence[str] = ()) -> list[SourceUse]:
        uri_set, sha_set = set(uris), {s.lower() for s in sha256s}
        if not uri_set and not sha_set:
            return []
        with self._store.lock:
            found = {SourceUse(v.dataset, v.version_id, v.state, v.created_at, run.run_id,
                               run.code_version, s.uri, s.sha256)
                     for v in self._t.versions.values()
                     for run in (self._t.runs[v.run_id],)
                     for s in self._t.sources.get(run.run_id, [])
                     if s.uri in uri_set or s.sha256 in sha_set}
        return sorted(found, key=lambda u: (u.dataset, u.created_at, u.version_id, u.uri))

    # --- audit log ---------------------------------------------------------------------------
    def record_action(self, action: str, target: str, details: Mapping[str, Any]) -> None:
        with self._tx():
            self._mutated(action, target, details)

    def audit_entries(self, *, action: str | None = None, target: str | None = None,
                      actor: str | None = None, since: dt.datetime | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        tests = [(_like(action), "action"), (_like(target), "target"), (_like(actor), "actor")]
        with self._store.lock:
            found = [e for e in self._t.audit
                     if all(match(getattr(e, name)) for match, name in tests)
                     and (since is None or e.at >= since)]
        return found[-limit:] if limit else found

    def read_audit_chain(self, reader: ChainReader[T]) -> T:
        with self._store.lock:  # appends wait until the reader is done
            return reader(self._t.head, iter(list(self._t.audit)))

    def set_audit_head_file(self, uri: str) -> None:
        self._head_file = uri

    def audit_head_file(self) -> str | None:
        return self._head_file


def _check_required(version: VersionRecord, files: Sequence[FileRecord]) -> None:
    """What NOT NULL columns refuse in a SQL catalog, refused here with a named error."""
    for f in files:
        missing = [name for name in _FILE_REQUIRED if getattr(f, name) is None]
        if missing:
            raise InvalidRecordError(
                f"file {f.path!r} has no {', '.join(missing)}", where=f"version "
                f"{version.version_id}", fix="fill every field of the FileRecord")
