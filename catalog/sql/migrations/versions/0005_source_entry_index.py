"""Sources keyed by recipe entry as well as URI: several entries may read one file.

A staggered grid (ROMS: ``u`` on ``(eta_u, xi_u)``, ``v`` on ``(eta_v, xi_v)``) is read by one
recipe entry per grid, all naming the same file, so ``sources`` rows are now unique per
``(run_id, source_index, uri)``. Rows of earlier runs came from entry 0 or from a file no other
entry named, so 0 keeps them unique and their meaning.

Revision ID: 0005
Revises: 0004
"""
import warnings

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite cannot alter a primary key: batch mode copies the table into the new definition
    # (and SQLAlchemy warns that the copy's key differs from the reflected one: that is the point)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*_alembic_tmp_sources.*primary_key",
                                category=sa.exc.SAWarning)
        with op.batch_alter_table("sources", recreate="always" if sqlite else "never") as batch:
            batch.add_column(sa.Column("source_index", sa.Integer, nullable=False,
                                       server_default="0"))
            if not sqlite:
                batch.drop_constraint("sources_pkey", type_="primary")
            batch.create_primary_key("sources_pkey", ["run_id", "source_index", "uri"])
    op.execute("UPDATE schema_info SET version = 5")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("sources", recreate="always" if sqlite else "never") as batch:
        if not sqlite:
            batch.drop_constraint("sources_pkey", type_="primary")
        batch.drop_column("source_index")
        batch.create_primary_key("sources_pkey", ["run_id", "uri"])
    op.execute("UPDATE schema_info SET version = 4")
