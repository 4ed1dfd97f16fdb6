"""Decoding helpers the netCDF observation kinds share (``netcdf_dsg`` and ``argo``): char-array
strings, 0-9 source QC flags, numpy columns to Arrow, and the metadata of the coordinate,
variable and flag columns.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from connectors import cf_time, geo
from connectors import units as cu
from connectors.base import ColumnInfo
from connectors.config import VariableMapping

TIME_TYPE = pa.timestamp("us", tz="UTC")


def local_path(uri: str) -> str:
    """The filesystem path of a ``file://`` URI or plain path."""
    return uri[len("file://"):] if uri.startswith("file://") else uri


def decode_strings(values) -> np.ndarray:
    """Fixed-width bytes, char arrays already joined, or objects -> stripped ``str`` objects.

    Empty strings become None (CF pads ids with blanks or NULs).
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8", errors="replace")
    elif arr.dtype.kind == "O":  # xarray-decoded strings, possibly bytes: pandas str ops
        series = pd.Series(arr.ravel(), dtype=object)
        series = series.str.decode("utf-8", "replace").fillna(series)
        arr = series.fillna("").astype(str).to_numpy().reshape(arr.shape)
    arr = np.char.strip(np.asarray(arr, dtype=str), " \x00")
    out = arr.astype(object)
    out[arr == ""] = None
    return out


def qc_to_int8(values) -> tuple[np.ndarray, np.ndarray]:
    """Source QC flags on the 0-9 scale -> ``(int8 values, missing mask)``, vectorised.

    Accepts numbers (NaN = missing), single-byte chars (``b'1'``; blank = missing) and strings
    (``'4'``). Anything outside 0-9 (fill values such as -127, letters) is missing.
    """
    arr = np.ma.filled(np.ma.asarray(values), fill_value=b" " if
                       np.ma.asarray(values).dtype.kind == "S" else np.nan)
    arr = np.asarray(arr)
    if arr.dtype.kind == "S":
        codes = np.frombuffer(np.ascontiguousarray(arr.astype("S1")), dtype=np.uint8)
        number = codes.reshape(arr.shape).astype(np.float64) - 48.0
    elif arr.dtype.kind in "OU":
        number = pd.to_numeric(pd.Series(arr.ravel()), errors="coerce").to_numpy(
            dtype=np.float64).reshape(arr.shape)
    else:
        number = arr.astype(np.float64)
    missing = ~(np.isfinite(number) & (number >= 0) & (number <= 9) & (number == np.trunc(number)))
    return np.where(missing, 0, number).astype(np.int8), missing


def coordinate_infos(depth_source: str | None, depth_units: str | None,
                     depth_conversion: str | None, time_source: str, time_units: str | None,
                     lat_source: str, lon_source: str, *, calendar: str | None = None,
                     uri: str | None = None) -> list[tuple[ColumnInfo, pa.DataType]]:
    """The four leading columns of the canonical observation schema; the time units and calendar
    are checked here, at plan time, by the one CF time decoder (:mod:`connectors.cf_time`)."""
    time_conversion = cf_time.describe_variable(time_units, calendar, variable=time_source,
                                                source=uri)
    return [
        (ColumnInfo("time", "coordinate", units=None, standard_name="time", source_name=time_source,
                    source_units=time_units, conversion=time_conversion),
         TIME_TYPE),
        (ColumnInfo("depth", "coordinate", units="m", standard_name="depth",
                    long_name="depth below sea surface, positive down", source_name=depth_source,
                    source_units=depth_units, conversion=depth_conversion), pa.float64()),
        (ColumnInfo("latitude", "coordinate", units="degrees_north", standard_name="latitude",
                    source_name=lat_source, conversion=geo.LATITUDE_CONVERSION),
         pa.float64()),
        (ColumnInfo("longitude", "coordinate", units="degrees_east", standard_name="longitude",
                    source_name=lon_source, conversion=geo.LONGITUDE_CONVERSION),
         pa.float64()),
    ]


def build_schema(columns: list[tuple[ColumnInfo, pa.DataType]]) -> pa.Schema:
    return pa.schema([pa.field(info.name, dtype, metadata=info.metadata())
                      for info, dtype in columns])


def to_arrow(values, dtype: pa.DataType) -> pa.Array:
    """A numpy column (NaN / NaT / None = missing) as an Arrow array of ``dtype`` with nulls."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(dtype)
    if pa.types.is_floating(dtype):
        values = np.asarray(values, dtype=dtype.to_pandas_dtype())
    return pa.array(values, type=dtype, from_pandas=True)


def masked_int8(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.int8(), mask=missing)


def variable_column(var: str, mapping: VariableMapping, attrs: dict, *,
                    source: str | None) -> tuple[ColumnInfo, cu.Conversion]:
    """Output column name, metadata and unit conversion of one measured variable."""
    standard_name = mapping.standard_name or attrs.get("standard_name")
    name = mapping.name or cu.canonical_name(standard_name) or _identifier(standard_name) \
        or _identifier(var) or "value"
    source_units = mapping.units or attrs.get("units")
    conv = cu.column_conversion(source_units, cu.canonical_units(name), mapping.units_to,
                                variable=var, source=source)
    info = ColumnInfo(name, "variable", units=conv.target_units or None,
                      standard_name=standard_name, long_name=attrs.get("long_name"),
                      source_name=var, source_units=source_units, conversion=conv.description)
    return info, conv


def qc_column_info(column: str, qc_var: str | None) -> ColumnInfo:
    return ColumnInfo(f"{column}_qc_source", "flag", source_name=qc_var,
                      long_name=f"source quality flag of {column} (0-9 scale, as in the file)")


def _identifier(text: str | None) -> str | None:
    if not text:
        return None
    name = re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_")
    return name if name and name[0].isalpha() else None
