"""The tamper-evident audit log: every catalog mutation, chained by SHA-256.

Each entry is ``(seq, at, actor, action, target, details)`` plus ``prev_hash`` and ``hash``::

    hash = sha256(prev_hash + canonical JSON of [seq, at, actor, action, target, details])

with ``prev_hash`` of entry 1 being 64 zeros. An entry is appended by :func:`record`, a listener
that :class:`catalog.sql.backend.SqlCatalog` calls *inside* the mutation's transaction, so the entry
commits or rolls back with the change it describes.

Serialisation: an append reads the previous hash from the one-row ``audit_head`` table with
``SELECT ... FOR UPDATE`` (PostgreSQL), so two writers queue on that row and cannot fork the
chain; SQLite transactions here start with ``BEGIN IMMEDIATE`` and are serialised already.
The same head row records the last ``(seq, hash)``, and so does ``<warehouse>/_audit/head.json``
(written at commit, under the same lock), which is what makes deleting the *last* entries
detectable: a chain alone cannot tell a truncated log from a shorter one. The head file also
names the catalog it mirrors (``"catalog"``: a URL without password, or ``catalog.db`` for the
SQLite file inside the warehouse), so a reader pointed at another catalog, say an empty SQLite
file where the warehouse's catalog is on PostgreSQL, is told so instead of "tampered".

Limits (what a hash chain cannot do): someone able to rewrite the whole table, the head row and
the head file together can recompute every hash and go unnoticed; anchor the head hash somewhere
they cannot write (a release note, a signed tag) to close that gap. A commit that fails after its
head file was written (rare: the DBAPI ``COMMIT`` itself failing) leaves the file one entry
ahead, which :func:`verify_chain` reports exactly like a deleted last entry. Appends never take
another row lock after the head row, which keeps the head lock free of deadlocks: call
``_mutated`` as the last statement of a transaction.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalog.exceptions import CatalogError
from catalog.sql.backend import _INSERTS, UtcDateTime, metadata
from catalog.store import UTC, default_actor, utcnow

#: prev_hash of the first entry
GENESIS = "0" * 64
#: the head file, relative to the warehouse root
HEAD_FILE = "_audit/head.json"
_HEAD_ID = 1
#: conn.info key of the head an uncommitted append produced (the head file follows at commit)
_PENDING = "haina.audit.pending"

audit_log_t = sa.Table(
    "audit_log", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_action_at", "action", "at"),
)
audit_head_t = sa.Table(
    "audit_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime),
)

#: engine -> URI of its head file (None: no head file, e.g. an in-memory catalog)
_HEAD_FILES: weakref.WeakKeyDictionary[Engine, str | None] = weakref.WeakKeyDictionary()
#: engine -> identity of the catalog it serves (``SqlCatalog.identity``), written to the head file
_IDENTITIES: weakref.WeakKeyDictionary[Engine, str | None] = weakref.WeakKeyDictionary()
#: the head file's name for "the SQLite catalog inside this warehouse" (moves with the folder)
LOCAL_CATALOG = "catalog.db"


class AuditError(CatalogError):
    """The audit log cannot be appended to, or its head file cannot be written."""


class HeadFileMismatchError(AuditError):
    """The warehouse's head file mirrors another catalog than the one opened."""


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "at": iso(self.at)}


