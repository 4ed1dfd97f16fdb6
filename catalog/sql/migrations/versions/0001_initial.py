"""The catalog as Haina 0.1 created it: datasets, runs, sources, versions, files, locks.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
COUNTS = ("rows_in", "rows_out", "rows_dropped", "rows_rejected")


def upgrade() -> None:
    op.create_table("schema_info", sa.Column("version", sa.Integer, nullable=False))
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(200), primary_key=True),
        *(sa.Column(c, sa.Text) for c in ("title", "description", "licence", "owner_name",
                                          "owner_email", "attribution", "classification")),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("version_id", sa.String(64)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("recipe_path", sa.Text),
        sa.Column("recipe_sha256", sa.String(64)),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("code_version", sa.Text),
        sa.Column("runner", sa.Text),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME),
        *(sa.Column(c, sa.BigInteger, nullable=False) for c in COUNTS),
        sa.Column("error", sa.Text),
        sa.Column("report_path", sa.Text),
    )
    op.create_index("ix_runs_dataset_started", "runs", ["dataset", "started_at"])
    op.create_table(
        "sources",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("uri", sa.Text, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("version_id", sa.String(64), primary_key=True),
        sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
    )
    op.create_index("ix_versions_dataset_created", "versions", ["dataset", "created_at"])
    op.create_table(
        "files",
        sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"),
                  primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("partition", sa.Text, nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("time_min", TIME),
        sa.Column("time_max", TIME),
    )
    op.create_table(
        "locks",
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", TIME, nullable=False),
    )
    op.execute("INSERT INTO schema_info (version) VALUES (1)")


def downgrade() -> None:
    for table in ("locks", "files", "versions", "sources", "runs", "datasets", "schema_info"):
        op.drop_table(table)
