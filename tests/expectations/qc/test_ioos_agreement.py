"""Haina's QC against the reference, ioos_qc 3.x, on generated series and real files.

Every difference is either absent or one of the documented choices (docs/qc.md), counted here.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from expectations.qc import flags as fl
from expectations.qc import position as qc_position
from expectations.qc import qartod as qc
from expectations.qc import seawater
from tests.expectations.qc import planted_support as planted

qartod = pytest.importorskip("ioos_qc.qartod")
ioos_argo = pytest.importorskip("ioos_qc.argo")

CMOP = "station_timeseries/cmop_attenuated_salinity_example.csv"
COPERNICUS = "argo_dsg_netcdf/GL_TS_BO_EXEC0220.nc"
ARGO = "argo_dsg_netcdf/D4901079_010.nc"


def ioos(fn, *args, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(fn(*args, **kwargs)).astype(np.uint8)


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(42)
    n = 3000
    x = np.cumsum(rng.normal(0, 0.5, n))
    x[rng.integers(0, n, 60)] = np.nan
    x[500:700] = 3.0  # a stuck sensor
    times = np.datetime64("2021-03-01T00:00:00", "us") + np.arange(n) * np.timedelta64(60, "s")
    return x, times


def test_generated_gross_spike_flat_location_density_equal(series):
    x, t = series
    assert qc.gross_range(x, (-20, 20), (-10, 10)).tolist() == \
        ioos(qartod.gross_range_test, x, (-20, 20), (-10, 10)).tolist()
    for method in ("average", "differential"):
        assert qc.spike(x, 0.8, 2.0, method=method).tolist() == \
            ioos(qartod.spike_test, x, 0.8, 2.0, method=method).tolist()
    assert qc.flat_line(x, t, 0.01, 1800, 3600).tolist() == \
        ioos(qartod.flat_line_test, x, t, 1800, 3600, 0.01).tolist()
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-95, 95, 2000), rng.uniform(-185, 185, 2000)
    ours = qc_position.coordinates(lat, lon)
    theirs = ioos(qartod.location_test, lon, lat)
    assert ours.tolist() == theirs.tolist()
    sigma = np.cumsum(np.abs(rng.normal(0, 0.02, 400))) + rng.normal(0, 0.03, 400)
    depth = np.arange(400) * 2.0
    assert qc.density_inversion(sigma, depth, -0.03, -0.06).tolist() == \
        ioos(qartod.density_inversion_test, sigma, depth, -0.03, -0.06).tolist()


def test_generated_polygon_matches_shapely_away_from_edges():
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(-10, 10, 5000), rng.uniform(-10, 10, 5000)
    polygon = [(-8, -8), (8, -6), (2, 0), (7, 8), (-6, 5)]
    ours = qc_position.location(lat, lon, polygon=polygon)
    theirs = ioos(qartod.location_bounds_test, lon, lat, tuple(polygon))
    assert ours.tolist() == theirs.tolist()


def test_generated_rate_of_change_differs_only_where_documented(series):
    x, t = series
    ours = qc.rate_of_change(x, t, 0.01, 0.03)
    theirs = ioos(qartod.rate_of_change_test, x, t, 0.01, 0.03)
    # documented: the first sample and every sample after a missing one are NOT_EVALUATED
    # (ioos_qc: GOOD, comparing with NaN)
    after_gap = np.r_[True, np.isnan(x[:-1])] & np.isfinite(x)
    expected = np.where(after_gap, fl.NOT_EVALUATED, theirs)
    assert ours.tolist() == expected.tolist()
    assert 0 < int(after_gap.sum()) < 70


def test_generated_speed_matches_geodesic_away_from_thresholds():
    rng = np.random.default_rng(3)
    n = 400
    lat = 40 + np.cumsum(rng.normal(0, 0.02, n))
    lon = -60 + np.cumsum(rng.normal(0, 0.02, n))
    t = np.datetime64("2021-01-01", "us") + np.arange(n) * np.timedelta64(600, "s")
    ours = qc_position.speed(lat, lon, t, 3.0, 6.0)
    theirs = ioos(ioos_argo.speed_test, lon, lat, t, 3.0, 6.0)
    # documented: haversine vs WGS84 geodesic differ by < 0.5 %; compare off the thresholds
    metres = qc_position.haversine(lat[:-1], lon[:-1], lat[1:], lon[1:])
    rate = np.r_[np.nan, metres / 600.0]
    near = (np.abs(rate - 3.0) < 0.03) | (np.abs(rate - 6.0) < 0.06)
    assert ours[~near].tolist() == theirs[~near].tolist()
    assert (ours == fl.SUSPECT).sum() > 10


# ---------------------------------------------------------------------------- real files


@pytest.fixture(scope="module")
def cmop(shared_data):
    path = shared_data / CMOP
    frame = pd.read_csv(path, comment="#", quotechar="'", skipinitialspace=True)
    times = pd.to_datetime(frame.iloc[:, 0]).to_numpy().astype("datetime64[us]")
    return frame.iloc[:, 1].to_numpy(dtype=float), times


def test_cmop_spike_and_gross_range_equal(cmop):
    x, _t = cmop
    assert x.size == 24436
    spike = qc.spike(x, 0.3, 0.9)
    assert spike.tolist() == ioos(qartod.spike_test, x, 0.3, 0.9).tolist()
    assert (spike == fl.FAIL).sum() == 674  # the attenuated stretches
    assert qc.gross_range(x, (0, 42), (2, 41)).tolist() == \
        ioos(qartod.gross_range_test, x, (0, 42), (2, 41)).tolist()


def test_cmop_rate_of_change_differs_only_at_first_sample(cmop):
    x, t = cmop
    ours = qc.rate_of_change(x, t, 0.001, 0.01)
    theirs = ioos(qartod.rate_of_change_test, x, t, 0.001, 0.01)
    assert np.flatnonzero(ours != theirs).tolist() == [0]
    assert (ours[0], theirs[0]) == (fl.NOT_EVALUATED, fl.GOOD)


def _window_counts(t: np.ndarray, seconds: float) -> np.ndarray:
    micros = t.astype(np.int64)
    first = np.searchsorted(micros, micros - int(seconds * 1e6), side="left")
    return np.arange(t.size) - first  # samples before n inside the time window


def _uncovered(t: np.ndarray, seconds: float) -> np.ndarray:
    """Windows [t - seconds, t] whose start a gap longer than ``seconds`` spans (docs/qc.md)."""
    micros = t.astype("datetime64[us]").astype(np.int64)
    duration = int(seconds * 1e6)
    first = np.searchsorted(micros, micros - duration, side="left")
    gap = micros[first] - micros[np.maximum(first - 1, 0)]
    return (first > 0) & (micros[first] != micros - duration) & (gap > duration)


def _one_value(x: np.ndarray, t: np.ndarray, seconds: float) -> np.ndarray:
    """ioos_qc's sample-count window holds fewer than two values (it calls that flat)."""
    median = np.median(np.diff(t).astype("timedelta64[s]").astype(float))
    count = int(seconds / median)
    valid = np.concatenate([[0], np.cumsum(np.isfinite(x))])
    index = np.arange(x.size)
    return (index >= count) & (valid[index + 1] - valid[np.maximum(index - count, 0)] < 2)


