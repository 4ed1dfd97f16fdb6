"""split_by_date and sort_by_time, against literal cases and a brute-force oracle."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.exceptions import WriterError
from catalog.storage.writer import NULL_PARTITION, sort_by_time, split_by_date

UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")


def _table(times, ids=None, unit="us") -> pa.Table:
    ids = list(range(len(times))) if ids is None else ids
    return pa.table({"time": pa.array(times, pa.timestamp(unit, tz="UTC")),
                     "id": pa.array(ids, pa.int64())})


def _d(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_split_spanning_midnight_with_nulls_keeps_input_order():
    times = [_d(2024, 1, 2, 0, 0, 0), _d(2024, 1, 1, 23, 59, 59, 999999), None,
             _d(2024, 1, 1, 0, 0, 0), _d(2024, 1, 2, 0, 0, 0, 1), None, _d(2024, 1, 1, 12)]
    parts = split_by_date(_table(times))
    assert [(name, t.column("id").to_pylist()) for name, t in parts] == [
        ("date=2024-01-01", [1, 3, 6]),
        ("date=2024-01-02", [0, 4]),
        (NULL_PARTITION, [2, 5]),
    ]


def test_split_single_day_returns_the_table_itself():
    table = _table([_d(2024, 3, 1, 1), _d(2024, 3, 1, 2)])
    [(name, part)] = split_by_date(table)
    assert name == "date=2024-03-01" and part is table


@pytest.mark.parametrize("times, unit, expected", [
    ([_d(1969, 12, 31, 23)], "us", ["date=1969-12-31"]),          # floor, not truncation
    ([_d(2024, 2, 29, 23, 59, 59)], "s", ["date=2024-02-29"]),
    (np.array(["2024-01-01T23:59:59.999999999"], "datetime64[ns]"), "ns", ["date=2024-01-01"]),
    ([None, None], "us", [NULL_PARTITION]),
    ([], "us", []),
])
def test_split_edge_cases(times, unit, expected):
    assert [name for name, _ in split_by_date(_table(times, unit=unit))] == expected


def test_split_needs_a_timestamp_time_column():
    with pytest.raises(WriterError, match="not a timestamp"):
        split_by_date(pa.table({"time": [1, 2]}))
    with pytest.raises(WriterError, match="no 'time' column"):
        split_by_date(pa.table({"x": [1]}))


DAY = 86_400_000_000
micros = st.one_of(st.none(), st.integers(-3 * DAY, 5 * DAY))


@settings(max_examples=60, deadline=None)
@given(st.lists(micros, max_size=60))
def test_split_matches_oracle(values):
    table = _table(pa.array(values, pa.int64()).cast(TS))
    expected: dict[str, list[int]] = {}
    for i, v in enumerate(values):  # brute-force oracle: one row at a time
        key = NULL_PARTITION if v is None else "date=" + str(
            (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=v)).date())
        expected.setdefault(key, []).append(i)
    got = {name: part.column("id").to_pylist() for name, part in split_by_date(table)}
    assert got == expected
    names = [name for name, _ in split_by_date(table)]
    assert names == sorted(n for n in names if n != NULL_PARTITION) + (
        [NULL_PARTITION] if NULL_PARTITION in names else [])


def _oracle_sort(tables) -> list[int]:
    rows = [(t, i) for tab in tables for t, i in zip(tab.column("time").cast(pa.int64())
                                                     .to_pylist(), tab.column("id").to_pylist(), strict=True)]
    # Python's sort is stable; nulls after every time
    return [i for t, i in sorted(rows, key=lambda r: (r[0] is None, r[0] or 0))]


def test_sort_cheap_path_concatenates_without_copying():
    a = _table([_d(2024, 1, 3), _d(2024, 1, 4)], [10, 11])
    b = _table([_d(2024, 1, 1), _d(2024, 1, 2)], [20, 21])
    c = _table([_d(2024, 1, 4), _d(2024, 1, 5)], [30, 31])  # ties with a's end: a came first
    out = sort_by_time([a, b, c])
    assert out.column("id").to_pylist() == [20, 21, 10, 11, 30, 31]
    assert out.column("time").num_chunks == 3  # concatenated, not sorted


def test_sort_overlapping_is_a_stable_sort_with_nulls_last():
    a = _table([_d(2024, 1, 2), None, _d(2024, 1, 1)], [1, 2, 3])
    b = _table([_d(2024, 1, 2), _d(2024, 1, 1)], [4, 5])
    assert sort_by_time([a, b]).column("id").to_pylist() == [3, 5, 1, 4, 2]


def test_sort_tie_at_the_seam_in_reverse_input_order_is_sorted_stably():
    a = _table([_d(2024, 1, 2), _d(2024, 1, 3)], [1, 2])
    b = _table([_d(2024, 1, 1), _d(2024, 1, 2)], [3, 4])
    assert sort_by_time([a, b]).column("id").to_pylist() == [3, 1, 4, 2]


def test_sort_errors_and_empties():
    with pytest.raises(WriterError, match="no tables"):
        sort_by_time([])
    empty = _table([])
    assert sort_by_time([empty, empty]).num_rows == 0
    with pytest.raises(WriterError, match="schema"):
        sort_by_time([_table([_d(2024, 1, 1)]), pa.table({"time": pa.array([1]).cast(TS)})])


small_times = st.one_of(st.none(), st.integers(0, 20))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(small_times, max_size=8), min_size=1, max_size=5),
       st.booleans())
def test_sort_matches_oracle(chunks, presort):
    tables, next_id = [], 0
    for chunk in chunks:
        if presort:  # exercise the cheap path: sorted chunks, often non-overlapping
            chunk = sorted(v for v in chunk if v is not None)
        ids = list(range(next_id, next_id + len(chunk)))
        next_id += len(chunk)
        tables.append(_table(pa.array(chunk, pa.int64()).cast(TS), ids))
    assert sort_by_time(tables).column("id").to_pylist() == _oracle_sort(tables)


@pytest.mark.parametrize("period, expected", [
    ("month", [("month=1969-12", [3]), ("month=2024-01", [0, 1]), ("month=2024-02", [2]),
               ("month=__HIVE_DEFAULT_PARTITION__", [4])]),
    ("year", [("year=1969", [3]), ("year=2024", [0, 1, 2]),
              ("year=__HIVE_DEFAULT_PARTITION__", [4])]),
])
def test_split_by_month_and_year(period, expected):
    from catalog.storage.writer import split_by_period

    times = [_d(2024, 1, 31, 23, 59), _d(2024, 1, 1), _d(2024, 2, 1), _d(1969, 12, 31, 23), None]
    parts = split_by_period(_table(times), period)
    got = [(name, part.column("id").to_pylist()) for name, part in parts]
    # input order within a partition: ids 0 then 1 in January would be [0, 1]
    assert [name for name, _ in got] == [name for name, _ in expected]
    for (_, ids), (_, want) in zip(got, expected, strict=True):
        assert sorted(ids) == sorted(want) and ids == sorted(ids)


def test_unknown_period_is_refused():
    from catalog.storage.writer import split_by_period

    with pytest.raises(WriterError, match="unknown partition period 'week'"):
        split_by_period(_table([_d(2024, 1, 1)]), "week")
