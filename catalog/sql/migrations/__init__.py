"""Versioned schema migrations of the catalog (Alembic), applied when a catalog is opened.

Add a revision when a table or column changes: copy the newest file in ``versions/``, give it
the next number, set ``down_revision`` to the previous one, and write the operations with
``alembic.op``. Revisions are frozen snapshots: they do not import table definitions that may
change later.
"""
