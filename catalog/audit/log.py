"""The tamper-evident audit log: every catalog mutation, chained by SHA-256.

Each entry is ``(seq, at, actor, action, target, details)`` plus ``prev_hash`` and ``hash``::

    hash = sha256(prev_hash + canonical JSON of [seq, at, actor, action, target, details])

with ``prev_hash`` of entry 1 being 64 zeros. This module is the chain's policy: the canonical
payload, the hash, the entry (:func:`new_entry`), the head file and verification. Every catalog
backend appends the entry of each mutation itself, *inside* the mutation's transaction, so the
entry commits or rolls back with the change it describes (the SQL backend in
:mod:`catalog.sql.audit`, the in-memory one under its lock); this module reads the log only
through the :class:`~catalog.store.Catalog` contract.

Serialisation: the SQL backend reads the previous hash from the one-row ``audit_head`` table
with ``SELECT ... FOR UPDATE`` (PostgreSQL), so two writers queue on that row and cannot fork
the chain; SQLite transactions there start with ``BEGIN IMMEDIATE`` and are serialised already.
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
another row lock after the head row, which keeps the head lock free of deadlocks: the SQL
backend audits as the last statement of a transaction.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from catalog.exceptions import AuditError, HeadFileMismatchError
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.store import UTC, AuditEntry, AuditHead, Catalog, default_actor, utcnow

__all__ = [
    "GENESIS", "HEAD_FILE", "LOCAL_CATALOG", "AuditEntry", "AuditError", "ChainProblem",
    "ChainReport", "HeadFileMismatchError", "append", "canonical_payload", "check_head_catalog",
    "clean_details", "entries", "entry_hash", "head_catalog_name", "head_file_of",
    "head_file_uri", "install", "iso", "new_entry", "read_head_file", "recompute",
    "resolve_head_catalog", "use_warehouse", "verify_chain", "write_head_file",
]

#: prev_hash of the first entry
GENESIS = "0" * 64
#: the head file, relative to the warehouse root
HEAD_FILE = "_audit/head.json"
#: the head file's name for "the SQLite catalog inside this warehouse" (moves with the folder)
LOCAL_CATALOG = "catalog.db"


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
def new_entry(seq: int, prev_hash: str, actor: str, action: str, target: str,
              details: Mapping[str, Any]) -> AuditEntry:
    """The entry that follows ``(seq - 1, prev_hash)``: what every backend appends."""
    if not action or not str(target):
        raise AuditError(f"an audit entry needs an action and a target (got {action!r}, "
                         f"{target!r})", where="audit log",
                         fix="pass e.g. action='policy.change', target='dataset-name'")
    actor = (actor or "").strip() or default_actor()  # never empty
    at, clean = utcnow(), clean_details(dict(details))
    digest = entry_hash(prev_hash, canonical_payload(seq, at, actor, action, str(target), clean))
    return AuditEntry(seq, at, actor, action, str(target), clean, prev_hash, digest)


def append(catalog: Catalog, action: str, target: str,
           details: Mapping[str, Any] | None = None) -> None:
    """Record an action that is not a catalog table change (policy or key change, export)."""
    catalog.record_action(action, target, details or {})


# --- head file -------------------------------------------------------------------------------
def head_file_uri(warehouse_root: str) -> str:
    root = str(warehouse_root)
    if uri_mod.scheme(root) is not None:
        return uri_mod.join(root, HEAD_FILE)
    return str(Path(root) / HEAD_FILE)


def head_catalog_name(uri: str, identity: str | None) -> str | None:
    """What the head file at ``uri`` calls the catalog ``identity``: ``catalog.db`` when it is
    the SQLite file of the same warehouse (so a moved warehouse still names it), else as is."""
    if identity is None or uri_mod.scheme(uri) is not None:
        return identity
    warehouse = os.path.dirname(os.path.dirname(os.path.abspath(uri)))
    if identity == f"sqlite:///{os.path.join(warehouse, LOCAL_CATALOG)}":
        return LOCAL_CATALOG
    return identity


def resolve_head_catalog(uri: str, name: str | None) -> str | None:
    """The catalog identity a head file's ``"catalog"`` names (see :func:`head_catalog_name`)."""
    if name != LOCAL_CATALOG or uri_mod.scheme(uri) is not None:
        return name
    warehouse = os.path.dirname(os.path.dirname(os.path.abspath(uri)))
    return f"sqlite:///{os.path.join(warehouse, LOCAL_CATALOG)}"


