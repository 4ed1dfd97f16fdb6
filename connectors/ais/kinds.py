"""AIS vessel positions: raw NMEA sentences (``ais_nmea``) and decoded CSV (``ais_csv``).

Both kinds emit the schema of :mod:`connectors.ais.schema`, one row per AIS *record*:

* ``ais_nmea``: a record is one assembled message (a single sentence, or all fragments of a
  multi-sentence message), or a line that could not become part of one. Every decoded message is a
  row, whatever its type: position reports (1, 2, 3, 18, 19, 27), base stations (4, 11), SAR
  aircraft (9), aids to navigation (21) and DGNSS (17) carry a position; static and voyage reports
  (5, 24A/B) and the exotic types carry a null position. Static fields are then joined onto every
  row of the same MMSI (last static report in the chunk wins), so a position row carries the
  vessel's name, type and dimensions and nothing is emitted twice or dropped. Lines that cannot be
  used go to quarantine with a reason: ``not_nmea``, ``truncated``, ``bad_checksum``,
  ``orphan_fragment``, ``empty_payload``, ``decode_error``. Blank lines are not records.
* ``ais_csv``: a record is one data line of the CSV (MarineCadastre or Danish ``aisdk`` layout).

Framing (regex split, checksum, tag blocks, receiver time) is vectorised over the chunk's lines
with pyarrow; only the bit decoding of each message's payload is a loop, done by pyais.
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from pyais.bit_vector import bit_vector
from pyais.exceptions import AISBaseException
from pyais.messages import MSG_CLASS
from pydantic import Field, field_validator

from connectors import integrity
from connectors.ais import schema as S
from connectors.ais.schema import LAYOUTS, CsvLayout
from connectors.base import ChunkResult, ChunkSpec, Connector, SourcePlan, quarantine_table
from connectors.config import SourceConfig, TextEncoding
from connectors.exceptions import (
    EncodingError,
    MissingVariableError,
    SourceNotFoundError,
    UnreadableSourceError,
)
from connectors.text.delimited import count_per_line

_MiB = 1 << 20


class _AisConfig(SourceConfig):
    reference_omit: ClassVar[tuple[str, ...]] = ("variables",)  # a fixed schema: refused

    chunk_bytes: int = Field(
        default=64 * _MiB, ge=4096,
        description="byte size of one chunk; files up to this size are read as one chunk",
        examples=[16777216])

    @field_validator("variables")
    @classmethod
    def _no_variables(cls, value):
        if value:
            raise ValueError("AIS sources have a fixed vessel-position schema; remove "
                             f"'variables' (got {sorted(value)})")
        return value


class AisNmeaConfig(_AisConfig):
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


class AisCsvConfig(_AisConfig):
    kind: Literal["ais_csv"] = "ais_csv"
    layout: Literal["marinecadastre", "aisdk", "auto"] = Field(
        default="auto",
        description="the column layout: marinecadastre (US), aisdk (Danish Maritime Authority), "
                    "or auto (from the header)")
    encoding: TextEncoding = "utf-8"



# --- byte ranges aligned to lines ----------------------------------------------------------------

def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def byte_chunks(size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``[start, stop)`` byte ranges; a line belongs to the range its first byte is in."""
    if size <= chunk_bytes:
        return [(0, size)]
    return [(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)]


def _first_line_start(handle, start: int) -> int:
    """Offset of the first line that starts at or after ``start`` (like Beam's text source)."""
    if start <= 0:
        return 0
    handle.seek(start - 1)
    handle.readline()
    return handle.tell()


def read_line_range(handle, start: int, stop: int, *, at_line_start: bool = False
                    ) -> tuple[bytes, int, int]:
    """The lines starting in ``[start, stop)``: their bytes, the 1-based number of the first one,
    and the offset just past them. ``at_line_start``: ``start`` is known to begin a line (the
    end of a header, which may end with a lone CR)."""
    begin = start if at_line_start else _first_line_start(handle, start)
    if begin >= stop:
        return b"", 0, begin
    # line numbers of a mid-file chunk need the line breaks before it (a C-speed scan)
    first_line = integrity.line_breaks(handle, begin) + 1
    handle.seek(begin)
    data = handle.read(stop - begin)
    if data and not data.endswith(b"\n"):
        data += handle.readline()
    return data, first_line, begin + len(data)


