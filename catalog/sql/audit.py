"""The SQL backend's side of the audit log: appending rows under the head lock, reading them.

The chain's policy (payload, hash, head file format, verification) is :mod:`catalog.audit.log`;
this module stores and reads rows. An append locks the one ``audit_head`` row (``FOR UPDATE``:
two PostgreSQL writers queue there and cannot fork the chain; SQLite's ``BEGIN IMMEDIATE`` has
serialised the transaction already), inserts the entry and moves the head, inside the caller's
transaction. The head file follows at commit: the engine's ``commit`` event fires before the
DBAPI ``COMMIT``, while the head lock is still held, so head files are written in chain order.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalog.audit import log as chain
from catalog.exceptions import AuditError
from catalog.sql.inserts import upsert_insert
from catalog.sql.tables import AUDIT_HEAD_ID, audit_head_t, audit_log_t
from catalog.store import AuditEntry, AuditHead

#: conn.info key of the head an uncommitted append produced: (head file, seq, hash, at, name)
_PENDING = "haina.audit.pending"


def append(conn: Connection, action: str, target: str, details: Mapping[str, Any], actor: str,
           head_file: str | None, identity: str | None) -> AuditEntry:
    """Append one entry inside the caller's transaction; its head file is written at commit."""
    prev_seq, prev_hash = _lock_head(conn)
    entry = chain.new_entry(prev_seq + 1, prev_hash, actor, action, target, details)
    conn.execute(audit_log_t.insert().values(**dataclasses.asdict(entry)))
    conn.execute(audit_head_t.update().where(audit_head_t.c.id == AUDIT_HEAD_ID)
                 .values(seq=entry.seq, hash=entry.hash, at=entry.at))
    if head_file:
        conn.info[_PENDING] = (head_file, entry.seq, entry.hash, entry.at,
                               chain.head_catalog_name(head_file, identity))
    return entry


def _lock_head(conn: Connection) -> tuple[int, str]:
    """The head ``(seq, hash)``, locked until the transaction ends (PostgreSQL: row lock)."""
    query = (sa.select(audit_head_t.c.seq, audit_head_t.c.hash)
             .where(audit_head_t.c.id == AUDIT_HEAD_ID).with_for_update())
    row = conn.execute(query).first()
    if row is None:
        # first append ever: of two racing first appends, the second waits on this insert and
        # then reads the first one's committed head
        conn.execute(upsert_insert(conn, audit_head_t)
                     .values(id=AUDIT_HEAD_ID, seq=0, hash=chain.GENESIS, at=None)
                     .on_conflict_do_nothing())
        row = conn.execute(query).one()
    if row.seq == 0:
        entries = conn.execute(sa.select(sa.func.count()).select_from(audit_log_t)).scalar_one()
        if entries:
            raise AuditError(
                f"the audit_head row is missing or reset but the log holds {entries} entries",
                where="audit log", fix="run `haina audit verify`; after investigating, restore "
                "the row from a backup (INSERT INTO audit_head (id, seq, hash) VALUES (1, <last "
                "seq>, '<last hash>'))")
    return int(row.seq), str(row.hash)


def _on_commit(conn: Connection) -> None:
    pending = conn.info.pop(_PENDING, None)
    if pending is not None:
        uri, seq, digest, at, name = pending
        chain.write_head_file(uri, seq, digest, at, catalog=name)


def _on_rollback(conn: Connection) -> None:
    # A connection the server dropped is invalidated: its pending head went with its DBAPI
    # connection, and touching ``conn.info`` would raise PendingRollbackError in the middle of
    # the rollback, hiding the real error behind a traceback
    if not conn.invalidated:
        conn.info.pop(_PENDING, None)


def listen(engine: Engine) -> None:
    """Write head files at commit and forget them at rollback on ``engine`` (idempotent)."""
    if not sa.event.contains(engine, "commit", _on_commit):
        sa.event.listen(engine, "commit", _on_commit)
        sa.event.listen(engine, "rollback", _on_rollback)


# --- reading ---------------------------------------------------------------------------------
def to_entry(row: Any) -> AuditEntry:
    m = row._mapping
    details = m["details"]
    if isinstance(details, str):  # a driver that hands JSON back as text
        details = json.loads(details)
    return AuditEntry(int(m["seq"]), m["at"], m["actor"], m["action"], m["target"], details,
                      m["prev_hash"], m["hash"])


def _like(column: sa.ColumnElement[str], pattern: str) -> sa.ColumnElement[bool]:
    """``*`` is a wildcard (``version.*``); without one the match is exact."""
    if "*" not in pattern:
        return column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped.replace("*", "%"), escape="\\")


def entries_query(*, action: str | None, target: str | None, actor: str | None,
                  since: dt.datetime | None, limit: int | None) -> sa.Select[Any]:
    """Entries filtered; the newest first when ``limit`` keeps only the most recent."""
    query = sa.select(audit_log_t)
    for column, pattern in ((audit_log_t.c.action, action), (audit_log_t.c.target, target),
                            (audit_log_t.c.actor, actor)):
        if pattern:
            query = query.where(_like(column, pattern))
    if since is not None:
        query = query.where(audit_log_t.c.at >= since)
    query = query.order_by(audit_log_t.c.seq.desc() if limit else audit_log_t.c.seq)
    return query.limit(limit) if limit else query


def read_head(conn: Connection, *, lock: bool = True) -> AuditHead | None:
    """The head row, read ``FOR SHARE`` (``lock``) so that appends wait until the caller's
    reading ends; without ``lock`` the caller reads in a snapshot instead."""
    query = sa.select(audit_head_t.c.seq, audit_head_t.c.hash).where(
        audit_head_t.c.id == AUDIT_HEAD_ID)
    row = conn.execute(query.with_for_update(read=True) if lock else query).first()
    return None if row is None else (int(row.seq), str(row.hash))


def walk(conn: Connection) -> Iterator[AuditEntry]:
    """Every entry in seq order, streamed."""
    rows = conn.execution_options(yield_per=2000).execute(
        sa.select(audit_log_t).order_by(audit_log_t.c.seq))
    for row in rows:
        yield to_entry(row)
