"""Row accounting per source file: rows in, out, dropped and quarantined.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COUNTS = ("rows_in", "rows_out", "rows_dropped", "rows_quarantined")


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        for name in COUNTS:
            batch.add_column(sa.Column(name, sa.BigInteger))
    op.execute("UPDATE schema_info SET version = 3")


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        for name in COUNTS:
            batch.drop_column(name)
