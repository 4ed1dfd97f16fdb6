"""Cell values of port tables, vectorised with pyarrow: placeholders, ids, UN/LOCODEs, typed
columns (inferred or declared), coordinates from numbers or WKT points, times, and the
duplicated (port_id, time) keys.
"""
from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from connectors import geo

ColumnType = Literal["auto", "string", "int64", "float64", "bool"]
ARROW_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
               "bool": pa.bool_()}
#: at most 18 digits always fits int64; longer integers are inferred float64 (or bad_value)
_INT_RE = r"^[+-]?\d{1,18}$"
#: inf is a number (a bad one, kept for QC to FAIL); NaN stays a placeholder (missing_values)
_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:inf|infinity)$"
_TRUE = ["true", "yes", "y", "t"]
_FALSE = ["false", "no", "n", "f"]
_UNLOCODE_RE = r"^[A-Z]{2}[A-Z2-9]{3}$"
_WKT_POINT_RE = (r"(?i)^\s*POINT\s*(?:Z\s*)?\(\s*(?P<lon>[^\s()]+)\s+(?P<lat>[^\s()]+)"
                 r"(?:\s+[^\s()]+)?\s*\)\s*$")
TIME_TYPE = pa.timestamp("us", tz="UTC")
#: the types inference tries, narrowest first (else string)
_INFERRED: tuple[ColumnType, ...] = ("int64", "float64", "bool")


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


def infer_type(values: pa.ChunkedArray) -> ColumnType:
    """The narrowest of int64, float64, bool, string that holds every non-null value."""
    present = pc.drop_null(values)
    if len(present) == 0:
        return "string"
    for name in _INFERRED:
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
        parsed = pc.cast(clean, ARROW_TYPES[type_name])
    return parsed, mask(bad)


def mask(values) -> np.ndarray:
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
    bad = bad_lat | bad_lon | ~mask(present)
    return lat, geo.longitude_arrow(lon), bad


def parse_wkt(values: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray, np.ndarray]:
    """Longitude and latitude text of WKT ``POINT(lon lat)``; mask of cells that are not one."""
    points = pc.extract_regex(pc.fill_null(values, ""), _WKT_POINT_RE)
    found = pc.is_valid(points)
    none = pa.scalar(None, pa.string())
    lon = pc.if_else(found, pc.struct_field(points, "lon"), none)
    lat = pc.if_else(found, pc.struct_field(points, "lat"), none)
    return lat, lon, ~mask(found)


def parse_times(values: pa.ChunkedArray, fmt: str) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Text to timestamp[us, UTC] with a strptime format; missing or unparseable -> bad."""
    times = pc.strptime(values, format=fmt, unit="us", error_is_null=True)
    if times.type.tz is None:
        times = times.cast(pa.timestamp("us"))  # naive times in port tables are UTC
    return times.cast(TIME_TYPE), ~mask(pc.is_valid(times))


def duplicated_keys(port_id: pa.ChunkedArray, time: pa.ChunkedArray) -> np.ndarray:
    """True for every record whose (port_id, time) occurs more than once (hash-based, O(n))."""
    keys = pd.DataFrame({"id": port_id.to_pandas(), "time": time.to_pandas()})
    return keys.duplicated(keep=False).to_numpy(dtype=bool)


def snake_case(name: str) -> str:
    """``Tidal Range (m)`` -> ``tidal_range_m``; ``Visit_Count`` -> ``visit_count``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    out = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_") or "column"
    return out if out[0].isalpha() else f"c_{out}"


def units_in_name(name: str) -> str | None:
    match = re.search(r"\(([^()]+)\)\s*$", name)
    return match.group(1).strip() if match else None
