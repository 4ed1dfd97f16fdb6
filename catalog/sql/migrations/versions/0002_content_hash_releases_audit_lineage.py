"""Content hashes of data files; releases, version transitions, audit log, lineage events.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = ("releases", "version_transitions", "audit_log", "audit_head", "lineage_events")


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("content_sha256", sa.String(64)))
    # The feature tables are created from their definitions as of this revision; a later change
    # to any of them gets its own revision with explicit operations.
    from catalog.audit import log as audit
    from catalog.lineage import events as lineage
    from catalog.releases import lifecycle as release  # noqa: F401 - they register their tables
    from catalog.sql.backend import metadata

    bind = op.get_bind()
    metadata.create_all(bind, tables=[metadata.tables[name] for name in NEW_TABLES])
    op.execute("UPDATE schema_info SET version = 2")


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
    with op.batch_alter_table("files") as batch:
        batch.drop_column("content_sha256")
