"""Port registries and port-call tables from delimited text (``kind: port_table``).

Port tables are reference data, not time series: one record per port (World Port Index, USACE
Principal Ports) or per port and month (visit counts). The output schema is::

    port_id, port_name, unlocode, latitude, longitude, time, country,
    <remaining columns>, id_duplicated, source_file

* ``port_id`` is the text of ``id_column`` (``7950.0`` is written ``7950``), ``unlocode`` is the
  normalised UN/LOCODE (spaces removed, upper case, 5 characters; anything else becomes null).
* Coordinates come from ``latitude_column``/``longitude_column`` or from a WKT ``POINT(lon lat)``
  column (``wkt_column``); a record without a numeric latitude and longitude is quarantined
  (``bad_coordinates``), while a numeric but impossible one (latitude 95, longitude -999) is kept
  as in the file for QC's location test, as in every kind (:mod:`connectors.geo`).
* ``time`` comes from ``time_column`` (``Month`` ``2022-01`` is the start of the month) and is
  null for registries.
* ``id_duplicated`` is True on every emitted record whose (``port_id``, ``time``) key occurs more
  than once in the file. Registries do carry duplicated ids (WPI 49460 and 400 appear twice); the
  records are kept, flagged, and their number logged, so that a consumer can choose.
* Placeholders (empty or blank cells, ``missing_values`` such as ``Unknown``) become nulls.

Design choices:

* One chunk per file. Port tables are kilobytes to a few MiB, and an exact ``id_duplicated``
  needs the whole file in one place anyway.
* Records are physical lines (``newlines_in_values`` is off). Lines are located once with numpy,
  so every quarantined record carries its true 1-based line number and raw text. A line whose
  quoting does not close on the line (checked with one RE2 pattern over all lines) is
  quarantined (``bad_quoting``) before pyarrow sees the text, so one stray quote never swallows
  the rest of the file. Empty lines are not records.
* Quarantine reasons: ``bad_quoting``, ``wrong_field_count``, ``missing_id``, ``bad_wkt``,
  ``bad_coordinates``, ``bad_time``, ``bad_value`` (a cell that does not parse as its column's
  declared type). A record with several problems is quarantined once, for the first of these.
* Column types are declared in the recipe (``columns:``) or inferred from the whole file during
  planning (int64, float64, bool from Yes/No/True/False, else string), so every chunk agrees with
  the plan's schema.
"""
from __future__ import annotations

import dataclasses
import difflib
import io
import logging
import re
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
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
)
from connectors.config import Frozen, SourceConfig, TextEncoding
from connectors.quarantine import Quarantine, RowChecks
from connectors.exceptions import (
    ConnectorError,
    EncodingError,
    MissingVariableError,
    SourceNotFoundError,
    UnreadableSourceError,
)

log = logging.getLogger(__name__)

ColumnType = Literal["auto", "string", "int64", "float64", "bool"]
_ARROW_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
                "bool": pa.bool_()}
_UTF8_BOM = b"\xef\xbb\xbf"
#: at most 18 digits always fits int64; longer integers are inferred float64 (or bad_value)
_INT_RE = r"^[+-]?\d{1,18}$"
#: inf is a number (a bad one, kept for QC to FAIL); NaN stays a placeholder (missing_values)
_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:inf|infinity)$"
_TRUE = ["true", "yes", "y", "t"]
_FALSE = ["false", "no", "n", "f"]
_UNLOCODE_RE = r"^[A-Z]{2}[A-Z2-9]{3}$"
_WKT_POINT_RE = (r"(?i)^\s*POINT\s*(?:Z\s*)?\(\s*(?P<lon>[^\s()]+)\s+(?P<lat>[^\s()]+)"
                 r"(?:\s+[^\s()]+)?\s*\)\s*$")
#: output columns the connector itself writes; remaining source columns may not take these names
_FIXED = ("port_id", "port_name", "unlocode", "latitude", "longitude", "time", "country")
_TRAILER = ("id_duplicated", "source_file")
_TIME_TYPE = pa.timestamp("us", tz="UTC")


# --------------------------------------------------------------------------- configuration

class ColumnSpec(Frozen):
    """How one remaining source column is written: output ``name`` and value ``type``."""

    name: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9_]*$",
        description="output column name (default: the source name in snake case)",
        examples=["harbour_size"])
    type: ColumnType = Field(
        default="auto",
        description="value type of the output column (auto: inferred from the values)")


