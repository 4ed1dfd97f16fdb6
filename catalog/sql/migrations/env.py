"""Alembic environment: migrations run on the connection Haina opens the catalog with."""
from alembic import context

connection = context.config.attributes["connection"]
# batch mode lets SQLite alter tables (it rebuilds them), and is a no-op elsewhere
context.configure(connection=connection, render_as_batch=True,
                  version_table_schema=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
