"""Delimited text (CSV-like) station data, and the text machinery the station kinds share.

Reading one chunk is four vectorised passes, never a Python loop over values:

1. :func:`read_byte_range` returns the lines whose first byte lies in ``[start, stop)`` (the
   chunking rule of Beam's text source), so chunks tile a file exactly.
2. :func:`scan_lines` classifies every line with numpy (newline positions, per-line counts of
   delimiters and quotes): blank, comment, unbalanced quote, wrong field count. Whitespace
   layouts first squeeze each run of blanks into one delimiter. Only well-formed lines go on,
   as one buffer (no copy when the whole chunk is clean).
3. :func:`parse_buffer` hands that buffer to ``pyarrow.csv``: numbers typed directly (fast path);
   only when a cell does not parse is the chunk re-read as strings to find the bad rows.
4. :func:`read_text_chunk` converts units, turns times into UTC and lays out the canonical
   observation schema; rejected rows go to the quarantine table with their line numbers.

Line numbers of rejected rows need the count of newlines before the chunk; that prefix is read
only for chunks that have rejects, so clean multi-chunk files never pay for it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re
import zoneinfo
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import Field, field_validator, model_validator

from connectors import geo, integrity
from connectors.base import (
    ChunkResult,
    ChunkSpec,
    ColumnInfo,
    Connector,
    SourcePlan,
    check_column_names,
    quarantine_table,
)
from connectors.config import Frozen, SourceConfig, TextEncoding, VariableMapping
from connectors.exceptions import (
    IncompatibleSourceError,
    MissingVariableError,
    UnreadableSourceError,
)
from connectors.netcdf import cf_time as cftime_decode
from connectors.units import (
    Conversion,
    canonical_name,
    canonical_units,
    column_conversion,
)

#: files under this size are read as one chunk
DEFAULT_CHUNK_BYTES = 64 * 2**20
_HEAD_BLOCK = 64 * 2**10
_HEAD_LIMIT = 16 * 2**20
_NL, _CR, _SP, _TAB = 10, 13, 32, 9
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:nan|inf|infinity)$"
_OFFSET = r"(Z|z|[+-]\d\d:?\d\d)$"
_UNITS_IN_NAME = re.compile(r"^(?P<name>.*?)\s*(\((?P<p>[^()]*)\)|\[(?P<b>[^\[\]]*)\])$")
UTC = pa.timestamp("us", tz="UTC")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'UTC' or "
                         "'Etc/GMT+8' (which is UTC-8, e.g. PST without daylight saving)") from err
    return value


class TimeSpec(Frozen):
    """Where the time is and how to read it."""

    columns: list[str] = Field(
        min_length=1,
        description="one column, or several joined with a space before parsing (e.g. [YY, MM, "
                    "DD, hh, mm])",
        examples=[["YY", "MM", "DD", "hh", "mm"]])
    format: str = Field(
        default="iso",
        description="'iso' (ISO 8601; an explicit offset wins over `timezone`) or a strptime "
                    "format",
        examples=["%Y %m %d %H %M"])
    timezone: str = Field(
        default="UTC",
        description="IANA zone of times written without an offset",
        examples=["Asia/Shanghai"])
    units: str | None = Field(
        default=None,
        description="numeric times: CF '<unit> since <epoch>' (a local epoch carries its "
                    "offset); replaces `format`",
        examples=["days since 1700-01-01"])
    calendar: str = Field(
        default="standard",
        description="CF calendar of numeric times (standard, proleptic_gregorian, julian, "
                    "noleap, 360_day...)",
        examples=["360_day"])

    @field_validator("columns", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _numeric(self):
        if self.units is None:
            if self.calendar != "standard":
                raise ValueError("calendar applies to numeric times only; add units: "
                                 "'<unit> since <epoch>' or remove calendar")
            return self
        try:
            cftime_decode.parse_units(self.units)
            cftime_decode.normalise_calendar(self.calendar)
        except UnreadableSourceError as err:
            raise ValueError(err.reason) from err
        if len(self.columns) != 1 or self.format != "iso" or self.timezone != "UTC":
            raise ValueError(
                f"units {self.units!r} decode one numeric column: give one column, no format "
                "and no timezone (write a local epoch's offset in units, e.g. "
                "'hours since 2001-08-15 00:00 -08:00')")
        return self


class StationConfig(SourceConfig):
    """Keys shared by the station kinds: where the station is, and how to chunk."""

    station_id: str | None = Field(
        default=None,
        description="a literal station id, for files that carry none",
        examples=["46050"])
    latitude: float | None = Field(
        default=None, ge=-90, le=90,
        description="the station's latitude in degrees north, for files without a latitude "
                    "column",
        examples=[44.669])
    longitude: float | None = Field(
        default=None, ge=-180, le=360,
        description="the station's longitude in degrees east (0-360 is shifted to -180..180), "
                    "for files without a longitude column",
        examples=[-124.546])
    depth: float | None = Field(
        default=None,
        description="the sensor depth in metres, positive down, for files without a depth column",
        examples=[1.5])
    sort_by_time: bool = Field(
        default=True,
        description="output rows ascending in time within each chunk (stable: equal times keep "
                    "file order)")
    chunk_bytes: int = Field(
        default=DEFAULT_CHUNK_BYTES, ge=4096,
        description="bytes of text per chunk; chunks end on line boundaries",
        examples=[8388608])
    missing_values: list[str] = Field(
        default_factory=lambda: ["", "NaN", "nan", "NA", "N/A"],
        description="tokens read as missing (null) in every column; NaN values become null too",
        examples=[["", "NaN", "-"]])
    fill_values: list[float] = Field(
        default_factory=list,
        description="numeric sentinels read as missing, e.g. [-999, 9999]",
        examples=[[-999, 9999]])
    encoding: TextEncoding = "utf-8"



class DelimitedConfig(StationConfig):
    """A declarative description of one delimited text layout (see ``examples/recipes``)."""

    kind: Literal["delimited"]
    delimiter: str = Field(
        default=",",
        description="one character, or 'whitespace' for runs of blanks (fixed-width-ish tables)",
        examples=["whitespace"])
    quote_char: str | None = Field(
        default='"',
        description="quoted fields must start right after the delimiter (blanks around numbers "
                    "are fine)",
        examples=["'"])
    comment: str | None = Field(
        default=None,
        description="lines starting with this prefix are skipped wherever they are",
        examples=["#"])
    skip_lines: int = Field(
        default=0, ge=0,
        description="physical lines skipped before the header (a preamble without a comment "
                    "prefix)",
        examples=[2])
    header: bool = Field(
        default=True,
        description="the first (non-comment) line holds column names; else give `column_names`")
    units_line: bool = Field(
        default=False,
        description="the line after the header holds units (ERDDAP .csv style)")
    column_names: list[str] | None = Field(
        default=None,
        description="every column's name, where the file has no header line (header: false)",
        examples=[["time", "temp", "salt"]])
    time: TimeSpec = Field(
        description="where the time is and how to read it (keys below)",
        examples=[{"columns": "time", "format": "iso"}])
    station_id_column: str | None = Field(
        default=None,
        description="the column holding the station id",
        examples=["station"])
    latitude_column: str | None = Field(
        default=None,
        description="the column holding the latitude (degrees north)",
        examples=["latitude"])
    longitude_column: str | None = Field(
        default=None,
        description="the column holding the longitude (degrees east)",
        examples=["longitude"])
    depth_column: str | None = Field(
        default=None,
        description="the column holding the depth (metres, positive down)",
        examples=["depth"])

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if value != "whitespace" and len(value) != 1:
            raise ValueError("expected one character (e.g. ',' or '\\t') or 'whitespace'")
        return value

    @field_validator("quote_char")
    @classmethod
    def _quote(cls, value):
        if value is not None and len(value) != 1:
            raise ValueError("expected one character, e.g. \"'\", or null for no quoting")
        return value

    @model_validator(mode="after")
    def _names(self):
        if not self.header and not self.column_names:
            raise ValueError("header: false needs column_names: [...] listing every column")
        return self


# --------------------------------------------------------------------------------------------
# layout: what planning learns from the head of a file
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TextLayout:
    """How to cut a text file into typed columns; built from the config and the file's head."""

    names: tuple[str, ...]                  # column names as written (units stripped)
    units: tuple[str | None, ...]           # units per column from the header, if any
    data_start: int                         # byte offset of the first line after the header
    delimiter: str | None = ","             # None: whitespace runs
    quote_char: str | None = '"'
    comment: str | None = None
    encoding: str = "utf-8"
    missing: tuple[str, ...] = ("",)

    def index(self, name: str, uri: str, key: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise MissingVariableError(
                f"column {name!r} (recipe key {key}) is not in the file header",
                source=uri, fix=f"use one of: {', '.join(self.names)}",
            ) from None

    def units_of(self, name: str) -> str | None:
        return self.units[self.names.index(name)]


def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def head_lines(uri: str, count: int) -> list[tuple[int, int, bytes]]:
    """The first ``count`` physical lines as (offset, offset of the next line, line text)."""
    data = b""
    with open(local_path(uri), "rb") as handle:
        while data.count(b"\n") < count and len(data) < _HEAD_LIMIT:
            block = handle.read(_HEAD_BLOCK)
            if not block:
                break
            data += block
    lines, offset = [], 0
    # lone CRs end lines too (same length, so offsets hold); a UTF-8 BOM is no part of a name
    for raw in integrity.normalise_newlines(data).split(b"\n")[:count]:
        text = raw.rstrip(b"\r")
        lines.append((offset, offset + len(raw) + 1,
                      text.removeprefix(b"\xef\xbb\xbf") if offset == 0 else text))
        offset += len(raw) + 1
    return lines


def split_names(line: str, delimiter: str | None, quote_char: str | None) -> list[str]:
    """Fields of one header line (one line, so the stdlib csv module is fine here)."""
    if delimiter is None:
        return line.split()
    reader = csv.reader([line.replace("\0", "")], delimiter=delimiter,
                        quotechar=quote_char or "\0", skipinitialspace=True,
                        quoting=csv.QUOTE_MINIMAL if quote_char else csv.QUOTE_NONE)
    return [field.strip() for field in next(reader, [])]


def units_from_names(names: list[str]) -> tuple[list[str], list[str | None]]:
    """``temperature (Celsius)`` / ``sandi.790.A.CTD [psu]`` -> name and units."""
    bare, units = [], []
    for name in names:
        match = _UNITS_IN_NAME.match(name)
        if match and match["name"]:
            bare.append(match["name"])
            units.append((match["p"] if match["p"] is not None else match["b"]).strip() or None)
        else:
            bare.append(name)
            units.append(None)
    return bare, units


def delimited_layout(config: DelimitedConfig, uri: str) -> TextLayout:
    """Read the head of the file and work out names, units and where the data start."""
    integrity.check_text(uri, config.encoding)
    delimiter = None if config.delimiter == "whitespace" else config.delimiter
    quote = None if delimiter is None else config.quote_char
    wanted = config.skip_lines + int(config.header) + int(config.units_line)
    lines = head_lines(uri, wanted + 1000)
    meta = [(off, end, raw) for off, end, raw in lines[config.skip_lines:]
            if raw.strip() and not (config.comment and raw.startswith(config.comment.encode()))]
    needed = int(config.header) + int(config.units_line)
    if len(meta) < needed:
        raise UnreadableSourceError(
            f"expected {needed} header line(s) after {config.skip_lines} skipped line(s), found "
            f"{len(meta)}", source=uri, fix="check skip_lines, comment, header and units_line")
    decode = lambda raw: raw.decode(config.encoding, "replace")  # noqa: E731
    names = split_names(decode(meta[0][2]), delimiter, quote) if config.header else []
    names, units = units_from_names(names)
    if config.units_line:
        units = split_names(decode(meta[1][2]), delimiter, quote)
        units = [u or None for u in units]
    if config.column_names:
        names = list(config.column_names)
        units = units if len(units) == len(names) else [None] * len(names)
    data_start = _data_start(lines, config, meta, needed)
    return TextLayout(tuple(names), tuple(units), data_start, delimiter, quote, config.comment,
                      config.encoding, tuple(config.missing_values))


def _data_start(lines, config: DelimitedConfig, meta, needed: int) -> int:
    if needed:
        return meta[needed - 1][1]
    if config.skip_lines and len(lines) >= config.skip_lines:
        return lines[config.skip_lines - 1][1]
    return 0


def plan_chunks(source_index: int, uri: str, sha256: str, size: int, data_start: int,
                chunk_bytes: int) -> tuple[ChunkSpec, ...]:
    """Byte ranges of at most ``chunk_bytes`` over the data section; at least one chunk."""
    starts = range(data_start, max(size, data_start + 1), chunk_bytes)
    return tuple(
        ChunkSpec(source_index, uri, sha256, i, None, start, min(start + chunk_bytes, size))
        for i, start in enumerate(starts))


# --------------------------------------------------------------------------------------------
# bytes -> well-formed lines
# --------------------------------------------------------------------------------------------

def read_byte_range(uri: str, start: int, stop: int, data_start: int) -> tuple[bytes, int]:
    """Bytes of the lines whose first byte is in ``[start, stop)``, and the first line's offset.

    ``stop < 0`` reads to the end. A line that crosses ``stop`` is read whole; a line that
    crosses ``start`` belongs to the previous chunk.
    """
    with open(local_path(uri), "rb") as handle:
        begin = max(start, data_start)
        if begin > data_start:
            handle.seek(begin - 1)
            if handle.read(1) != b"\n":
                handle.readline()
        begin = handle.tell() if begin > data_start else begin
        handle.seek(begin)
        if stop >= 0 and begin >= stop:
            return b"", begin
        body = handle.read() if stop < 0 else handle.read(stop - begin)
        if body and not body.endswith(b"\n"):
            body += handle.readline()
    return body, begin


@dataclasses.dataclass(frozen=True)
class ScannedLines:
    """Result of :func:`scan_lines`: the well-formed lines and what was wrong with the others."""

    clean: bytes                 # good lines, trimmed, newline-terminated
    good_lines: np.ndarray       # 0-based line index (within the chunk) of each good line
    rows_in: int                 # data lines seen (comments and blank lines are not records)
    bad_lines: np.ndarray        # line index of malformed lines
    bad_reasons: np.ndarray      # reason code per malformed line
    bad_details: list[str]
    bad_raw: list[str]


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, before ``\\n``) of every line."""
    newlines = np.flatnonzero(buf == _NL)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [buf.size]])
    if buf.size and buf[-1] == _NL:
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def squeeze_whitespace(data: bytes) -> bytes:
    """Runs of blanks become one space; blanks at line ends go (vectorised over bytes)."""
    buf = np.frombuffer(data, np.uint8)
    blank = (buf == _SP) | (buf == _TAB) | (buf == _CR)
    keep = ~(blank & np.concatenate([blank[1:], [False]]))  # the last blank of each run stays
    buf, blank = buf[keep], blank[keep]
    newline = buf == _NL
    at_edge = np.concatenate([[True], newline[:-1]]) | np.concatenate([newline[1:], [True]])
    keep = ~(blank & at_edge)
    out = buf[keep]
    out[blank[keep]] = _SP
    return out.tobytes()


def count_per_line(buf: np.ndarray, byte: int, starts: np.ndarray,
                   ends: np.ndarray) -> np.ndarray:
    """How often ``byte`` occurs in each line.

    Works from the positions of the hits, never a cumulative sum over every byte. Common case
    first: when the hits split into equal groups that each fall inside one line, every line
    holds the same count (sorted positions, groups within lines, total = lines x count) and
    no search is needed.
    """
    where = np.flatnonzero(buf == byte)
    lines = starts.size
    if lines and where.size % lines == 0:
        per = where.size // lines
        grid = where.reshape(lines, per)
        if per == 0 or (np.all(grid[:, 0] >= starts) and np.all(grid[:, -1] < ends)):
            return np.full(lines, per, np.int32)
    line = np.searchsorted(starts, where, side="right") - 1
    return np.bincount(line, minlength=lines).astype(np.int32)


def _blank_lines(data: bytes, buf, starts, ends) -> np.ndarray:
    blank = ends == starts
    first = buf[np.minimum(starts, buf.size - 1)]
    maybe = ~blank & ((first == _SP) | (first == _TAB) | (first == _CR))
    for i in np.flatnonzero(maybe):  # only lines that start with a blank (rare)
        blank[i] = not data[starts[i]:ends[i]].strip()
    return blank


def _comment_lines(buf, starts, ends, prefix: str | None) -> np.ndarray:
    is_comment = np.zeros(starts.size, bool)
    if not prefix or not buf.size:
        return is_comment
    code = prefix.encode()
    is_comment = (ends - starts) >= len(code)
    for k, byte in enumerate(code):  # loop over the prefix's bytes, not over lines
        is_comment &= buf[np.minimum(starts + k, buf.size - 1)] == byte
    return is_comment


def _quoted_delimiters(buf, starts, delimiter: str, quote_char: str | None) -> np.ndarray:
    """Per line: does a delimiter sit after an odd number of the line's quote characters?"""
    lines = np.zeros(starts.size, bool)
    if not quote_char:
        return lines
    quote_count = np.cumsum(buf == ord(quote_char), dtype=np.int64)
    before_line = np.concatenate([[0], quote_count])[starts]
    positions = np.flatnonzero(buf == ord(delimiter))
    line = np.searchsorted(starts, positions, side="right") - 1
    inside = (quote_count[positions] - before_line[line]) % 2 == 1
    lines[line[inside]] = True
    return lines


