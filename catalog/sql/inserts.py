"""The dialect's own INSERT, the one that has ``on_conflict_do_nothing/update``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

#: dialect name -> its INSERT construct that supports ``on_conflict_do_*``
_INSERTS: dict[str, Callable[[sa.Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def upsert_insert(conn: Connection, table: sa.Table) -> Any:
    """``INSERT INTO table`` with ``ON CONFLICT`` support, for ``conn``'s dialect."""
    return _INSERTS[conn.dialect.name](table)
