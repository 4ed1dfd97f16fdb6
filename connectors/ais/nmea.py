"""AIS vessel positions from raw NMEA sentences (kind ``ais_nmea``).

The kind emits the schema of :mod:`connectors.ais.schema`, one row per AIS *record*: one
assembled message (a single sentence, or all fragments of a multi-sentence message, framed by
:mod:`connectors.ais.framing`), or a line that could not become part of one. Every decoded
message is a row, whatever its type: position reports (1, 2, 3, 18, 19, 27), base stations
(4, 11), SAR aircraft (9), aids to navigation (21) and DGNSS (17) carry a position; static and
voyage reports (5, 24A/B) and the exotic types carry a null position. Static fields are then
joined onto every row of the same MMSI (last static report in the chunk wins), so a position row
carries the vessel's name, type and dimensions and nothing is emitted twice or dropped. Lines
that cannot be used go to quarantine with a reason: ``not_nmea``, ``truncated``,
``bad_checksum``, ``orphan_fragment``, ``empty_payload``, ``decode_error``. Blank lines are not
records.

Framing is vectorised over the chunk's lines with pyarrow; only the bit decoding of each
message's payload is a loop, done by pyais.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyais.bit_vector import bit_vector
from pyais.exceptions import AISBaseException
from pyais.messages import MSG_CLASS
from pydantic import Field, field_validator

from connectors import integrity
from connectors.ais import schema as S
from connectors.ais.framing import ARMOR, assemble, frame, nmea_chunk_lines
from connectors.ais.lines import AisConfig, Records, plan_chunks
from connectors.base import ChunkResult, ChunkSpec, Connector, SourcePlan


class AisNmeaConfig(AisConfig):
    kind: Literal["ais_nmea"] = "ais_nmea"
    join_static: bool = Field(
        default=True,
        description="fill static fields (name, type, dimensions...) onto every row of the same "
                    "MMSI")
    fields: tuple[str, ...] = Field(
        default=S.DEFAULT_FIELDS,
        description="decoded fields kept beyond the fixed vessel-position columns; [] keeps none "
                    "(haina kinds ais_nmea lists them)",
        examples=[["rot", "to_bow", "to_stern", "eta_month", "eta_day"]])

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return S.check_fields(value)


# --- payload decoding (pyais) --------------------------------------------------------------------

#: fewest payload bits of the fixed-length types whose fields this connector reads
_MIN_BITS = {1: 168, 2: 168, 3: 168, 4: 168, 11: 168, 5: 420, 9: 168, 18: 168, 19: 312, 21: 272,
             24: 160, 27: 96}
_MAX_TYPE = 27
_FLOAT64 = pa.float64()
#: pyais field -> output column
_FIELDS = {"msg_type": "msg_type", "mmsi": "mmsi", "status": "nav_status", "speed": "sog",
           "lon": "longitude", "lat": "latitude", "course": "cog", "heading": "heading",
           "shipname": "vessel_name", "name": "vessel_name", "ship_type": "vessel_type",
           "callsign": "callsign", "imo": "imo", "draught": "draught",
           "destination": "destination", "to_bow": "to_bow", "to_stern": "to_stern",
           "to_port": "to_port", "to_starboard": "to_starboard",
           # fields a recipe may add (``fields:``)
           "turn": "rot", "accuracy": "position_accuracy", "raim": "raim",
           "maneuver": "maneuver", "second": "second", "epfd": "epfd", "month": "eta_month",
           "day": "eta_day", "hour": "eta_hour", "minute": "eta_minute",
           "ais_version": "ais_version", "dte": "dte"}
#: output column -> the pyais fields it is decoded from (an extra column may need several)
_NEEDS = {"length": ("to_bow", "to_stern"),
          "width": ("to_port", "to_starboard")}


def _payload_checks(msgs: dict[str, pa.Array], rejects: Records) -> dict[str, pa.Array]:
    """Reject empty, mis-armoured, unknown-type and short payloads, all vectorised."""
    payload = msgs["payload"]
    empty = np.asarray(pc.equal(payload, ""))
    armor_ok = np.asarray(pc.match_substring_regex(payload, ARMOR))
    first = np.frombuffer(pc.cast(pc.utf8_slice_codeunits(payload, 0, 1), pa.binary())
                          .to_numpy(zero_copy_only=False).astype("S1").tobytes(), np.uint8)
    six = first.astype(np.int16) - 48
    mtype = np.where(six > 40, six - 8, six)
    bits = np.asarray(pc.utf8_length(payload)).astype(np.int64) * 6 \
        - np.asarray(msgs["fill"]).astype(np.int64)
    need = np.array([_MIN_BITS.get(t, 38) for t in range(64)])[np.clip(mtype, 0, 63)]
    unknown = ~empty & armor_ok & (mtype > _MAX_TYPE)
    short = ~empty & armor_ok & ~unknown & (bits < need)
    checks = ((empty, "empty_payload", None), (~empty & ~armor_ok, "decode_error", None),
              (unknown, "decode_error", "unknown"), (short, "truncated", "short"))
    for mask, reason, kind in checks:
        rejects.add(reason, _payload_details(kind, reason, mtype[mask], bits[mask], need[mask]),
                    msgs["position"].filter(pa.array(mask)), msgs["raw"].filter(pa.array(mask)))
    good = pa.array(~(empty | ~armor_ok | unknown | short))
    out = {k: v.filter(good) for k, v in msgs.items()}
    out["type"] = pa.array(mtype).filter(good)
    return out


def _payload_details(kind, reason, mtype, bits, need) -> list[str] | str:
    if reason == "empty_payload":
        return "sentence has no payload"
    if kind is None:
        return "payload has characters outside the AIS six-bit alphabet"
    if kind == "unknown":
        return [f"unknown AIS message type {t}" for t in mtype]
    return [f"payload has {b} bits; type {t} needs at least {n}"
            for t, b, n in zip(mtype, bits, need, strict=True)]


def decode_payloads(msgs: dict[str, pa.Array], rejects: Records,
                    wanted: frozenset[str] | None = None) -> pa.Table:
    """Decode with pyais, then gather the fields per message class (one column op per class)."""
    payloads = pc.cast(msgs["payload"], pa.binary()).to_pylist()
    decoded: list[Any] = []  # a pyais message, or None where it failed
    failed: list[tuple[int, str]] = []
    for i, (payload, fill, mtype) in enumerate(zip(payloads, msgs["fill"].to_pylist(),
                                                   msgs["type"].to_pylist(), strict=True)):
        try:
            decoded.append(MSG_CLASS[mtype].from_vector(bit_vector(payload, fill)))
        except (AISBaseException, ValueError, IndexError, KeyError, TypeError) as err:
            decoded.append(None)
            failed.append((i, f"pyais could not decode the payload: {err!r}"))
    if failed:
        idx = pa.array([i for i, _ in failed], pa.int64())
        rejects.add("decode_error", [d for _, d in failed], msgs["position"].take(idx),
                    msgs["raw"].take(idx))
    return _gather_fields(decoded, wanted)


def wanted_fields(columns) -> frozenset[str]:
    """The decoded (``_FIELDS``) outputs needed to build ``columns``."""
    wanted = set(columns) | {"msg_type", "mmsi"}
    for column in columns:
        wanted.update(_NEEDS.get(column, ()))
    return frozenset(wanted)


def _gather_fields(decoded: list, wanted: frozenset[str] | None = None) -> pa.Table:
    by_class: dict[Any, list[int]] = {}  # pyais message class -> rows
    for i, msg in enumerate(decoded):
        if msg is not None:
            by_class.setdefault(type(msg), []).append(i)
    tables = [pa.table({"_i": pa.array([-1], pa.int64())}).slice(0, 0)]
    for cls, rows in by_class.items():
        # a getattr per message and field: only the fields the output uses
        names = [f.name for f in cls.fields() if f.name in _FIELDS
                 and (wanted is None or _FIELDS[f.name] in wanted)]
        msgs = [decoded[i] for i in rows]
        cols = {_FIELDS[name]: pa.array([getattr(m, name) for m in msgs]) for name in names}
        cols = {k: (pc.cast(v, pa.int64()) if pa.types.is_integer(v.type) else v)
                for k, v in cols.items()}
        tables.append(pa.table({"_i": pa.array(rows, pa.int64()), **cols}))
    table = pa.concat_tables(tables, promote_options="permissive").sort_by("_i")
    return table


def _dgnss_degrees(minutes: pa.Array, bits: int) -> pa.Array:
    """Type 17 positions: pyais 3.3 returns the field as *unsigned* minutes; ITU-R M.1371 (and
    gpsd's AIVDM notes) define a signed 1/10-minute integer. Undo both here, vectorised."""
    raw = pc.round(pc.multiply(minutes, 10.0))
    signed = pc.if_else(pc.greater_equal(raw, 2.0 ** (bits - 1)),
                        pc.subtract(raw, 2.0 ** bits), raw)
    return pc.divide(signed, 600.0)


def nmea_columns(table: pa.Table, time: pa.Array) -> dict[str, pa.Array]:
    """Turn decoded pyais fields into cleaned canonical columns."""
    n = table.num_rows

    def col(name: str, dtype: pa.DataType = _FLOAT64) -> pa.Array:
        if name in table.column_names:
            return pc.cast(table[name].combine_chunks(), dtype)
        return pa.nulls(n, dtype)

    mtype = col("msg_type", pa.int16())
    dgnss = pc.equal(mtype, 17)
    return {
        "time": time, "msg_type": mtype, "mmsi": col("mmsi", pa.int64()),
        "latitude": S.clean_latitude(pc.if_else(dgnss, _dgnss_degrees(col("latitude"), 17),
                                                col("latitude"))),
        "longitude": S.clean_longitude(pc.if_else(dgnss, _dgnss_degrees(col("longitude"), 18),
                                                  col("longitude"))),
        "sog": S.clean_sog(col("sog"), mtype), "cog": S.clean_cog(col("cog"), mtype),
        "heading": S.clean_heading(col("heading")), "nav_status": col("nav_status", pa.int16()),
        "vessel_type": S.zero_is_null(col("vessel_type", pa.int16())),
        "vessel_name": S.clean_text(col("vessel_name", pa.string())),
        "callsign": S.clean_text(col("callsign", pa.string())),
        "destination": S.clean_text(col("destination", pa.string())),
        "imo": S.zero_is_null(col("imo", pa.int64())),
        "length": S.zero_is_null(pc.add(col("to_bow"), col("to_stern"))),
        "width": S.zero_is_null(pc.add(col("to_port"), col("to_starboard"))),
        "draught": S.zero_is_null(col("draught")),
        **_extra_columns(col, mtype),
    }


def rot_indicators(payloads: pa.Array, mtype: pa.Array) -> pa.Array:
    """The transmitted ROT_AIS indicator (signed 8 bits at payload bits 42-49 of types 1-3),
    read from the armoured payload for the whole chunk at once.

    pyais returns the rate in whole degrees/min, sign(r) * round((r / 4.733)^2), which is not
    invertible (indicators 4 and 5 both give 1 degree/min), so the indicator is read here: bits
    42-47 are the seventh six-bit character, bits 48-49 the top of the eighth.
    """
    chars = pc.cast(pc.utf8_slice_codeunits(payloads, 7, 9), pa.binary())
    # "00" pads payloads shorter than 9 characters (types without a rate of turn)
    padded = pc.binary_join_element_wise(chars, pa.scalar(b"00", pa.binary()),
                                         pa.scalar(b"", pa.binary()))
    two = np.frombuffer(padded.to_numpy(zero_copy_only=False).astype("S2").tobytes(), np.uint8)
    six = two.reshape(-1, 2).astype(np.int16) - 48
    six = np.where(six > 40, six - 8, six)
    raw = ((six[:, 0] << 2) | (six[:, 1] >> 4)) & 0xFF
    raw = np.where(raw > 127, raw - 256, raw).astype(np.int16)
    rated = pc.fill_null(pc.is_in(mtype, value_set=pa.array([1, 2, 3], pa.int16())), False)
    return pc.if_else(rated, pa.array(raw, pa.int16()), pa.nulls(len(raw), pa.int16()))


def _extra_columns(col, mtype: pa.Array) -> dict[str, pa.Array]:
    """The ``fields:`` columns, cleaned like the fixed ones: "not available" codes become null.

    Types 4 and 11 (base station) carry the station's UTC date and time in fields pyais names
    month/day/hour/minute/second: they are not an ETA or a fix second, so they stay null here.
    """
    def only(values: pa.Array, types) -> pa.Array:
        keep = pc.fill_null(pc.is_in(mtype, value_set=pa.array(types, pa.int16())), False)
        return pc.if_else(keep, values, pa.nulls(len(values), values.type))

    def not_code(values: pa.Array, code: int) -> pa.Array:
        return S.null_where(values, pc.equal(values, code))

    rot = col("rot")
    raw = col("rot_raw", pa.int16())
    report = [t for t in range(1, 28) if t not in (4, 11)]
    return {
        "rot": S.null_where(rot, pc.is_in(raw, value_set=pa.array([-128, -127, 127],
                                                                   pa.int16()))),
        "rot_raw": raw,
        "position_accuracy": col("position_accuracy", pa.bool_()),
        "raim": col("raim", pa.bool_()),
        "maneuver": S.zero_is_null(col("maneuver", pa.int16())),
        "second": only(not_code(col("second", pa.int16()), 60), report),
        "epfd": S.zero_is_null(col("epfd", pa.int16())),
        **{name: S.zero_is_null(col(name, pa.int16()))
           for name in ("to_bow", "to_stern", "to_port", "to_starboard")},
        "eta_month": only(S.zero_is_null(col("eta_month", pa.int16())), [5]),
        "eta_day": only(S.zero_is_null(col("eta_day", pa.int16())), [5]),
        "eta_hour": only(not_code(col("eta_hour", pa.int16()), 24), [5]),
        "eta_minute": only(not_code(col("eta_minute", pa.int16()), 60), [5]),
        "ais_version": only(col("ais_version", pa.int16()), [5]),
        "dte": col("dte", pa.bool_()),
    }


def read_nmea(config: AisNmeaConfig, chunk: ChunkSpec, plan_schema: pa.Schema) -> ChunkResult:
    integrity.check_text(chunk.uri)  # the plan never opens the file: refuse binary/UTF-16 here
    lines, first_line = nmea_chunk_lines(chunk.uri, chunk.start, chunk.stop)
    return decode_lines(lines, first_line, chunk.uri, plan_schema, config.join_static)


def decode_lines(lines: list[bytes], first_line: int, source_file: str, plan_schema: pa.Schema,
                 join_static: bool = True) -> ChunkResult:
    """Frame, assemble and decode raw NMEA lines into one chunk result."""
    rejects = Records(source_file)
    fields = frame(lines, first_line, rejects)
    msgs = _payload_checks(assemble(fields, rejects), rejects)
    decoded = decode_payloads(msgs, rejects, wanted_fields(plan_schema.names))
    if "rot_raw" in plan_schema.names:
        decoded = decoded.append_column("rot_raw", rot_indicators(
            msgs["payload"].take(decoded["_i"]), pc.cast(decoded["msg_type"], pa.int16())
            .combine_chunks() if "msg_type" in decoded.column_names
            else pa.nulls(decoded.num_rows, pa.int16())))
    columns = nmea_columns(decoded, msgs["time"].take(decoded["_i"]))
    if join_static:
        columns = S.fill_static_by_mmsi(columns)
    table = S.finish(columns, source_file, plan_schema)
    # Records: every non-blank line, less the fragments merged into an earlier first fragment.
    rows_in = rejects.lines - rejects.merged
    return ChunkResult(table=table, rows_in=rows_in, quarantine=rejects.table())


class AisNmea(Connector):
    """AIS NMEA 0183 sentences (!AIVDM/!AIVDO, multi-part joined) to vessel positions."""

    kind = "ais_nmea"
    config_model = AisNmeaConfig

    def plan(self, config: AisNmeaConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        infos = S.column_infos({v: k for k, v in _FIELDS.items()}
                               | {"time": "tag block c: / NAIS receiver time",
                                  "length": "to_bow+to_stern", "width": "to_port+to_starboard",
                                  "rot_raw": "payload bits 42-49 (types 1-3)",
                                  "source_file": "uri"},
                               {"rot": "degree/min", "to_bow": "m", "to_stern": "m",
                                "to_port": "m", "to_starboard": "m"},
                               fields=config.fields)
        return SourcePlan(uri=uri, sha256=sha256, size=size, schema=S.schema(infos),
                          columns=infos, chunks=plan_chunks(config, uri, sha256, size),
                          attributes={"format": "NMEA 0183 AIVDM/AIVDO"})

    def read(self, config: AisNmeaConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        return read_nmea(config, chunk, plan_schema)
