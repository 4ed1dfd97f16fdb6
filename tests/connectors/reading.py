"""Plan and read a whole source with any connector, checking the contract on every chunk."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

import connectors
from connectors.base import QUARANTINE_SCHEMA


def config_for(kind: str, path: Path, **fields):
    """The validated recipe entry of ``kind`` for ``path``."""
    model = connectors.get(kind).config_model
    return model.model_validate({"kind": kind, "uri": str(path), **fields})


def plan_source(kind: str, path: Path, **fields):
    config = config_for(kind, path, **fields)
    return connectors.get(kind).plan(config, str(path), "0" * 64, path.stat().st_size)


def read_source(kind: str, path: Path, **fields):
    """``(plan, table, quarantine, results)``; asserts the accounting identity per chunk."""
    config = config_for(kind, path, **fields)
    connector = connectors.get(kind)
    plan = connector.plan(config, str(path), "0" * 64, path.stat().st_size)
    results = [connector.read(config, chunk, plan.schema) for chunk in plan.chunks]
    for r in results:
        assert r.rows_in == r.table.num_rows + r.rows_dropped + r.rows_quarantined
        assert r.table.schema.equals(plan.schema, check_metadata=True)
    table = pa.concat_tables([r.table for r in results])
    quarantine = pa.concat_tables([r.quarantine for r in results if r.quarantine is not None]
                                  or [QUARANTINE_SCHEMA.empty_table()])
    return plan, table, quarantine, results
