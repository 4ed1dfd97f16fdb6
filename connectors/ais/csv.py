"""AIS vessel positions from decoded CSV tables (kind ``ais_csv``): MarineCadastre (US) or
the Danish Maritime Authority's ``aisdk`` layout.

The kind emits the schema of :mod:`connectors.ais.schema`; a record is one data line of the
CSV. Lines that cannot be used go to quarantine with a reason: ``encoding``,
``line_too_long``, ``unbalanced_quote``, ``wrong_field_count``, ``bad_time``, ``bad_mmsi``,
``bad_value``.
"""
from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from pydantic import Field

from connectors import integrity
from connectors.ais import schema as S
from connectors.ais.lines import AisConfig, Records, open_source, plan_chunks, read_line_range
from connectors.ais.schema import LAYOUTS, CsvLayout
from connectors.base import ChunkResult, ChunkSpec, Connector, SourcePlan
from connectors.config import TextEncoding
from connectors.exceptions import EncodingError, MissingVariableError, UnreadableSourceError
from connectors.quarantine import RowChecks
from connectors.text.lines import count_per_line


class AisCsvConfig(AisConfig):
    kind: Literal["ais_csv"] = "ais_csv"
    layout: Literal["marinecadastre", "aisdk", "auto"] = Field(
        default="auto",
        description="the column layout: marinecadastre (US), aisdk (Danish Maritime Authority), "
                    "or auto (from the header)")
    encoding: TextEncoding = "utf-8"


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
_FLOAT64 = pa.float64()
_NULL_TOKENS = pa.array(["", "Unknown", "Undefined", "NA", "N/A", "nan", "NaN"], pa.string())


def _header(uri: str, encoding: str = "utf-8") -> tuple[bytes, list[str], int]:
    """The header line (UTF-8), its column names, and the offset of the first data line."""
    with open_source(uri) as handle:
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


def _number(text: pa.Array, dtype: pa.DataType = _FLOAT64, *, integer: bool = False
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


def _unusable_lines(data: bytes, first_line: int, encoding: str, rejects: Records) -> bytes:
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
    rejects = Records(source_file)
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
    checks = RowChecks(rejects, numbers[rows], lambda idx: raw(rows[idx]))
    for reason, mask, values, detail in problems:
        checks.reject(reason, mask, _showing(detail, values))
    keep = pa.array(~checks.rejected)
    cols = {k: v.filter(keep) for k, v in cols.items()}
    out = S.finish(cols, source_file, plan_schema)
    return ChunkResult(table=out, rows_in=rejects.lines, quarantine=rejects.table())


def _showing(detail: str, values: pa.Array) -> Callable[[np.ndarray], list[str]]:
    """The details of rejected rows: ``detail: 'value'`` (built for those rows only)."""
    def describe(idx: np.ndarray) -> list[str]:
        shown = pc.fill_null(values.take(pa.array(idx, pa.int64())), "").to_pylist()
        return [f"{detail}: {v!r}" for v in shown]
    return describe


def read_csv_chunk(config: AisCsvConfig, chunk: ChunkSpec, plan_schema: pa.Schema
                   ) -> ChunkResult:
    header, names, data_start = _header(chunk.uri, config.encoding)
    layout = resolve_layout(config, chunk.uri, names)
    with open_source(chunk.uri) as handle:
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
                          columns=infos, chunks=plan_chunks(config, uri, sha256, size),
                          attributes={"format": f"AIS CSV ({layout.name} layout)",
                                      "layout": layout.name})

    def read(self, config: AisCsvConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        return read_csv_chunk(config, chunk, plan_schema)