def _check_flat_line(x, t, tolerance, suspect, fail) -> dict[str, int]:
    """Haina's flat line against ioos_qc's: every difference has a documented cause, and no
    window a gap leaves uncovered is flagged. Returns the differences per cause."""
    ours = qc.flat_line(x, t, tolerance, suspect, fail)
    theirs = ioos(qartod.flat_line_test, x, t, suspect, fail, tolerance)
    median = np.median(np.diff(t).astype("timedelta64[s]").astype(float))
    causes = {
        "jitter": np.logical_or.reduce([_window_counts(t, d) != int(d / median)
                                        for d in (suspect, fail)]),
        "gap": _uncovered(t, suspect) | _uncovered(t, fail),
        "one value": _one_value(x, t, suspect) | _one_value(x, t, fail),
    }
    differ = ours != theirs
    assert not (differ & ~np.logical_or.reduce(list(causes.values()))).any()
    assert not ((ours == fl.SUSPECT) & _uncovered(t, suspect)).any()
    assert not ((ours == fl.FAIL) & _uncovered(t, fail)).any()
    return {cause: int((differ & mask).sum()) for cause, mask in causes.items()}


@pytest.mark.parametrize("tolerance, suspect, fail", [
    (0.5, 600, 1200), (0.05, 1200, 2400), (0.1, 3600, 7200)])
def test_cmop_flat_line_differs_only_where_sampling_jitters_or_gaps(cmop, tolerance, suspect,
                                                                     fail):
    x, t = cmop
    # documented: Haina's windows are time spans; ioos_qc's are int(duration / median interval)
    # samples. The CMOP interval jitters (59-61 s), so windows differ in sample count at times;
    # and a window whose start lies in a gap longer than the window is not judged (ioos_qc's
    # sample count reaches back across the gap instead)
    causes = _check_flat_line(x, t, tolerance, suspect, fail)
    assert sum(causes.values()) < 0.01 * x.size
    if tolerance == 0.5:
        assert (qc.flat_line(x, t, tolerance, suspect, fail) == fl.FAIL).sum() > 4000