def _open(uri: str):
    try:
        return open(local_path(uri), "rb")
    except FileNotFoundError as err:
        raise SourceNotFoundError("file vanished between planning and reading", source=uri,
                                  fix="re-run the pipeline on a stable copy") from err
    except OSError as err:
        raise UnreadableSourceError(f"cannot open file: {err}", source=uri,
                                    fix="check the path and its permissions") from err


def _plan_chunks(config: _AisConfig, uri: str, sha256: str, size: int) -> tuple[ChunkSpec, ...]:
    return tuple(ChunkSpec(source_index=0, uri=uri, sha256=sha256, ordinal=i, start=a, stop=b)
                 for i, (a, b) in enumerate(byte_chunks(size, config.chunk_bytes)))


class _Rejects:
    """Quarantined records of one chunk, collected as whole arrays."""

    def __init__(self):
        self.parts: list[tuple[list, list, list, list]] = []
        self.lines = 0   # non-blank lines read (NMEA) or data lines (CSV)
        self.merged = 0  # fragments joined onto the first fragment of their message

    def add(self, reason: str, details, positions, raws) -> None:
        positions = _pylist(positions)
        if positions:
            details = [details] * len(positions) if isinstance(details, str) else _pylist(details)
            self.parts.append(([reason] * len(positions), details, positions, _pylist(raws)))

    def table(self, source_file: str) -> pa.Table:
        cols: tuple[list, list, list, list] = ([], [], [], [])
        for part in self.parts:
            for col, values in zip(cols, part):
                col.extend(values)
        order = np.argsort(np.asarray(cols[2], dtype=np.int64), kind="stable")
        cols = tuple([col[i] for i in order] for col in cols)
        return quarantine_table(cols[0], cols[1], source_file, cols[2], cols[3])


def _pylist(values) -> list:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    return list(values)


# --- NMEA framing (vectorised) -------------------------------------------------------------------

_SENTENCE = (r"^(?:\\(?P<tag>[^\\]*)\\)?(?P<body>!(?P<talker>[A-Za-z]{2})(?:VDM|VDO),"
             r"(?P<cnt>[0-9]),(?P<num>[0-9]),(?P<seq>[0-9]{0,4}),(?P<chan>[^,*]{0,2}),"
             r"(?P<payload>[^,*]*),(?P<fill>[0-5]))\*(?P<cs>[0-9A-Fa-f]{2})(?P<trail>,[^*]*)?$")
_TAG = r"^(?P<fields>[^*]*)(?:\*(?P<cs>[0-9A-Fa-f]{2}))?$"
_TAG_TIME = r"(?:^|,)c:(?P<c>[0-9]{1,15})(?:,|$)"
_TAG_GROUP = r"(?:^|,)g:(?P<gnum>[0-9]{1,4})-(?P<gtot>[0-9]{1,4})-(?P<gid>[0-9]{1,9})"
_RECEIVER_TIME = r",(?P<t>[0-9]{1,15})$"
_ARMOR = r"^[0-9:;<=>?@A-W`a-w]*$"
_HEX = np.array([f"{i:02X}" for i in range(256)], dtype=object)
#: the leading run of continuation fragments after a chunk boundary belongs to the chunk before;
#: bounded so that both chunks agree on the run without reading far
_MAX_RUN = 16
_CONTINUATION = re.compile(rb"^(?:\\[^\\]*\\)?![A-Za-z]{2}VD[MO],([1-9]),([1-9]),")


def _is_continuation(line: bytes) -> bool:
    match = _CONTINUATION.match(line.strip())
    return bool(match) and 1 < int(match.group(2)) <= int(match.group(1))


def _leading_run(lines: Sequence[bytes]) -> int:
    n = 0
    while n < min(len(lines), _MAX_RUN) and _is_continuation(lines[n]):
        n += 1
    return n


def nmea_chunk_lines(uri: str, start: int, stop: int) -> tuple[list[bytes], int]:
    """The chunk's lines and the number of its first line.

    A message belongs to the chunk holding its first fragment, so the chunk gives its leading run of
    continuation fragments to the chunk before, and takes the run that follows its own end.
    """
    with _open(uri) as handle:
        data, first_line, end = read_line_range(handle, start, stop)
        lines = integrity.normalise_newlines(data).split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        if start > 0:
            skip = _leading_run(lines)
            lines, first_line = lines[skip:], first_line + skip
        if lines:
            handle.seek(end)
            after = [handle.readline() for _ in range(_MAX_RUN)]
            lines += [line.rstrip(b"\n") for line in after[:_leading_run(after)]]
    return lines, first_line