class PortTableConfig(SourceConfig):
    """A recipe ``sources[]`` entry of kind ``port_table``."""

    reference_omit: ClassVar[tuple[str, ...]] = ("variables",)

    kind: Literal["port_table"]
    id_column: str = Field(
        min_length=1,
        description="the column holding the port id (required)",
        examples=["INDEX_NO"])
    name_column: str | None = Field(
        default=None,
        description="the column holding the port name",
        examples=["PORT_NAME"])
    unlocode_column: str | None = Field(
        default=None,
        description="the column holding the UN/LOCODE",
        examples=["UN/LOCODE"])
    country_column: str | None = Field(
        default=None,
        description="the column holding the country",
        examples=["COUNTRY"])
    latitude_column: str | None = Field(
        default=None,
        description="the column holding the latitude (degrees north)",
        examples=["LATITUDE"])
    longitude_column: str | None = Field(
        default=None,
        description="the column holding the longitude (degrees east)",
        examples=["LONGITUDE"])
    wkt_column: str | None = Field(
        default=None,
        description="a WKT `POINT(lon lat)` column, instead of latitude_column/longitude_column",
        examples=["geometry"])
    time_column: str | None = Field(
        default=None,
        description="the column holding a time (e.g. the month of a port call count)",
        examples=["month"])
    time_format: str = Field(
        default="%Y-%m",
        description="strptime format of `time_column`; `%Y-%m` gives the start of the month in "
                    "UTC",
        examples=["%Y-%m-%d"])
    missing_values: tuple[str, ...] = Field(
        default=("Unknown",),
        description="cell values (after trimming blanks) that mean 'no value'; empty cells "
                    "always do",
        examples=[["Unknown", "-"]])
    delimiter: str = Field(
        default=",", min_length=1, max_length=1,
        description="one character separating the fields",
        examples=[";"])
    encoding: TextEncoding = "utf-8"
    columns: dict[str, ColumnSpec] | None = Field(
        default=None,
        description="remaining columns to keep (source name -> spec or output name); None keeps "
                    "them all",
        examples=[{"HARBORSIZE": {"name": "harbour_size", "type": "string"}}])
    drop: tuple[str, ...] = Field(
        default=(),
        description="remaining columns to leave out when `columns` is not given",
        examples=[["OBJECTID"]])


    @field_validator("columns", mode="before")
    @classmethod
    def _expand_columns(cls, value):
        if isinstance(value, dict):
            return {k: ({"name": v} if isinstance(v, str) else (v or {})) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self):
        has_pair = self.latitude_column is not None and self.longitude_column is not None
        has_one = (self.latitude_column is None) != (self.longitude_column is None)
        if has_one or has_pair == (self.wkt_column is not None):
            raise ValueError("give either latitude_column and longitude_column, or wkt_column "
                             "(a WKT POINT(lon lat) column), not both and not neither")
        if self.variables:
            raise ValueError("port tables have no canonical variables; list extra columns under "
                             "`columns:` ({source: {name: ..., type: ...}}) instead of `variables:`")
        if self.columns is not None and self.drop:
            raise ValueError("`drop` only applies when `columns` is not given; remove the dropped "
                             "names from `columns` instead")
        return self

    def role_columns(self) -> dict[str, str]:
        """Output name -> source column, for the columns the connector writes itself."""
        roles = {"port_id": self.id_column, "port_name": self.name_column,
                 "unlocode": self.unlocode_column, "country": self.country_column,
                 "latitude": self.latitude_column, "longitude": self.longitude_column,
                 "wkt": self.wkt_column, "time": self.time_column}
        return {k: v for k, v in roles.items() if v is not None}


# --------------------------------------------------------------------------- lines and CSV

@dataclasses.dataclass(frozen=True)
class _Lines:
    """Physical lines of a text buffer: byte offsets, 1-based numbers, empty flags."""

    starts: np.ndarray   # first byte of each line
    spans: np.ndarray    # bytes up to the next line, newline included
    numbers: np.ndarray  # 1-based line numbers
    empty: np.ndarray    # nothing but an optional carriage return