@pytest.fixture(scope="module")
def ndbc(shared_data):
    from tests.expectations.qc.test_apply import read_recipe
    table, _columns, _schema = read_recipe("station_ndbc_41002.yaml", shared_data)
    order = np.argsort(table.column("time").to_numpy(), kind="stable")
    return table.take(order)


@pytest.mark.parametrize("column", ["sea_surface_temperature", "air_pressure_at_mean_sea_level",
                                    "wind_speed"])
@pytest.mark.parametrize("tolerance, suspect, fail", [(0.05, 1200, 2400), (0.5, 600, 1200)])
def test_ndbc_flat_line_is_not_judged_after_gaps(ndbc, column, tolerance, suspect, fail):
    """NDBC 41002 has gaps of 30-50 minutes: with windows shorter than them, the windows just
    after a gap hold only the samples since the gap and are not judged."""
    t = ndbc.column("time").to_numpy().astype("datetime64[us]")
    x = ndbc.column(column).to_numpy(zero_copy_only=False).astype(float)
    _check_flat_line(x, t, tolerance, suspect, fail)


# ---------------------------------------------------------------------------- attenuated signal


@pytest.mark.parametrize("check, suspect, fail", [("range", 17.25, 15.0), ("std", 5.0, 4.5)])
@pytest.mark.parametrize("min_obs", [744, 10])
def test_cmop_attenuated_signal_equals_ioos_qc_where_the_record_covers_the_window(
        cmop, check, suspect, fail, min_obs):
    """ioos_qc's own biofouling example (docs/source/examples, CMOP station sandi): a lunar day
    (24.8 h) window. Equal wherever the record covers the window; in the first 24.8 h, Haina
    does not judge the partial window (ioos_qc does once it holds min_obs values, and with
    min_obs 10 fails a healthy sensor there)."""
    x, t = cmop
    period = int(3600 * 24.8)
    ours = qc.attenuated_signal(x, t, suspect, fail, period_seconds=period, check=check,
                                min_obs=min_obs)
    theirs = ioos(qartod.attenuated_signal_test, x, t, suspect, fail, test_period=period,
                  min_obs=min_obs, check_type=check)
    micros = t.astype(np.int64)
    covered = micros - micros[0] >= period * 1_000_000
    assert ours[covered].tolist() == theirs[covered].tolist()
    assert (ours[~covered] == fl.NOT_EVALUATED).all()
    assert (ours == fl.FAIL).sum() > 250  # the fouled end of the record


def test_generated_attenuated_signal_std_equal_and_range_ignores_missing(series):
    x, t = series
    period = 3600
    kwargs = {"period_seconds": period, "min_obs": 30}
    covered = np.arange(x.size) >= 60  # 60-s samples: the record covers the window from here
    for check, suspect, fail in (("std", 0.8, 0.3), ("range", 3.0, 1.0)):
        ours = qc.attenuated_signal(x, t, suspect, fail, check=check, **kwargs)
        theirs = ioos(qartod.attenuated_signal_test, x, t, suspect, fail, test_period=period,
                      min_obs=30, check_type=check)
        assert (ours[~covered & np.isfinite(x)] == fl.NOT_EVALUATED).all()
        differ = covered & (ours != theirs)
        if check == "std":
            assert not differ.any()
        else:
            # documented: ioos_qc's range is NaN (UNKNOWN) once its window holds a missing
            # value; Haina ignores missing values, as ioos_qc's std does
            missing_inside = np.array([np.isnan(x[max(0, i - 59):i + 1]).any()
                                       for i in range(x.size)])
            assert not (differ & ~missing_inside).any()
            assert (theirs[differ] == fl.NOT_EVALUATED).all()
        assert (ours == fl.FAIL).sum() > 100  # the stuck sensor (samples 500-700)


def test_copernicus_doxy_fails_gross_range_and_source_flags_map(shared_data):
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(shared_data / COPERNICUS) as ds:
        doxy = ds["DOXY"].values[:, 0].astype(float)
        doxy_qc = ds["DOXY_QC"].values[:, 0]
    assert np.nanmax(doxy) > 5400
    ours = qc.gross_range(doxy, (0, 600), (0, 500))
    assert ours.tolist() == ioos(qartod.gross_range_test, doxy, (0, 600), (0, 500)).tolist()
    assert ours[np.nanargmax(doxy)] == fl.FAIL
    missing = ~np.isfinite(doxy_qc)
    mapped = fl.from_oceansites(np.where(missing, 0, doxy_qc).astype(int), missing)
    assert {k: int((mapped == k).sum()) for k in (1, 3, 4)} == {1: 112, 3: 17, 4: 1846}


