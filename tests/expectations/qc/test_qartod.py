"""Each QC test on literal inputs: expected flag lists written out, edge cases in tables."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expectations.qc import flags as fl
from expectations.qc import ordering, seawater
from expectations.qc import position as qc_position
from expectations.qc import qartod as qc

NAN = np.nan


def seconds(*values):
    return np.datetime64("2020-01-01T00:00:00", "us") + np.array(values, dtype="timedelta64[s]")


@pytest.mark.parametrize("values, fail, suspect, expected", [
    ([-1, 0, 1, 4, 5, 6, NAN], (0, 5), (1, 4), [4, 3, 1, 1, 3, 4, 9]),
    ([0, 0.1, -0.1, NAN], (0, 0), None, [1, 4, 4, 9]),           # zero span is a real span
    ([np.inf, -np.inf, 3.0], (0, 5), (1, 4), [4, 4, 1]),         # an infinity is a bad value
    ([np.inf, -np.inf, 3.0], (None, None), None, [4, 4, 1]),     # ...even against open bounds
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


@pytest.mark.parametrize("times, expected", [
    # 60-s samples, then a 100-s gap: no gap longer than the 2-minute window, all judged
    ((0, 60, 120, 180, 280, 340, 400), [1, 1, 3, 3, 3, 3, 3]),
    # a 10-minute gap: the windows that start inside it hold only the samples since the gap,
    # which say nothing about the 2 minutes the window stands for: not judged...
    ((0, 60, 120, 180, 780, 840, 900), [1, 1, 3, 3, 1, 1, 3]),
    # ...until a window starts on a sample again, or its start is within 2 minutes of one
    ((0, 60, 120, 180, 9000, 9100, 9200), [1, 1, 3, 3, 1, 1, 3]),
])
def test_flat_line_is_not_judged_on_windows_a_gap_leaves_uncovered(times, expected):
    values = [5.0] * 7
    flags = qc.flat_line(values, seconds(*times), 0.01, suspect_seconds=120)
    assert flags.tolist() == expected


DAMPED = [0, 1, 0, 1, 0, 0.05, 0, 0.05, 0, 0.001, 0, 0.001, 0]


@pytest.mark.parametrize("check", ["std", "range"])
def test_attenuated_signal_flags_a_damped_signal(check):
    # 60-s samples, 240-s windows (t - 240, t]: four samples once the record covers the window
    times = seconds(*range(0, 780, 60))
    flags = qc.attenuated_signal(DAMPED, times, 0.1, 0.01, period_seconds=240, check=check)
    assert flags.tolist() == [2, 2, 2, 2, 1, 1, 1, 3, 3, 3, 3, 4, 4]


@pytest.mark.parametrize("values, times, kwargs, expected", [
    # a missing value is MISSING and takes no part; its windows still hold three values
    ([0, 1, 0, 1, NAN, 1, 0], range(0, 420, 60), {}, [2, 2, 2, 2, 9, 1, 1]),
    # min_obs: windows with fewer values are not judged
    ([0, 1, 0, 1, NAN, 1, 0], range(0, 420, 60), {"min_obs": 4}, [2, 2, 2, 2, 9, 2, 2]),
    # a gap longer than the period: the windows after it are not judged until covered again
    ([0, 1, 0, 1, 0, 0, 0, 0], (0, 60, 120, 180, 240, 900, 960, 1020), {},
     [2, 2, 2, 2, 1, 2, 2, 2]),
    # equal to a threshold passes (strict <, as ioos_qc); an infinity is not judged
    ([0, 0.1, 0, 0.1, 0, np.inf, 0], range(0, 420, 60), {"check": "range"},
     [2, 2, 2, 2, 1, 2, 1]),
])
def test_attenuated_signal_edges(values, times, kwargs, expected):
    flags = qc.attenuated_signal(values, seconds(*times), 0.1, 0.01, period_seconds=240,
                                 **kwargs)
    assert flags.tolist() == expected


def test_attenuated_signal_never_compares_segments():
    times = seconds(*range(0, 780, 60))
    segment = np.array([0] * 6 + [1] * 7)
    flags = qc.attenuated_signal(DAMPED, times, 0.1, 0.01, period_seconds=240, segment=segment)
    # the second segment starts at sample 6: its first covered window ends at sample 10
    assert flags.tolist() == [2, 2, 2, 2, 1, 1, 2, 2, 2, 2, 3, 4, 4]


def test_flat_line_zero_tolerance_flags_nothing():
    assert qc.flat_line([5, 5, 5], seconds(0, 60, 120), 0.0, 120).tolist() == [1, 1, 1]


def test_flat_line_refuses_unsorted_times():
    with pytest.raises(ValueError, match="non-decreasing"):
        qc.flat_line([1, 1, 1], seconds(0, 120, 60), 0.1, 60)


@pytest.mark.parametrize("lat, lon, expected", [
    (0, 0, 1), (91, 0, 4), (NAN, NAN, 9), (NAN, 5, 4), (10, 180, 1),
    (10, 200, 4), (10, 360.5, 4), (10, -180, 1), (10, -180.5, 4), (np.inf, 0, 4),  # connectors
    # shift 0-360 longitudes: one past 180 here is impossible (an AIS 200.2)
    (0, -np.inf, 4), (-90, 0, 1),
])
def test_coordinates_are_possible(lat, lon, expected):
    assert qc_position.coordinates([lat], [lon]).tolist() == [expected]
    assert qc_position.coordinates([0.0, lat], [0.0, lon]).tolist() == [1, expected]


def test_region_is_apart_from_impossible_coordinates_and_can_be_suspect():
    lat = [0, 91, NAN, 10, 45, 60, 30]
    lon = [0, 0, NAN, 150, 10, 0, -170]
    box = (-20, -20, 20, 50)
    assert qc_position.region(lat, lon, bbox=box).tolist() == [1, 2, 9, 4, 1, 4, 4]
    assert qc_position.region(lat, lon, bbox=box, outside=fl.SUSPECT).tolist() == \
        [1, 2, 9, 3, 1, 3, 3]
    # a box across the antimeridian, written in 0-360 or in -180..180, holds both conventions
    assert qc_position.region([30, 30, 30], [175, -170, 0], bbox=(170, 0, 200, 50)).tolist() \
        == [1, 1, 4]
    assert qc_position.location(lat, lon, bbox=box).tolist() == [1, 4, 9, 4, 1, 4, 4]


def test_location_polygon_ioos_example():
    triangle = [(-78.696116, 24.562267), (-77.844899, 23.543749), (-77.506013, 24.707798)]
    flags = qc_position.location([25.169938, 24.316908, 24.316908],
                                 [-78.680106, -78.151764, -77.167128], polygon=triangle)
    assert flags.tolist() == [4, 1, 4]


def test_speed_flags_later_sample_and_respects_segments():
    # 1 degree of latitude is ~111.2 km; in 1000 s that is ~111 m/s
    lat = [0.0, 0.0, 1.0, 1.0]
    lon = [0.0, 0.001, 0.001, 0.001]
    times = seconds(0, 1000, 2000, 3000)
    assert qc_position.speed(lat, lon, times, 5, 50).tolist() == [2, 1, 4, 1]
    assert qc_position.speed(lat, lon, times, 5, 50, segment=np.array([0, 0, 1, 1])).tolist() \
        == [2, 1, 2, 1]


def test_speed_skips_impossible_fixes():
    """The good fix after an impossible one is judged against the last good fix."""
    lat = [10.0, 10.001, 95.0, 10.002, 10.003]
    lon = [20.0, 20.0, 20.0, 20.0, 20.0]
    times = seconds(0, 600, 1200, 1800, 2400)
    usable = qc_position.coordinates(lat, lon) != fl.FAIL
    assert usable.tolist() == [True, True, False, True, True]
    assert qc_position.speed(lat, lon, times, 1.0, 3.0, usable=usable).tolist() == [2, 1, 2, 1, 1]
    # without the exclusion the haversine of latitude 95 is a 9000 km jump: FAIL twice
    assert qc_position.speed(lat, lon, times, 1.0, 3.0).tolist() == [2, 1, 4, 4, 1]


def test_speed_and_distance_treat_a_profile_as_one_fix():
    # two profiles of three levels: each level compares with the previous profile's fix
    lat = [0.0, 0.0, 0.0, 0.1, 0.1, 0.1]
    lon = [0.0] * 6
    times = seconds(0, 0, 0, 86400, 86400, 86400)
    assert qc_position.speed(lat, lon, times, 0.1, 1.0).tolist() == [2, 2, 2, 3, 3, 3]
    # ~11.1 km between the fixes
    assert qc_position.distance(lat, lon, 10_000, 20_000, time=times).tolist() == \
        [2, 2, 2, 3, 3, 3]
    assert qc_position.distance(lat, lon, 20_000, time=times).tolist() == [2, 2, 2, 1, 1, 1]


@pytest.mark.parametrize("lat, lon, usable, expected", [
    ([0, 0, 1, 1], [0, 0, 0, 0], None, [2, 1, 4, 1]),             # 111 km jump, then still
    ([0, NAN, 1, 1], [0, 0, 0, 0], None, [2, 9, 4, 1]),           # missing: from the last known
    ([0, 5, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1], [2, 2, 1, 1]),      # unusable fix skipped
])
def test_distance(lat, lon, usable, expected):
    use = None if usable is None else np.array(usable, dtype=bool)
    assert qc_position.distance(lat, lon, 50_000, 100_000, usable=use).tolist() == expected


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
    assert seawater.density_at_surface(35.0, 25.0) == pytest.approx(1023.34306, abs=1e-4)
    assert seawater.density_at_surface(0.0, 5.0) == pytest.approx(999.96675, abs=1e-4)
    assert seawater.potential_temperature(40.0, 40.0, 10000.0) == pytest.approx(36.89073, abs=1e-4)


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


def test_ordering_by_profile_keeps_profiles_apart_in_depth_order():
    t0, t1 = np.datetime64("2020-01-01", "us"), np.datetime64("2020-01-11", "us")
    times = np.array([t1, t1, t0, t0, t0])
    perm, segment = ordering.ordering(np.array([0, 0, 0, 0, 1]), times, profile=np.array([7, 7, 3, 3, 3]),
                                depth=np.array([10.0, 5.0, 10.0, NAN, 0.0]))
    # platform 0: profile 3 (missing depth last), then profile 7 in depth order; platform 1
    assert perm.tolist() == [2, 3, 1, 0, 4] and segment.tolist() == [0, 0, 1, 1, 2]


def test_ordering_is_stable_and_groups_platforms():
    times = np.array(["2020-01-02", "2020-01-01", "NaT", "2020-01-01", "2020-01-01"],
                     dtype="datetime64[us]")
    perm, segment = ordering.ordering(np.array([1, 1, 1, 0, 1]), times)
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
        (qc.density_inversion, (x, np.arange(n, dtype=float)), {"suspect_threshold": -0.5}, 1),
        (qc.flat_line, (np.round(x), times), {"tolerance": 0.5, "suspect_seconds": 300,
                                              "fail_seconds": 600},
         qc.time_window_overlap(times, 600, segment)),
        # thresholds no deviation of these values can equal (ties may round either way)
        (qc.attenuated_signal, (x, times), {"suspect_threshold": 1.2345678,
                                            "fail_threshold": 0.3456789, "period_seconds": 400},
         qc.time_window_overlap(times, 400, segment)),
        (qc.attenuated_signal, (np.round(x), times), {
            "suspect_threshold": 2.5, "fail_threshold": 0.5, "period_seconds": 300,
            "check": "range", "min_obs": 3}, qc.time_window_overlap(times, 300, segment)),
    ]
    for fn, arrays, kwargs, overlap in cases:
        whole = fn(*arrays, segment=segment, **kwargs)
        parts = ordering.windowed(fn, *arrays, window=window, overlap=overlap, segment=segment, **kwargs)
        assert parts.tolist() == whole.tolist(), fn.__name__
