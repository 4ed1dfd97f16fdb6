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
import logging
import re
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
from connectors.exceptions import (
    ConnectorError,
    MissingVariableError,
    SourceNotFoundError,
)
from connectors.quarantine import RowChecks
from connectors.text.port_records import (
    UTF8_BOM,
    decode_header,
    load_raw,
    parse_header,
    split_lines,
)
from connectors.text.port_values import (
    ARROW_TYPES,
    TIME_TYPE,
    ColumnType,
    duplicated_keys,
    infer_type,
    mask,
    normalise_id,
    normalise_unlocode,
    parse_coordinates,
    parse_times,
    parse_values,
    parse_wkt,
    snake_case,
    units_in_name,
)

log = logging.getLogger(__name__)

#: output columns the connector itself writes; remaining source columns may not take these names
_FIXED = ("port_id", "port_name", "unlocode", "latitude", "longitude", "time", "country")
_TRAILER = ("id_duplicated", "source_file")


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
    "time": (ColumnInfo("time", "coordinate", standard_name="time"), TIME_TYPE),
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
        name = spec.name or snake_case(source)
        if name in seen:
            raise ConnectorError(
                f"column {source!r} would be written as {name!r}, which is already taken "
                f"by {seen[name]!r}", source=where,
                fix=f"map it under `columns:` ({source!r}: {{name: <new_name>}}) or `drop:` it")
        seen[name] = source


def extra_field(source: str, spec: ColumnSpec, type_name: str) -> pa.Field:
    numeric = type_name in ("int64", "float64")
    name = spec.name or snake_case(source)
    info = ColumnInfo(name, "attribute", units=units_in_name(source) if numeric else None,
                      long_name=source, source_name=source)
    return pa.field(name, ARROW_TYPES[type_name], metadata=info.metadata())


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
    rejects.reject("missing_id", ~mask(pc.is_valid(port_id)),
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
        return pa.nulls(raw.num_rows, TIME_TYPE)  # a registry: records are not dated
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
    return next(name for name, arrow in ARROW_TYPES.items() if arrow == type_)


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
    raw = load_raw(path, uri, encoding=config.encoding, delimiter=config.delimiter,
                   missing=config.missing_values)
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
    return parse_header(decode_header(first, config.encoding, uri).removeprefix(UTF8_BOM),
                        config.delimiter, uri)


def plan_schema(config: PortTableConfig, path: Path, uri: str) -> pa.Schema:
    """Output schema; reads the whole file only when some column types must be inferred."""
    names = read_header(config, path, uri)
    check_columns(config, names, uri)
    extras = extra_columns(config, names)
    check_names(extras, uri)
    types = {src: spec.type for src, spec in extras.items()}
    if "auto" in types.values():
        raw = load_raw(path, uri, encoding=config.encoding, delimiter=config.delimiter,
                   missing=config.missing_values).table
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
