"""The catalog contract: records, ids, the abstract :class:`Catalog` and the backend registry.

The catalog is the single source of truth of what exists: a version folder in the warehouse is
visible only once :meth:`Catalog.commit_version` has committed its row. Backends are registered
by URL scheme (``register_backend``) and imported lazily, so an optional driver is only needed
by those who use it.
"""
from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import getpass
import importlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from catalog.exceptions import (
    InvalidRecordError,
    MissingDependencyError,
    UnknownCatalogSchemeError,
)
from catalog.storage import uri as uri_mod

T = TypeVar("T")

UTC = dt.UTC

#: every status a run can end in; "running" is the only non-terminal one
RUN_STATUSES = ("running", "succeeded", "failed", "gate_failed", "abandoned", "no_change")
TERMINAL_STATUSES = frozenset(RUN_STATUSES) - {"running"}
#: the row counters a run reports through :meth:`Catalog.finish_run`
COUNT_FIELDS = ("rows_in", "rows_out", "rows_dropped", "rows_rejected")


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def _new_id(prefix: str, now: dt.datetime | None = None) -> str:
    # The timestamp first makes ids sort by creation time; the random suffix keeps two ids made
    # in the same second (by two workers or two hosts) distinct.
    stamp = (now or utcnow()).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{secrets.token_hex(3)}"


def new_version_id(now: dt.datetime | None = None) -> str:
    """A sortable version id, e.g. ``v20261126T194650Z-3f9a1c``."""
    return _new_id("v", now)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable run id, e.g. ``r20261126T194650Z-0b12ee``."""
    return _new_id("r", now)


def _check_aware(record: Any, *names: str) -> None:
    for name in names:
        value = getattr(record, name)
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise InvalidRecordError(
                f"field {name!r} is a naive datetime ({value.isoformat()})",
                where=type(record).__name__,
                fix="pass timezone-aware UTC datetimes, e.g. datetime.now(timezone.utc)",
            )


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """A dataset's descriptive fields. ``created_at`` None means "now" on first insert; it is
    kept unchanged by later ``ensure_dataset`` calls."""

    name: str
    title: str | None = ""
    description: str | None = ""
    licence: str | None = ""
    owner_name: str | None = ""
    owner_email: str | None = ""
    attribution: str | None = ""
    classification: str | None = ""
    created_at: dt.datetime | None = dataclasses.field(default_factory=utcnow)

    def __post_init__(self) -> None:
        _check_aware(self, "created_at")


@dataclasses.dataclass(frozen=True)
class RunRecord:
    run_id: str
    dataset: str
    version_id: str | None = None
    status: str = "running"
    recipe_path: str | None = ""
    recipe_sha256: str | None = ""
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    code_version: str | None = ""
    runner: str | None = ""
    host: str = dataclasses.field(default_factory=socket.gethostname)
    pid: int = dataclasses.field(default_factory=os.getpid)
    started_at: dt.datetime = dataclasses.field(default_factory=utcnow)
    ended_at: dt.datetime | None = None
    rows_in: int = 0
    rows_out: int = 0
    rows_dropped: int = 0
    rows_rejected: int = 0
    error: str | None = None
    report_path: str | None = None

    def __post_init__(self) -> None:
        _check_aware(self, "started_at", "ended_at")
        check_status(self.status, where=f"run {self.run_id}")


@dataclasses.dataclass(frozen=True)
class SourceRecord:
    run_id: str
    uri: str
    sha256: str
    size: int
    kind: str
    #: row accounting of this file in its run (None until the run has read it):
    #: rows_in == rows_out + rows_dropped + rows_quarantined
    rows_in: int | None = None
    rows_out: int | None = None
    rows_dropped: int | None = None
    rows_quarantined: int | None = None
    #: the recipe's ``sources[]`` entry that read the file: several entries may read one file
    #: (a staggered grid, one entry per grid)
    source_index: int = 0

    @property
    def key(self) -> str:
        return source_key(self.source_index, self.uri)


def source_key(source_index: int, uri: str) -> str:
    """How run summaries, manifests and lineage name one (recipe entry, file) pair.

    The URI itself for entry 0, ``<uri>#<index>`` for a later entry: a recipe with one entry, or
    with one file per entry, keeps naming its sources by URI alone, and two entries reading one
    file (a staggered grid) stay apart.
    """
    return uri if source_index == 0 else f"{uri}#{source_index}"


@dataclasses.dataclass(frozen=True)
class VersionRecord:
    version_id: str
    dataset: str
    run_id: str
    path: str
    manifest_sha256: str
    rows: int
    bytes: int
    file_count: int
    state: str = "draft"
    created_at: dt.datetime = dataclasses.field(default_factory=utcnow)

    def __post_init__(self) -> None:
        _check_aware(self, "created_at")


@dataclasses.dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the version folder, posix separators
    sha256: str
    rows: int
    bytes: int
    partition: str = ""
    source_sha256: str = ""
    time_min: dt.datetime | None = None
    time_max: dt.datetime | None = None
    #: sha256 of the row groups (the file before its footer), see catalog.storage.writer.WrittenFile
    content_sha256: str | None = None

    def __post_init__(self) -> None:
        _check_aware(self, "time_min", "time_max")
        if self.path.startswith("/") or "\\" in self.path or ".." in self.path.split("/"):
            raise InvalidRecordError(
                f"file path {self.path!r} is not a relative posix path inside the version folder",
                where="FileRecord", fix="pass the path relative to the version folder, e.g. "
                "'date=2024-01-01/part-....parquet'")


@dataclasses.dataclass(frozen=True)
class LockHolder:
    """Who holds a dataset's lock, and until when its lease runs (None: a lock taken by a Haina
    older than leases, which only a pid probe or an operator can judge)."""

    dataset: str
    run_id: str
    host: str
    pid: int
    acquired_at: dt.datetime
    lease_expires_at: dt.datetime | None = None

    def describe(self) -> str:
        return (f"run {self.run_id} (host {self.host}, pid {self.pid}, since "
                f"{self.acquired_at.isoformat(timespec='seconds')})")


@dataclasses.dataclass(frozen=True)
class ReleaseRecord:
    """A released version: its semver (unique per dataset), who released it and what changed."""

    dataset: str
    semver: str
    version_id: str
    released_at: dt.datetime
    actor: str
    notes: str | None
    manifest_sha256: str
    bump: str
    previous: str | None
    changelog: list[str] | None = None
    documented_at: dt.datetime | None = None

    @property
    def changes(self) -> list[str]:
        """The card's changelog; releases recorded before it was stored get a summary."""
        if self.changelog is not None:
            return list(self.changelog)
        return [f"{self.bump} release after {self.previous}"] if self.previous \
            else ["first release"]


