"""Station time series: NOAA NDBC realtime text, ERDDAP tabledap CSV, NOAA CO-OPS JSON.

The two text kinds describe their layout (names, units, missing tokens, time columns) from the
file's header and read it with the shared station text reader, :mod:`connectors.text.reader`,
which reads byte ranges with numpy + pyarrow. CO-OPS answers are small JSON documents read whole as one chunk.
Output: the canonical observation schema (time, depth, latitude, longitude), ``station_id``, the
variables in canonical units, flag columns, ``source_file``; rows ascending in time.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from connectors import integrity
from connectors.base import ChunkResult, ChunkSpec, ColumnInfo, Connector, SourcePlan
from connectors.config import VariableMapping
from connectors.exceptions import MissingVariableError, UnreadableSourceError
from connectors.quarantine import Quarantine
from connectors.text.columns import convert_variable, plan_variable, to_float
from connectors.text.config import StationConfig, TimeSpec
from connectors.text.delimited import DelimitedConfig, delimited_layout
from connectors.text.layout import TextLayout, head_lines, local_path
from connectors.text.lines import plan_chunks
from connectors.text.observations import (
    COORDINATES,
    SOURCE_FILE,
    assemble,
    check_unique,
    constant,
    observation_schema,
    sort_by_time,
    time_info,
    wrap_longitude,
)
from connectors.text.reader import TablePlan, make_table_plan, read_text_chunk, reject_rows
from connectors.text.times import check_timezone, parse_times

# --------------------------------------------------------------------------------------------
# NDBC realtime2 standard meteorological text
# --------------------------------------------------------------------------------------------

#: NDBC column -> output column (canonical CF names; PTDY has no CF name)
NDBC_VARIABLES: dict[str, str] = {
    "WDIR": "wind_from_direction",
    "WSPD": "wind_speed",
    "GST": "wind_speed_of_gust",
    "WVHT": "sea_surface_wave_significant_height",
    "DPD": "sea_surface_wave_period_at_variance_spectral_density_maximum",
    "APD": "sea_surface_wave_mean_period",
    "MWD": "sea_surface_wave_from_direction",
    "PRES": "air_pressure_at_mean_sea_level",
    "ATMP": "air_temperature",
    "WTMP": "sea_surface_temperature",
    "DEWP": "dew_point_temperature",
    "VIS": "visibility_in_air",
    "PTDY": "pressure_tendency",
    "TIDE": "water_surface_height_above_reference_datum",
}
_NDBC_TIME = ("YY", "MM", "DD", "hh", "mm")


class NdbcConfig(StationConfig):
    """NDBC ``realtime2/<station>.txt``; variables default to every column of NDBC_VARIABLES."""

    kind: Literal["ndbc_text"]
    missing_values: list[str] = Field(
        default_factory=lambda: ["MM"],
        description="tokens read as missing (null); NDBC writes MM",
        examples=[["MM", "99.0"]])
    depth_column: str | None = Field(
        default=None,
        description="a column holding each row's depth in metres, positive down (DEPTH of the "
                    "NDBC .ocean files); exclusive with the constant `depth`",
        examples=["DEPTH"])

    @model_validator(mode="after")
    def _one_depth(self):
        if self.depth is not None and self.depth_column is not None:
            raise ValueError(
                f"depth: {self.depth} and depth_column: {self.depth_column!r} are exclusive; "
                "keep depth_column for a depth per row, or depth for one depth for all rows")
        return self


def ndbc_layout(config: NdbcConfig, uri: str) -> TextLayout:
    """Names from the first ``#`` line, units from the second; data start on line 3."""
    integrity.check_text(uri, config.encoding)
    lines = head_lines(uri, 2)
    if len(lines) < 2 or not (lines[0][2].startswith(b"#") and lines[1][2].startswith(b"#")):
        raise UnreadableSourceError(
            "expected two header lines starting with '#' (column names, then units)",
            source=uri, fix="use kind: delimited for other NDBC text layouts")
    names = lines[0][2].decode("ascii", "replace").lstrip("#").split()
    units = lines[1][2].decode("ascii", "replace").lstrip("#").split()
    if names[:1] == ["YYYY"]:
        names[0] = "YY"  # older files spell the 4-digit year YYYY
    if tuple(names[:5]) != _NDBC_TIME or len(units) != len(names):
        raise UnreadableSourceError(
            f"header {names[:6]} does not start with {list(_NDBC_TIME)} or units do not match "
            f"the names ({len(units)} units for {len(names)} names)", source=uri,
            fix="this reads NDBC standard meteorological text; use kind: delimited otherwise")
    return TextLayout(tuple(names), tuple(units), lines[1][1], None, None, "#", "ascii",
                      tuple(config.missing_values))