def _field_counts(data: bytes, buf, starts, ends, layout: TextLayout, data_line):
    """Fields per line and whether quotes are unbalanced, from per-line byte counts.

    Counting delimiters is exact unless a quoted field holds one; lines with quotes whose
    count is off are re-split with the csv module (rare), so quoted delimiters stay legal.
    """
    delimiter = layout.delimiter or " "
    fields = count_per_line(buf, ord(delimiter), starts, ends) + 1
    quotes = np.zeros(starts.size, np.int32)
    if layout.quote_char and data.find(layout.quote_char.encode()) >= 0:
        quotes = count_per_line(buf, ord(layout.quote_char), starts, ends)
    odd = data_line & (quotes % 2 == 1)
    # A delimiter between quotes is not a field boundary. A line whose count is off, or that
    # has a delimiter inside quotes, is re-split with the csv module (the exact rules): a quoted
    # delimiter can make a malformed line count right (`,","` is 2 fields, not 3).
    suspicious = (quotes > 0) & ((fields != len(layout.names))
                                 | _quoted_delimiters(buf, starts, delimiter, layout.quote_char))
    recheck = np.flatnonzero(data_line & ~odd & suspicious)
    for i in recheck:
        line = data[starts[i]:ends[i]].decode("utf-8", "replace")
        fields[i] = len(split_names(line, layout.delimiter, layout.quote_char))
    return fields, odd


