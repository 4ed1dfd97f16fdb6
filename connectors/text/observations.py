"""The canonical observation table of the station kinds: time, depth, latitude, longitude,
station_id, the variables, flags, source_file; its schema, column metadata, and assembly.
"""
from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from connectors import cf_time, geo
from connectors.base import ColumnInfo, check_column_names
from connectors.text.columns import VariablePlan
from connectors.text.config import StationConfig
from connectors.text.times import UTC

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
    if "time" in fields:  # the delimited kind's time: {columns: ...}
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
                       extras: Sequence[tuple[ColumnInfo, pa.DataType]] = (),
                       extra_metadata: dict[str, dict[bytes, bytes]] | None = None) -> pa.Schema:
    """time, depth, latitude, longitude, station_id, variables, extras (flags), source_file."""
    infos = [time_info, *COORDINATES[1:]]
    fields = [pa.field(i.name, t, metadata=i.metadata()) for i, t in zip(infos, _COORD_TYPES, strict=True)]
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
                          source_units=units, conversion=cf_time.describe(units, calendar))
    conv = "none (UTC)" if timezone == "UTC" else f"local time in {timezone} -> UTC"
    return ColumnInfo("time", "coordinate", standard_name="time", source_name=source,
                      source_units=f"{fmt} in {timezone}", conversion=conv)


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
