"""Time parsing of text columns, vectorised with pyarrow: ISO 8601 and strptime formats in a
local zone to UTC, and numeric CF times (``days since 1700-01-01``) through the one CF decoder,
:mod:`connectors.cf_time`.
"""
from __future__ import annotations

import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from connectors import cf_time
from connectors.text.columns import to_float

_OFFSET = r"(Z|z|[+-]\d\d:?\d\d)$"
UTC = pa.timestamp("us", tz="UTC")


def check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'UTC' or "
                         "'Etc/GMT+8' (which is UTC-8, e.g. PST without daylight saving)") from err
    return value


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
    :func:`connectors.cf_time.decode`; returns values and a mask of non-number cells."""
    values, bad = to_float(strings)
    numbers = pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False)
    decoded = cf_time.decode(numbers, units, calendar)
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
    utc = target.tz is not None
    parsed = pd.to_datetime(pd.Series(text.to_pandas(), dtype=object), format="ISO8601",
                            errors="coerce", utc=utc)
    return pa.Array.from_pandas(parsed).cast(target, safe=False)
