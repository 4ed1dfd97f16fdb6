"""The SQL catalog backend: SQLite and PostgreSQL engines, tables and migrations."""