def ndbc_station_id(uri: str) -> str:
    """``41002.txt`` or ``ndbc_41002_realtime2.txt`` -> ``41002`` (NDBC ids have 5 characters)."""
    stem = Path(uri).name.split(".")[0]
    tokens = re.split(r"[_\-.]", stem)
    for token in tokens:
        if len(token) == 5 and token.isalnum() and any(ch.isdigit() for ch in token):
            return token.upper()
    return stem


class NdbcText(Connector):
    """NDBC station realtime2 text files (whitespace table, MM for missing) to rows."""

    kind = "ndbc_text"
    config_model = NdbcConfig

    def table_plan(self, config: NdbcConfig, uri: str) -> TablePlan:
        layout = ndbc_layout(config, uri)
        variables = config.variables or {
            src: VariableMapping(name=name) for src, name in NDBC_VARIABLES.items()
            if src in layout.names and src != config.depth_column}
        time = TimeSpec(columns=list(_NDBC_TIME), format="%Y %m %d %H %M", timezone="UTC")
        return make_table_plan(layout, config, uri, time, variables,
                               {"depth": config.depth_column})

    def plan(self, config: NdbcConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        plan = self.table_plan(config, uri)
        chunks = plan_chunks(0, uri, sha256, size, plan.layout.data_start, config.chunk_bytes)
        station = config.station_id or ndbc_station_id(uri)
        return SourcePlan(uri, sha256, size, plan.schema, plan.columns, chunks,
                          {"station_id": station})

    def read(self, config: NdbcConfig, chunk: ChunkSpec, plan_schema: pa.Schema) -> ChunkResult:
        plan = self.table_plan(config, chunk.uri)
        plan = dataclasses.replace(plan, schema=plan_schema)
        return read_text_chunk(plan, config, chunk, config.station_id or ndbc_station_id(chunk.uri))


# --------------------------------------------------------------------------------------------
# ERDDAP tabledap .csv / .csvp
# --------------------------------------------------------------------------------------------

_ERDDAP_COORDS = {"latitude": "latitude", "longitude": "longitude", "depth": "depth"}


class ErddapConfig(StationConfig):
    """ERDDAP ``.csvp`` (units in the names) or ``.csv`` (units on the second line)."""

    kind: Literal["erddap_csv"]
    format: Literal["auto", "csv", "csvp"] = Field(
        default="auto",
        description="csvp: units in the column names; csv: units on the second line; auto: "
                    "decided from the file")
    time_column: str = Field(
        default="time",
        description="the column holding the time (ISO 8601)",
        examples=["time (UTC)"])
    station_id_column: str | None = Field(
        default=None,
        description="the column holding the station id",
        examples=["station_id"])


def erddap_format(config: ErddapConfig, uri: str) -> str:
    if config.format != "auto":
        return config.format
    if uri.lower().endswith(".csvp"):
        return "csvp"
    first = head_lines(uri, 1)
    # a .csvp header reads "time (UTC)"; a .csv header reads "time" with units on line 2
    return "csvp" if first and re.search(rb"\([^)]*\)\s*(,|$)", first[0][2]) else "csv"


def erddap_layout(config: ErddapConfig, uri: str) -> TextLayout:
    as_delimited = DelimitedConfig(
        kind="delimited", uri=uri, delimiter=",", quote_char='"', header=True,
        units_line=erddap_format(config, uri) == "csv", time=TimeSpec(columns=[config.time_column]),
        missing_values=config.missing_values, encoding=config.encoding)
    return delimited_layout(as_delimited, uri)


class ErddapCsv(Connector):
    """ERDDAP tabledap .csv or .csvp downloads to rows, units from the file."""

    kind = "erddap_csv"
    config_model = ErddapConfig

    def table_plan(self, config: ErddapConfig, uri: str) -> TablePlan:
        layout = erddap_layout(config, uri)
        coords: dict[str, str | None] = {k: v for k, v in _ERDDAP_COORDS.items()
                                         if v in layout.names}
        if config.station_id_column:
            coords["station_id"] = config.station_id_column
        used = {config.time_column, *coords.values()}
        # ERDDAP gives units to numeric variables; text columns (ids, names) have none
        variables = config.variables or {
            name: VariableMapping() for name, units in zip(layout.names, layout.units, strict=False)
            if name not in used and units}
        time = TimeSpec(columns=[config.time_column], format="iso", timezone="UTC")
        return make_table_plan(layout, config, uri, time, variables, coords)

    def plan(self, config: ErddapConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        plan = self.table_plan(config, uri)
        chunks = plan_chunks(0, uri, sha256, size, plan.layout.data_start, config.chunk_bytes)
        return SourcePlan(uri, sha256, size, plan.schema, plan.columns, chunks,
                          {"station_id": _erddap_station(config, uri)})

    def read(self, config: ErddapConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        plan = self.table_plan(config, chunk.uri)
        plan = dataclasses.replace(plan, schema=plan_schema)
        return read_text_chunk(plan, config, chunk, _erddap_station(config, chunk.uri))


def _erddap_station(config: ErddapConfig, uri: str) -> str | None:
    if config.station_id_column:
        return None  # per row, from the column
    # ERDDAP names downloads <datasetID>.<ext>
    return config.station_id or Path(uri).name.rsplit(".", 1)[0]


# --------------------------------------------------------------------------------------------
# NOAA CO-OPS datagetter JSON
# --------------------------------------------------------------------------------------------

#: product -> (output column of "v", quantity); see api.tidesandcurrents.noaa.gov/api/prod/
COOPS_PRODUCTS = {
    "water_level": ("water_surface_height_above_reference_datum", "length"),
    "hourly_height": ("water_surface_height_above_reference_datum", "length"),
    "predictions": ("water_surface_height_above_reference_datum", "length"),
    "water_temperature": ("sea_water_temperature", "temperature"),
    "air_temperature": ("air_temperature", "temperature"),
    "air_pressure": ("air_pressure", "pressure"),
}
_COOPS_UNITS = {"metric": {"length": "m", "temperature": "degC", "pressure": "hPa"},
                "english": {"length": "ft", "temperature": "degF", "pressure": "hPa"}}
#: product -> packed flags in "f", in order: (column suffix, dtype, meaning). The first water
#: level flag is a count of 1-s samples outside 3 sigma (up to 181), so it does not fit int8.
COOPS_FLAGS = {
    "water_level": (
        ("o_or_i", "int16", "preliminary: count of 1-s samples outside a 3-sigma band (O); "
                            "verified: 1 = value inferred (I)"),
        ("f", "int8", "1 = flat tolerance limit exceeded"),
        ("r", "int8", "1 = rate of change tolerance limit exceeded"),
        ("l_or_t", "int8", "1 = maximum or minimum expected water level exceeded (L/T)"),
    ),
    "hourly_height": (("i", "int8", "1 = value inferred"),
                      ("l", "int8", "1 = maximum or minimum expected height exceeded")),
    "water_temperature": (("x", "int8", "1 = maximum exceeded"), ("n", "int8", "1 = minimum "
                          "exceeded"), ("r", "int8", "1 = rate of change exceeded")),
}
COOPS_FLAGS["air_temperature"] = COOPS_FLAGS["water_temperature"]
COOPS_FLAGS["air_pressure"] = COOPS_FLAGS["water_temperature"]
_COOPS_FIELDS = ("t", "v", "s", "f", "q")
_COOPS_STRUCT = pa.struct([(k, pa.string()) for k in _COOPS_FIELDS])


class CoopsConfig(StationConfig):
    """A CO-OPS datagetter ``format=json`` answer; record the request's product/units/datum."""

    kind: Literal["coops_json"]
    product: Literal[tuple(COOPS_PRODUCTS)] = Field(  # type: ignore[valid-type]
        default="water_level",
        description="the datagetter product of the request")
    units: Literal["metric", "english"] = Field(
        default="metric",
        description="the units of the request (metric or english)")
    datum: str | None = Field(
        default=None,
        description="the request's datum (STND, MLLW, NAVD, ...), kept in the value column's "
                    "metadata",
        examples=["MLLW"])
    timezone: str = Field(
        default="UTC",
        description="the request's time_zone: gmt -> UTC; lst -> give the station's fixed zone "
                    "(Etc/GMT+8)",
        examples=["Etc/GMT+8"])

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)


def load_coops(uri: str) -> dict:
    integrity.check_regular(uri)
    try:
        doc = json.loads(local_path(uri).read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UnreadableSourceError(f"not JSON: {err}", source=uri,
                                    fix="download with format=json") from err
    if isinstance(doc, dict) and "error" in doc:
        raise UnreadableSourceError(f"CO-OPS returned an error: {doc['error']}", source=uri,
                                    fix="check station, product, dates and datum of the request")
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UnreadableSourceError("expected an object with a 'data' list", source=uri,
                                    fix="this reads datagetter JSON (product=water_level etc.)")
    return doc


def coops_variables(config: CoopsConfig) -> dict[str, VariableMapping]:
    if config.variables:
        return dict(config.variables)
    name, quantity = COOPS_PRODUCTS[config.product]
    units = _COOPS_UNITS[config.units][quantity]
    out = {"v": VariableMapping(name=name, units=units)}
    if quantity == "length" and config.product != "predictions":
        out["s"] = VariableMapping(name="water_level_sigma", units=units)
    return out


def coops_flag_columns(config: CoopsConfig) -> list[tuple[ColumnInfo, pa.DataType]]:
    flags = [(ColumnInfo(f"coops_flag_{suffix}", "flag", long_name=meaning, source_name="f"),
              pa.type_for_alias(dtype)) for suffix, dtype, meaning in
             COOPS_FLAGS.get(config.product, ())]
    quality = ColumnInfo("coops_quality", "flag", long_name="p = preliminary, v = verified",
                         source_name="q")
    return [*flags, (quality, pa.string())]


class CoopsJson(Connector):
    """NOAA CO-OPS datagetter JSON answers (water level, predictions, met) to rows."""

    kind = "coops_json"
    config_model = CoopsConfig

    def _plan_parts(self, config: CoopsConfig, uri: str):
        variables = [plan_variable(src, m, m.units, uri)
                     for src, m in coops_variables(config).items()]
        unknown = [v.source for v in variables if v.source not in ("v", "s")]
        if unknown:
            raise MissingVariableError(f"CO-OPS records have no field(s) {unknown}", source=uri,
                                       fix="map the value fields 'v' and/or 's'")
        extras = coops_flag_columns(config)
        datum = {variables[0].info.name: {b"haina.datum": config.datum.encode()}} \
            if config.datum else {}
        info = time_info("t", config.timezone, "%Y-%m-%d %H:%M")
        schema = observation_schema(info, variables, extras, datum)
        check_unique(schema, config, uri)
        columns = (info, *COORDINATES[1:], *(v.info for v in variables),
                   *(i for i, _ in extras), SOURCE_FILE)
        return variables, schema, columns

    def plan(self, config: CoopsConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        meta = load_coops(uri).get("metadata") or {}
        _, schema, columns = self._plan_parts(config, uri)
        chunk = ChunkSpec(0, uri, sha256, 0, None, 0, size)
        return SourcePlan(uri, sha256, size, schema, columns, (chunk,),
                          {"station_id": config.station_id or meta.get("id"),
                           "station_name": meta.get("name"), "datum": config.datum})

    def read(self, config: CoopsConfig, chunk: ChunkSpec, plan_schema: pa.Schema
             ) -> ChunkResult:
        doc = load_coops(chunk.uri)
        variables, _, _ = self._plan_parts(config, chunk.uri)
        records, rejects = coops_records(doc["data"], chunk.uri)
        table = coops_table(records, doc.get("metadata") or {}, config, variables, plan_schema,
                            rejects, chunk.uri)
        return ChunkResult(table=table, rows_in=len(doc["data"]), rows_dropped=0,
                           quarantine=rejects.table_or_none(1))


def coops_records(data: list, uri: str) -> tuple[pa.StructArray, Quarantine]:
    """The records as a struct array of strings; non-object records go to quarantine."""
    rejects = Quarantine(uri)
    try:
        return pa.array(data, _COOPS_STRUCT), rejects
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    # rare path (never seen from CO-OPS itself): non-string values or non-object records
    rows = [{k: None if item.get(k) is None else str(item[k]) for k in _COOPS_FIELDS}
            if isinstance(item, dict) else None for item in data]
    bad = [i for i, row in enumerate(rows) if row is None]
    rejects.add("not_an_object", "record is not a JSON object", bad,
                [json.dumps(data[i]) for i in bad])
    return pa.array(rows, _COOPS_STRUCT), rejects


def coops_table(records: pa.StructArray, meta: dict, config: CoopsConfig, variables,
                schema: pa.Schema, rejects: Quarantine, uri: str) -> pa.Table:
    n = len(records)
    fields = {k: records.field(k) for k in _COOPS_FIELDS}
    positions = np.arange(n)
    raw = lambda i: json.dumps(records[int(i)].as_py())  # noqa: E731  (rejects only)
    valid = np.asarray(records.is_valid().to_numpy(zero_copy_only=False), bool)
    times, bad_time = parse_times(fields["t"], "%Y-%m-%d %H:%M", config.timezone)
    missing_time = valid & np.asarray(pc.is_null(fields["t"]).to_numpy(zero_copy_only=False), bool)
    ok = valid.copy()
    for mask, reason in ((bad_time, "bad_time"), (missing_time, "missing_time")):
        _reject(rejects, mask & ok, reason, "t", fields["t"], positions, raw)
        ok &= ~mask
    columns = {"time": times}
    for var in variables:
        text = fields[var.source]
        text = pc.if_else(pc.is_in(pc.utf8_trim_whitespace(text), pa.array(
            config.missing_values, pa.string())), pa.scalar(None, pa.string()), text)
        values, bad = to_float(text)
        _reject(rejects, bad & ok, "bad_number", var.source, fields[var.source], positions, raw)
        ok &= ~bad
        columns[var.info.name] = convert_variable(values, var, config.fill_values)
    flags, bad_flags = unpack_flags(fields["f"],
                                    [d for _, d, _ in COOPS_FLAGS.get(config.product, ())])
    _reject(rejects, bad_flags & ok, "bad_flags", "f", fields["f"], positions, raw)
    ok &= ~bad_flags
    # the flag columns, then coops_quality (set below)
    for (info, _), values in zip(coops_flag_columns(config)[:-1], flags, strict=True):
        columns[info.name] = values
    columns["coops_quality"] = fields["q"]
    columns.update(_coops_coordinates(meta, config, n))
    table = assemble(schema, columns, n, uri).filter(pa.array(ok))
    return sort_by_time(table) if config.sort_by_time else table


def _reject(rejects, mask, reason, field, values, positions, raw) -> None:
    reject_rows(rejects, mask, reason,
                lambda i: f"field {field!r}: cannot use {values[int(i)].as_py()!r}",
                positions, raw)


def unpack_flags(packed: pa.Array, dtypes: list[str]) -> tuple[list[pa.Array], np.ndarray]:
    """``"0,0,0,0"`` -> one integer array per flag; a mask of records whose flags are unusable.

    Unusable: wrong count, not integers, or out of the flag column's range. Absent flags stay
    null and are not an error.
    """
    n, count = len(packed), len(dtypes)
    present = np.asarray(pc.is_valid(packed).to_numpy(zero_copy_only=False), bool)
    parts = pc.split_pattern(packed, ",")
    lengths = pc.fill_null(pc.list_value_length(parts), -1).to_numpy(zero_copy_only=False)
    shaped = present & (lengths == count)
    idx = np.flatnonzero(shaped)
    flat, not_number = to_float(pc.list_flatten(parts.filter(pa.array(shaped))))
    grid = np.full((n, count), np.nan)
    grid[idx] = flat.to_numpy(zero_copy_only=False).reshape(-1, count)
    bad = present & ~shaped
    bad[idx[not_number.reshape(-1, count).any(axis=1)]] = True
    arrays = []
    for k, dtype in enumerate(dtypes):  # loop over flag positions, each vectorised
        info = np.iinfo(dtype)
        column = grid[:, k]
        with np.errstate(invalid="ignore"):
            bad |= ~np.isnan(column) & ((column != np.round(column)) | (column < info.min)
                                        | (column > info.max))
        arrays.append(column)
    unusable = bad | ~present
    ints = [pa.array(np.where(unusable, 0, np.nan_to_num(c)).astype(dtype),
                     mask=unusable | np.isnan(c)) for c, dtype in zip(arrays, dtypes, strict=True)]
    return ints, bad


def _coops_coordinates(meta: dict, config: CoopsConfig, n: int) -> dict:
    def number(key, configured):
        if configured is not None:
            return configured
        try:
            return float(meta[key])
        except (KeyError, TypeError, ValueError):
            return None
    lon = number("lon", config.longitude)
    return {
        "depth": constant(config.depth, n, pa.float64()),
        "latitude": constant(number("lat", config.latitude), n, pa.float64()),
        "longitude": wrap_longitude(constant(lon, n, pa.float64())),
        "station_id": constant(config.station_id or meta.get("id"), n, pa.string()),
    }