def scan_lines(data: bytes, layout: TextLayout) -> ScannedLines:
    """Split a chunk into well-formed lines and rejected lines (vectorised over lines)."""
    text = squeeze_whitespace(data) if layout.delimiter is None else data
    if not text:
        empty = np.zeros(0, np.int64)
        return ScannedLines(b"", empty, 0, empty, np.zeros(0, object), [], [])
    buf = np.frombuffer(text, np.uint8)
    starts, ends = _line_bounds(buf)
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == _CR))
    data_line = ~_blank_lines(text, buf, starts, ends) & ~_comment_lines(buf, starts, ends,
                                                                          layout.comment)
    fields, odd = _field_counts(text, buf, starts, ends, layout, data_line)
    wrong = data_line & ~odd & (fields != len(layout.names))
    good = data_line & ~odd & ~wrong
    bad = np.flatnonzero(odd | wrong)
    reasons = np.where(odd[bad], "unbalanced_quote", "wrong_field_count")
    return ScannedLines(
        clean=_clean_bytes(text, buf, starts, good, data_line),
        good_lines=np.flatnonzero(good), rows_in=int(data_line.sum()), bad_lines=bad,
        bad_reasons=reasons,
        bad_details=_bad_details(reasons, fields[bad], len(layout.names)),
        bad_raw=_raw_lines(data, bad),
    )