def test_argo_profile_density_inversion_equal(shared_data):
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(shared_data / ARGO) as ds:
        pres = ds["PRES_ADJUSTED"].values[0].astype(float)
        temp = ds["TEMP_ADJUSTED"].values[0].astype(float)
        psal = ds["PSAL_ADJUSTED"].values[0].astype(float)
    sigma = seawater.sigma0(temp, psal, pres)
    ok = np.isfinite(sigma) & np.isfinite(pres)
    assert 20 < np.nanmin(sigma) < np.nanmax(sigma) < 29  # plausible sigma0, kg m-3
    for thresholds in ((-0.03, -0.06), (-0.001, -0.002)):
        ours = qc.density_inversion(sigma[ok], pres[ok], *thresholds)
        theirs = ioos(qartod.density_inversion_test, sigma[ok], pres[ok], *thresholds)
        assert ours.tolist() == theirs.tolist()


# ---------------------------------------------------------------------------- planted events


@pytest.fixture(scope="module")
def planted_runs():
    """Haina's pipeline entry point and ioos_qc on the planted-event tables (support module)."""
    runs = []
    for kind, build in (("timeseries", planted.timeseries), ("profiles", planted.profiles)):
        table, columns = build()
        runs.append((kind, table, planted.haina_flags(table, columns, kind),
                     planted.ioos_flags(table, kind)))
    return runs


#: every differing cell of the planted series, by test and documented cause (docs/qc.md)
PLANTED_DIFFERENCES = {
    ("aggregate", "aggregate of a missing value is MISSING"): 9,
    ("aggregate", "no rate of change from an infinite value"): 1,
    ("rate_of_change", "no rate of change from an infinite value"): 1,
    ("rate_of_change", "rate of change NOT_EVALUATED at a segment start or after a missing "
                       "value"): 11,
    ("attenuated_signal", "attenuated signal: window the record does not cover is "
                          "NOT_EVALUATED"): 198,
    ("spike", "an infinite value is NOT_EVALUATED by tests that cannot use it"): 1,
    ("rate_of_change", "an infinite value is NOT_EVALUATED by tests that cannot use it"): 1,
    ("flat_line", "an infinite value is NOT_EVALUATED by tests that cannot use it"): 1,
    ("attenuated_signal", "an infinite value is NOT_EVALUATED by tests that cannot use it"): 1,
    ("speed", "an impossible fix is NOT_EVALUATED by speed"): 1,
    ("speed", "speed after a missing fix is from the last known fix"): 1,
}


def test_planted_events_agree_with_ioos_qc_but_for_documented_choices(planted_runs):
    """Spikes, stuck sensors, gaps, range violations, rate-of-change steps, biofouling, bad and
    lost fixes, two platforms and six profiles: the same test set through Haina's pipeline entry
    point and through ioos_qc 3.0.0 (per platform and profile). Every differing cell has a
    documented cause, and the aggregates agree on at least 99.9 % of the cells."""
    found: dict[tuple[str, str], int] = {}
    equal: dict[str, int] = {}
    cells: dict[str, int] = {}
    for kind, table, haina, theirs in planted_runs:
        pairs = [(var, test) for var in planted.VARIABLES for test in theirs[var]
                 if test in haina[var]] + [("", "location"), ("", "speed")]
        for var, test in pairs:
            causes = planted.explain(table, kind, var, test, haina, theirs)
            for cause, n in causes.items():
                found[(test, cause)] = found.get((test, cause), 0) + n
            n_diff = sum(causes.values())
            cells[test] = cells.get(test, 0) + table.num_rows
            equal[test] = equal.get(test, 0) + table.num_rows - n_diff
    assert found == PLANTED_DIFFERENCES
    shares = {test: equal[test] / cells[test] for test in cells}
    print("\n[planted events] agreement with ioos_qc 3.0.0: "
          + ", ".join(f"{t} {100 * v:.3f} %" for t, v in sorted(shares.items())))
    assert shares["aggregate"] >= 0.999
    assert cells["aggregate"] == 2 * (6414 + 360)


def test_planted_events_are_found(planted_runs):
    """The planted events are flagged at all (agreement on an all-GOOD series proves nothing)."""
    (_, _, series, _), (_, _, profiles, _) = planted_runs
    for var in planted.VARIABLES:
        for test in ("gross_range", "spike", "rate_of_change", "flat_line",
                     "attenuated_signal"):
            assert (series[var][test] == fl.FAIL).any(), (var, test)
        assert (profiles[var]["density_inversion"] == fl.FAIL).any()
    assert (profiles[planted.T]["spike"] == fl.FAIL).any()
    assert (series[""]["location"] == fl.FAIL).sum() == 2   # latitude 95, a lost longitude
    assert (series[""]["speed"] == fl.FAIL).sum() == 2      # the jump and back
    assert (series[""]["distance"] == fl.SUSPECT).sum() == 2