# Beam's filesystems (any URI scheme) are imported on use: every SQL catalog open imports this
# module (its backend appends entries), and importing Beam takes seconds.
def write_head_file(uri: str, seq: int, digest: str, at: dt.datetime,
                    catalog: str | None = None) -> None:
    head = {"seq": seq, "hash": digest, "at": iso(at)}
    if catalog is not None:
        head["catalog"] = catalog
    data = (json.dumps(head, sort_keys=True) + "\n").encode()
    try:
        if uri_mod.scheme(uri) is not None:
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
        if not files_mod.exists(uri):
            return None
        data = files_mod.read_bytes(uri)
        head = json.loads(data)
        return {"seq": int(head["seq"]), "hash": str(head["hash"]), "at": head.get("at"),
                "catalog": resolve_head_catalog(uri, head.get("catalog"))}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AuditError(f"the audit head file is unreadable ({err})", where=uri,
                         fix="restore it from a backup; `haina audit verify` checks the log "
                             "against the audit_head row meanwhile") from err


def install(catalog: Catalog, head_file: str | None = None) -> None:
    """Mirror the audit head into ``head_file`` (when given). Every backend audits its
    mutations by itself; this stays for callers of older Haina releases."""
    if head_file is not None:
        catalog.set_audit_head_file(head_file)


def use_warehouse(catalog: Catalog, warehouse_root: str) -> None:
    """Mirror the head into ``<warehouse_root>/_audit/head.json`` (any catalog backend)."""
    catalog.set_audit_head_file(head_file_uri(warehouse_root))


def head_file_of(catalog: Catalog) -> str | None:
    return catalog.audit_head_file()


# --- reading ---------------------------------------------------------------------------------
def entries(catalog: Catalog, *, action: str | None = None, target: str | None = None,
            actor: str | None = None, since: dt.datetime | None = None,
            limit: int | None = None) -> list[AuditEntry]:
    """Entries in seq order, filtered (``*`` is a wildcard: ``version.*``); ``limit`` keeps the
    most recent ones."""
    return catalog.audit_entries(action=action, target=target, actor=actor, since=since,
                                 limit=limit)


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


def verify_chain(catalog: Catalog, head_file: str | None = None) -> ChainReport:
    """Recompute the chain and compare its end with the recorded head and the head file.

    Appends wait while this runs (:meth:`~catalog.store.Catalog.read_audit_chain`), so the log,
    the head row and the head file are one state.
    """
    report = ChainReport(head_file=head_file or head_file_of(catalog))
    check_head_catalog(catalog, report.head_file)

    def read(head: AuditHead | None, chain: Iterator[AuditEntry]
             ) -> tuple[dict[str, Any] | None, dict[int, str]]:
        report.head_row = head
        file_head = read_head_file(report.head_file) if report.head_file else None
        wanted = {head[0]} if head else set()
        wanted |= {file_head["seq"]} if file_head else set()
        return file_head, _walk_chain(chain, report, wanted)

    file_head, seen = catalog.read_audit_chain(read)
    _check_head_row(report, seen)
    _check_head_file(report, file_head, seen)
    return report


def check_head_catalog(catalog: Catalog, head_file: str | None) -> None:
    """Raise :class:`HeadFileMismatchError` when ``head_file`` mirrors another catalog: its
    chain cannot be compared with this one (a head file of an older Haina names none)."""
    head = read_head_file(head_file) if head_file else None
    mine = catalog.identity
    if head is None or head["catalog"] is None or mine is None or head["catalog"] == mine:
        return
    raise HeadFileMismatchError(
        f"the warehouse's audit head file {head_file} belongs to the catalog {head['catalog']}, "
        f"but the catalog opened is {mine}", where="audit verify",
        fix=f"pass --catalog {head['catalog']} (or set $HAINA_CATALOG_URL), adding its password "
            f"if it needs one; or --warehouse for the folder this catalog's runs wrote")


def _walk_chain(chain: Iterator[AuditEntry], report: ChainReport,
                wanted: set[int]) -> dict[int, str]:
    """Check every entry in seq order; return the hashes of the ``wanted`` seqs."""
    seen: dict[int, str] = {}
    expected_seq, prev = 1, GENESIS
    for entry in chain:
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
