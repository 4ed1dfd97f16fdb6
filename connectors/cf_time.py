"""Decode CF time coordinates (``<unit> since <epoch>`` + ``calendar``) to ``datetime64[us]``.

Pure functions over whole numpy arrays; no per-value Python objects.

Real-world calendars (``standard``/``gregorian``, ``proleptic_gregorian``, ``julian``) name
physical instants, so decoding is exact: the epoch is converted once to the proleptic Gregorian
calendar with cftime (this is what moves a Julian or pre-1582 ``standard`` epoch onto numpy's
calendar) and the offsets, being physical durations, are added as integer microseconds.

Model calendars (``noleap``/``365_day``, ``all_leap``/``366_day``, ``360_day``) do not name real
instants, so a documented mapping is used instead:

- ``noleap``/``365_day``: the model date (year, month, day, time of day) is kept as is; every
  such date exists in the real calendar.
- ``360_day`` and ``all_leap``/``366_day``: the elapsed fraction of the model year is mapped
  proportionally onto the real year, ``real = Jan 1 of year + fraction * real year length``. This
  keeps timestamps monotonic and unique (a 360-day "Feb 30" or an all-leap Feb 29 in a non-leap
  year has no real date); model dates therefore move by up to ~3 days inside the year, and a
  year boundary stays a year boundary.

Missing values (NaN) decode to NaT.
"""
from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator

import cftime
import numpy as np

from connectors.exceptions import UnreadableSourceError

_US_PER_UNIT = {
    "microseconds": 1, "microsecond": 1, "us": 1, "usec": 1, "usecs": 1,
    "milliseconds": 1_000, "millisecond": 1_000, "ms": 1_000, "msec": 1_000, "msecs": 1_000,
    "seconds": 1_000_000, "second": 1_000_000, "secs": 1_000_000, "sec": 1_000_000, "s": 1_000_000,
    "minutes": 60_000_000, "minute": 60_000_000, "mins": 60_000_000, "min": 60_000_000,
    "hours": 3_600_000_000, "hour": 3_600_000_000, "hrs": 3_600_000_000, "hr": 3_600_000_000,
    "h": 3_600_000_000,
    "days": 86_400_000_000, "day": 86_400_000_000, "d": 86_400_000_000,
    "weeks": 604_800_000_000, "week": 604_800_000_000,
}
_US_PER_DAY = 86_400_000_000
_REAL_CALENDARS = {"standard": "standard", "gregorian": "standard",
                   "proleptic_gregorian": "proleptic_gregorian", "julian": "julian"}
_MODEL_CALENDARS = {"noleap": 365, "365_day": 365, "all_leap": 366, "366_day": 366, "360_day": 360}
CALENDARS = tuple(_REAL_CALENDARS) + tuple(_MODEL_CALENDARS)

_UNITS = re.compile(r"^\s*(?P<unit>[A-Za-z]+)\s+since\s+(?P<epoch>.+?)\s*$", re.IGNORECASE)
_EPOCH = re.compile(
    r"^(?P<y>[+-]?\d{1,5})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[ T](?P<h>\d{1,2}):(?P<mi>\d{1,2})(?::(?P<s>\d{1,2}(?:\.\d*)?))?)?"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)
_FIX = ("correct the time variable's units/calendar attributes (e.g. with "
        "`ncatted -a units,time,o,c,'days since 1950-01-01' file.nc`) or remove the file from "
        "the recipe's uri glob")


def normalise_calendar(calendar: str | None) -> str:
    """CF calendar name in lower case; a missing attribute means ``standard`` (CF default)."""
    name = (calendar or "standard").strip().lower()
    if name not in _REAL_CALENDARS and name not in _MODEL_CALENDARS:
        raise UnreadableSourceError(
            f"unsupported time calendar {calendar!r}; supported: {', '.join(CALENDARS)}",
            fix=_FIX)
    return name


def parse_units(units: str) -> tuple[int, tuple[int, int, int, int, int, float], float]:
    """Split ``"<unit> since <epoch>"`` into (microseconds per unit, epoch fields, tz offset h).

    Epoch fields are (year, month, day, hour, minute, second); the offset is in hours east of UTC.
    """
    match = _UNITS.match(units or "")
    unit = match and _US_PER_UNIT.get(match["unit"].lower())
    epoch = match and _EPOCH.match(match["epoch"].strip())
    if not unit or not epoch:
        raise UnreadableSourceError(
            f"time units {units!r} are not '<seconds|minutes|hours|days> since <YYYY-MM-DD "
            f"[hh:mm:ss]>' (calendar months and years are ambiguous and not supported)",
            fix=_FIX)
    fields = (int(epoch["y"]), int(epoch["mo"]), int(epoch["d"]), int(epoch["h"] or 0),
              int(epoch["mi"] or 0), float(epoch["s"] or 0.0))
    return unit, fields, _tz_hours(epoch["tz"])


def _tz_hours(tz: str | None) -> float:
    if not tz or tz.upper() in ("Z", "UTC", "GMT"):
        return 0.0
    sign = -1.0 if tz.startswith("-") else 1.0
    digits = tz[1:].replace(":", "")
    hours, minutes = (digits, "0") if len(digits) <= 2 else (digits[:-2], digits[-2:])
    return sign * (int(hours) + int(minutes) / 60)


def describe(units: str, calendar: str | None) -> str:
    """Lineage text for the time column: source units, calendar and decoding method."""
    name = normalise_calendar(calendar)
    if name in _REAL_CALENDARS:
        method = "exact (real-world calendar, epoch converted to proleptic Gregorian)"
    elif _MODEL_CALENDARS[name] == 365:
        method = "model date kept as the same calendar date (noleap dates all exist)"
    else:
        method = "day of model year mapped proportionally onto the real year"
    return f"'{units}' calendar {name} -> UTC datetime64[us]; method: {method}"