def xor_checksums(strings: pa.Array) -> np.ndarray:
    """NMEA checksum (XOR of all bytes) of every string, vectorised with ``reduceat``."""
    strings = pa.array(strings.to_numpy(zero_copy_only=False), pa.string()) \
        if strings.offset else strings
    if len(strings) == 0:
        return np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[: len(strings) + 1]
    raw = strings.buffers()[2]
    data = np.frombuffer(raw, dtype=np.uint8)[: offsets[-1]] if raw is not None else \
        np.zeros(0, np.uint8)
    # a trailing zero keeps every start index in range; XOR with 0 changes nothing
    padded = np.append(data, np.uint8(0))
    sums = np.bitwise_xor.reduceat(padded, offsets[:-1])
    return np.where(np.diff(offsets) == 0, 0, sums).astype(np.uint8)


def _checksum_ok(bodies: pa.Array, expected: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    computed = _HEX[xor_checksums(bodies)]
    ok = np.asarray(pc.equal(pc.utf8_upper(expected), pa.array(computed, pa.string())))
    return ok, computed


def _classify(line: str) -> tuple[str, str]:
    """Why a line did not match the sentence pattern (runs on rejected lines only)."""
    body = line
    if line.startswith("\\"):
        end = line.find("\\", 1)
        if end < 0:
            return "truncated", "tag block is not closed by a backslash"
        body = line[end + 1:]
    if not re.match(r"^![A-Za-z]{2}VD[MO],", body):
        return "not_nmea", "not an !AIVDM/!AIVDO sentence"
    star = body.find("*")
    if star < 0 or not re.match(r"[0-9A-Fa-f]{2}", body[star + 1:star + 3]):
        return "truncated", "sentence ends before its *hh checksum"
    if body[:star].count(",") < 6:
        return "truncated", f"sentence has {body[:star].count(',') + 1} of 7 fields"
    return "decode_error", "malformed fields (fragment numbers, channel, fill bits or trailer)"


def _frame(lines: list[bytes], first_line: int, rejects: _Rejects) -> dict[str, pa.Array]:
    """Split lines into sentence fields; reject bad lines. Returns one array per field."""
    text = pa.array(b"\n".join(lines).decode("latin-1").split("\n") if lines else [],
                    pa.string())
    text = pc.utf8_trim_whitespace(text)
    positions = pa.array(np.arange(first_line, first_line + len(text), dtype=np.int64))
    keep = pc.greater(pc.utf8_length(text), 0)  # blank lines are not records
    text, positions = text.filter(keep), positions.filter(keep)
    rejects.lines += len(text)
    long = np.asarray(pc.greater(pc.utf8_length(text), integrity.MAX_LINE_BYTES))
    if long.any():  # keep a prefix only: a multi-MiB line would bloat the quarantine
        rejects.add("line_too_long", f"more than {integrity.MAX_LINE_BYTES} bytes",
                    positions.filter(pa.array(long)),
                    pc.utf8_slice_codeunits(text.filter(pa.array(long)), 0, integrity.RAW_KEEP))
        text, positions = text.filter(pa.array(~long)), positions.filter(pa.array(~long))
    parts = pc.extract_regex(text, _SENTENCE)
    matched = parts.is_valid()
    bad = pc.invert(matched)
    for line, pos in zip(text.filter(bad).to_pylist(), positions.filter(bad).to_pylist()):
        reason, detail = _classify(line)
        rejects.add(reason, [detail], [pos], [line])
    fields = {name: parts.field(name).filter(matched) for name in
              ("tag", "body", "talker", "cnt", "num", "seq", "chan", "payload", "fill", "cs",
               "trail")}
    fields["raw"], fields["position"] = text.filter(matched), positions.filter(matched)
    ok, computed = _checksum_ok(pc.utf8_slice_codeunits(fields["body"], 1), fields["cs"])
    rejects.add("bad_checksum", _checksum_details(fields["cs"], computed, ok),
                fields["position"].filter(pa.array(~ok)), fields["raw"].filter(pa.array(~ok)))
    fields = {k: v.filter(pa.array(ok)) for k, v in fields.items()}
    return _check_fragments(_tag_blocks(fields, rejects), rejects)


def _checksum_details(expected: pa.Array, computed: np.ndarray, ok: np.ndarray) -> list[str]:
    exp = np.asarray(expected.to_numpy(zero_copy_only=False), dtype=object)[~ok]
    return [f"checksum *{e} does not match the computed {c}" for e, c in zip(exp, computed[~ok])]


def _tag_blocks(fields: dict[str, pa.Array], rejects: _Rejects) -> dict[str, pa.Array]:
    """Check NMEA 4 tag-block checksums; extract ``c:`` (unix time) and ``g:`` (group)."""
    tag = pc.extract_regex(fields["tag"], _TAG)
    has_tag = np.asarray(pc.not_equal(fields["tag"], ""))
    parsed = np.asarray(tag.is_valid())
    has_cs = np.asarray(pc.not_equal(tag.field("cs"), ""))
    cs_ok, _ = _checksum_ok(tag.field("fields"), tag.field("cs"))
    malformed = has_tag & ~parsed
    bad_cs = has_tag & parsed & has_cs & ~cs_ok
    for mask, reason, detail in ((malformed, "decode_error", "malformed tag block"),
                                 (bad_cs, "bad_checksum", "tag block checksum does not match")):
        rejects.add(reason, detail, fields["position"].filter(pa.array(mask)),
                    fields["raw"].filter(pa.array(mask)))
    keep = pa.array(~(malformed | bad_cs))
    fields["tag"] = tag.field("fields")  # without its *hh
    fields = {k: v.filter(keep) for k, v in fields.items()}
    fields["time"] = _message_time(fields)
    group = pc.extract_regex(fields["tag"], _TAG_GROUP)
    fields["group"] = pc.if_else(group.is_valid(), group.field("gid"), pa.scalar(None, pa.string()))
    return fields


def _message_time(fields: dict[str, pa.Array]) -> pa.Array:
    """Tag-block ``c:`` time, else the receiver's unix time at the end of a USCG NAIS trailer.

    ``c:`` is seconds in NMEA 4.10 but milliseconds in some feeds; values past 1e11 (year 5138 in
    seconds) can only be milliseconds.
    """
    tag_time = pc.extract_regex(fields["tag"], _TAG_TIME)
    rx_time = pc.extract_regex(pc.fill_null(fields["trail"], ""), _RECEIVER_TIME)
    secs = pc.coalesce(
        pc.if_else(tag_time.is_valid(), tag_time.field("c"), pa.scalar(None, pa.string())),
        pc.if_else(rx_time.is_valid(), rx_time.field("t"), pa.scalar(None, pa.string())))
    secs = pc.cast(secs, pa.int64())
    micros = pc.if_else(pc.greater(secs, 10**11), pc.multiply(secs, 1000),
                        pc.multiply(secs, 1_000_000))
    return pc.cast(micros, pa.timestamp("us", tz="UTC"))


def _check_fragments(fields: dict[str, pa.Array], rejects: _Rejects) -> dict[str, pa.Array]:
    cnt, num = pc.cast(fields["cnt"], pa.int8()), pc.cast(fields["num"], pa.int8())
    bad = np.asarray(pc.or_(pc.less(cnt, 1), pc.or_(pc.less(num, 1), pc.greater(num, cnt))))
    rejects.add("decode_error", "fragment number outside 1..fragment count",
                fields["position"].filter(pa.array(bad)), fields["raw"].filter(pa.array(bad)))
    fields = {k: v.filter(pa.array(~bad)) for k, v in fields.items()}
    fields["cnt"], fields["num"] = cnt.filter(pa.array(~bad)), num.filter(pa.array(~bad))
    fields["fill"] = pc.cast(fields["fill"], pa.int8())
    return fields


# --- multi-sentence reassembly -------------------------------------------------------------------

def _fragment_keys(fields: dict[str, pa.Array]) -> list[tuple]:
    """A stream of fragments: the tag-block group when there is one, else talker + sequence id +
    channel + count (as receivers interleave messages by sequence id and channel)."""
    cols = [fields[k].to_pylist() for k in ("group", "talker", "seq", "chan", "cnt")]
    return [("g", g, c) if g is not None else (t, s, ch, c) for g, t, s, ch, c in zip(*cols)]


def assemble(fields: dict[str, pa.Array], rejects: _Rejects) -> dict[str, pa.Array]:
    """Join multi-sentence messages; single sentences pass through untouched (vectorised)."""
    multi = np.asarray(pc.greater(fields["cnt"], 1))
    single = {k: v.filter(pa.array(~multi)) for k, v in fields.items()}
    if not multi.any():
        return single
    many = {k: v.filter(pa.array(multi)) for k, v in fields.items()}
    groups, orphans = _group_fragments(_fragment_keys(many), many["num"].to_pylist(),
                                       many["cnt"].to_pylist())
    orphans_arr = pa.array(np.asarray(orphans, dtype=np.int64), pa.int64())
    rejects.add("orphan_fragment", "fragment of a multi-sentence message whose other fragments "
                "are missing or out of order", many["position"].take(orphans_arr),
                many["raw"].take(orphans_arr))
    rejects.merged += sum(len(g) - 1 for g in groups)
    joined = _join_groups(many, groups)
    out = {k: pa.concat_arrays([single[k], joined[k]]) for k in joined}
    return {k: v.take(pc.sort_indices(out["position"])) for k, v in out.items()}


def _group_fragments(keys: list[tuple], nums: list[int], cnts: list[int]
                     ) -> tuple[list[list[int]], list[int]]:
    # The one loop over lines in framing: only multi-sentence fragments reach it.
    pending: dict[tuple, list[int]] = {}
    groups: list[list[int]] = []
    orphans: list[int] = []
    for i, (key, num) in enumerate(zip(keys, nums)):
        parts = pending.get(key)
        if num == 1:
            if parts:
                orphans.extend(parts)
            parts = pending[key] = [i]
        elif parts is not None and len(parts) + 1 == num:
            parts.append(i)
        else:
            orphans.append(i)
            continue
        if len(parts) == cnts[i]:
            groups.append(pending.pop(key))
    for parts in pending.values():
        orphans.extend(parts)
    return groups, sorted(orphans)


def _join_groups(many: dict[str, pa.Array], groups: list[list[int]]) -> dict[str, pa.Array]:
    payload, raw, time = (many[k].to_pylist() for k in ("payload", "raw", "time"))
    fill = many["fill"].to_pylist()
    position = many["position"].to_pylist()
    times = [next((time[i] for i in g if time[i] is not None), None) for g in groups]
    return {
        "payload": pa.array(["".join(payload[i] for i in g) for g in groups], pa.string()),
        "raw": pa.array(["\n".join(raw[i] for i in g) for g in groups], pa.string()),
        "fill": pa.array([fill[g[-1]] for g in groups], pa.int8()),
        "position": pa.array([position[g[0]] for g in groups], pa.int64()),
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
    }


# --- payload decoding (pyais) --------------------------------------------------------------------

#: fewest payload bits of the fixed-length types whose fields this connector reads
_MIN_BITS = {1: 168, 2: 168, 3: 168, 4: 168, 11: 168, 5: 420, 9: 168, 18: 168, 19: 312, 21: 272,
             24: 160, 27: 96}
_MAX_TYPE = 27
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


def _payload_checks(msgs: dict[str, pa.Array], rejects: _Rejects) -> dict[str, pa.Array]:
    """Reject empty, mis-armoured, unknown-type and short payloads, all vectorised."""
    payload = msgs["payload"]
    empty = np.asarray(pc.equal(payload, ""))
    armor_ok = np.asarray(pc.match_substring_regex(payload, _ARMOR))
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
            for t, b, n in zip(mtype, bits, need)]


