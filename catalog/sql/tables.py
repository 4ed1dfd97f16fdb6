"""Every table of the SQL catalog, on one ``MetaData``: the schema as of the newest migration.

The migrations in ``migrations/versions`` build this schema step by step (and upgrade catalogs
of older Haina releases to it); ``tests/catalog/sql/test_migrations.py`` checks that a migrated
database has exactly these columns, so a change here needs a new revision.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from catalog.store import COUNT_FIELDS, UTC


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()
_text = sa.Text
#: a source file's row accounting in its run
SOURCE_COUNTS = ("rows_in", "rows_out", "rows_dropped", "rows_quarantined")
#: the id of the one row of ``audit_head``
AUDIT_HEAD_ID = 1

schema_info_t = sa.Table("schema_info", metadata,
                         sa.Column("version", sa.Integer, nullable=False))
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
    #: the recipe's sources[] entry: several entries may read one file (revision 0005)
    sa.Column("source_index", sa.Integer, primary_key=True, server_default="0"),
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
    #: sha256 of the row groups (revision 0002)
    sa.Column("content_sha256", sa.String(64)),
)
locks_t = sa.Table(
    "locks", metadata,
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("host", _text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
    #: renewed by the holder's heartbeat; NULL for locks taken before leases (revision 0004)
    sa.Column("lease_expires_at", UtcDateTime),
)
releases_t = sa.Table(
    "releases", metadata,
    sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), primary_key=True),
    sa.Column("semver", sa.String(40), primary_key=True),  # UNIQUE per dataset through the key
    sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"),
              nullable=False, unique=True),
    sa.Column("released_at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("notes", sa.Text),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("bump", sa.String(10), nullable=False),
    sa.Column("previous", sa.String(40)),
    #: the changes since the previous release, as the card lists them (revision 0004)
    sa.Column("changelog", sa.JSON),
    #: when the card and Croissant file were written; NULL until then (revision 0004)
    sa.Column("documented_at", UtcDateTime),
)
transitions_t = sa.Table(
    "version_transitions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), nullable=False),
    sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"), nullable=False),
    sa.Column("from_state", sa.String(20), nullable=False),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("semver", sa.String(40)),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Index("ix_version_transitions_dataset", "dataset", "at"),
)
lineage_events_t = sa.Table(
    "lineage_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("ol_run_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("event_time", UtcDateTime, nullable=False),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("version_id", sa.String(64)),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Index("ix_lineage_events_run", "run_id", "id"),
    sa.Index("ix_lineage_events_dataset", "dataset", "event_time"),
)
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
#: one row (id 1): the last entry's (seq, hash), locked by every append
audit_head_t = sa.Table(
    "audit_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime),
)