def _raw_lines(data: bytes, lines: np.ndarray) -> list[str]:
    """Original text of the given lines (rejects only; the squeeze keeps line indices)."""
    if not lines.size:
        return []
    starts, ends = _line_bounds(np.frombuffer(data, np.uint8))
    return [data[starts[i]:ends[i]].decode("utf-8", "replace").rstrip("\r") for i in lines]


def _clean_bytes(text: bytes, buf, starts, good, data_line) -> bytes:
    if good.all():
        return text  # the common case: no copy
    lengths = np.diff(np.concatenate([starts, [buf.size]]))
    clean = buf[np.repeat(good, lengths)].tobytes()
    return clean if not clean or clean.endswith(b"\n") else clean + b"\n"


def _bad_details(reasons, fields, expected: int) -> list[str]:
    # one string per rejected line (rejects are rare; clean lines never get here)
    return [f"{f} fields, expected {expected}" if r == "wrong_field_count"
            else "a quote character opens a field that never closes" for r, f in
            zip(reasons, fields)]


# --------------------------------------------------------------------------------------------
# well-formed lines -> typed columns
# --------------------------------------------------------------------------------------------

def parse_buffer(clean: bytes, layout: TextLayout, numeric: frozenset[int],
                 as_strings: bool = False) -> pa.Table:
    """Parse clean lines into columns ``c0..cN``; numeric columns float64 unless ``as_strings``.

    Times stay text here: pyarrow's timestamp parser, like its strptime, rolls impossible dates
    over (June 31 -> July 1) instead of failing, so :func:`parse_times` checks them.
    """
    names = [f"c{i}" for i in range(len(layout.names))]
    types = {n: (pa.float64() if i in numeric and not as_strings else pa.string())
             for i, n in enumerate(names)}
    if not clean:
        return pa.table({n: pa.array([], t) for n, t in types.items()})
    return pacsv.read_csv(
        io.BytesIO(clean),
        read_options=pacsv.ReadOptions(column_names=names, autogenerate_column_names=False),
        parse_options=pacsv.ParseOptions(
            delimiter=layout.delimiter or " ", quote_char=layout.quote_char or False,
            double_quote=True, newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=types, null_values=list(layout.missing), strings_can_be_null=True,
            quoted_strings_can_be_null=True),
    )


