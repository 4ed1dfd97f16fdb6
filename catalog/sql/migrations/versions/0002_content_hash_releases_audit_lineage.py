"""Content hashes of data files; releases, version transitions, audit log, lineage events.

Revision ID: 0002
Revises: 0001

The tables are written out as they were at this revision (a frozen snapshot: ``releases`` got
``changelog`` and ``documented_at`` in 0004), not imported from the live schema.
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
NEW_TABLES = ("releases", "version_transitions", "audit_log", "audit_head", "lineage_events")


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("content_sha256", sa.String(64)))
    _releases()
    _transitions()
    _audit()
    _lineage_events()
    op.execute("UPDATE schema_info SET version = 2")


def _releases() -> None:
    op.create_table(
        "releases",
        sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), primary_key=True),
        sa.Column("semver", sa.String(40), primary_key=True),
        sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"),
                  nullable=False, unique=True),
        sa.Column("released_at", TIME, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("bump", sa.String(10), nullable=False),
        sa.Column("previous", sa.String(40)),
    )


def _transitions() -> None:
    op.create_table(
        "version_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"),
                  nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("semver", sa.String(40)),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_version_transitions_dataset", "version_transitions", ["dataset", "at"])


def _audit() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", TIME),
    )


def _lineage_events() -> None:
    op.create_table(
        "lineage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("ol_run_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("event_time", TIME, nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("version_id", sa.String(64)),
        sa.Column("event", sa.JSON, nullable=False),
    )
    op.create_index("ix_lineage_events_run", "lineage_events", ["run_id", "id"])
    op.create_index("ix_lineage_events_dataset", "lineage_events", ["dataset", "event_time"])


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
    with op.batch_alter_table("files") as batch:
        batch.drop_column("content_sha256")
