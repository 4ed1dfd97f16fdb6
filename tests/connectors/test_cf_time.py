"""CF time decoding: literal expectations, plus cftime as an oracle where dates are exact."""
from __future__ import annotations

import cftime
import numpy as np
import pytest

from connectors import cf_time as cftime_decode
from connectors.exceptions import UnreadableSourceError


def _dt(*stamps: str) -> np.ndarray:
    return np.array(stamps, dtype="datetime64[us]")


@pytest.mark.parametrize("values, units, calendar, expected", [
    ([0], "days since 1950-01-01", None, _dt("1950-01-01")),
    ([0, 1.5, -1], "days since 1950-01-01", "standard",
     _dt("1950-01-01", "1950-01-02T12:00", "1949-12-31")),
    ([0, 366], "days since 1900-01-01", "gregorian", _dt("1900-01-01", "1901-01-02")),
    ([657000.0], "hours since 1950-01-01", "gregorian", _dt("2024-12-13T00:00")),
    ([1748822400], "seconds since 1970-01-01", "gregorian", _dt("2025-06-02T00:00")),
    ([90], "minutes since 2000-01-01T00:00:00Z", None, _dt("2000-01-01T01:30")),
    ([0], "hours since 2000-01-01 00:00:00 -08:00", None, _dt("2000-01-01T08:00")),
    ([1500], "milliseconds since 2000-01-01 00:00:00", None, _dt("2000-01-01T00:00:01.5")),
    ([0, 1], "days since 1500-01-01", "julian", _dt("1500-01-10", "1500-01-11")),
    ([1], "days since 1582-10-04", "standard", _dt("1582-10-15")),
    ([1], "days since 1582-10-04", "proleptic_gregorian", _dt("1582-10-05")),
    # noleap: the model date is kept, so day 59 is Mar 1 even in a leap year
    ([58, 59, 365], "days since 2000-01-01", "noleap",
     _dt("2000-02-28", "2000-03-01", "2001-01-01")),
    ([365 * 4], "days since 2000-01-01", "365_day", _dt("2004-01-01")),
    # 360_day: day 30 of 360 is 30/360 of 1900 (365 days) = 30 d 10 h
    ([0, 24 * 30, 24 * 360], "hours since 1900-01-01 00:00:00", "360_day",
     _dt("1900-01-01", "1900-01-31T10:00", "1901-01-01")),
    ([180], "days since 2000-01-01", "360_day", _dt("2000-07-02")),  # half of 366 days
    ([366], "days since 2001-01-01", "all_leap", _dt("2002-01-01")),
    ([183], "days since 2001-01-01", "366_day", _dt("2001-07-02T12:00")),  # half of 365 days
])
def test_literal_dates(values, units, calendar, expected):
    out = cftime_decode.decode(np.array(values), units, calendar)
    assert out.dtype == np.dtype("datetime64[us]")
    np.testing.assert_array_equal(out, expected)


def test_missing_values_become_nat():
    out = cftime_decode.decode(np.array([0.0, np.nan, np.inf]), "days since 1950-01-01")
    assert out[0] == np.datetime64("1950-01-01", "us")
    assert np.isnat(out[1:]).all()


def test_float32_hours_are_exact():
    hours = np.array([657000.0, 657024.0], dtype=np.float32)
    out = cftime_decode.decode(hours, "hours since 1950-01-01", "gregorian")
    np.testing.assert_array_equal(out, _dt("2024-12-13", "2024-12-14"))


@pytest.mark.parametrize("calendar", ["standard", "proleptic_gregorian", "noleap", "365_day"])
def test_matches_cftime_where_dates_are_real(calendar):
    rng = np.random.default_rng(7)
    values = np.sort(rng.uniform(-40_000, 40_000, 300)).round(3)
    units = "days since 1970-01-01 06:00:00"
    ours = cftime_decode.decode(values, units, calendar)
    theirs = cftime.num2date(values, units, calendar, only_use_cftime_datetimes=True)
    expected = np.array([t.strftime("%Y-%m-%dT%H:%M:%S") for t in theirs], "datetime64[s]")
    # microseconds from the float offsets are ours alone; compare to the second
    np.testing.assert_array_equal(ours.astype("datetime64[s]"), expected)


@pytest.mark.parametrize("calendar", ["360_day", "all_leap"])
def test_model_calendars_are_monotonic_and_keep_years(calendar):
    days = np.arange(0, 360 * 5, 0.25)
    out = cftime_decode.decode(days, "days since 2000-01-01", calendar)
    assert (np.diff(out.astype(np.int64)) > 0).all()
    model = cftime.num2date(days, "days since 2000-01-01", calendar)
    model_years = np.array([d.year for d in model])
    np.testing.assert_array_equal(out.astype("datetime64[Y]").astype(int) + 1970, model_years)


@pytest.mark.parametrize("units, calendar, match", [
    ("months since 2000-01-01", None, "not '<seconds"),
    ("days after 2000-01-01", None, "not '<seconds"),
    ("days since yesterday", None, "not '<seconds"),
    ("days since 2000-01-01", "mayan", "unsupported time calendar 'mayan'"),
    ("days since 2000-02-31", "360_day", "not a 360_day date"),  # 360_day months have 30 days
])
def test_bad_units_raise_named_error(units, calendar, match):
    with pytest.raises(UnreadableSourceError) as info:
        cftime_decode.decode(np.array([0.0]), units, calendar)
    assert "Fix:" in str(info.value)
    assert match in str(info.value)


def test_describe_records_calendar_and_method():
    text = cftime_decode.describe("hours since 1900-01-01 00:00:00", "360_day")
    assert "360_day" in text and "proportionally" in text
    assert "exact" in cftime_decode.describe("days since 1950-01-01", None)
