"""Release and transition rows of the SQL backend: the lifecycle's checks, made inside the
caller's transaction so that each is judged on rows it has locked or will write.

Each transition is one conditional ``UPDATE versions SET state=... WHERE state IN (allowed)``
whose RETURNING row says whether this call made it, so of two processes releasing the same
draft exactly one sees the draft (PostgreSQL makes the second wait for the first's row lock and
re-check; SQLite serialises writers with BEGIN IMMEDIATE). Two releases of one semver are
stopped by the UNIQUE (dataset, semver) key.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalog.exceptions import ReleaseConflictError
from catalog.releases import semver as semver_mod
from catalog.releases import states
from catalog.sql.tables import releases_t, transitions_t, versions_t
from catalog.store import ReleaseRecord, TransitionRecord, VersionMove, VersionRecord, utcnow


def release_rows(conn: Connection, where: sa.ColumnElement[bool]) -> list[ReleaseRecord]:
    rows = conn.execute(sa.select(releases_t).where(where))
    return [ReleaseRecord(**r._mapping) for r in rows]


def transition_rows(conn: Connection, dataset: str,
                    version_id: str | None) -> list[TransitionRecord]:
    query = sa.select(transitions_t).where(transitions_t.c.dataset == dataset)
    if version_id is not None:
        query = query.where(transitions_t.c.version_id == version_id)
    rows = conn.execute(query.order_by(transitions_t.c.at, transitions_t.c.id))
    return [TransitionRecord(**r._mapping) for r in rows]


def move(conn: Connection, move: VersionMove, actor: str) -> str:
    """Change ``versions.state`` if it is one ``move`` starts from, record the transition;
    return the old state."""
    # FOR UPDATE: on PostgreSQL a concurrent transition waits here for ours to commit, then
    # reads the state we left (SQLite ignores it; BEGIN IMMEDIATE already serialises writers)
    current = conn.execute(sa.select(versions_t.c.state).with_for_update()
                           .where(versions_t.c.version_id == move.version_id)).scalar()
    moved = None
    if current in move.from_states:  # the WHERE repeats the check: the statement alone is safe
        moved = conn.execute(
            versions_t.update()
            .where(versions_t.c.version_id == move.version_id,
                   versions_t.c.state.in_(move.from_states))
            .values(state=move.to_state).returning(versions_t.c.version_id)).first()
    if moved is None:
        raise states.state_error(move.dataset, move.version_id, move.action, current)
    conn.execute(transitions_t.insert().values(
        dataset=move.dataset, version_id=move.version_id, from_state=current,
        to_state=move.to_state, semver=move.semver, actor=actor, at=utcnow(),
        reason=move.reason))
    return str(current)


def require_newest(conn: Connection, version: VersionRecord) -> None:
    """``latest-draft`` must not name a draft older than a released version: that happens when
    another publisher released the newest draft first, and releasing this one would publish
    older data under a newer number."""
    newer = conn.execute(
        sa.select(versions_t.c.version_id, versions_t.c.state, releases_t.c.semver)
        .join(releases_t, releases_t.c.version_id == versions_t.c.version_id, isouter=True)
        .where(versions_t.c.dataset == version.dataset, versions_t.c.state != states.DRAFT,
               versions_t.c.version_id != version.version_id,
               sa.or_(versions_t.c.created_at > version.created_at,
                      sa.and_(versions_t.c.created_at == version.created_at,
                              versions_t.c.version_id > version.version_id)))
        .order_by(versions_t.c.created_at.desc()).limit(1)).first()
    if newer is not None:
        raise states.newer_released(version.dataset, version.version_id, newer.version_id,
                                    newer.state, newer.semver)


def semver_holder(conn: Connection, dataset: str, semver: str) -> str | None:
    holder = conn.execute(sa.select(releases_t.c.version_id).where(
        releases_t.c.dataset == dataset, releases_t.c.semver == semver)).scalar()
    return None if holder is None else str(holder)


def require_free(conn: Connection, dataset: str, semver: str) -> None:
    holder = semver_holder(conn, dataset, semver)
    if holder is not None:
        raise states.semver_taken(dataset, semver, holder)


def require_previous(conn: Connection, dataset: str, previous: str | None,
                     semver: str) -> None:
    taken = [semver_mod.parse(s) for s in conn.execute(
        sa.select(releases_t.c.semver).where(releases_t.c.dataset == dataset)).scalars()]
    highest = str(max(taken)) if taken else None
    if highest != previous:
        raise states.previous_moved(dataset, highest, previous, semver)


def insert_release(conn: Connection, release: ReleaseRecord) -> None:
    conn.execute(releases_t.insert().values(**dataclasses.asdict(release)))


def conflict(conn: Connection, release: ReleaseRecord) -> ReleaseConflictError:
    """The error for a UNIQUE violation: the race was lost after our own checks passed."""
    holder = semver_holder(conn, release.dataset, release.semver)
    if holder is not None and holder != release.version_id:
        return states.semver_taken(release.dataset, release.semver, holder)
    return states.released_meanwhile(release.dataset, release.version_id)


def version_row(conn: Connection, version_id: str) -> Any:
    return conn.execute(sa.select(versions_t)
                        .where(versions_t.c.version_id == version_id)).first()