def split_lines(data: bytes) -> _Lines:
    """Locate lines with numpy (no Python loop): byte offsets and emptiness."""
    arr = np.frombuffer(data, dtype=np.uint8)
    cr = arr == ord("\r")
    lone_cr = cr & ~np.append(arr[1:] == ord("\n"), False)  # a bare CR ends a line, as in pyarrow
    newlines = np.flatnonzero((arr == ord("\n")) | lone_cr)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [arr.size]])
    if starts[-1] == arr.size:  # a trailing newline does not open another line
        starts, ends = starts[:-1], ends[:-1]
    spans = np.diff(np.concatenate([starts, [arr.size]]))
    has_cr = np.zeros(starts.size, dtype=bool)
    nonempty = ends > starts
    has_cr[nonempty] = cr[ends[nonempty] - 1]
    return _Lines(starts=starts, spans=spans, numbers=np.arange(1, starts.size + 1),
                  empty=(ends - starts - has_cr) == 0)


def record_pattern(delimiter: str) -> str:
    """RE2 pattern of one CSV record that keeps every quote on its own line.

    A field is unquoted (not starting with a quote; later quotes are literal, as in pyarrow) or
    quoted (``""`` escapes a quote; text after the closing quote is appended, as in pyarrow).
    A line that does not match would make pyarrow read on into the next lines.
    """
    d = re.escape(delimiter)
    field = f'(?:"(?:[^"]|"")*"[^"{d}]*|(?:[^"{d}][^{d}]*)?)'
    return f"^{field}(?:{d}{field})*$"


def well_formed(texts: pa.Array, delimiter: str) -> np.ndarray:
    """True for lines whose quoting closes on the line (RE2 over all lines at once)."""
    return _mask(pc.match_substring_regex(texts, record_pattern(delimiter)))


def line_texts(data: bytes, lines: _Lines) -> pa.Array:
    """All lines as one Arrow string array (zero-copy offsets), line endings trimmed."""
    offsets = np.concatenate([lines.starts, [lines.starts[-1] + lines.spans[-1]]])
    array = pa.LargeStringArray.from_buffers(
        lines.starts.size, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data))
    return pc.utf8_rtrim(array, characters="\r\n").cast(pa.string())


def keep_lines(data: bytes, lines: _Lines, keep: np.ndarray) -> bytes:
    """The buffer with only the kept lines (a byte mask, not a loop over lines)."""
    mask = np.repeat(keep, lines.spans)
    return np.frombuffer(data, dtype=np.uint8)[mask].tobytes()