@dataclasses.dataclass(frozen=True)
class TransitionRecord:
    """One state change of a version (``id`` orders changes recorded at the same instant)."""

    id: int
    dataset: str
    version_id: str
    from_state: str
    to_state: str
    semver: str | None
    actor: str
    at: dt.datetime
    reason: str | None


@dataclasses.dataclass(frozen=True)
class VersionMove:
    """A state change the lifecycle asks a backend to make: from one of ``from_states`` to
    ``to_state``. The policy (which moves exist) is :mod:`catalog.releases.states`; the backend
    makes the move atomically, records its transition and audits it as ``version.<action>``."""

    action: str
    dataset: str
    version_id: str
    from_states: frozenset[str]
    to_state: str
    semver: str | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class LineageEventRecord:
    """A stored OpenLineage event (``event`` is the JSON object as emitted)."""

    run_id: str
    ol_run_id: str
    event_type: str
    event_time: dt.datetime
    dataset: str
    version_id: str | None
    event: Mapping[str, Any]

    def __post_init__(self) -> None:
        _check_aware(self, "event_time")


@dataclasses.dataclass(frozen=True)
class SourceUse:
    """A committed version whose run read a source file: one row of a downstream query."""

    dataset: str
    version_id: str
    state: str
    created_at: dt.datetime
    run_id: str
    code_version: str | None
    uri: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One hash-chained entry of the audit log (see :mod:`catalog.audit.log` for the chain)."""

    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        at = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {**dataclasses.asdict(self), "at": at}


#: the audit head as the backend records it: (seq, hash) of the last entry, None before any
AuditHead = tuple[int, str]
#: reads the head and the entries (seq order) of one consistent state of the audit log
ChainReader = Callable[[AuditHead | None, Iterator[AuditEntry]], T]


def check_status(status: str, *, where: str) -> None:
    if status not in RUN_STATUSES:
        raise InvalidRecordError(f"unknown run status {status!r}", where=where,
                                 fix=f"use one of {', '.join(RUN_STATUSES)}")


#: the partition of a version's rejected rows
QUARANTINE_PARTITION = "quarantine"


def check_totals(version: VersionRecord, files: Sequence[FileRecord]) -> None:
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


def default_actor() -> str:
    """Who acts on the catalog: $HAINA_ACTOR, else the login name; never empty."""
    actor = os.environ.get("HAINA_ACTOR", "").strip()
    if not actor:
        try:
            actor = getpass.getuser()
        except (KeyError, OSError):  # no login name in some containers
            actor = ""
    return actor or f"uid:{os.getuid()}"


def process_is_alive(run: RunRecord) -> bool:
    """Default liveness probe: a run on this host is alive iff its pid exists.

    A run on another host cannot be probed from here, so it is presumed alive; an operator
    abandons it explicitly with a probe that knows better.
    """
    if run.host != socket.gethostname():
        return True
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid exists but belongs to another user
        return True
    return True


class Catalog(abc.ABC):
    """Everything the catalog stores: datasets, their versions and files, the runs that made
    them and the sources they read, dataset locks, releases and version transitions, lineage
    events and the hash-chained audit log of every change."""

    #: who performs mutations (CLI --actor, $HAINA_ACTOR, or the login name); never empty
    actor: str
    #: which catalog this is, without password (what the audit head file names)
    identity: str | None

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, *, create: bool = True, read_only: bool = False) -> Catalog:
        """Open the catalog at ``url`` (see :func:`open_catalog`): how the registry opens a
        backend registered for the URL's scheme. ``read_only``: create and upgrade nothing,
        and refuse every write."""

    @abc.abstractmethod
    def ensure_dataset(self, rec: DatasetRecord) -> None:
        """Insert the dataset, or update its descriptive fields (``created_at`` is kept)."""

    @abc.abstractmethod
    def begin_run(self, run: RunRecord, sources: Sequence[SourceRecord]) -> None:
        """Record a run with status ``running`` and its sources; committed at once."""

    @abc.abstractmethod
    def finish_run(self, run_id: str, *, status: str, counts: Mapping[str, int],
                   error: str | None = None, report_path: str | None = None) -> None:
        """Move a running run to a terminal status, with its row counts."""

    @abc.abstractmethod
    def commit_version(self, version: VersionRecord, files: Sequence[FileRecord]) -> None:
        """In one transaction: the version row and its files. The version becomes visible here."""

    @abc.abstractmethod
    def datasets(self) -> list[DatasetRecord]: ...

    @abc.abstractmethod
    def versions(self, dataset: str) -> list[VersionRecord]:
        """Versions of ``dataset``, oldest first."""

    @abc.abstractmethod
    def version(self, dataset: str, ref: str) -> VersionRecord:
        """``ref`` is a version id or ``latest``."""

    @abc.abstractmethod
    def files(self, version_id: str) -> list[FileRecord]: ...

    @abc.abstractmethod
    def run(self, run_id: str) -> RunRecord: ...

    @abc.abstractmethod
    def runs(self, dataset: str) -> list[RunRecord]:
        """Runs of ``dataset``, oldest first."""

    @abc.abstractmethod
    def sources(self, run_id: str) -> list[SourceRecord]: ...

    @abc.abstractmethod
    def record_source_counts(self, run_id: str, counts: Mapping[str, Mapping[str, int]]) -> None:
        """Store each source's row accounting on the run's sources: keyed by
        :func:`source_key`, each record naming its ``uri`` and ``source_index`` (a record
        without them is keyed by URI, entry 0)."""

    @abc.abstractmethod
    def abandon_stale_runs(self, dataset: str,
                           is_alive: Callable[[RunRecord], bool] = process_is_alive) -> list[str]:
        """Mark ``running`` runs whose process is gone as ``abandoned``; return their ids."""

    @abc.abstractmethod
    def acquire_lock(self, dataset: str, run_id: str, *, wait_seconds: float = 0,
                     is_alive: Callable[[RunRecord], bool] = process_is_alive) -> None:
        """Take the per-dataset lock, or raise ``DatasetLockedError`` naming the holder."""

    @abc.abstractmethod
    def release_lock(self, dataset: str, run_id: str) -> None:
        """Drop the lock if ``run_id`` holds it (a no-op otherwise)."""

    @abc.abstractmethod
    def renew_lock(self, dataset: str, run_id: str, lease_seconds: float) -> dt.datetime | None:
        """Extend ``run_id``'s lease to now + ``lease_seconds``; the new expiry, or None when
        ``run_id`` no longer holds the lock (see :class:`catalog.lease.Heartbeat`)."""

    @abc.abstractmethod
    def lock_holder(self, dataset: str) -> LockHolder | None:
        """Who holds ``dataset``'s lock, or None."""

    @abc.abstractmethod
    def break_lock(self, dataset: str, *, reason: str | None = None,
                   run_id: str | None = None) -> LockHolder:
        """An operator's unlock: remove the lock whoever holds it (only if ``run_id`` still
        holds it, when given: the holder the operator judged dead), mark the holder's run
        ``abandoned`` and audit it, in one transaction; ``LockNotHeldError`` when unlocked."""

    # --- releases and transitions -------------------------------------------------------------
    @abc.abstractmethod
    def releases(self, dataset: str) -> list[ReleaseRecord]:
        """Releases of ``dataset``, lowest semver first (semvers of deprecated and yanked
        versions included: they stay taken)."""

    @abc.abstractmethod
    def release_of(self, version_id: str) -> ReleaseRecord | None:
        """The release of ``version_id``, or None when it was never released."""

    @abc.abstractmethod
    def transitions(self, dataset: str, version_id: str | None = None) -> list[TransitionRecord]:
        """State changes of a dataset's versions (or of one version), oldest first."""

    @abc.abstractmethod
    def record_release(self, release: ReleaseRecord, move: VersionMove, *,
                       newest_only: bool = False) -> None:
        """In one transaction: make ``move`` (draft -> released), insert ``release``, record the
        transition and audit it. Raises ``ReleaseConflictError`` when another process got there
        first: the draft is released already, the semver is taken, the highest release is no
        longer ``release.previous``, or (``newest_only``, a ``latest-draft`` release) a version
        newer than this draft is no longer a draft; ``TransitionError`` for another state."""

    @abc.abstractmethod
    def move_version(self, move: VersionMove) -> str:
        """In one transaction: change the version's state from one of ``move.from_states`` to
        ``move.to_state``, record the transition and audit it; return the state it left.
        ``TransitionError`` (or ``ReleaseConflictError`` for a release) when its state is
        another, as read inside the transaction."""

    @abc.abstractmethod
    def mark_documented(self, dataset: str, semver: str, files: Sequence[str]) -> None:
        """Record (and audit as ``release.documents``) that the release's card and Croissant
        file ``files`` are written."""

    # --- lineage events ----------------------------------------------------------------------
    @abc.abstractmethod
    def add_lineage_event(self, event: LineageEventRecord, details: Mapping[str, Any]) -> None:
        """Store the event and its audit entry (``lineage.emit``, ``details``) in one
        transaction."""

    @abc.abstractmethod
    def lineage_events(self, *, run_id: str | None = None, dataset: str | None = None,
                       version_id: str | None = None,
                       event_type: str | None = None) -> list[LineageEventRecord]:
        """Stored events in the order they were stored, filtered by any of the arguments."""

    @abc.abstractmethod
    def source_uses(self, *, uris: Sequence[str] = (),
                    sha256s: Sequence[str] = ()) -> list[SourceUse]:
        """Committed versions whose run read a source with one of these URIs or sha256s (a
        file read by two recipe entries counts once), by dataset, creation, version, URI."""

    # --- audit log ---------------------------------------------------------------------------
    # Every mutation above appends its audit entry inside its own transaction; the backend does
    # that itself, so no backend can exist without an audit log.
    @abc.abstractmethod
    def record_action(self, action: str, target: str, details: Mapping[str, Any]) -> None:
        """Audit an action that changes no catalog table (a policy change, an export)."""

    @abc.abstractmethod
    def audit_entries(self, *, action: str | None = None, target: str | None = None,
                      actor: str | None = None, since: dt.datetime | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        """Entries in seq order. ``action``, ``target`` and ``actor`` match exactly, or as
        patterns where ``*`` is a wildcard; ``limit`` keeps the most recent ones."""

    @abc.abstractmethod
    def read_audit_chain(self, reader: ChainReader[T]) -> T:
        """Call ``reader(head, entries)`` on one consistent state of the log (appends wait):
        ``head`` is the recorded ``(seq, hash)`` of the last entry (None if never written),
        ``entries`` every entry in seq order."""

    @abc.abstractmethod
    def set_audit_head_file(self, uri: str) -> None:
        """Mirror the audit head into the file ``uri`` at every append, from now on."""

    @abc.abstractmethod
    def audit_head_file(self) -> str | None:
        """Where the audit head is mirrored, or None (then truncation is judged against the
        recorded head alone)."""

    def close(self) -> None:  # noqa: B027 - optional: a backend without connections keeps it
        """Release connections. Optional for backends that hold none."""


#: URL scheme -> "module:Class" of the backend; imported on first use
_BACKENDS: dict[str, str] = {
    "sqlite": "catalog.sql.backend:SqlCatalog",
    "postgresql": "catalog.sql.backend:SqlCatalog",
    "postgresql+psycopg": "catalog.sql.backend:SqlCatalog",
    "postgres": "catalog.sql.backend:SqlCatalog",
    "memory": "catalog.memory:MemoryCatalog",
}


def register_backend(scheme: str, target: str) -> None:
    """Register ``"module:Class"`` (a class with ``from_url(url, *, create)``) for a URL scheme."""
    _BACKENDS[scheme] = target


def _load(target: str, scheme: str) -> type[Catalog]:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise MissingDependencyError(
            f"the backend for {scheme!r} URLs could not be imported ({err})",
            where=target, fix="install the extra, e.g. pip install 'haina[postgres]'") from err
    backend: type[Catalog] = getattr(module, class_name)
    return backend


def open_catalog(url: str, *, create: bool = True, read_only: bool = False) -> Catalog:
    """Open (and create the tables of) the catalog at ``url``.

    ``sqlite:///abs/path/catalog.db`` or ``postgresql://user@host:port/db`` (psycopg 3; add
    ``?schema=name`` to keep the tables in their own PostgreSQL schema) or ``memory://name``
    (:mod:`catalog.memory`: one process, gone when it ends; for tests and embedding). With ``create=False``
    (readers) nothing is created: no folder, no database file, no schema, no table; a catalog
    that is not there raises :class:`~catalog.exceptions.CatalogNotFoundError`. An existing
    catalog of an older Haina is still upgraded, unless ``read_only``: then nothing is created
    or migrated (an older catalog is an error naming the fix), and a SQLite file is opened so
    that SQLite refuses writes.
    """
    scheme = uri_mod.scheme(url) or ""
    target = _BACKENDS.get(scheme)
    if target is None:
        raise UnknownCatalogSchemeError(
            f"no catalog backend for scheme {scheme!r} in URL {url!r}", where="catalog URL",
            fix=f"use one of the schemes {', '.join(sorted(_BACKENDS))}, "
                "e.g. sqlite:////abs/path/catalog.db")
    catalog: Catalog = _load(target, scheme).from_url(url, create=create, read_only=read_only)
    return catalog