# --- hashing ---------------------------------------------------------------------------------
def iso(at: dt.datetime) -> str:
    """Microsecond ISO form in UTC: what both engines store and read back exactly."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_payload(seq: int, at: dt.datetime, actor: str, action: str, target: str,
                      details: Mapping[str, Any]) -> bytes:
    return json.dumps([seq, iso(at), actor, action, target, details], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def entry_hash(prev_hash: str, payload: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + payload).hexdigest()


def recompute(entry: AuditEntry) -> str:
    payload = canonical_payload(entry.seq, entry.at, entry.actor, entry.action, entry.target,
                                entry.details)
    return entry_hash(entry.prev_hash, payload)


def clean_details(value: Any) -> Any:
    """Details as plain JSON values, so what is stored is exactly what was hashed.

    Datetimes become ISO strings, sets sorted lists, non-finite floats strings (JSON has no NaN,
    and PostgreSQL's json type refuses it); anything else unknown its ``str``.
    """
    if isinstance(value, Mapping):
        return {str(k): clean_details(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [clean_details(v) for v in items]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dt.datetime):
        return iso(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- appending -------------------------------------------------------------------------------
def record(conn: Connection, action: str, target: str, details: Mapping[str, Any],
           actor: str) -> AuditEntry:
    """The catalog listener: append one entry inside the caller's transaction."""
    prev_seq, prev_hash = _lock_head(conn)
    entry = _entry(prev_seq + 1, prev_hash, actor, action, target, details)
    conn.execute(audit_log_t.insert().values(**dataclasses.asdict(entry)))
    conn.execute(audit_head_t.update().where(audit_head_t.c.id == _HEAD_ID)
                 .values(seq=entry.seq, hash=entry.hash, at=entry.at))
    conn.info[_PENDING] = (entry.seq, entry.hash, entry.at)
    return entry


def _entry(seq: int, prev_hash: str, actor: str, action: str, target: str,
           details: Mapping[str, Any]) -> AuditEntry:
    if not action or not str(target):
        raise AuditError(f"an audit entry needs an action and a target (got {action!r}, "
                         f"{target!r})", where="audit log",
                         fix="pass e.g. action='policy.change', target='dataset-name'")
    actor = (actor or "").strip() or default_actor()  # never empty
    at, details = utcnow(), clean_details(dict(details))
    digest = entry_hash(prev_hash, canonical_payload(seq, at, actor, action, str(target), details))
    return AuditEntry(seq, at, actor, action, str(target), details, prev_hash, digest)


def _lock_head(conn: Connection) -> tuple[int, str]:
    """The head ``(seq, hash)``, locked until the transaction ends (PostgreSQL: row lock)."""
    query = (sa.select(audit_head_t.c.seq, audit_head_t.c.hash)
             .where(audit_head_t.c.id == _HEAD_ID).with_for_update())
    row = conn.execute(query).first()
    if row is None:
        # first append ever: of two racing first appends, the second waits on this insert and
        # then reads the first one's committed head
        conn.execute(_INSERTS[conn.dialect.name](audit_head_t)
                     .values(id=_HEAD_ID, seq=0, hash=GENESIS, at=None).on_conflict_do_nothing())
        row = conn.execute(query).first()
    if row.seq == 0:
        entries = conn.execute(sa.select(sa.func.count()).select_from(audit_log_t)).scalar_one()
        if entries:
            raise AuditError(
                f"the audit_head row is missing or reset but the log holds {entries} entries",
                where="audit log", fix="run `haina audit verify`; after investigating, restore "
                "the row from a backup (INSERT INTO audit_head (id, seq, hash) VALUES (1, <last "
                "seq>, '<last hash>'))")
    return int(row.seq), row.hash


def append(catalog: Any, action: str, target: str,
           details: Mapping[str, Any] | None = None) -> None:
    """Record an action that is not a catalog table change (policy or key change, export)."""
    install(catalog)
    with catalog._engine.begin() as conn:
        catalog._mutated(conn, action, target, details or {})


# --- head file -------------------------------------------------------------------------------
def head_file_uri(warehouse_root: str) -> str:
    root = str(warehouse_root)
    if "://" in root:
        return root.rstrip("/") + "/" + HEAD_FILE
    return str(Path(root) / HEAD_FILE)


def _default_head_file(engine: Engine) -> str | None:
    """SQLite catalogs live at ``<warehouse>/catalog.db``: the head file goes next to it."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return head_file_uri(os.path.dirname(os.path.abspath(database)))


def head_catalog_name(uri: str, identity: str | None) -> str | None:
    """What the head file at ``uri`` calls the catalog ``identity``: ``catalog.db`` when it is
    the SQLite file of the same warehouse (so a moved warehouse still names it), else as is."""
    if identity is None or "://" in uri:
        return identity
    warehouse = os.path.dirname(os.path.dirname(os.path.abspath(uri)))
    if identity == f"sqlite:///{os.path.join(warehouse, LOCAL_CATALOG)}":
        return LOCAL_CATALOG
    return identity


def resolve_head_catalog(uri: str, name: str | None) -> str | None:
    """The catalog identity a head file's ``"catalog"`` names (see :func:`head_catalog_name`)."""
    if name != LOCAL_CATALOG or "://" in uri:
        return name
    warehouse = os.path.dirname(os.path.dirname(os.path.abspath(uri)))
    return f"sqlite:///{os.path.join(warehouse, LOCAL_CATALOG)}"


def write_head_file(uri: str, seq: int, digest: str, at: dt.datetime,
                    catalog: str | None = None) -> None:
    head = {"seq": seq, "hash": digest, "at": iso(at)}
    if catalog is not None:
        head["catalog"] = catalog
    data = (json.dumps(head, sort_keys=True) + "\n").encode()
    try:
        if "://" in uri:
            from apache_beam.io.filesystems import FileSystems

            with FileSystems.create(uri) as out:
                out.write(data)
            return
        os.makedirs(os.path.dirname(uri), exist_ok=True)
        tmp = f"{uri}.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, uri)  # readers see the old head or the new one, never half a file
    except OSError as err:
        raise AuditError(f"could not write the audit head file ({err})", where=uri,
                         fix="make the warehouse's _audit folder writable; the change was "
                             "not committed") from err


def read_head_file(uri: str) -> dict[str, Any] | None:
    """The head file's ``{"seq", "hash", "at"}``, or None when there is none."""
    try:
        if "://" in uri:
            from apache_beam.io.filesystems import FileSystems

            if not FileSystems.exists(uri):
                return None
            with FileSystems.open(uri) as src:
                data = src.read()
        else:
            if not os.path.exists(uri):
                return None
            data = Path(uri).read_bytes()
        head = json.loads(data)
        return {"seq": int(head["seq"]), "hash": str(head["hash"]), "at": head.get("at"),
                "catalog": resolve_head_catalog(uri, head.get("catalog"))}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AuditError(f"the audit head file is unreadable ({err})", where=uri,
                         fix="restore it from a backup; `haina audit verify` checks the log "
                             "against the audit_head row meanwhile") from err


def _on_commit(conn: Connection) -> None:
    # "commit" fires before the DBAPI COMMIT, while the head lock is still held: head files are
    # written in chain order even with concurrent writers
    pending = conn.info.pop(_PENDING, None)
    uri = _HEAD_FILES.get(conn.engine)
    if pending is not None and uri:
        write_head_file(uri, *pending,
                        catalog=head_catalog_name(uri, _IDENTITIES.get(conn.engine)))


def _on_rollback(conn: Connection) -> None:
    # A connection the server dropped is invalidated: its pending head went with its DBAPI
    # connection, and touching ``conn.info`` would raise PendingRollbackError in the middle of
    # the rollback, hiding the real error behind a traceback
    if not conn.invalidated:
        conn.info.pop(_PENDING, None)


def install(catalog: Any, head_file: str | None = None) -> None:
    """Make ``catalog`` record every mutation in the audit log (idempotent).

    ``head_file`` (a path or URI) is where the head is mirrored; by default
    ``<warehouse>/_audit/head.json`` for a SQLite catalog at ``<warehouse>/catalog.db``, and none
    for PostgreSQL until a caller that knows the warehouse passes it (:func:`use_warehouse`).
    Backends without the listener hook are left alone.
    """
    listeners = getattr(catalog, "listeners", None)
    engine = getattr(catalog, "_engine", None)
    if listeners is None or engine is None:
        return
    if record not in listeners:
        listeners.append(record)
    _IDENTITIES[engine] = getattr(catalog, "identity", None)
    if not sa.event.contains(engine, "commit", _on_commit):
        sa.event.listen(engine, "commit", _on_commit)
        sa.event.listen(engine, "rollback", _on_rollback)
    if head_file is not None:
        _HEAD_FILES[engine] = head_file
    elif engine not in _HEAD_FILES:
        _HEAD_FILES[engine] = _default_head_file(engine)


def use_warehouse(catalog: Any, warehouse_root: str) -> None:
    """Mirror the head into ``<warehouse_root>/_audit/head.json`` (any catalog backend)."""
    install(catalog, head_file_uri(warehouse_root))


def head_file_of(catalog: Any) -> str | None:
    engine = getattr(catalog, "_engine", None)
    if engine is None:
        return None
    return _HEAD_FILES.get(engine) or _default_head_file(engine)


# --- reading ---------------------------------------------------------------------------------
def _to_entry(row: Any) -> AuditEntry:
    m = row._mapping
    details = m["details"]
    if isinstance(details, str):  # a driver that hands JSON back as text
        details = json.loads(details)
    return AuditEntry(int(m["seq"]), m["at"], m["actor"], m["action"], m["target"], details,
                      m["prev_hash"], m["hash"])


def _like(column: sa.ColumnElement, pattern: str) -> sa.ColumnElement:
    """``*`` is a wildcard (``version.*``); without one the match is exact."""
    if "*" not in pattern:
        return column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%"), escape="\\")


def entries(catalog: Any, *, action: str | None = None, target: str | None = None,
            actor: str | None = None, since: dt.datetime | None = None,
            limit: int | None = None) -> list[AuditEntry]:
    """Entries in seq order, filtered; ``limit`` keeps the most recent ones."""
    query = sa.select(audit_log_t)
    for column, pattern in ((audit_log_t.c.action, action), (audit_log_t.c.target, target),
                            (audit_log_t.c.actor, actor)):
        if pattern:
            query = query.where(_like(column, pattern))
    if since is not None:
        query = query.where(audit_log_t.c.at >= since)
    query = query.order_by(audit_log_t.c.seq.desc() if limit else audit_log_t.c.seq)
    if limit:
        query = query.limit(limit)
    with catalog._engine.connect() as conn:
        found = [_to_entry(row) for row in conn.execute(query)]
    return sorted(found, key=lambda e: e.seq)


# --- verifying -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ChainProblem:
    seq: int | None
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}" if self.seq is not None else self.problem