def parse_header(header: bytes, delimiter: str, where: str) -> list[str]:
    """Column names of a header line, with the same quoting rules as the records."""
    parse = pacsv.ParseOptions(delimiter=delimiter)
    header = header if header.endswith(b"\n") else header + b"\n"
    auto = pacsv.ReadOptions(autogenerate_column_names=True)
    try:
        probe = pacsv.read_csv(io.BytesIO(header), parse_options=parse, read_options=auto)
        as_text = pacsv.ConvertOptions(column_types={n: pa.string() for n in probe.column_names})
        row = pacsv.read_csv(io.BytesIO(header), parse_options=parse, convert_options=as_text,
                             read_options=auto)
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(f"cannot parse the header line {header[:200]!r}: {err}",
                                    source=where, fix="the first line must hold column names"
                                    ) from err
    names = [row.column(i)[0].as_py().strip() for i in range(row.num_columns)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UnreadableSourceError(
            f"header repeats column name(s) {repeated}", source=where,
            fix="give every column a distinct name in the file's first line")
    return names


@dataclasses.dataclass
class RawTable:
    """A file parsed to strings: good-shape records, their line numbers and raw text, and the
    records already rejected for their shape."""

    table: pa.Table            # one string column per header name, placeholders as nulls
    positions: np.ndarray      # 1-based line number of each table row
    raws: pa.Array             # raw text of each table row
    quarantine: Quarantine     # the records rejected for their shape (or encoding, or length)
    rows_in: int


def load_raw(config: PortTableConfig, path: Path, where: str) -> RawTable:
    """Read and split a file, quarantine malformed lines, parse the rest as strings."""
    raw = integrity.normalise_newlines(path.read_bytes().removeprefix(_UTF8_BOM))
    data, undecodable, undecodable_raw = integrity.transcode_lines(raw, config.encoding)
    if undecodable.size and undecodable[0] == 0:
        _decode(raw[:raw.find(b"\n") + 1 or len(raw)], config.encoding, where)  # raises
    if data and not data.endswith((b"\n", b"\r")):  # pyarrow cannot skip a header with no line end
        data += b"\n"
    lines = split_lines(data)
    texts = line_texts(data, lines) if lines.starts.size else pa.array([], pa.string())
    formed = well_formed(texts, config.delimiter)
    if lines.starts.size == 0 or lines.empty[0] or not formed[0]:
        raise UnreadableSourceError("the first line is not a header of column names",
                                    source=where, fix="check the file is a CSV with a header")
    names = parse_header(data[: lines.starts[0] + lines.spans[0]], config.delimiter, where)
    too_long = integrity.long_lines(lines.starts, lines.starts + lines.spans)
    is_record = ~lines.empty & (lines.numbers > 1)
    formed &= ~too_long
    keep = is_record & formed
    keep[0] = True
    invalid: list[int] = []
    try:
        table = _parse_records(keep_lines(data, lines, keep), names, config.delimiter, invalid)
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(f"pyarrow cannot parse the records: {err}", source=where,
                                    fix="check `delimiter:` and that this is a CSV file"
                                    ) from err
    kept_numbers = lines.numbers[keep]
    _check_alignment(table.num_rows, invalid, kept_numbers.size - 1, where)
    bad_shape = kept_numbers[np.asarray(invalid, dtype=np.int64) - 1]
    good = np.setdiff1d(kept_numbers[1:], bad_shape)
    quarantine = Quarantine(where)
    quarantine.add("encoding", f"not valid {config.encoding}", undecodable + 1, undecodable_raw)
    _quarantine_lines(quarantine, "line_too_long", f"more than {integrity.MAX_LINE_BYTES} bytes",
                      lines.numbers[is_record & too_long],
                      pc.utf8_slice_codeunits(texts, 0, integrity.RAW_KEEP))
    _quarantine_lines(quarantine, "bad_quoting", "a quoted field is not closed on its line "
                      "(quoted line breaks are not supported) or a quote follows a closed quoted "
                      "field", lines.numbers[is_record & ~formed & ~too_long], texts)
    _quarantine_lines(quarantine, "wrong_field_count",
                      f"expected {len(names)} fields as in the header", bad_shape, texts)
    return RawTable(table=normalise_strings(table, config.missing_values), positions=good,
                    raws=texts.take(pa.array(good - 1)), quarantine=quarantine,
                    rows_in=int(is_record.sum()) + undecodable.size)


def _check_alignment(rows: int, invalid: list, lines: int, where: str) -> None:
    """Rows and rejected rows must be exactly the kept lines, or positions would be wrong."""
    if rows + len(invalid) != lines or any(n is None for n in invalid):
        raise UnreadableSourceError(
            f"pyarrow returned {rows} rows and {len(invalid)} rejected rows for {lines} lines",
            source=where, fix="report this file: its quoting defeats line-exact parsing")


def _decode(data: bytes, encoding: str, where: str) -> bytes:
    """UTF-8 bytes of the header line; the records are transcoded line by line."""
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise EncodingError(f"the header line is not valid {encoding} ({integrity.describe(err)})",
                                    source=where,
                                    fix="set `encoding:` to the file's encoding, e.g. latin-1"
                                    ) from err
    return data if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else text.encode()


def _parse_records(data: bytes, names: list[str], delimiter: str, invalid: list[int]) -> pa.Table:
    def on_invalid(row) -> str:
        # called by pyarrow for wrong-shape rows only; row.number is the line in ``data``
        invalid.append(row.number)
        return "skip"

    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=False),
    )


def _quarantine_lines(quarantine: Quarantine, reason: str, detail: str, numbers: np.ndarray,
                      texts: pa.Array) -> None:
    """Quarantine whole lines by 1-based number (``texts``: every line's text)."""
    quarantine.add(reason, detail, numbers,
                   texts.take(pa.array(np.asarray(numbers, np.int64) - 1)))


# --------------------------------------------------------------------------- values

