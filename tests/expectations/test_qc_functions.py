"""Each QC test on literal inputs: expected flag lists written out, edge cases in tables."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expectations import qc

NAN = np.nan


def seconds(*values):
    return np.datetime64("2020-01-01T00:00:00", "us") + np.array(values, dtype="timedelta64[s]")


@pytest.mark.parametrize("values, fail, suspect, expected", [
    ([-1, 0, 1, 4, 5, 6, NAN], (0, 5), (1, 4), [4, 3, 1, 1, 3, 4, 9]),
    ([0, 0.1, -0.1, np.inf], (0, 0), None, [1, 4, 4, 9]),        # zero span is a real span
    ([5408.0, 300.0], (0, 600), (0, 500), [4, 1]),              # Copernicus DOXY outlier
    ([1.0, 99.0], (None, 10), None, [1, 4]),                    # open lower bound
    ([], (0, 1), None, []),
])
def test_gross_range(values, fail, suspect, expected):
    flags = qc.gross_range(values, fail, suspect)
    assert flags.dtype == np.uint8 and flags.tolist() == expected


def test_gross_range_suspect_must_lie_within_fail():
    with pytest.raises(ValueError, match="within fail_span"):
        qc.gross_range([1.0], (0, 5), (-1, 4))


@pytest.mark.parametrize("values, suspect, fail, segment, expected", [
    ([1, 1, 5, 1, 1], 1, 3, None, [2, 3, 4, 3, 2]),
    ([0, 0, 2, 0, 0], 2, None, None, [2, 1, 1, 1, 2]),          # equal to threshold passes
    ([0, NAN, 0, 0], 1, None, None, [2, 9, 2, 2]),              # NaN neighbour: not evaluated
    ([0, 0, 1, 0, 0], 0, None, None, [2, 3, 3, 3, 2]),          # 0 is a threshold
    ([0, 0, 10, 0, 0], 1, 3, [0, 0, 1, 1, 1], [2, 2, 2, 4, 2]),  # no comparison across segments
    ([NAN], 1, 3, None, [9]),
    ([7.0], 1, 3, None, [2]),
])
def test_spike(values, suspect, fail, segment, expected):
    seg = None if segment is None else np.array(segment)
    assert qc.spike(values, suspect, fail, segment=seg).tolist() == expected


def test_spike_differential_ignores_monotone_steps():
    # a step (same-sign differences) is not a spike; an up-and-down is
    assert qc.spike([0, 0, 5, 10, 10], 1, None, method="differential").tolist() == [2, 1, 1, 1, 2]
    assert qc.spike([0, 0, 5, 0, 0], 1, None, method="differential").tolist() == [2, 1, 3, 1, 2]


@pytest.mark.parametrize("values, times, suspect, fail, expected", [
    ([0, 1, 1, 5], (0, 10, 20, 30), 0.2, 0.3, [2, 1, 1, 4]),
    ([0, 2], (0, 10), 0.2, None, [2, 1]),                      # equal to threshold passes
    ([0, 1], (0, 0), 0.2, None, [2, 2]),                       # duplicate time: not evaluated
    ([0, NAN, 5], (0, 10, 20), 0.2, None, [2, 9, 2]),          # after a gap: not evaluated
    ([0, 0.5], (0, 1), 0.0, None, [2, 3]),                     # 0 is a threshold
])
def test_rate_of_change(values, times, suspect, fail, expected):
    assert qc.rate_of_change(values, seconds(*times), suspect, fail).tolist() == expected


def test_flat_line_counts_time_windows():
    times = seconds(*range(0, 480, 60))
    values = [1, 2, 3, 3, 3, 3, 3, 4]
    flags = qc.flat_line(values, times, 0.01, suspect_seconds=120, fail_seconds=180)
    assert flags.tolist() == [1, 1, 1, 1, 3, 4, 4, 1]


@pytest.mark.parametrize("values, times, expected", [
    ([5, 5, 5], (0, 60, 120), [1, 1, 3]),
    ([5, 5, 5], (0, 60, 60 * 60), [1, 1, 1]),          # window holds one sample: not a line
    ([5, NAN, 5], (0, 60, 120), [1, 9, 3]),
    ([5, 5, 5], (0, 0, 0), [1, 1, 1]),                 # no time passes (profile levels)
])
def test_flat_line_edges(values, times, expected):
    assert qc.flat_line(values, seconds(*times), 0.01, suspect_seconds=120).tolist() == expected


def test_flat_line_zero_tolerance_flags_nothing():
    assert qc.flat_line([5, 5, 5], seconds(0, 60, 120), 0.0, 120).tolist() == [1, 1, 1]


def test_flat_line_refuses_unsorted_times():
    with pytest.raises(ValueError, match="non-decreasing"):
        qc.flat_line([1, 1, 1], seconds(0, 120, 60), 0.1, 60)


def test_location_validity_and_bbox():
    lat = [0, 91, NAN, NAN, 10, 45, 60]
    lon = [0, 0, NAN, 5, 200, 10, 0]
    assert qc.location(lat, lon).tolist() == [1, 4, 9, 4, 4, 1, 1]
    assert qc.location(lat, lon, bbox=(-20, -20, 20, 50)).tolist() == [1, 4, 9, 4, 4, 1, 4]


def test_location_polygon_ioos_example():
    triangle = [(-78.696116, 24.562267), (-77.844899, 23.543749), (-77.506013, 24.707798)]
    flags = qc.location([25.169938, 24.316908, 24.316908], [-78.680106, -78.151764, -77.167128],
                        polygon=triangle)
    assert flags.tolist() == [4, 1, 4]


def test_speed_flags_later_sample_and_respects_segments():
    # 1 degree of latitude is ~111.2 km; in 1000 s that is ~111 m/s
    lat = [0.0, 0.0, 1.0, 1.0]
    lon = [0.0, 0.001, 0.001, 0.001]
    times = seconds(0, 1000, 2000, 3000)
    assert qc.speed(lat, lon, times, 5, 50).tolist() == [2, 1, 4, 1]
    assert qc.speed(lat, lon, times, 5, 50, segment=np.array([0, 0, 1, 1])).tolist() == [2, 1, 2, 1]


def test_time_check():
    times = np.array(["2020-01-01T00:00", "2020-01-01T01:00", "2020-01-01T00:30",
                      "2020-01-01T01:00", "NaT", "2999-01-01T00:00", "1800-01-01T00:00"],
                     dtype="datetime64[us]")
    flags = qc.time_check(times, now=np.datetime64("2025-01-01"),
                          not_before=np.datetime64("1900-01-01"))
    assert flags.tolist() == [1, 3, 3, 3, 9, 4, 4]


@pytest.mark.parametrize("group, depth, expected", [
    (None, None, [3, 3]),
    ([0, 1], None, [1, 1]),          # two platforms at the same time
    (None, [5.0, 10.0], [1, 1]),     # two levels of one profile
])
def test_time_duplicates(group, depth, expected):
    times = np.array(["2020-01-01", "2020-01-01"], dtype="datetime64[us]")
    g = None if group is None else np.array(group)
    d = None if depth is None else np.array(depth)
    assert qc.time_check(times, group=g, depth=d).tolist() == expected


def test_density_inversion():
    sigma = [25.0, 25.1, 25.05, 25.2, 25.0]
    depth = [0, 10, 20, 30, 40]
    assert qc.density_inversion(sigma, depth, -0.03, -0.1).tolist() == [1, 3, 3, 4, 4]
    seg = np.array([0, 0, 1, 1, 1])  # the inversion 1->2 straddles two profiles
    assert qc.density_inversion(sigma, depth, -0.03, -0.1, segment=seg).tolist() == [1, 1, 1, 4, 4]
    assert qc.density_inversion([25.0, NAN, 25.2], [0, 1, 2], -0.03).tolist() == [2, 9, 2]


def test_eos80_check_values():
    # UNESCO (1983) technical paper 44 check values (IPTS-68 temperatures)
    assert qc.density_at_surface(35.0, 25.0) == pytest.approx(1023.34306, abs=1e-4)
    assert qc.density_at_surface(0.0, 5.0) == pytest.approx(999.96675, abs=1e-4)
    assert qc.potential_temperature(40.0, 40.0, 10000.0) == pytest.approx(36.89073, abs=1e-4)


def test_climatology_members_seasons_and_depth_bands():
    times = np.array(["2020-01-15", "2020-07-15", "2020-07-15", "2020-03-15", "2020-12-31"],
                     dtype="datetime64[us]")
    depth = [0.0, 5.0, 100.0, 0.0, 0.0]
    members = [
        qc.ClimatologyMember("month", 12, 2, (0, 12)),  # wraps over the new year
        qc.ClimatologyMember("month", 6, 8, (15, 25), (5, 30), depth_min=0, depth_max=50),
    ]
    flags = qc.climatology([10.0, 10.0, 10.0, 10.0, 13.0], times, depth, members)
    assert flags.tolist() == [1, 3, 2, 2, 3]
    # overlapping members: the worst verdict wins, whatever the order
    lenient = qc.ClimatologyMember("month", 7, 7, (0, 20))
    for order in (members + [lenient], [lenient] + members):
        assert qc.climatology([10.0] * 5, times, depth, order).tolist()[1] == 3


def test_ordering_is_stable_and_groups_platforms():
    times = np.array(["2020-01-02", "2020-01-01", "NaT", "2020-01-01", "2020-01-01"],
                     dtype="datetime64[us]")
    perm, segment = qc.ordering(np.array([1, 1, 1, 0, 1]), times)
    assert perm.tolist() == [3, 1, 4, 0, 2] and segment.tolist() == [0, 1, 1, 1, 1]


# ------------------------------------------------------------------ windowed == unwindowed

values = st.lists(st.one_of(st.floats(-5, 5, allow_nan=False), st.just(NAN)),
                  min_size=1, max_size=120)


@settings(deadline=None, max_examples=60)
@given(values, st.integers(1, 40), st.lists(st.integers(0, 3), min_size=1, max_size=120),
       st.integers(1, 3))
def test_windowed_equals_unwindowed(xs, window, seg_draw, step):
    n = len(xs)
    x = np.array(xs)
    segment = np.sort(np.resize(np.array(seg_draw), n))
    times = seconds(*(np.arange(n) * 60 * step))
    cases = [
        (qc.spike, (x,), {"suspect_threshold": 1.0, "fail_threshold": 3.0}, 1),
        (qc.rate_of_change, (x, times), {"suspect_threshold": 0.01}, 1),
        (qc.speed, (x, x, times), {"suspect_threshold": 100.0, "fail_threshold": 500.0}, 1),
        (qc.density_inversion, (x, np.arange(n, dtype=float)), {"suspect_threshold": -0.5}, 1),
        (qc.flat_line, (np.round(x), times), {"tolerance": 0.5, "suspect_seconds": 300,
                                              "fail_seconds": 600},
         qc.flat_line_overlap(times, 600, segment)),
    ]
    for fn, arrays, kwargs, overlap in cases:
        whole = fn(*arrays, segment=segment, **kwargs)
        parts = qc.windowed(fn, *arrays, window=window, overlap=overlap, segment=segment, **kwargs)
        assert parts.tolist() == whole.tolist(), fn.__name__