def decode_payloads(msgs: dict[str, pa.Array], rejects: _Rejects,
                    wanted: frozenset[str] | None = None) -> pa.Table:
    """Decode with pyais, then gather the fields per message class (one column op per class)."""
    payloads = pc.cast(msgs["payload"], pa.binary()).to_pylist()
    decoded, failed = [], []
    for i, (payload, fill, mtype) in enumerate(zip(payloads, msgs["fill"].to_pylist(),
                                                   msgs["type"].to_pylist())):
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
    by_class: dict[type, list[int]] = {}
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

    def col(name, dtype=pa.float64()):
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
    rejects = _Rejects()
    fields = _frame(lines, first_line, rejects)
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
    return ChunkResult(table=table, rows_in=rows_in, quarantine=rejects.table(source_file))


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
                          columns=infos, chunks=_plan_chunks(config, uri, sha256, size),
                          attributes={"format": "NMEA 0183 AIVDM/AIVDO"})

    def read(self, config: AisNmeaConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        return read_nmea(config, chunk, plan_schema)


# --- decoded CSV ---------------------------------------------------------------------------------

_FINITE = r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
#: in a float field inf is a number (a bad one, kept for QC to FAIL), not a reason to quarantine
#: the record; in an integer field (codes, IMO) it cannot be stored and is a bad value
_NUMBER = _FINITE + r"|^[-+]?(?i:inf|infinity)$"
_INTEGER_FIELDS = ("nav_status", "vessel_type")
_INTEGER = r"^[0-9]{1,10}$"
_REQUIRED = ("time", "mmsi", "latitude", "longitude")
_NUMERIC = ("latitude", "longitude", "sog", "cog", "heading", "nav_status", "vessel_type",
            "length", "width", "draught")

#: text that means "no value" in either layout (aisdk writes Unknown/Undefined)
_NULL_TOKENS = pa.array(["", "Unknown", "Undefined", "NA", "N/A", "nan", "NaN"], pa.string())


def _header(uri: str, encoding: str = "utf-8") -> tuple[bytes, list[str], int]:
    """The header line (UTF-8), its column names, and the offset of the first data line."""
    with _open(uri) as handle:
        head = handle.read(64 << 10)
        while head and not re.search(rb"[\r\n]", head) and (block := handle.read(1 << 20)):
            head += block  # stop at the first line end: LF, CRLF or a lone CR
    end = re.search(rb"\r\n|\r|\n", head)
    data_start = end.end() if end else len(head)
    line = head[:end.start() if end else len(head)].removeprefix(b"\xef\xbb\xbf")
    try:
        line = line.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as err:
        raise EncodingError(
            f"the header line is not valid {encoding} ({integrity.describe(err)})", source=uri,
            fix="set `encoding:` to the file's encoding, e.g. latin-1") from err
    try:
        names = pcsv.read_csv(io.BytesIO(line + b"\n"),
                              read_options=pcsv.ReadOptions(use_threads=False)).column_names
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(f"cannot parse the CSV header {line[:200]!r}", source=uri,
                                    fix="check that the file is a comma-separated AIS CSV") \
            from err
    return line, names, data_start


def resolve_layout(config: AisCsvConfig, uri: str, names: list[str]) -> CsvLayout:
    if config.layout != "auto":
        layout = LAYOUTS[config.layout]
    else:
        found = [lay for lay in LAYOUTS.values() if lay.marker in names]
        if not found:
            raise UnreadableSourceError(
                f"cannot tell the AIS CSV layout from the header {names[:6]}...", source=uri,
                fix="set layout: marinecadastre (BaseDateTime column) or aisdk (# Timestamp)")
        layout = found[0]
    missing = [layout.columns[c] for c in _REQUIRED if layout.columns[c] not in names]
    if missing:
        raise MissingVariableError(
            f"the {layout.name} layout needs columns {missing}, absent from the header "
            f"{names}", source=uri,
            fix=f"check the file, or set layout to the one that matches it (now {config.layout})")
    return layout


def _trimmed(table: pa.Table, source: str | None) -> pa.Array:
    if source is None or source not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return pc.utf8_trim_whitespace(table[source].combine_chunks())


def _is_missing(text: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.is_in(text, value_set=_NULL_TOKENS), True))