def to_float(strings: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Strings to float64; returns the values and a mask of cells that were not numbers."""
    text = pc.utf8_trim_whitespace(strings)
    ok = pc.match_substring_regex(text, _NUMBER)
    bad = pc.fill_null(pc.invert(ok), False)
    values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
    return values, np.asarray(bad.to_numpy(zero_copy_only=False), bool)


def mask_missing(values: pa.Array, fill_values) -> pa.Array:
    """NaN and numeric sentinels become null."""
    missing = pc.is_nan(values)
    if not fill_values and not pc.any(missing).as_py():
        return values
    if fill_values:
        missing = pc.or_(missing, pc.is_in(values, pa.array(list(fill_values), pa.float64())))
    return pc.if_else(pc.fill_null(missing, False), pa.scalar(None, values.type), values)


def parse_times(strings: pa.Array, fmt: str, timezone: str) -> tuple[pa.Array, np.ndarray]:
    """Strings to timestamp[us, UTC]; returns values and a mask of unparseable (non-null) cells."""
    text = pc.utf8_trim_whitespace(strings)
    if fmt == "iso":
        values = _parse_iso(text, timezone)
    else:
        values = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
        values = _to_utc(_null_day_rollover(text, values, fmt), timezone)
    bad = pc.and_(pc.is_valid(text), pc.is_null(values))
    return values, np.asarray(bad.to_numpy(zero_copy_only=False), bool)


def parse_numeric_times(strings: pa.Array, units: str, calendar: str
                        ) -> tuple[pa.Array, np.ndarray]:
    """CF numeric times (``days since 1700-01-01``) to timestamp[us, UTC], vectorised with
    :func:`connectors.netcdf.cf_time.decode`; returns values and a mask of non-number cells."""
    values, bad = to_float(strings)
    numbers = pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False)
    decoded = cftime_decode.decode(numbers, units, calendar)
    return pa.array(decoded, pa.timestamp("us"), mask=np.isnat(decoded)).cast(UTC), bad


def _null_day_rollover(text: pa.Array, values: pa.Array, fmt: str) -> pa.Array:
    """Null the times arrow's strptime rolled over from an impossible day (06-31 -> 07-01).

    A rolled-over date lands on day 1-3 of the next month, so only those rows (about a tenth)
    are re-parsed, with pandas, which rejects impossible dates.
    """
    if "%d" not in fmt or not len(values):
        return values
    suspect = np.flatnonzero(pc.fill_null(pc.less_equal(pc.day(values), 3), False)
                             .to_numpy(zero_copy_only=False))
    if not suspect.size:
        return values
    import pandas as pd  # noqa: PLC0415  (only for chunks with early-month days)

    strict = pd.to_datetime(pd.Series(text.take(pa.array(suspect)).to_pandas(), dtype=object),
                            format=fmt, errors="coerce")
    invalid = np.zeros(len(values), bool)
    invalid[suspect[strict.isna().to_numpy()]] = True
    return pc.if_else(pa.array(invalid), pa.scalar(None, values.type), values)


def _to_utc(values: pa.Array, timezone: str) -> pa.Array:
    if values.type.tz is None:
        # ambiguous/non-existent local times (DST changes) resolve to the earlier instant
        values = pc.assume_timezone(values, timezone, ambiguous="earliest",
                                    nonexistent="earliest")
    return values.cast(UTC)


def _parse_iso(text: pa.Array, timezone: str) -> pa.Array:
    has_offset = pc.fill_null(pc.match_substring_regex(text, _OFFSET), False)
    none = pa.scalar(None, pa.string())
    aware = _cast_or_null(pc.if_else(has_offset, text, none), UTC)
    naive = _to_utc(_cast_or_null(pc.if_else(has_offset, none, text), pa.timestamp("us")),
                    timezone)
    return pc.if_else(has_offset, aware, naive)


def _cast_or_null(text: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast ISO strings to timestamps; cells that do not parse become null."""
    try:
        return text.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # slow path for dirty chunks only: pandas' ISO 8601 parser coerces bad cells to NaT
    import pandas as pd

    utc = target.tz is not None
    parsed = pd.to_datetime(pd.Series(text.to_pandas(), dtype=object), format="ISO8601",
                            errors="coerce", utc=utc)
    return pa.Array.from_pandas(parsed).cast(target, safe=False)


# --------------------------------------------------------------------------------------------
# typed columns -> canonical observations
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class VariablePlan:
    """One output variable: where it comes from, how it is converted, its output type."""

    source: str
    info: ColumnInfo
    conversion: Conversion
    dtype: str = "float32"


def output_name(source: str, mapping: VariableMapping) -> str:
    name = mapping.name or canonical_name(mapping.standard_name) or canonical_name(source)
    return name or (re.sub(r"[^a-z0-9]+", "_", source.lower()).strip("_") or "value")


def plan_variable(source: str, mapping: VariableMapping, file_units: str | None,
                  uri: str) -> VariablePlan:
    """Name, canonical units and the conversion of one source column."""
    name = output_name(source, mapping)
    canon = canonical_name(mapping.standard_name) or canonical_name(name)
    units = mapping.units or file_units
    conv = column_conversion(units, canonical_units(canon) if canon else None, mapping.units_to,
                             variable=source, source=uri)
    info = ColumnInfo(name=name, role="variable", units=conv.target_units or None,
                      standard_name=mapping.standard_name or canon, source_name=source,
                      source_units=units, conversion=conv.description)
    return VariablePlan(source, info, conv, mapping.dtype)


#: recipe keys that make a source column one of the connector's columns, where a kind has them
_COLUMN_KEYS = {"time": ("time_column", "set time_column: {source}"),
                "latitude": ("latitude_column", "set latitude_column: {source}"),
                "longitude": ("longitude_column", "set longitude_column: {source}"),
                "depth": ("depth_column", "set depth_column: {source}"),
                "station_id": ("station_id_column", "set station_id_column: {source}")}


def check_unique(schema: pa.Schema, config: StationConfig, uri: str) -> None:
    """No output column twice: a variable named ``depth`` or two variables with one name are
    refused at plan time, naming the recipe key (:func:`connectors.base.check_column_names`)."""
    fields = type(config).model_fields
    hints = {column: hint for column, (key, hint) in _COLUMN_KEYS.items() if key in fields}
    if isinstance(config, DelimitedConfig):
        hints["time"] = "set time: {{columns: {source}}}"
    check_column_names(schema, uri, hints=hints)


COORDINATES = (
    ColumnInfo("time", "coordinate", standard_name="time"),
    ColumnInfo("depth", "coordinate", units="m", standard_name="depth", long_name="positive down"),
    ColumnInfo("latitude", "coordinate", units="degree_north", standard_name="latitude",
               conversion=geo.LATITUDE_CONVERSION),
    ColumnInfo("longitude", "coordinate", units="degree_east", standard_name="longitude",
               conversion=geo.LONGITUDE_CONVERSION),
    ColumnInfo("station_id", "id", long_name="station identifier"),
)
SOURCE_FILE = ColumnInfo("source_file", "source", long_name="URI of the source file")
_COORD_TYPES = [UTC, pa.float64(), pa.float64(), pa.float64(), pa.string()]


def observation_schema(time_info: ColumnInfo, variables: list[VariablePlan],
                       extras: list[tuple[ColumnInfo, pa.DataType]] = (),
                       extra_metadata: dict[str, dict[bytes, bytes]] | None = None) -> pa.Schema:
    """time, depth, latitude, longitude, station_id, variables, extras (flags), source_file."""
    infos = [time_info, *COORDINATES[1:]]
    fields = [pa.field(i.name, t, metadata=i.metadata()) for i, t in zip(infos, _COORD_TYPES)]
    extra_metadata = extra_metadata or {}
    for var in variables:
        meta = {**var.info.metadata(), **extra_metadata.get(var.info.name, {})}
        fields.append(pa.field(var.info.name, pa.type_for_alias(var.dtype), metadata=meta))
    fields += [pa.field(i.name, t, metadata=i.metadata()) for i, t in extras]
    fields.append(pa.field(SOURCE_FILE.name, pa.string(), metadata=SOURCE_FILE.metadata()))
    return pa.schema(fields)


def time_info(source: str, timezone: str, fmt: str, units: str | None = None,
              calendar: str = "standard") -> ColumnInfo:
    if units is not None:
        return ColumnInfo("time", "coordinate", standard_name="time", source_name=source,
                          source_units=units, conversion=cftime_decode.describe(units, calendar))
    conv = "none (UTC)" if timezone == "UTC" else f"local time in {timezone} -> UTC"
    return ColumnInfo("time", "coordinate", standard_name="time", source_name=source,
                      source_units=f"{fmt} in {timezone}", conversion=conv)


def convert_variable(values: pa.Array, plan: VariablePlan, fill_values) -> pa.Array:
    values = mask_missing(values, fill_values)
    array = values.to_numpy(zero_copy_only=False)
    converted = plan.conversion.apply(array.astype(np.float64, copy=False))
    return pa.array(converted, pa.float64(), mask=np.isnan(converted)).cast(plan.dtype)


def constant(value, n: int, type_: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n)


def wrap_longitude(values: pa.Array) -> pa.Array:
    """Valid longitudes in [-180, 180); impossible ones kept raw (:mod:`connectors.geo`)."""
    return geo.longitude_arrow(values)


def assemble(schema: pa.Schema, columns: dict[str, pa.Array], n: int, uri: str) -> pa.Table:
    """Lay out ``columns`` in ``schema`` order; absent coordinates are null."""
    arrays = []
    for field in schema:
        if field.name == "source_file":
            arrays.append(constant(uri, n, pa.string()))
        elif field.name in columns:
            arrays.append(pa.array(columns[field.name]).cast(field.type))
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def time_order(times: pa.Array) -> pa.Array | None:
    """Indices that sort ``times`` ascending (stable), or None when they already are."""
    if len(times) < 2 or pc.all(pc.greater_equal(times[1:], times[:-1])).as_py():
        return None  # already ascending: skip the copy a take() costs
    # arrow's sort is stable: rows with equal times (ERDDAP profiles) keep file order
    return pc.sort_indices(times)


def sort_by_time(table: pa.Table) -> pa.Table:
    order = time_order(table.column("time").combine_chunks())
    return table if order is None else table.take(order)


# --------------------------------------------------------------------------------------------
# quarantine bookkeeping
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Rejects:
    """Rejected records of one chunk, positions local (0-based line index) until finalised."""

    reasons: list = dataclasses.field(default_factory=list)
    details: list = dataclasses.field(default_factory=list)
    lines: list = dataclasses.field(default_factory=list)
    raws: list = dataclasses.field(default_factory=list)

    def add(self, reasons, details, lines, raws) -> None:
        self.reasons += list(reasons)
        self.details += list(details)
        self.lines += [int(x) for x in lines]
        self.raws += list(raws)

    def table(self, source_file: str, first_line) -> pa.Table | None:
        """``first_line`` is the 1-based number of local line 0, or a callable computing it."""
        if not self.reasons:
            return None
        base = first_line() if callable(first_line) else first_line
        order = np.argsort(np.asarray(self.lines), kind="stable")
        take = lambda seq: [seq[i] for i in order]  # noqa: E731
        return quarantine_table(take(self.reasons), take(self.details), source_file,
                                [base + self.lines[i] for i in order], take(self.raws))


def line_number_at(uri: str, offset: int) -> int:
    """1-based line number of the line starting at byte ``offset`` (reads the prefix)."""
    with open(local_path(uri), "rb") as handle:
        return integrity.line_breaks(handle, offset) + 1


def reject_rows(rejects: Rejects, bad: np.ndarray, reason: str, detail, lines: np.ndarray,
                raw_line) -> None:
    """Quarantine rows where ``bad``; ``detail(i)``/``raw_line(i)`` run for those rows only."""
    idx = np.flatnonzero(bad)
    if idx.size:
        rejects.add([reason] * idx.size, [detail(i) for i in idx], lines[idx],
                    [raw_line(i) for i in idx])


def cell_detail(column: str, values: pa.Array, what: str):
    return lambda i: f"column {column!r}: {what} {values[int(i)].as_py()!r}"


# --------------------------------------------------------------------------------------------
# the connector
# --------------------------------------------------------------------------------------------

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
    rejects = Rejects()
    data, unusable = usable_lines(data, plan.layout, rejects)
    scanned = scan_lines(data, plan.layout)
    rejects.add(scanned.bad_reasons, scanned.bad_details, scanned.bad_lines, scanned.bad_raw)
    raw = _raw_line_getter(data, scanned.good_lines)
    try:
        table = _typed_table(scanned.clean, plan, config, rejects, scanned.good_lines, raw)
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(
            f"bytes {chunk.start}-{chunk.stop}: pyarrow could not parse the cleaned lines: {err}",
            source=chunk.uri, fix="check delimiter and quote_char in the recipe") from err
    result = _observations(table, plan, config, rejects, scanned.good_lines, raw, station_id,
                           chunk.uri)
    quarantine = rejects.table(chunk.uri, lambda: line_number_at(chunk.uri, offset))
    return ChunkResult(table=result, rows_in=scanned.rows_in + unusable, rows_dropped=0,
                       quarantine=quarantine)


def usable_lines(data: bytes, layout: TextLayout, rejects: Rejects) -> tuple[bytes, int]:
    """UTF-8 text of a chunk whose lines the scan can trust, and how many lines were emptied.

    Lone CRs become line ends; a line that does not decode as the layout's encoding, or that is
    longer than :data:`integrity.MAX_LINE_BYTES`, is emptied (so line indices hold) and goes to
    ``rejects`` as ``encoding`` / ``line_too_long``. Clean chunks pass without a copy.
    """
    data, bad, raws = integrity.transcode_lines(integrity.normalise_newlines(data),
                                                layout.encoding)
    rejects.add(["encoding"] * len(bad), [f"not valid {layout.encoding}"] * len(bad), bad, raws)
    if len(data) <= integrity.MAX_LINE_BYTES:
        return data, len(bad)
    buf = np.frombuffer(data, np.uint8)
    starts, ends = _line_bounds(buf)
    long = np.flatnonzero(integrity.long_lines(starts, ends))
    if not long.size:
        return data, len(bad)
    rejects.add(["line_too_long"] * long.size,
                [f"{ends[i] - starts[i]} bytes, more than {integrity.MAX_LINE_BYTES}"
                 for i in long], long,
                [data[starts[i]:starts[i] + integrity.RAW_KEEP].decode("utf-8", "replace") + "…"
                 for i in long])
    keep = np.ones(buf.size, bool)
    for i in long:  # rare: one slice per over-long line
        keep[starts[i]:ends[i]] = False
    return buf[keep].tobytes(), len(bad) + long.size


def _raw_line_getter(data: bytes, good_lines: np.ndarray):
    bounds = []

    def raw(i: int) -> str:  # called only for rejected rows; line bounds computed once
        if not bounds:
            bounds.extend(_line_bounds(np.frombuffer(data, np.uint8)))
        line = good_lines[i]
        return data[bounds[0][line]:bounds[1][line]].decode("utf-8", "replace").rstrip("\r")
    return raw


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
    data, _ = usable_lines(data, plan.layout, Rejects())
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


def default_variables(layout: TextLayout, used: set[str]) -> dict[str, VariableMapping]:
    """When the recipe lists none: every other column that the header gives units for."""
    return {name: VariableMapping() for name, units in zip(layout.names, layout.units)
            if name not in used and units}


class DelimitedText(Connector):
    """Generic delimited text: CSV, TSV, whitespace tables, quoted or not, with a header."""

    kind = "delimited"
    config_model = DelimitedConfig

    def table_plan(self, config: DelimitedConfig, uri: str) -> TablePlan:
        layout = delimited_layout(config, uri)
        coords = {"station_id": config.station_id_column, "latitude": config.latitude_column,
                  "longitude": config.longitude_column, "depth": config.depth_column}
        used = set(config.time.columns) | {v for v in coords.values() if v}
        variables = config.variables or default_variables(layout, used)
        return make_table_plan(layout, config, uri, config.time, variables, coords)

    def plan(self, config: DelimitedConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        plan = self.table_plan(config, uri)
        check_time_text(plan, uri)
        chunks = plan_chunks(0, uri, sha256, size, plan.layout.data_start, config.chunk_bytes)
        return SourcePlan(uri, sha256, size, plan.schema, plan.columns, chunks,
                          {"station_id": config.station_id})

    def read(self, config: DelimitedConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        plan = dataclasses.replace(self.table_plan(config, chunk.uri), schema=plan_schema)
        return read_text_chunk(plan, config, chunk, config.station_id)

