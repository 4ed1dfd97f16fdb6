"""Quarantine: the records a connector read but could not use, with a reason code each.

Bad records are never dropped silently (STYLE habit 7). Every connector collects them with one
:class:`Quarantine` per chunk and hands :meth:`Quarantine.table` to
:class:`connectors.base.ChunkResult`; the pipeline counts them by ``reason`` and writes them to
the quarantine partition.

A check rejects a whole mask of rows at once, so :meth:`Quarantine.add` takes arrays (one reason
code for all of them, or one per row) and keeps them as Arrow arrays until the table is built;
there is no per-row Python append. Positions are whatever the kind counts records by (1-based
line number, 0-based record or observation index); a kind that only knows positions relative to
its chunk adds them locally and gives the chunk's first position to :meth:`Quarantine.table`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Schema of quarantined records: every record a connector reads but cannot use lands here.
QUARANTINE_SCHEMA = pa.schema([
    pa.field("reason", pa.string(), nullable=False),   # stable code, e.g. "bad_checksum"
    pa.field("detail", pa.string()),                   # human-readable: what and why
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("position", pa.int64()),                  # line number (1-based) or record index
    pa.field("raw", pa.string()),                      # the offending text, when there is one
])

#: strings per row: a Python sequence, a numpy array or an Arrow array
Strings: TypeAlias = Sequence[str | None] | np.ndarray | pa.Array | pa.ChunkedArray
#: integer positions per row
Positions: TypeAlias = Sequence[int] | np.ndarray | pa.Array | pa.ChunkedArray
#: the details of the rows given by index, built for rejected rows only
Describe: TypeAlias = Callable[[np.ndarray], Strings]


def quarantine_table(reasons: Strings, details: Strings, source_file: str,
                     positions: Positions, raws: Strings) -> pa.Table:
    """Build a quarantine table from equal-length sequences (vectorised; no per-row work)."""
    n = len(reasons)
    return pa.table({
        "reason": _strings(reasons),
        "detail": _strings(details),
        "source_file": pa.repeat(pa.scalar(source_file, pa.string()), n),
        "position": _positions(positions),
        "raw": _strings(raws),
    }, schema=QUARANTINE_SCHEMA)


class Quarantine:
    """The rejected records of one chunk, collected as whole arrays.

    ``add`` once per check (a mask of rows), ``table`` once per chunk. ``len()`` is the number of
    records collected so far.
    """

    def __init__(self, source_file: str):
        self.source_file = source_file
        self._parts: list[pa.Table] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, reason: str | Strings, detail: str | Strings | None, positions: Positions,
            raws: Strings | None = None) -> None:
        """Quarantine the records at ``positions``.

        ``reason`` and ``detail`` are one string for every record or one per record; ``raws``
        is the text of each record, or None where a kind has no text (a netCDF cell).
        """
        n = len(positions)
        if not n:
            return
        self._parts.append(pa.table({
            "reason": _per_row(reason, n), "detail": _per_row(detail, n),
            "position": _positions(positions),
            "raw": pa.nulls(n, pa.string()) if raws is None else _strings(raws),
        }))
        self._count += n

    def table(self, first_position: int = 0) -> pa.Table:
        """The quarantine table, ordered by position (stable: one record's checks keep their
        order); ``first_position`` is added to every position (the chunk's first line)."""
        parts = self._parts or [_EMPTY]
        body = pa.concat_tables(parts).combine_chunks()
        if first_position:
            body = body.set_column(2, "position", pc.add(body["position"],
                                                         pa.scalar(first_position, pa.int64())))
        if len(parts) > 1:
            body = body.take(pc.sort_indices(body["position"]))  # arrow's sort is stable
        n = body.num_rows
        return pa.table({
            "reason": body["reason"], "detail": body["detail"],
            "source_file": pa.repeat(pa.scalar(self.source_file, pa.string()), n),
            "position": body["position"], "raw": body["raw"],
        }, schema=QUARANTINE_SCHEMA)

    def table_or_none(self, first_position: int = 0) -> pa.Table | None:
        """:meth:`table`, or None when nothing was quarantined (kinds whose chunks report
        "no quarantine" rather than an empty one)."""
        return self.table(first_position) if self._count else None


class RowChecks:
    """First problem wins, over the rows of one parsed table.

    Each check gives a mask of bad rows; the rows not rejected by an earlier check go to the
    quarantine with the check's reason, so a record with several problems is quarantined once.
    ``positions[i]`` and ``raws(indices)`` say where row ``i`` is in the file and what it said;
    details and raw text are built for rejected rows only, so a clean column costs one mask.
    """

    def __init__(self, quarantine: Quarantine, positions: np.ndarray,
                 raws: Callable[[np.ndarray], Strings | None]):
        self.quarantine = quarantine
        self.positions = np.asarray(positions, dtype=np.int64)
        self.raws = raws
        self.rejected = np.zeros(self.positions.size, dtype=bool)

    def reject(self, reason: str, bad: np.ndarray, detail: str | Describe) -> None:
        """Quarantine the rows where ``bad`` that no earlier check rejected."""
        new = np.flatnonzero(np.asarray(bad, dtype=bool) & ~self.rejected)
        if not new.size:
            return
        self.rejected[new] = True
        self.quarantine.add(reason, detail if isinstance(detail, str) else detail(new),
                            self.positions[new], self.raws(new))


_EMPTY = pa.table({"reason": pa.array([], pa.string()), "detail": pa.array([], pa.string()),
                   "position": pa.array([], pa.int64()), "raw": pa.array([], pa.string())})


def _per_row(value: str | Strings | None, n: int) -> pa.Array:
    if value is None or isinstance(value, str):
        return pa.repeat(pa.scalar(value, pa.string()), n)
    return _strings(value)


def _strings(values: Strings) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values.cast(pa.string())
    if isinstance(values, np.ndarray):
        values = values.tolist()
    return pa.array(values, pa.string())


def _positions(values: Positions) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values.cast(pa.int64())
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64())
