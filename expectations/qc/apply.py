"""QC of one chunk table: the pipeline's entry point (pure; no Beam, no I/O after planning).

``plan_qc`` (:mod:`expectations.qc.plan`) runs once in the driver and resolves thresholds into a
small picklable :class:`QCPlan`. ``apply_qc`` runs per chunk on a worker: it adds ``uint8`` flag
columns ``<var>_qc_<test>`` and the aggregate ``<var>_qc`` (plus row-level ``qc_location``,
``qc_region``, ``qc_speed``, ``qc_distance`` and ``qc_time``, which count in every variable's
aggregate), says which rows a hard test failed, and returns exact, mergeable stats
(:mod:`expectations.qc.stats`). :func:`quarantine_rows` turns the hard-failed rows into
quarantine records that keep the rows' content.

Ordered tests see one chunk at a time: a platform's series split across chunks is tested per
chunk, so the first/last samples of a chunk are NOT_EVALUATED by spike and rate of change.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import QUARANTINE_SCHEMA, ColumnInfo
from expectations.qc import columns as cols
from expectations.qc import flags as fl
from expectations.qc import ordering, seawater
from expectations.qc import position as qc_position
from expectations.qc import qartod as qc
from expectations.qc.plan import QCPlan, VariablePlan, planned_columns
from expectations.qc.stats import qc_stats

#: approximate dbar per metre of depth; the density test only needs pressure for the adiabatic
#: correction of temperature, where a 1 % error is far below 0.001 degC
DBAR_PER_M = 1.01
#: variable tests run along a platform's (and profile's) series
_ORDERED = ("spike", "rate_of_change", "flat_line", "attenuated_signal")


@dataclasses.dataclass
class QCResult:
    table: pa.Table
    hard_fail: pa.BooleanArray
    reasons: pa.StringArray
    stats: dict


# --------------------------------------------------------------------------- applying


@dataclasses.dataclass
class _Chunk:
    """The numpy views of one table that every test reads (built once per chunk).

    ``perm``/``segment``: the order of the variables' ordered tests, (platform, profile, time,
    depth) with one segment per platform and profile. ``fix_perm``/``fix_segment``: the order of
    the position tests, (platform, time) with one segment per platform (speed compares a
    profile's fix with the previous profile's). Without a profile column both are the same.
    """

    table: pa.Table
    time: np.ndarray | None
    platform: np.ndarray | None
    perm: np.ndarray | None = None
    segment: np.ndarray | None = None
    fix_perm: np.ndarray | None = None
    fix_segment: np.ndarray | None = None

    @classmethod
    def of(cls, table: pa.Table, plan: QCPlan) -> _Chunk:
        time = cols.times(table) if "time" in table.column_names else None
        platform = cols.codes(table, plan.platform_column)
        chunk = cls(table, time, platform)
        if time is None:
            if "distance" in plan.row_tests:  # fixes in row order, per platform
                chunk.fix_perm, chunk.fix_segment = ordering.ordering(
                    platform, np.zeros(table.num_rows, "datetime64[us]"))
            return chunk
        # each sort costs a pass per chunk: only the tests that need an order pay for it
        if any(t in _ORDERED for v in plan.variables for t in v.tests):
            profile = cols.codes(table, plan.profile_column)
            depth = cols.depth(table) if profile is not None else None
            chunk.perm, chunk.segment = ordering.ordering(platform, time, profile=profile,
                                                          depth=depth)
        if {"speed", "distance"} & set(plan.row_tests):
            if plan.profile_column is None and chunk.perm is not None:
                chunk.fix_perm, chunk.fix_segment = chunk.perm, chunk.segment
            else:
                chunk.fix_perm, chunk.fix_segment = ordering.ordering(platform, time)
        return chunk

    def order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(perm, segment, time) of the ordered tests, which :meth:`of` sorts for whenever a
        variable has one and the chunk has times."""
        if self.perm is None or self.segment is None or self.time is None:
            raise RuntimeError("an ordered QC test ran on a chunk that was not sorted for it: "
                               "report this as a Haina bug")
        return self.perm, self.segment, self.time

    def fix_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(perm, segment) of the position tests (speed, distance)."""
        if self.fix_perm is None or self.fix_segment is None:
            raise RuntimeError("a speed or distance test ran on a chunk that was not sorted for "
                               "it: report this as a Haina bug")
        return self.fix_perm, self.fix_segment


def _ordered(fn, chunk: _Chunk, plan: QCPlan, values: np.ndarray, params: dict,
             overlap: int = 1) -> np.ndarray:
    """Run an ordered test per platform and profile, in order, and put the flags back in row
    order."""
    perm, segment, time = chunk.order()
    if fn is qc.spike:
        flags = ordering.windowed(qc.spike, values[perm], window=plan.window, overlap=1,
                                  segment=segment, **params)
    else:
        flags = ordering.windowed(fn, values[perm], time[perm], window=plan.window,
                                  overlap=overlap, segment=segment, **params)
    return ordering.unpermute(flags, perm)


def _variable_flags(chunk: _Chunk, plan: QCPlan, var: VariablePlan) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for test, p in var.tests.items():
        if test == "gross_range":  # widens the column to float64 only when it must
            out[test] = qc.gross_range(cols.native_floats(chunk.table, var.name), p["fail"],
                                       p["suspect"])
            continue
        x = cols.floats(chunk.table, var.name)
        if test == "climatology" and chunk.time is not None:
            out[test] = qc.climatology(x, chunk.time, cols.depth(chunk.table),
                                       _members(p["rows"]))
        elif test in _ORDERED and chunk.time is not None:
            out[test] = _ordered_test(test, chunk, plan, x, p)
    if var.source_scale is not None:
        out["source_flag"] = _source_flags(chunk.table, plan, var)
    return out


def _ordered_test(test: str, chunk: _Chunk, plan: QCPlan, x: np.ndarray, p: dict):
    if test == "spike":
        return _ordered(qc.spike, chunk, plan, x, {
            "suspect_threshold": p["suspect"], "fail_threshold": p["fail"],
            "method": p["method"]})
    if test == "rate_of_change":
        return _ordered(qc.rate_of_change, chunk, plan, x, {
            "suspect_threshold": p["suspect"], "fail_threshold": p["fail"]})
    perm, segment, time = chunk.order()
    if test == "attenuated_signal":
        overlap = qc.time_window_overlap(time[perm], p["period"], segment)
        return _ordered(qc.attenuated_signal, chunk, plan, x, {
            "suspect_threshold": p["suspect"], "fail_threshold": p["fail"],
            "period_seconds": p["period"], "check": p["check"], "min_obs": p["min_obs"]},
            overlap=overlap)
    longest = max(s for s in (p["suspect_seconds"], p["fail_seconds"], 0.0) if s is not None)
    overlap = qc.time_window_overlap(time[perm], longest, segment)
    return _ordered(qc.flat_line, chunk, plan, x, {
        "tolerance": p["tolerance"], "suspect_seconds": p["suspect_seconds"],
        "fail_seconds": p["fail_seconds"]}, overlap=overlap)


def _members(rows: list[dict]) -> list[qc.ClimatologyMember]:
    return [qc.ClimatologyMember(r["period"], r["start"], r["end"], tuple(r["suspect"]),
                                 None if r["fail"] is None else tuple(r["fail"]),
                                 r["depth_min"], r["depth_max"]) for r in rows]


def _source_flags(table: pa.Table, plan: QCPlan, var: VariablePlan) -> np.ndarray:
    if var.source_scale == "coops":
        pairs = []
        for name in plan.coops_columns:
            column = table.column(name).combine_chunks()
            pairs.append((pc.fill_null(column, 0).to_numpy(zero_copy_only=False),
                          column.is_null().to_numpy(zero_copy_only=False)))
        return fl.from_coops(pairs)
    if var.source_scale is None or var.source_column is None:
        raise RuntimeError(f"{var.name} has no source flag column to translate: report this as "
                           "a Haina bug")
    column = table.column(var.source_column).combine_chunks()
    codes = pc.fill_null(column.cast(pa.int16()), -1).to_numpy(zero_copy_only=False)
    return fl.SOURCE_SCALES[var.source_scale](codes, None)


def _row_flags(chunk: _Chunk, plan: QCPlan) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    tests = plan.row_tests
    table = chunk.table
    if {"location", "region", "speed", "distance"} & set(tests):
        lat, lon = cols.floats(table, "latitude"), cols.floats(table, "longitude")
        possible = qc_position.coordinates(lat, lon)
        if "location" in tests:
            out["location"] = possible
        if "region" in tests:
            out["region"] = qc_position.region(lat, lon, **tests["region"])
        # an impossible fix takes no part in speed and distance: the next fix is judged against
        # the last possible one
        usable = possible != fl.FAIL
        for test, fn in (("speed", qc_position.speed), ("distance", qc_position.distance)):
            if test in tests:
                out[test] = _fix_test(fn, chunk, lat, lon, usable, tests[test])
    if "time" in tests:
        not_before = tests["time"]["not_before"]
        out["time"] = qc.time_check(
            chunk.time, group=chunk.platform, depth=cols.depth(table),
            not_before=None if not_before is None else np.datetime64(not_before.rstrip("Z")),
            series=plan.platform_column is not None)
    return out


def _fix_test(fn, chunk: _Chunk, lat, lon, usable, limits: dict) -> np.ndarray:
    """Speed or distance per platform in time order (unwindowed: they look back to the last
    usable fix, however far; their memory is linear)."""
    perm, segment = chunk.fix_order()
    time = None if chunk.time is None else chunk.time[perm]
    flags = fn(lat[perm], lon[perm], suspect_threshold=limits["suspect"],
               fail_threshold=limits["fail"], time=time, segment=segment,
               usable=usable[perm])
    return ordering.unpermute(flags, perm)


def _density_flags(chunk: _Chunk, plan: QCPlan) -> np.ndarray | None:
    d = plan.density
    if d is None:
        return None
    table = chunk.table
    depth = cols.depth(table)
    profile = cols.codes(table, plan.profile_column)
    if depth is None or profile is None:
        raise RuntimeError("the density inversion test was planned for a chunk without depth or "
                           "profile column: report this as a Haina bug")
    sigma = seawater.sigma0(cols.floats(table, d["temperature"]),
                            cols.floats(table, d["salinity"]), depth * DBAR_PER_M)
    platform = chunk.platform if chunk.platform is not None else np.zeros(len(depth), np.int64)
    perm = np.lexsort((depth, profile, platform))  # stable: levels in depth order per profile
    segment = platform[perm] * (int(profile.max(initial=0)) + 2) + profile[perm]
    flags = ordering.windowed(qc.density_inversion, sigma[perm], depth[perm],
                              window=plan.window, overlap=1, segment=segment,
                              suspect_threshold=d["suspect"], fail_threshold=d["fail"])
    return ordering.unpermute(flags, perm)


def compute_flags(table: pa.Table, plan: QCPlan) -> dict[str, dict[str, np.ndarray]]:
    """``{var: {test: flags}}`` (``aggregate`` included) and ``{"": row tests}`` in row order."""
    chunk = _Chunk.of(table, plan)
    rows = _row_flags(chunk, plan)
    density = _density_flags(chunk, plan)
    out: dict[str, dict[str, np.ndarray]] = {"": rows}
    # the row tests count in every variable's aggregate: combine them once per chunk
    row_verdict = [fl.combine(*rows.values())] if rows else []
    for var in plan.variables:
        tests = _variable_flags(chunk, plan, var)
        if density is not None and plan.density is not None and var.name in (
                plan.density["temperature"], plan.density["salinity"]):
            tests["density_inversion"] = density
        parts = [*tests.values(), *row_verdict]
        aggregate = (fl.combine(*parts) if parts
                     else np.full(table.num_rows, fl.NOT_EVALUATED, np.uint8))
        # row tests judge the position/time, not the value: a missing value stays MISSING (an
        # infinite one is a value, failed by the gross range test)
        missing = np.isnan(cols.native_floats(table, var.name))
        if missing.any():
            aggregate[missing] = fl.MISSING
        tests["aggregate"] = aggregate
        out[var.name] = tests
    return out


# --------------------------------------------------------------------------- schema


def flag_field(name: str, derived_from: str, test: str) -> pa.Field:
    info = ColumnInfo(name, "flag", standard_name=f"{test}_quality_flag",
                      long_name=f"QARTOD {test.replace('_', ' ')} flag of {derived_from} "
                                "(1 good, 2 not evaluated, 3 suspect, 4 fail, 9 missing)",
                      source_name=derived_from)
    meta = {**info.metadata(), b"haina.derived_from": derived_from.encode(),
            b"haina.qc_test": test.encode(), b"haina.flag_values": b"1 2 3 4 9",
            b"haina.flag_meanings": b"good not_evaluated suspect fail missing"}
    # never null: a missing value is flagged 9. Declaring it lets Parquet store the column as
    # REQUIRED, without definition levels (16 % of the benchmark grid's write time)
    return pa.field(name, pa.uint8(), nullable=False, metadata=meta)


def qc_fields(plan: QCPlan) -> list[pa.Field]:
    """The flag fields :func:`apply_qc` adds (for the dataset schema, planned in the driver)."""
    return [flag_field(name, src, test) for name, src, test in planned_columns(plan)]


def extend_schema(schema: pa.Schema, plan: QCPlan) -> pa.Schema:
    """``schema`` with the QC flag fields inserted before ``source_file`` (or appended)."""
    position = (schema.get_field_index("source_file") if "source_file" in schema.names
                else len(schema))
    fields = list(schema)
    return pa.schema(fields[:position] + qc_fields(plan) + fields[position:],
                     metadata=schema.metadata)


_EXTENDED: dict[tuple[int, pa.Schema], tuple[QCPlan, pa.Schema, pa.Schema]] = {}


def _extended(schema: pa.Schema, plan: QCPlan) -> pa.Schema:
    """:func:`extend_schema`, built once per (plan, chunk schema) instead of once per chunk.

    Schemas hash and compare without metadata: the hit is checked with it, so a source whose
    columns carry other CF attributes gets its own entry.
    """
    key = (id(plan), schema)
    cached = _EXTENDED.get(key)
    if cached is None or cached[0] is not plan or not cached[1].equals(schema,
                                                                     check_metadata=True):
        if len(_EXTENDED) > 64:
            _EXTENDED.clear()
        cached = _EXTENDED[key] = (plan, schema, extend_schema(schema, plan))
    return cached[2]


def apply_qc(table: pa.Table, plan: QCPlan) -> QCResult:
    """Add the planned flag columns to ``table``, find hard-failed rows, and count."""
    n = table.num_rows
    if not plan.enabled:
        return QCResult(table, pa.array(np.zeros(n, bool)), pa.nulls(n, pa.string()), {})
    with cols.scope():
        return _apply(table, plan, n)


def _apply(table: pa.Table, plan: QCPlan, n: int) -> QCResult:
    flags = compute_flags(table, plan)
    arrays = {}
    for name, src, test in planned_columns(plan):
        arrays[name] = flags[""][test] if name == f"qc_{test}" else flags[src][test]
    out = _extended(table.schema, plan)
    columns = [table.column(f.name) if f.name in table.column_names
               else pa.array(arrays[f.name], pa.uint8()) for f in out]
    result = pa.Table.from_arrays(columns, schema=out)
    hard, reasons = _hard_fail(flags, plan, n)
    return QCResult(result, hard, reasons, qc_stats(result, plan, arrays, reasons))


def _hard_fail(flags, plan: QCPlan, n: int) -> tuple[pa.BooleanArray, pa.StringArray]:
    """Rows a hard test failed, and why (``qc_fail:<variable>:<test>``, or
    ``qc_fail:position:<test>`` / ``qc_fail:time:time`` for the row tests); the first reason
    found is kept."""
    hard = np.zeros(n, dtype=bool)
    reasons = pa.nulls(n, pa.string())
    for test in plan.hard_tests:  # a few (test, variable) pairs, each vectorised
        found = [(var.name, flags[var.name][test]) for var in plan.variables
                 if test in flags[var.name]]
        if test in flags[""]:
            found.append(("time" if test == "time" else "position", flags[""][test]))
        for name, verdict in found:
            failed = verdict == fl.FAIL
            if not failed.any():
                continue
            reasons = pc.if_else(pa.array(failed & ~hard), f"qc_fail:{name}:{test}", reasons)
            hard |= failed
    return pa.array(hard), reasons




# --------------------------------------------------------------------------- quarantine


def quarantine_rows(table: pa.Table, reasons: pa.Array) -> pa.Table:
    """Quarantine records (``connectors.base.QUARANTINE_SCHEMA``) of hard-failed rows that keep
    the rows' content: ``detail`` says in words which value failed which test, ``raw`` is the
    whole row as a JSON object (every column, flags included: time, position, values), so a
    quarantined row can be inspected, and restored, from the quarantine alone.

    ``table`` holds the failed rows, ``reasons`` their ``qc_fail:<name>:<test>`` codes. Built
    column by column with Arrow compute (loops over columns and distinct reasons, not rows).
    ``position`` stays null: a chunk's rows do not know their record number in the source file.
    """
    n = table.num_rows
    source = (table.column("source_file").cast(pa.string()) if "source_file" in
              table.column_names else pa.nulls(n, pa.string()))
    return pa.table({
        "reason": reasons.cast(pa.string()),
        "detail": _details(table, reasons),
        "source_file": pc.fill_null(source, ""),
        "position": pa.nulls(n, pa.int64()),
        "raw": json_rows(table),
    }, schema=QUARANTINE_SCHEMA)


def _details(table: pa.Table, reasons: pa.Array) -> pa.Array:
    details = pa.nulls(table.num_rows, pa.string())
    for reason in pc.unique(reasons).to_pylist():  # a few distinct (name, test) pairs
        if reason is None:
            continue
        _, name, test = reason.split(":", 2)
        shown = {"position": ("latitude", "longitude")}.get(name, (name,))
        parts = [pc.binary_join_element_wise(f"{c}=", _json_values(table.column(c)), "")
                 for c in shown if c in table.column_names]
        words = pc.binary_join_element_wise(*parts, ", ") if parts else pa.nulls(
            table.num_rows, pa.string())
        text = pc.binary_join_element_wise(words, f" failed the {test} test", "")
        details = pc.if_else(pc.equal(reasons, reason), text, details)
    return details


def json_rows(table: pa.Table) -> pa.Array:
    """Each row as a JSON object (strings escaped, non-finite floats and nulls as ``null``,
    times ISO 8601 in UTC): vectorised per column."""
    n = table.num_rows
    if not table.num_columns:
        return pa.array(["{}"] * n, pa.string())
    members = [pc.binary_join_element_wise(json.dumps(name) + ":", _json_values(column), "")
               for name, column in zip(table.column_names, table.columns, strict=True)]
    body = pc.binary_join_element_wise(*members, ",")
    return pc.binary_join_element_wise("{", body, "}", "")


_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _json_values(column) -> pa.Array:
    """One column's values as JSON text (``null`` for nulls)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.cast(kind.value_type), kind.value_type
    if pa.types.is_timestamp(kind):
        text = _quoted(pc.strftime(array, format="%Y-%m-%dT%H:%M:%SZ"))
    elif pa.types.is_floating(kind):
        text = pc.if_else(pc.is_finite(array), array.cast(pa.string()),
                          pa.scalar(None, pa.string()))
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        text = array.cast(pa.string())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = _quoted(array.cast(pa.string()))
    else:  # dates, decimals, binaries...: their text form, quoted
        try:
            text = _quoted(array.cast(pa.string()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            text = pa.nulls(len(array), pa.string())
    return pc.fill_null(text, "null")


def _quoted(text: pa.Array) -> pa.Array:
    for old, new in _ESCAPES:
        text = pc.replace_substring(text, old, new)
    # the other control characters have no short escape; they carry no data here
    text = pc.replace_substring_regex(text, "[\\x00-\\x1f]", " ")
    return pc.binary_join_element_wise('"', text, '"', "")