def normalise_strings(table: pa.Table, missing: tuple[str, ...]) -> pa.Table:
    """Trim blanks; empty cells and ``missing`` placeholders become nulls."""
    placeholders = pa.array(list(missing), pa.string())
    columns = []
    for column in table.columns:  # a loop over columns; each step is vectorised
        text = pc.utf8_trim_whitespace(column)
        absent = pc.or_(pc.equal(text, ""), pc.is_in(text, value_set=placeholders))
        columns.append(pc.if_else(absent, pa.scalar(None, pa.string()), text))
    return pa.table(columns, names=table.column_names)


def normalise_unlocode(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """``US NYC``/``usnyc`` -> ``USNYC``; anything not 2 letters + 3 letters/digits -> null."""
    code = pc.utf8_upper(pc.replace_substring_regex(values, r"\s+", ""))
    return pc.if_else(pc.match_substring_regex(code, _UNLOCODE_RE), code,
                      pa.scalar(None, pa.string()))


def normalise_id(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Ids read as floats by other tools (``7950.0``) are written as the integer text."""
    return pc.replace_substring_regex(values, r"^([+-]?\d+)\.0*$", r"\1")


def infer_type(values: pa.ChunkedArray) -> str:
    """The narrowest of int64, float64, bool, string that holds every non-null value."""
    present = pc.drop_null(values)
    if len(present) == 0:
        return "string"
    for name in ("int64", "float64", "bool"):
        if not pc.any(_bad_cells(present, name)).as_py():
            return name
    return "string"


def _bad_cells(values, type_name: str):
    """True where a non-null cell does not spell a value of ``type_name``."""
    if type_name == "int64":
        ok = pc.match_substring_regex(values, _INT_RE)
    elif type_name == "float64":
        ok = pc.match_substring_regex(values, _FLOAT_RE)
    elif type_name == "bool":
        ok = pc.is_in(pc.utf8_lower(values), value_set=pa.array(_TRUE + _FALSE))
    else:
        ok = pc.is_valid(values)
    return pc.and_(pc.is_valid(values), pc.invert(ok))


def parse_values(values: pa.ChunkedArray, type_name: str) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Cast text to ``type_name``; returns the values and a mask of cells that did not parse."""
    bad = pc.fill_null(_bad_cells(values, type_name), False)
    clean = pc.if_else(bad, pa.scalar(None, pa.string()), values)
    if type_name == "bool":
        parsed = pc.is_in(pc.utf8_lower(clean), value_set=pa.array(_TRUE))
        parsed = pc.if_else(pc.is_valid(clean), parsed, pa.scalar(None, pa.bool_()))
    else:
        parsed = pc.cast(clean, _ARROW_TYPES[type_name])
    return parsed, _mask(bad)


def _mask(values) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_coordinates(lat_text, lon_text) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Latitude/longitude text to float64; a missing or non-numeric pair is bad.

    Numbers follow the shared rule of :mod:`connectors.geo`: valid longitudes in [-180, 180)
    (0-360 ones shifted), and an impossible position (latitude 95, longitude -999) kept as in the
    file, for QC's location test to FAIL, rather than dropped.
    """
    lat, bad_lat = parse_values(lat_text, "float64")
    lon, bad_lon = parse_values(lon_text, "float64")
    present = pc.and_(pc.is_valid(lat), pc.is_valid(lon))
    bad = bad_lat | bad_lon | ~_mask(present)
    return lat, geo.longitude_arrow(lon), bad


def parse_wkt(values: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray, np.ndarray]:
    """Longitude and latitude text of WKT ``POINT(lon lat)``; mask of cells that are not one."""
    points = pc.extract_regex(pc.fill_null(values, ""), _WKT_POINT_RE)
    found = pc.is_valid(points)
    none = pa.scalar(None, pa.string())
    lon = pc.if_else(found, pc.struct_field(points, "lon"), none)
    lat = pc.if_else(found, pc.struct_field(points, "lat"), none)
    return lat, lon, ~_mask(found)


def parse_times(values: pa.ChunkedArray, fmt: str) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Text to timestamp[us, UTC] with a strptime format; missing or unparseable -> bad."""
    times = pc.strptime(values, format=fmt, unit="us", error_is_null=True)
    if times.type.tz is None:
        times = times.cast(pa.timestamp("us"))  # naive times in port tables are UTC
    return times.cast(_TIME_TYPE), ~_mask(pc.is_valid(times))


def duplicated_keys(port_id: pa.ChunkedArray, time: pa.ChunkedArray) -> np.ndarray:
    """True for every record whose (port_id, time) occurs more than once (hash-based, O(n))."""
    keys = pd.DataFrame({"id": port_id.to_pandas(), "time": time.to_pandas()})
    return keys.duplicated(keep=False).to_numpy(dtype=bool)


def snake_case(name: str) -> str:
    """``Tidal Range (m)`` -> ``tidal_range_m``; ``Visit_Count`` -> ``visit_count``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    out = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_") or "column"
    return out if out[0].isalpha() else f"c_{out}"


def _units_in_name(name: str) -> str | None:
    match = re.search(r"\(([^()]+)\)\s*$", name)
    return match.group(1).strip() if match else None


# --------------------------------------------------------------------------- schema

_FIXED_INFO = {
    "port_id": (ColumnInfo("port_id", "id", long_name="port identifier"), pa.string()),
    "port_name": (ColumnInfo("port_name", "attribute", long_name="port name"), pa.string()),
    "unlocode": (ColumnInfo("unlocode", "id", long_name="UN/LOCODE"), pa.string()),
    "latitude": (ColumnInfo("latitude", "coordinate", units="degrees_north",
                            standard_name="latitude", conversion=geo.LATITUDE_CONVERSION),
                 pa.float64()),
    "longitude": (ColumnInfo("longitude", "coordinate", units="degrees_east",
                             standard_name="longitude", conversion=geo.LONGITUDE_CONVERSION),
                  pa.float64()),
    "time": (ColumnInfo("time", "coordinate", standard_name="time"), _TIME_TYPE),
    "country": (ColumnInfo("country", "attribute", long_name="country"), pa.string()),
}


def fixed_fields(config: PortTableConfig) -> list[pa.Field]:
    """The connector's own leading columns, with the source column in the metadata."""
    roles = config.role_columns()
    fields = []
    for name in _FIXED:
        info, type_ = _FIXED_INFO[name]
        source = roles.get(name) or (roles.get("wkt") if name in ("latitude", "longitude")
                                      else None)
        info = dataclasses.replace(info, source_name=source)
        fields.append(pa.field(name, type_, metadata=info.metadata()))
    return fields


def trailer_fields(uri: str) -> list[pa.Field]:
    flag = ColumnInfo("id_duplicated", "flag",
                      long_name="(port_id, time) occurs more than once in the source file")
    source = ColumnInfo("source_file", "source", source_name=uri)
    return [pa.field("id_duplicated", pa.bool_(), metadata=flag.metadata()),
            pa.field("source_file", pa.string(), metadata=source.metadata())]


def extra_columns(config: PortTableConfig, names: list[str]) -> dict[str, ColumnSpec]:
    """Remaining source column -> resolved spec (output name filled in)."""
    used = set(config.role_columns().values())
    if config.columns is not None:
        chosen = config.columns
    else:
        chosen = {n: ColumnSpec() for n in names if n not in used and n not in config.drop}
    return {src: spec.model_copy(update={"name": spec.name or snake_case(src)})
            for src, spec in chosen.items()}


def check_columns(config: PortTableConfig, names: list[str], where: str) -> None:
    """Every column the recipe names must be in the header."""
    wanted = {**{f"{role}_column": col for role, col in config.role_columns().items()},
              **{f"columns.{c}": c for c in (config.columns or {})},
              **{f"drop[{c}]": c for c in config.drop}}
    for key, column in wanted.items():
        if column not in names:
            close = difflib.get_close_matches(column, names, n=3)
            raise MissingVariableError(
                f"column {column!r} (recipe key {key}) is not in the header",
                source=where,
                fix=f"use one of {close or names[:10]} (header has {len(names)} columns)")


def check_names(extras: dict[str, ColumnSpec], where: str) -> None:
    """Output names must be unique and not collide with the connector's own columns."""
    seen: dict[str, str] = dict.fromkeys(_FIXED + _TRAILER, "(connector)")
    for source, spec in extras.items():
        if spec.name in seen:
            raise ConnectorError(
                f"column {source!r} would be written as {spec.name!r}, which is already taken "
                f"by {seen[spec.name]!r}", source=where,
                fix=f"map it under `columns:` ({source!r}: {{name: <new_name>}}) or `drop:` it")
        seen[spec.name] = source


def extra_field(source: str, spec: ColumnSpec, type_name: str) -> pa.Field:
    numeric = type_name in ("int64", "float64")
    info = ColumnInfo(spec.name, "attribute", units=_units_in_name(source) if numeric else None,
                      long_name=source, source_name=source)
    return pa.field(spec.name, _ARROW_TYPES[type_name], metadata=info.metadata())


# --------------------------------------------------------------------------- read

def _said(prefix: str, values, suffix: str):
    """A ``detail`` for :meth:`RowChecks.reject`: ``prefix + 'value' + suffix`` per row."""
    def describe(indices: np.ndarray) -> list[str]:
        quoted = pc.binary_join_element_wise("'", pc.take(values, pa.array(indices)), "'", "")
        shown = pc.fill_null(quoted, "<missing>")
        return pc.binary_join_element_wise(prefix, shown, suffix, "").to_pylist()
    return describe


def _joined(*describers):
    def describe(indices: np.ndarray) -> list[str]:
        parts = [pa.array(d(indices), pa.string()) for d in describers]
        return pc.binary_join_element_wise(*parts, ", ").to_pylist()
    return describe


def build_table(config: PortTableConfig, raw: pa.Table, schema: pa.Schema,
                rejects: RowChecks) -> dict[str, pa.ChunkedArray]:
    """Every output column for every parsed row; problems are recorded in ``rejects``."""
    none = pa.nulls(raw.num_rows, pa.string())
    port_id = normalise_id(raw[config.id_column])
    rejects.reject("missing_id", ~_mask(pc.is_valid(port_id)),
                _said("", port_id, f" in id column {config.id_column!r} is empty or a "
                      "placeholder; every record needs an id"))
    lat, lon = _coordinates(config, raw, rejects)
    return {
        "port_id": port_id, "latitude": lat, "longitude": lon,
        "time": _times(config, raw, rejects),
        "port_name": raw[config.name_column] if config.name_column else none,
        "unlocode": (normalise_unlocode(raw[config.unlocode_column])
                     if config.unlocode_column else none),
        "country": raw[config.country_column] if config.country_column else none,
        **_extras(raw, schema, rejects),
    }


def _coordinates(config: PortTableConfig, raw: pa.Table, rejects: RowChecks):
    if config.wkt_column:
        wkt = raw[config.wkt_column]
        lat_text, lon_text, bad_wkt = parse_wkt(wkt)
        rejects.reject("bad_wkt", bad_wkt, _said("", wkt, f" in column {config.wkt_column!r} is "
                                              "not WKT 'POINT(lon lat)'"))
    else:
        lat_text, lon_text = raw[config.latitude_column], raw[config.longitude_column]
    lat, lon, bad = parse_coordinates(lat_text, lon_text)
    rejects.reject("bad_coordinates", bad, _joined(
        _said("latitude ", lat_text, ""), _said("longitude ", lon_text,
              ": need a number for both latitude and longitude")))
    return lat, lon


def _times(config: PortTableConfig, raw: pa.Table, rejects: RowChecks):
    if not config.time_column:
        return pa.nulls(raw.num_rows, _TIME_TYPE)  # a registry: records are not dated
    text = raw[config.time_column]
    time, bad = parse_times(text, config.time_format)
    rejects.reject("bad_time", bad, _said("", text, f" in column {config.time_column!r} does not "
                                       f"match time_format {config.time_format!r}"))
    return time


def _extras(raw: pa.Table, schema: pa.Schema, rejects: RowChecks) -> dict:
    """The remaining columns, typed as the plan says (the source column is in the metadata)."""
    out = {}
    for field in schema:
        if field.name in _FIXED or field.name in _TRAILER:
            continue
        source = field.metadata[b"haina.source_name"].decode()
        type_name = _type_name(field.type)
        out[field.name], bad = parse_values(raw[source], type_name)
        rejects.reject("bad_value", bad, _said("", raw[source], f" in column {source!r} is not "
                                            f"a {type_name} value"))
    return out


def _type_name(type_: pa.DataType) -> str:
    return next(name for name, arrow in _ARROW_TYPES.items() if arrow == type_)


def assemble(columns: dict, keep: np.ndarray, schema: pa.Schema, uri: str) -> pa.Table:
    """Keep the good rows, add the duplicate flag and the source file, in schema order."""
    mask = pa.array(keep)
    kept = {name: pc.filter(values, mask) for name, values in columns.items()}
    n = int(keep.sum())
    kept["id_duplicated"] = pa.array(duplicated_keys(_chunked(kept["port_id"]),
                                                     _chunked(kept["time"])))
    kept["source_file"] = pa.array([uri] * n, pa.string())
    return pa.Table.from_arrays([_chunked(kept[f.name]).cast(f.type) for f in schema],
                                schema=schema)


def _chunked(values) -> pa.ChunkedArray:
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def read_table(config: PortTableConfig, path: Path, uri: str, schema: pa.Schema) -> ChunkResult:
    """Read a whole port table into ``schema``; bad records go to the quarantine."""
    raw = load_raw(config, path, uri)
    rejects = RowChecks(raw.quarantine, raw.positions,
                        lambda rows: raw.raws.take(pa.array(rows)))
    columns = build_table(config, raw.table, schema, rejects)
    table = assemble(columns, ~rejects.rejected, schema, uri)
    quarantine = raw.quarantine.table()
    duplicates = int(pc.sum(table["id_duplicated"]).as_py() or 0)
    if duplicates:
        log.warning("%s: %d records share a (port_id, time) key; kept and flagged in "
                    "id_duplicated", uri, duplicates)
    return ChunkResult(table=table, rows_in=raw.rows_in, rows_dropped=0, quarantine=quarantine)


# --------------------------------------------------------------------------- connector

def _local_path(uri: str) -> Path:
    path = Path(uri.removeprefix("file://"))
    if not path.is_file():
        raise SourceNotFoundError(f"port table {uri!r} does not exist or is not a file",
                                  source=uri, fix="check `uri:` (relative to the recipe file)")
    return path


def read_header(config: PortTableConfig, path: Path, uri: str) -> list[str]:
    """Column names from the first line only (cheap: the plan does not read the records)."""
    head = b""
    with path.open("rb") as handle:
        while not re.search(rb"[\r\n]", head) and (block := handle.read(1 << 16)):
            head += block  # usually one block: stop at the first line end, LF or bare CR
    lines = split_lines(head)
    first = head[: lines.starts[0] + lines.spans[0]] if lines.starts.size else b""
    return parse_header(_decode(first, config.encoding, uri).removeprefix(_UTF8_BOM),
                        config.delimiter, uri)


def plan_schema(config: PortTableConfig, path: Path, uri: str) -> pa.Schema:
    """Output schema; reads the whole file only when some column types must be inferred."""
    names = read_header(config, path, uri)
    check_columns(config, names, uri)
    extras = extra_columns(config, names)
    check_names(extras, uri)
    types = {src: spec.type for src, spec in extras.items()}
    if "auto" in types.values():
        raw = load_raw(config, path, uri).table
        types = {src: infer_type(raw[src]) if kind == "auto" else kind
                 for src, kind in types.items()}
    fields = [extra_field(src, spec, types[src]) for src, spec in extras.items()]
    return pa.schema(fixed_fields(config) + fields + trailer_fields(uri))


class PortTable(Connector):
    """Port registries and port-call/visit tables from CSV."""

    kind = "port_table"
    config_model = PortTableConfig

    def plan(self, config: PortTableConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        integrity.check_text(uri, config.encoding)
        path = _local_path(uri)
        schema = plan_schema(config, path, uri)
        columns = tuple(_column_info(f) for f in schema)
        # one chunk: the whole file (see the module docstring for why)
        chunk = ChunkSpec(source_index=0, uri=uri, sha256=sha256, ordinal=0, dim=None,
                          start=0, stop=size)
        return SourcePlan(uri=uri, sha256=sha256, size=size, schema=schema, columns=columns,
                          chunks=(chunk,), attributes={"kind": self.kind,
                                                       "id_column": config.id_column,
                                                       "time_column": config.time_column})

    def read(self, config: PortTableConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        return read_table(config, _local_path(chunk.uri), chunk.uri, plan_schema)


def _column_info(field: pa.Field) -> ColumnInfo:
    meta = {k.decode().removeprefix("haina."): v.decode() for k, v in (field.metadata or {}).items()}
    return ColumnInfo(name=field.name, **meta)
