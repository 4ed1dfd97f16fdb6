"""Leases on dataset locks; the changelog and the documents of a release.

``locks.lease_expires_at`` is renewed by the holder's heartbeat, so a lock of a run that died on
another host is taken over once its lease runs out (NULL for locks taken before: only a pid
probe or ``haina unlock`` frees those). ``releases.changelog`` keeps what the card lists, and
``releases.documented_at`` says when the card and Croissant file were written, so that a
release killed after its commit gets them from the next ``haina release`` or ``haina verify``.
Releases made before this revision wrote their documents at release time: they are marked
documented as of their release.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("lease_expires_at", TIME))
    # 0002 once created ``releases`` from the code's live definition, so a catalog created
    # from scratch by those Haina releases has these columns already; 0002 is a frozen snapshot
    # now and creates the table without them
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("releases")}
    new = [sa.Column("changelog", sa.JSON), sa.Column("documented_at", TIME)]
    if any(c.name not in have for c in new):
        with op.batch_alter_table("releases") as batch:
            for column in new:
                if column.name not in have:
                    batch.add_column(column)
    op.execute("UPDATE releases SET documented_at = released_at WHERE documented_at IS NULL")
    op.execute("UPDATE schema_info SET version = 4")


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("documented_at")
        batch.drop_column("changelog")
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("lease_expires_at")
