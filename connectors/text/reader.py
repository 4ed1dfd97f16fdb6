"""Reading one byte-range chunk of a station text file into canonical observations.

Four vectorised passes, never a Python loop over values:

1. :func:`connectors.text.lines.read_byte_range` reads the chunk's lines;
2. :func:`connectors.text.lines.scan_lines` keeps the well-formed ones;
3. :func:`connectors.text.columns.parse_buffer` hands them to ``pyarrow.csv``: numbers typed
   directly (fast path); only when a cell does not parse is the chunk re-read as strings to
   find the bad rows;
4. :func:`read_text_chunk` converts units, turns times into UTC and lays out the canonical
   observation schema; rejected rows go to the quarantine with their line numbers.

Line numbers of rejected rows need the count of newlines before the chunk; that prefix is read
only for chunks that have rejects, so clean multi-chunk files never pay for it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors import geo
from connectors.base import ChunkResult, ChunkSpec, ColumnInfo
from connectors.config import VariableMapping
from connectors.exceptions import IncompatibleSourceError, UnreadableSourceError
from connectors.quarantine import Quarantine
from connectors.text.columns import (
    VariablePlan,
    convert_variable,
    mask_missing,
    parse_buffer,
    plan_variable,
    to_float,
)
from connectors.text.config import StationConfig, TimeSpec
from connectors.text.layout import TextLayout
from connectors.text.lines import (
    line_number_at,
    raw_line_getter,
    read_byte_range,
    scan_lines,
    usable_lines,
)
from connectors.text.observations import (
    COORDINATES,
    SOURCE_FILE,
    assemble,
    check_unique,
    constant,
    observation_schema,
    time_info,
    time_order,
    wrap_longitude,
)
from connectors.text.times import parse_numeric_times, parse_times


def reject_rows(rejects: Quarantine, bad: np.ndarray, reason: str, detail, lines: np.ndarray,
                raw_line) -> None:
    """Quarantine rows where ``bad``; ``detail(i)``/``raw_line(i)`` run for those rows only."""
    idx = np.flatnonzero(bad)
    if idx.size:
        rejects.add([reason] * idx.size, [detail(i) for i in idx], lines[idx],
                    [raw_line(i) for i in idx])


def cell_detail(column: str, values: pa.Array, what: str):
    return lambda i: f"column {column!r}: {what} {values[int(i)].as_py()!r}"


@dataclasses.dataclass(frozen=True)
class TablePlan:
    """Everything a chunk read needs, recomputed from config + file head on each worker."""

    layout: TextLayout
    time_columns: tuple[int, ...]
    time_format: str
    timezone: str
    variables: tuple[VariablePlan, ...]
    coordinate_columns: dict[str, int]     # output coordinate -> source column index
    schema: pa.Schema
    columns: tuple[ColumnInfo, ...] = ()
    time_units: str | None = None           # numeric CF times: "<unit> since <epoch>"
    calendar: str = "standard"

    @property
    def time_label(self) -> str:
        return (f"units {self.time_units!r}" if self.time_units
                else f"format {self.time_format!r}")

    @property
    def numeric(self) -> frozenset[int]:
        idx = {self.layout.names.index(v.source) for v in self.variables}
        idx |= {i for name, i in self.coordinate_columns.items() if name != "station_id"}
        return frozenset(idx)


def read_text_chunk(plan: TablePlan, config: StationConfig, chunk: ChunkSpec,
                    station_id: str | None) -> ChunkResult:
    """Read one byte-range chunk into canonical observations plus quarantine."""
    data, offset = read_byte_range(chunk.uri, chunk.start, chunk.stop, plan.layout.data_start)
    rejects = Quarantine(chunk.uri)
    data, unusable = usable_lines(data, plan.layout, rejects)
    scanned = scan_lines(data, plan.layout)
    rejects.add(scanned.bad_reasons, scanned.bad_details, scanned.bad_lines, scanned.bad_raw)
    raw = raw_line_getter(data, scanned.good_lines)
    try:
        table = _typed_table(scanned.clean, plan, config, rejects, scanned.good_lines, raw)
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(
            f"bytes {chunk.start}-{chunk.stop}: pyarrow could not parse the cleaned lines: {err}",
            source=chunk.uri, fix="check delimiter and quote_char in the recipe") from err
    result = _observations(table, plan, config, rejects, scanned.good_lines, raw, station_id,
                           chunk.uri)
    # positions are line indices within the chunk until here: the prefix is read for rejects only
    quarantine = rejects.table_or_none(line_number_at(chunk.uri, offset) if len(rejects) else 0)
    return ChunkResult(table=result, rows_in=scanned.rows_in + unusable, rows_dropped=0,
                       quarantine=quarantine)


def _typed_table(clean: bytes, plan: TablePlan, config, rejects, lines, raw) -> pa.Table:
    """Fast path: pyarrow types the numbers; on a bad cell re-read as text to find the rows."""
    try:
        return parse_buffer(clean, plan.layout, plan.numeric)
    except pa.ArrowInvalid:
        text = parse_buffer(clean, plan.layout, plan.numeric, as_strings=True)
    bad_any = np.zeros(text.num_rows, bool)
    columns = {}
    for i in sorted(plan.numeric):  # loop over columns, each vectorised
        values, bad = to_float(text.column(i).combine_chunks())
        new = bad & ~bad_any
        reject_rows(rejects, new, "bad_number",
                    cell_detail(plan.layout.names[i], text.column(i).combine_chunks(),
                                "not a number:"), lines, raw)
        bad_any |= bad
        columns[f"c{i}"] = values
    for i, name in enumerate(text.column_names):
        columns.setdefault(name, text.column(i).combine_chunks())
    typed = pa.table(columns).select(text.column_names)
    return typed.append_column("_ok", pa.array(~bad_any))


def _observations(table, plan: TablePlan, config: StationConfig, rejects, lines, raw,
                  station_id, uri) -> pa.Table:
    ok = _ok_mask(table)
    times, bad_time, missing_time = _times(table, plan)
    label = "+".join(plan.layout.names[i] for i in plan.time_columns)
    for mask, reason, what in ((bad_time & ok, "bad_time", "cannot parse time"),
                               (missing_time & ok, "missing_time", "no time in")):
        if mask.any():  # the joined text is only built for chunks with rejects
            reject_rows(rejects, mask, reason,
                        cell_detail(label, _time_text(table, plan),
                                    f"{what} ({plan.time_label}):"), lines, raw)
    keep = ok & ~bad_time & ~missing_time
    mask = pa.array(keep)
    table, times, lines = table.filter(mask), times.filter(mask), lines[keep]
    order = time_order(times) if config.sort_by_time else None
    if order is not None:  # sort the parsed columns, before constant columns are added
        table, times = table.take(order), times.take(order)
    columns = {"time": times}
    columns.update(_coordinates(table, plan, config, station_id))
    for var in plan.variables:
        col = table.column(f"c{plan.layout.names.index(var.source)}").combine_chunks()
        columns[var.info.name] = convert_variable(col, var, config.fill_values)
    return assemble(plan.schema, columns, table.num_rows, uri)


def _ok_mask(table: pa.Table) -> np.ndarray:
    if "_ok" in table.column_names:
        return table.column("_ok").to_numpy()
    return np.ones(table.num_rows, bool)


def _time_text(table: pa.Table, plan: TablePlan) -> pa.Array:
    parts = [table.column(f"c{i}").combine_chunks().cast(pa.string()) for i in plan.time_columns]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, " ", null_handling="emit_null")


def _times(table: pa.Table, plan: TablePlan):
    text = _time_text(table, plan)
    if plan.time_units:
        times, bad = parse_numeric_times(text, plan.time_units, plan.calendar)
    else:
        times, bad = parse_times(text, plan.time_format, plan.timezone)
    missing = np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), bool)
    return times, bad, missing


def _coordinates(table, plan: TablePlan, config: StationConfig, station_id) -> dict:
    n = table.num_rows
    out = {
        "depth": constant(config.depth, n, pa.float64()),
        "latitude": constant(config.latitude, n, pa.float64()),
        "longitude": constant(None if config.longitude is None else
                              float(geo.longitude(config.longitude)), n, pa.float64()),
        "station_id": constant(station_id, n, pa.string()),
    }
    for name, i in plan.coordinate_columns.items():
        col = table.column(f"c{i}").combine_chunks()
        if name == "station_id":
            out[name] = pc.utf8_trim_whitespace(col.cast(pa.string()))
            continue
        col = mask_missing(col.cast(pa.float64()), config.fill_values)
        out[name] = wrap_longitude(col) if name == "longitude" else col
    return out


def make_table_plan(layout: TextLayout, config: StationConfig, uri: str, time: TimeSpec,
                    variables: dict[str, VariableMapping],
                    coordinate_columns: dict[str, str | None]) -> TablePlan:
    """Check the recipe against the header and compute the output schema."""
    time_idx = tuple(layout.index(c, uri, "time.columns") for c in time.columns)
    coords = {k: layout.index(v, uri, f"{k}_column")
              for k, v in coordinate_columns.items() if v}
    plans = []
    for source, mapping in variables.items():
        layout.index(source, uri, f"variables.{source}")
        plans.append(plan_variable(source, mapping, layout.units_of(source), uri))
    info = time_info("+".join(time.columns), time.timezone, time.format, time.units,
                     time.calendar)
    schema = observation_schema(info, plans)
    check_unique(schema, config, uri)
    columns = (info, *COORDINATES[1:], *(p.info for p in plans), SOURCE_FILE)
    return TablePlan(layout, time_idx, time.format, time.timezone, tuple(plans), coords, schema,
                     columns, time.units, time.calendar)


#: bytes of the data section sampled at plan time to tell numeric times from text times
_SAMPLE_BYTES = 64 * 1024


def check_time_text(plan: TablePlan, uri: str) -> None:
    """Refuse a time column that holds plain numbers when the recipe gives no ``time.units``.

    Without units every such row would be quarantined as ``bad_time`` (or, worse, a number that
    happens to match the format would be read as a date), so ``check`` stops here instead. Only
    the first lines are sampled; a column with any cell that parses as a time passes, and so
    does one where fewer than half the cells are numbers (those rows are quarantined as usual).
    """
    if plan.time_units or len(plan.time_columns) != 1:
        return
    start = plan.layout.data_start
    data, _ = read_byte_range(uri, start, start + _SAMPLE_BYTES, start)
    data, _ = usable_lines(data, plan.layout, Quarantine(uri))
    text = parse_buffer(scan_lines(data, plan.layout).clean, plan.layout, frozenset(),
                        as_strings=True).column(f"c{plan.time_columns[0]}").combine_chunks()
    text = text.filter(pc.is_valid(text))
    not_number = to_float(text)[1]
    if not len(text) or not_number.mean() > 0.5:
        return
    if not parse_times(text, plan.time_format, plan.timezone)[1].all():
        return
    name = plan.layout.names[plan.time_columns[0]]
    example = text[int(np.argmin(not_number))].as_py().strip()
    raise IncompatibleSourceError(
        f"time column {name!r} holds numbers (e.g. {example!r}) that "
        f"{plan.time_label} cannot read as times",
        source=uri, fix="give their CF units in the recipe, e.g. time: {columns: "
        f"{name}, units: 'days since 1700-01-01'}} (calendar: standard by default), or a "
        "strptime format such as '%Y%m%d' if they are dates written as digits")