def _number(text: pa.Array, dtype=pa.float64(), *, integer: bool = False
            ) -> tuple[pa.Array, np.ndarray]:
    """Parse numbers; missing tokens become null; anything else is flagged bad."""
    pattern = _FINITE if integer or pa.types.is_integer(dtype) else _NUMBER
    ok = np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False))
    bad = ~ok & ~_is_missing(text)
    values = pc.cast(pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string())), pa.float64())
    return pc.cast(values, dtype, safe=False), bad


def _coded(text: pa.Array, codes: dict[str, int]) -> pa.Array:
    """Map text labels to codes (vectorised); labels not in the table become null."""
    index = pc.index_in(text, value_set=pa.array(list(codes), pa.string()))
    return pc.take(pa.array(list(codes.values()), pa.float64()), index)


def csv_columns(table: pa.Table, layout: CsvLayout
                ) -> tuple[dict[str, pa.Array], list[tuple[str, np.ndarray, pa.Array, str]]]:
    """Canonical columns of a parsed CSV block, and the rows to quarantine with why."""
    text = {name: _trimmed(table, layout.columns.get(name)) for name in S.COLUMN_NAMES}
    time = pc.strptime(text["time"], format=layout.time_format, unit="us", error_is_null=True)
    problems = [("bad_time", np.asarray(time.is_null()), text["time"],
                 f"{layout.columns['time']} is not a {layout.time_format} time")]
    mmsi_ok = np.asarray(pc.fill_null(pc.match_substring_regex(text["mmsi"], _INTEGER), False))
    problems.append(("bad_mmsi", ~mmsi_ok, text["mmsi"], "MMSI is not an integer"))
    cols: dict[str, pa.Array] = {
        "time": pc.cast(time, pa.timestamp("us", tz="UTC")),
        "mmsi": pc.cast(pc.if_else(pa.array(mmsi_ok), text["mmsi"], pa.scalar(None, pa.string())),
                        pa.int64())}
    for name in _NUMERIC:
        if name in layout.codes:
            cols[name] = _coded(text[name], layout.codes[name])
            continue
        cols[name], bad = _number(text[name], integer=name in _INTEGER_FIELDS)
        problems.append(("bad_value", bad, text[name],
                         f"{layout.columns.get(name)} is not a number"))
    imo_text = pc.replace_substring_regex(text["imo"], r"^(?i:IMO)", "")
    cols["imo"], bad = _number(imo_text, pa.int64())
    problems.append(("bad_value", bad, text["imo"], f"{layout.columns['imo']} is not an IMO number"))
    for name in ("vessel_name", "callsign", "destination"):
        cols[name] = pc.if_else(pa.array(_is_missing(text[name])), pa.scalar(None, pa.string()),
                                text[name])
    return _clean_csv(cols), problems


