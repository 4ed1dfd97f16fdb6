"""The one quarantine accumulator: arrays in, the standard table out, ordered by position."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from connectors.quarantine import QUARANTINE_SCHEMA, Quarantine, RowChecks


def test_an_empty_quarantine_is_an_empty_standard_table():
    quarantine = Quarantine("a.csv")
    assert len(quarantine) == 0
    assert quarantine.table().equals(QUARANTINE_SCHEMA.empty_table())
    assert quarantine.table_or_none() is None


def test_parts_are_broadcast_merged_and_ordered_by_position():
    quarantine = Quarantine("a.csv")
    quarantine.add("bad_time", "no time", np.array([7, 2]), pa.array(["l7", "l2"]))
    quarantine.add(["bad_number", "bad_flags"], ["x", "y"], [5, 2], None)
    table = quarantine.table(first_position=10)
    assert table.schema.equals(QUARANTINE_SCHEMA)
    assert table.to_pylist() == [
        {"reason": "bad_time", "detail": "no time", "source_file": "a.csv", "position": 12,
         "raw": "l2"},
        {"reason": "bad_flags", "detail": "y", "source_file": "a.csv", "position": 12,
         "raw": None},
        {"reason": "bad_number", "detail": "x", "source_file": "a.csv", "position": 15,
         "raw": None},
        {"reason": "bad_time", "detail": "no time", "source_file": "a.csv", "position": 17,
         "raw": "l7"},
    ]
    assert len(quarantine) == 4


def test_row_checks_quarantine_each_record_once_for_its_first_problem():
    quarantine = Quarantine("p.csv")
    positions = np.array([2, 3, 4, 5])
    raws = np.array(["a", "b", "c", "d"], dtype=object)
    checks = RowChecks(quarantine, positions, lambda rows: raws[rows])
    asked: list[list[int]] = []

    def detail(rows: np.ndarray) -> list[str]:
        asked.append(rows.tolist())
        return [f"row {r}" for r in rows]

    checks.reject("missing_id", np.array([False, True, False, False]), detail)
    checks.reject("bad_time", np.array([False, True, True, False]), "bad time")
    checks.reject("bad_value", np.zeros(4, bool), detail)
    assert checks.rejected.tolist() == [False, True, True, False]
    assert asked == [[1]]  # details are built for rejected rows only
    assert [(r["position"], r["reason"], r["detail"], r["raw"])
            for r in quarantine.table().to_pylist()] == [
        (3, "missing_id", "row 1", "b"), (4, "bad_time", "bad time", "c")]
