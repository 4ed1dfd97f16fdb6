"""Lineage rows of the SQL backend: stored OpenLineage events and the source -> version join."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalog.sql.tables import lineage_events_t, runs_t, sources_t, versions_t
from catalog.store import LineageEventRecord, SourceUse


def insert_event(conn: Connection, event: LineageEventRecord) -> None:
    values = {**dataclasses.asdict(event), "event": dict(event.event)}
    conn.execute(lineage_events_t.insert().values(**values))


def events_query(*, run_id: str | None, dataset: str | None, version_id: str | None,
                 event_type: str | None) -> sa.Select[Any]:
    cols = [c for c in lineage_events_t.c if c.name != "id"]
    query = sa.select(*cols).order_by(lineage_events_t.c.id)
    for column, value in (("run_id", run_id), ("dataset", dataset), ("version_id", version_id),
                          ("event_type", event_type)):
        if value is not None:
            query = query.where(lineage_events_t.c[column] == value)
    return query


def source_uses(conn: Connection, uris: Sequence[str], sha256s: Sequence[str]) -> list[SourceUse]:
    conditions = []
    if uris:
        conditions.append(sources_t.c.uri.in_(list(uris)))
    if sha256s:
        conditions.append(sources_t.c.sha256.in_([s.lower() for s in sha256s]))
    if not conditions:
        return []
    query = (sa.select(versions_t.c.dataset, versions_t.c.version_id, versions_t.c.state,
                       versions_t.c.created_at, runs_t.c.run_id, runs_t.c.code_version,
                       sources_t.c.uri, sources_t.c.sha256)
             .select_from(sources_t.join(runs_t, runs_t.c.run_id == sources_t.c.run_id)
                          .join(versions_t, versions_t.c.run_id == runs_t.c.run_id))
             .where(sa.or_(*conditions))
             # a file read by two recipe entries (a staggered grid's u and v) is one use
             .distinct()
             .order_by(versions_t.c.dataset, versions_t.c.created_at, versions_t.c.version_id,
                       sources_t.c.uri))
    return [SourceUse(**row._mapping) for row in conn.execute(query)]