def _clean_csv(cols: dict[str, pa.Array]) -> dict[str, pa.Array]:
    cols["latitude"] = S.clean_latitude(cols["latitude"])
    cols["longitude"] = S.clean_longitude(cols["longitude"])
    cols["sog"] = S.clean_sog(cols["sog"])
    cols["cog"], cols["heading"] = S.clean_cog(cols["cog"]), S.clean_heading(cols["heading"])
    for name in ("vessel_type", "imo", "length", "width", "draught"):
        cols[name] = S.zero_is_null(cols[name])
    for name in ("vessel_name", "callsign", "destination"):
        cols[name] = S.clean_text(cols[name])
    return cols


def _data_lines(data: bytes, first_line: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end and 1-based number of every non-empty line of ``data`` (as pyarrow counts)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    stripped = ends - (buf[np.maximum(ends - 1, 0)] == 13) * (ends > starts)
    keep = stripped > starts
    numbers = first_line + np.arange(len(ends), dtype=np.int64)
    return starts[keep], ends[keep], numbers[keep]


def _without_lines(data: bytes, starts: np.ndarray, ends: np.ndarray) -> bytes:
    """``data`` without the given lines and their line breaks."""
    edges = np.zeros(len(data) + 1, dtype=np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, np.minimum(ends + 1, len(data)), -1)
    drop = np.cumsum(edges[:-1]) > 0
    return np.frombuffer(data, dtype=np.uint8)[~drop].tobytes()


def _unusable_lines(data: bytes, first_line: int, encoding: str, rejects: _Rejects) -> bytes:
    """UTF-8 ``data`` without the lines the CSV parser must not see, which go to ``rejects``:
    lines that do not decode as ``encoding`` and lines over ``integrity.MAX_LINE_BYTES``."""
    data, bad, raws = integrity.transcode_lines(integrity.normalise_newlines(data), encoding)
    rejects.lines += len(bad)  # emptied lines: still records, no longer non-empty lines
    rejects.add("encoding", f"not valid {encoding}", (first_line + bad).tolist(), raws)
    starts, ends, numbers = _data_lines(data, first_line)
    long = integrity.long_lines(starts, ends)
    if long.any():
        rejects.add("line_too_long", f"more than {integrity.MAX_LINE_BYTES} bytes",
                    numbers[long], [data[a:a + integrity.RAW_KEEP].decode("utf-8", "replace")
                                    for a in starts[long]])
        data = _without_lines(data, starts[long], ends[long])
        rejects.lines += int(long.sum())
    return data


def parse_csv_block(header: bytes, header_names: list[str], data: bytes, first_line: int,
                    layout: CsvLayout, source_file: str, plan_schema: pa.Schema,
                    encoding: str = "utf-8") -> ChunkResult:
    """Parse the data lines of one chunk (the header is given separately, as UTF-8)."""
    rejects = _Rejects()
    data = _unusable_lines(data, first_line, encoding, rejects)
    starts, ends, numbers = _data_lines(data, first_line)
    rejects.lines += len(numbers)
    # A record is one line here. A line with an odd number of quotes would make the CSV
    # parser read on into the next line (a quoted value never closed) and rows would no
    # longer match lines: such lines go to quarantine before parsing.
    quotes = count_per_line(np.frombuffer(data, dtype=np.uint8), ord('"'), starts, ends)
    unbalanced = quotes % 2 == 1
    if unbalanced.any():
        rejects.add("unbalanced_quote", "a quoted value is not closed on its line",
                    numbers[unbalanced], [data[starts[i]:ends[i]].decode("utf-8", "replace")
                                          for i in np.flatnonzero(unbalanced)])
        data = _without_lines(data, starts[unbalanced], ends[unbalanced])
        starts, ends, _ = _data_lines(data, first_line)
        numbers = numbers[~unbalanced]
    invalid: list[int] = []

    def on_invalid(row) -> str:
        # pyarrow numbers non-empty lines from 1, header included; called for bad rows only
        invalid.append(row.number - 2)
        return "skip"

    names = [n for n in layout.columns.values() if n in header_names]
    table = pcsv.read_csv(
        io.BytesIO(header + b"\n" + data),
        read_options=pcsv.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 2)),
        parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False,
            include_columns=names))
    if table.num_rows + len(invalid) != len(numbers):
        raise UnreadableSourceError(
            f"lines {numbers[0]}-{numbers[-1]}: the CSV parser read {table.num_rows} records "
            f"(and rejected {len(invalid)}) from {len(numbers)} lines", source=source_file,
            fix="report this file to the Haina developers: records must be one per line")

    def raw(idx) -> list[str]:  # the text of quarantined lines only
        return [data[starts[i]:ends[i]].decode("utf-8", "replace") for i in idx]

    rejects.add("wrong_field_count", "line does not have the header's number of fields",
                numbers[invalid], raw(invalid))
    rows = np.delete(np.arange(len(numbers)), invalid)
    cols, problems = csv_columns(table, layout)
    flagged = np.zeros(table.num_rows, dtype=bool)
    for reason, mask, values, detail in problems:
        new = mask & ~flagged
        flagged |= new
        shown = pc.fill_null(values.filter(pa.array(new)), "").to_pylist()
        rejects.add(reason, [f"{detail}: {v!r}" for v in shown], numbers[rows[new]],
                    raw(rows[new]))
    keep = pa.array(~flagged)
    cols = {k: v.filter(keep) for k, v in cols.items()}
    out = S.finish(cols, source_file, plan_schema)
    return ChunkResult(table=out, rows_in=rejects.lines, quarantine=rejects.table(source_file))