@dataclasses.dataclass
class ChainReport:
    entries: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    head_row: tuple[int, str] | None = None
    head_file: str | None = None
    head_file_seq: int | None = None
    problems: list[ChainProblem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> ChainProblem | None:
        return self.problems[0] if self.problems else None


def verify_chain(catalog: Any, head_file: str | None = None) -> ChainReport:
    """Recompute the chain and compare its end with the head row and the head file.

    Appends wait while this runs (the head row is read ``FOR SHARE``; SQLite's ``BEGIN
    IMMEDIATE`` excludes writers), so the log, the head row and the head file are one state.
    """
    report = ChainReport(head_file=head_file or head_file_of(catalog))
    check_head_catalog(catalog, report.head_file)
    with catalog._engine.connect() as conn:
        row = conn.execute(sa.select(audit_head_t.c.seq, audit_head_t.c.hash)
                           .where(audit_head_t.c.id == _HEAD_ID)
                           .with_for_update(read=True)).first()
        report.head_row = None if row is None else (int(row.seq), row.hash)
        file_head = read_head_file(report.head_file) if report.head_file else None
        wanted = {head[0] for head in (report.head_row,) if head}
        wanted |= {file_head["seq"]} if file_head else set()
        seen = _walk_chain(conn, report, wanted)
    _check_head_row(report, seen)
    _check_head_file(report, file_head, seen)
    return report


def check_head_catalog(catalog: Any, head_file: str | None) -> None:
    """Raise :class:`HeadFileMismatchError` when ``head_file`` mirrors another catalog: its
    chain cannot be compared with this one (a head file of an older Haina names none)."""
    head = read_head_file(head_file) if head_file else None
    mine = getattr(catalog, "identity", None)
    if head is None or head["catalog"] is None or mine is None or head["catalog"] == mine:
        return
    raise HeadFileMismatchError(
        f"the warehouse's audit head file {head_file} belongs to the catalog {head['catalog']}, "
        f"but the catalog opened is {mine}", where="audit verify",
        fix=f"pass --catalog {head['catalog']} (or set $HAINA_CATALOG_URL), adding its password "
            f"if it needs one; or --warehouse for the folder this catalog's runs wrote")


def _walk_chain(conn: Connection, report: ChainReport, wanted: set[int]) -> dict[int, str]:
    """Check every entry in seq order; return the hashes of the ``wanted`` seqs."""
    seen: dict[int, str] = {}
    expected_seq, prev = 1, GENESIS
    rows = conn.execution_options(yield_per=2000).execute(
        sa.select(audit_log_t).order_by(audit_log_t.c.seq))
    for row in rows:
        entry = _to_entry(row)
        report.entries += 1
        report.problems += _entry_problems(entry, expected_seq, prev)
        if entry.seq in wanted:
            seen[entry.seq] = entry.hash
        expected_seq, prev = entry.seq + 1, entry.hash
        report.last_seq, report.last_hash = entry.seq, entry.hash
    return seen


def _entry_problems(entry: AuditEntry, expected_seq: int, prev: str) -> list[ChainProblem]:
    found = []
    if entry.seq < expected_seq:
        found.append(ChainProblem(entry.seq, f"seq {entry.seq} is out of order (expected "
                                             f"{expected_seq} or later): inserted"))
    elif entry.seq > expected_seq:
        gap = (f"entry {expected_seq} is" if entry.seq == expected_seq + 1
               else f"entries {expected_seq}..{entry.seq - 1} are")
        text = f"{gap} missing: the log jumps from {expected_seq - 1} to {entry.seq} (deleted)"
        found.append(ChainProblem(expected_seq, text))
    elif entry.prev_hash != prev:
        text = (f"prev_hash {entry.prev_hash[:16]}… differs from the hash of entry "
                f"{entry.seq - 1} ({prev[:16]}…): an entry before it was edited, inserted or "
                f"reordered")
        found.append(ChainProblem(entry.seq, text))
    actual = recompute(entry)
    if actual != entry.hash:
        text = (f"content does not match its hash (stored {entry.hash[:16]}…, recomputed "
                f"{actual[:16]}…): the entry was edited or moved")
        found.append(ChainProblem(entry.seq, text))
    return found


def _check_head_row(report: ChainReport, seen: dict[int, str]) -> None:
    head = report.head_row
    if head is None:
        if report.entries:
            report.problems.append(ChainProblem(None, "the audit_head row is missing (it "
                                                "records the last seq and hash): deleted"))
        return
    seq, digest = head
    if seq > report.last_seq:
        report.problems.append(ChainProblem(seq, f"recorded as the head (audit_head row) but the "
                                                 f"log ends at {report.last_seq}: the last "
                                                 f"entries were deleted"))
    elif seq < report.last_seq:
        report.problems.append(ChainProblem(seq + 1, f"is after the recorded head {seq} "
                                                     f"(audit_head row): appended outside the "
                                                     f"audit listener (inserted)"))
    elif seen.get(seq, report.last_hash) != digest:
        report.problems.append(ChainProblem(seq, f"hash {report.last_hash[:16]}… differs from "
                                                 f"the audit_head row's {digest[:16]}…: replaced"))


def _check_head_file(report: ChainReport, head: dict[str, Any] | None,
                     seen: dict[int, str]) -> None:
    if report.head_file is None:
        report.notes.append("no head file configured: truncation is checked against the "
                            "audit_head row only")
        return
    if head is None:
        if report.entries:
            report.notes.append(f"no head file at {report.head_file}: truncation is checked "
                                "against the audit_head row only")
        return
    report.head_file_seq = head["seq"]
    if head["seq"] > report.last_seq:
        report.problems.append(ChainProblem(head["seq"], f"recorded in the head file "
                                            f"{report.head_file} but the log ends at "
                                            f"{report.last_seq}: the last entries were deleted "
                                            f"(or entry {head['seq']}'s commit failed)"))
    elif head["seq"] and seen.get(head["seq"]) != head["hash"]:
        report.problems.append(ChainProblem(head["seq"], f"hash differs from the head file "
                                            f"{report.head_file} ({head['hash'][:16]}…): "
                                            f"replaced"))
    elif head["seq"] < report.last_seq:
        # every append of a process that mirrors the head rewrites the file under the head lock
        report.problems.append(ChainProblem(head["seq"] + 1, f"is after the head file's seq "
                                            f"{head['seq']}: inserted, or appended by a process "
                                            f"that does not mirror the head (it should call "
                                            f"catalog.audit.log.use_warehouse)"))