def describe_variable(units: str | None, calendar: str | None, *, variable: str,
                      source: str | None) -> str:
    """:func:`describe` after checking the units and calendar, at plan time; an error names the
    variable and the file."""
    with _naming(variable, source):
        text = describe(units or "", calendar)
        parse_units(units or "")
        return text


def decode_variable(values: np.ndarray, units: str | None, calendar: str | None, *,
                    variable: str, source: str | None) -> np.ndarray:
    """:func:`decode` the values of one file's time variable; an error names the variable and
    the file."""
    with _naming(variable, source):
        return decode(values, units or "", calendar)


@contextlib.contextmanager
def _naming(variable: str, source: str | None) -> Iterator[None]:
    try:
        yield
    except UnreadableSourceError as err:
        raise UnreadableSourceError(f"time variable {variable!r}: {err.reason}", source=source,
                                    fix=err.fix) from err


def decode(values: np.ndarray, units: str, calendar: str | None = None) -> np.ndarray:
    """Decode numeric CF times to ``datetime64[us]`` (UTC); NaN/fill becomes NaT."""
    name = normalise_calendar(calendar)
    unit_us, epoch, tz_hours = parse_units(units)
    offsets = _offsets_us(np.asarray(values), unit_us)
    missing = offsets == _NAT
    # A "+hh:mm" epoch is local time: subtract the offset to get UTC.
    offsets = np.where(missing, 0, offsets) - np.int64(round(tz_hours * 3_600_000_000))
    if name in _REAL_CALENDARS:
        out = _epoch_instant(epoch, _REAL_CALENDARS[name], units) + offsets.astype("m8[us]")
    else:
        out = _model_calendar(offsets, epoch, _MODEL_CALENDARS[name])
    return np.where(missing, np.datetime64("NaT", "us"), out).astype("datetime64[us]")


_NAT = np.iinfo(np.int64).min


def _offsets_us(values: np.ndarray, unit_us: int) -> np.ndarray:
    """Offsets from the epoch in integer microseconds; missing values become the NaT sentinel."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64) * np.int64(unit_us)
    as_float = values.astype(np.float64)
    finite = np.isfinite(as_float)
    micros = np.rint(np.where(finite, as_float, 0.0) * unit_us).astype(np.int64)
    return np.where(finite, micros, _NAT)


@functools.lru_cache(maxsize=256)
def _epoch_instant(epoch, calendar: str, units: str) -> np.datetime64:
    """The epoch as a proleptic-Gregorian instant (cached: every chunk of a file asks again)."""
    year, month, day, hour, minute, second = epoch
    whole = int(second)
    try:
        date = cftime.datetime(year, month, day, hour, minute, whole, calendar=calendar)
        real = date.change_calendar("proleptic_gregorian") if calendar != "proleptic_gregorian" \
            else date
    except ValueError as err:
        raise UnreadableSourceError(f"time units {units!r}: invalid epoch for calendar "
                                    f"{calendar}: {err}", fix=_FIX) from err
    base = np.datetime64(f"{real.year:04d}-{real.month:02d}-{real.day:02d}", "us")
    micros = ((real.hour * 60 + real.minute) * 60 + real.second) * 1_000_000
    return base + np.timedelta64(micros + round((second - whole) * 1e6), "us")


def _model_calendar(offsets: np.ndarray, epoch, year_days: int) -> np.ndarray:
    """Model-calendar offsets to real timestamps (see the module docstring for the mapping)."""
    year_us = np.int64(year_days) * _US_PER_DAY
    elapsed = _model_epoch_us(epoch, year_days) + offsets
    years = elapsed // year_us
    in_year = elapsed - years * year_us  # microseconds since the model Jan 1
    jan1 = _jan1(years)
    if year_days == 365:
        # Same calendar date: from Mar 1 on (day index >= 59), a real leap year has one more day.
        after_feb = in_year >= np.int64(59) * _US_PER_DAY
        return jan1 + (in_year + after_feb * _is_leap(years) * _US_PER_DAY).astype("m8[us]")
    real_year_us = (365 + _is_leap(years)).astype(np.int64) * _US_PER_DAY
    scaled = np.rint(in_year.astype(np.float64) * (real_year_us / float(year_us)))
    return jan1 + scaled.astype(np.int64).astype("m8[us]")


def _model_epoch_us(epoch, year_days: int) -> np.int64:
    """Microseconds from model year 0 Jan 1 to the epoch, in the model calendar."""
    year, month, day, hour, minute, second = epoch
    if year_days == 360:
        if not (1 <= month <= 12 and 1 <= day <= 30):
            raise UnreadableSourceError(f"epoch {year}-{month}-{day} is not a 360_day date",
                                        fix=_FIX)
        day_index = (month - 1) * 30 + day - 1
    else:
        calendar = "noleap" if year_days == 365 else "all_leap"
        try:
            day_index = cftime.datetime(year, month, day, calendar=calendar).dayofyr - 1
        except ValueError as err:
            raise UnreadableSourceError(f"epoch {year}-{month}-{day} is not a valid {calendar} "
                                        f"date: {err}", fix=_FIX) from err
    seconds = (day_index * 86_400) + hour * 3600 + minute * 60 + second
    return np.int64(year) * year_days * _US_PER_DAY + np.int64(round(seconds * 1e6))


def _is_leap(years: np.ndarray) -> np.ndarray:
    return ((years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))).astype(np.int64)


def _jan1(years: np.ndarray) -> np.ndarray:
    """``datetime64[us]`` of Jan 1 of each (proleptic Gregorian, astronomical) year."""
    return (years - 1970).astype("datetime64[Y]").astype("datetime64[us]")