def read_csv_chunk(config: AisCsvConfig, chunk: ChunkSpec, plan_schema: pa.Schema
                   ) -> ChunkResult:
    header, names, data_start = _header(chunk.uri, config.encoding)
    layout = resolve_layout(config, chunk.uri, names)
    with _open(chunk.uri) as handle:
        start = max(chunk.start, data_start)  # the header line is never data
        stop = chunk.stop if chunk.stop >= 0 else 1 << 62
        data, first_line, _ = read_line_range(handle, start, stop,
                                              at_line_start=start == data_start)
    try:
        return parse_csv_block(header, names, data, first_line, layout, chunk.uri, plan_schema,
                               config.encoding)
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(f"cannot parse CSV bytes {chunk.start}..{chunk.stop}: {err}",
                                    source=chunk.uri,
                                    fix="check the file's quoting and delimiter") from err


class AisCsv(Connector):
    """AIS position tables in CSV (MarineCadastre or Danish AISDK layout) to vessel positions."""

    kind = "ais_csv"
    config_model = AisCsvConfig

    def plan(self, config: AisCsvConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        integrity.check_text(uri, config.encoding)
        _, names, _ = _header(uri, config.encoding)
        layout = resolve_layout(config, uri, names)
        infos = S.column_infos({**{k: v for k, v in layout.columns.items() if v in names},
                                "source_file": "uri"})
        return SourcePlan(uri=uri, sha256=sha256, size=size, schema=S.schema(infos),
                          columns=infos, chunks=_plan_chunks(config, uri, sha256, size),
                          attributes={"format": f"AIS CSV ({layout.name} layout)",
                                      "layout": layout.name})

    def read(self, config: AisCsvConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        return read_csv_chunk(config, chunk, plan_schema)
