"""Source flag scales mapped to QARTOD flags, and the worst-flag combination."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expectations.qc import flags as fl

qartod = pytest.importorskip("ioos_qc.qartod")  # the reference implementation (test extra)

CODES = np.arange(10)


@pytest.mark.parametrize("mapper, expected", [
    (fl.from_argo, [2, 1, 1, 3, 4, 1, 2, 2, 3, 9]),
    (fl.from_oceansites, [2, 1, 1, 3, 4, 1, 3, 3, 3, 9]),
])
def test_scale_tables(mapper, expected):
    assert mapper(CODES).tolist() == expected


def test_absent_and_out_of_range_source_flags_are_missing():
    codes = np.array([1, 4, -1, 12, 4])
    missing = np.array([False, False, False, False, True])
    assert fl.from_argo(codes, missing).tolist() == [1, 4, 9, 9, 9]


def test_coops_flags_raise_suspect_never_fail():
    f = (np.array([0, 1, 0, 0]), np.array([False, False, False, True]))
    r = (np.array([0, 0, 1, 0]), np.array([False, False, False, True]))
    assert fl.from_coops([f, r]).tolist() == [1, 3, 3, 9]


@pytest.mark.parametrize("a, b, expected", [
    (9, 2, 2), (2, 1, 1), (1, 3, 3), (3, 4, 4), (9, 4, 4), (9, 9, 9), (4, 1, 4), (1, 9, 1),
])
def test_combine_precedence_pairs(a, b, expected):
    assert fl.combine(np.array([a], np.uint8), np.array([b], np.uint8)).tolist() == [expected]


def test_combine_needs_input():
    with pytest.raises(ValueError):
        fl.combine()


flag_lists = st.lists(st.sampled_from(fl.FLAG_VALUES), min_size=5, max_size=5)


@settings(deadline=None)
@given(flag_lists, flag_lists, flag_lists)
def test_combine_matches_ioos_qc_aggregate_and_never_improves(a, b, c):
    arrays = [np.array(x, np.uint8) for x in (a, b, c)]
    combined = fl.combine(*arrays)
    assert combined.tolist() == qartod.qartod_compare(arrays).tolist()
    # commutative, and never better than any input (FAIL stays FAIL, SUSPECT stays >= SUSPECT)
    assert fl.combine(*arrays[::-1]).tolist() == combined.tolist()
    for x in arrays:
        assert fl.combine(combined, x).tolist() == combined.tolist()


constant_or_mixed = st.one_of(
    st.sampled_from(fl.FLAG_VALUES).map(lambda v: [v] * 5),  # the common chunk: one flag
    flag_lists)


@settings(deadline=None)
@given(constant_or_mixed, constant_or_mixed, constant_or_mixed)
def test_combine_with_constant_arrays_matches_ioos_qc(a, b, c):
    arrays = [np.array(x, np.uint8) for x in (a, b, c)]
    assert fl.combine(*arrays).tolist() == qartod.qartod_compare(arrays).tolist()


@pytest.mark.parametrize("values, expected", [
    ([], {}),
    ([1, 1, 1], {"1": 3}),
    ([7, 7], {}),                      # outside the scale: not a QARTOD count
    ([1, 3, 3, 4, 9, 7], {"1": 1, "3": 2, "4": 1, "9": 1}),
    ([2, 9], {"2": 1, "9": 1}),
])
def test_counts_of_flag_values(values, expected):
    assert fl.counts(np.array(values, np.uint8)) == expected
