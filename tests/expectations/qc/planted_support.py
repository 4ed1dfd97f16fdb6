"""A planted-event data set and the ioos_qc 3.0.0 reference flags for it (no tests here).

Two tables, built in code with a fixed seed:

- ``time series``: a mooring (10-min samples, 40 days) and a glider (30-min samples, 20 days,
  moving), temperature and salinity, with planted spikes, flat lines (stuck sensor), data gaps,
  missing and infinite values, gross-range violations, rate-of-change steps, biofouling
  (attenuated signal), a bad position fix and a position jump;
- ``profiles``: two floats, three profiles each of 60 levels sharing a time and position, with a
  spike, a density inversion and a range violation.

:func:`haina_flags` runs Haina's pipeline entry point (``plan_qc`` + ``apply_qc``) on a table;
:func:`ioos_flags` runs ioos_qc's functions per platform and profile, in the same order, with the
same thresholds, and combines them with ``qartod_compare``. Both return ``{var: {test: flags}}``
in row order (``aggregate`` included), which :func:`agreement` compares cell by cell.
"""
from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from connectors.base import ColumnInfo
from expectations.qc import seawater
from expectations.qc.apply import apply_qc
from expectations.qc.config import QCConfig
from expectations.qc.plan import plan_qc

T, S = "sea_water_temperature", "sea_water_practical_salinity"
VARIABLES = (T, S)
START = np.datetime64("2021-03-01T00:00:00", "us")

THRESHOLDS = {
    T: {"gross_range": {"fail": [-2.5, 40.0], "suspect": [-2.0, 35.0]},
        "spike": {"suspect": 2.0, "fail": 6.0},
        "rate_of_change": {"suspect": 0.001, "fail": 0.003},
        "flat_line": {"tolerance": 0.001, "suspect_seconds": 21600, "fail_seconds": 43200},
        "attenuated_signal": {"suspect": 0.05, "fail": 0.02, "period": 43200, "min_obs": 24}},
    S: {"gross_range": {"fail": [0.0, 42.0], "suspect": [2.0, 41.0]},
        "spike": {"suspect": 0.3, "fail": 0.9},
        "rate_of_change": {"suspect": 0.0005, "fail": 0.0015},
        "flat_line": {"tolerance": 0.0005, "suspect_seconds": 21600, "fail_seconds": 43200},
        "attenuated_signal": {"suspect": 0.02, "fail": 0.008, "period": 43200, "min_obs": 24}},
}
SPEED = {"suspect": 1.0, "fail": 3.0}                  # m/s
DISTANCE = {"timeseries": 5_000.0, "profiles": 150_000.0}   # m between consecutive fixes
DENSITY = {"suspect": -0.03, "fail": -0.06}
#: tests ioos_qc runs per kind of table (time-based tests do not apply along a profile)
IOOS_TESTS = {
    "timeseries": ("gross_range", "spike", "rate_of_change", "flat_line", "attenuated_signal"),
    "profiles": ("gross_range", "spike", "density_inversion"),
}


# ------------------------------------------------------------------------------- the data


def _signal(rng, n, step_s, mean, daily, tidal, noise):
    t = np.arange(n) * step_s
    return (mean + daily * np.sin(2 * np.pi * t / 86400) + tidal * np.sin(2 * np.pi * t / 44712)
            + np.cumsum(rng.normal(0, noise, n)) * 0.2 + rng.normal(0, noise, n))


def _mooring(rng):
    n, step = 5760, 600
    times = START + np.arange(n) * np.timedelta64(step, "s")
    temp = _signal(rng, n, step, 12.0, 1.5, 0.5, 0.03)
    sal = _signal(rng, n, step, 32.0, 0.2, 0.5, 0.01)
    # spikes: suspect-sized, fail-sized, negative
    temp[300] += 3.0
    temp[900] += 8.0
    temp[1500] -= 7.0
    sal[700] += 0.6
    sal[1100] += 1.5
    # stuck sensor: 9 h (SUSPECT after 6 h) and 15 h (FAIL after 12 h)
    temp[2000:2054] = temp[2000]
    temp[2500:2590] = temp[2500]
    sal[3000:3090] = sal[3000]
    # gross range: FAIL, SUSPECT, a SUSPECT hour
    temp[1200] = 45.0
    temp[1800] = 36.0
    temp[4100:4106] = 37.5
    sal[1300] = 45.0
    sal[1310] = 1.0
    # rate of change: a 1 degC step (SUSPECT at 0.001/s over 600 s) and a 2.5 degC one (FAIL)
    temp[3300:] += 1.0
    temp[3600:] -= 2.5
    sal[3800:] += 0.4
    # biofouling: 3 days where the signal's variation decays to almost nothing
    fouled = slice(4400, 4832)
    for x, floor in ((temp, 0.004), (sal, 0.002)):
        mean = x[fouled].mean()
        decay = np.geomspace(1.0, floor, 432)
        x[fouled] = mean + (x[fouled] - mean) * decay
    # missing and infinite values
    temp[[150, 151, 2700, 5000]] = np.nan
    sal[[152, 2701, 5001]] = np.nan
    temp[5200] = np.inf
    keep = np.ones(n, dtype=bool)
    keep[3400:3418] = False   # a 3-hour gap
    keep[5300:5588] = False   # a 2-day gap
    lat = np.full(n, 44.64)
    lon = np.full(n, -124.30)
    return times[keep], temp[keep], sal[keep], lat[keep], lon[keep]


def _glider(rng):
    n, step = 960, 1800
    times = START + np.timedelta64(3, "h") + np.arange(n) * np.timedelta64(step, "s")
    temp = _signal(rng, n, step, 9.0, 0.8, 0.3, 0.04)
    sal = _signal(rng, n, step, 33.5, 0.1, 0.2, 0.01)
    heading = np.cumsum(rng.normal(0, 0.2, n))
    metres = 0.3 * step  # 0.3 m/s
    lat = 44.0 + np.cumsum(np.cos(heading) * metres) / 111_195.0
    lon = -125.0 + np.cumsum(np.sin(heading) * metres) / (111_195.0 * np.cos(np.radians(44.0)))
    lat[200] = 95.0              # an impossible fix
    lat[400] += 0.1              # a jump of 11 km and back: 6 m/s twice
    lon[600] = np.nan            # a lost fix
    temp[500] += 9.0
    sal[520] -= 1.2
    temp[[100, 101]] = np.nan
    return times, temp, sal, lat, lon


def timeseries() -> tuple[pa.Table, tuple[ColumnInfo, ...]]:
    rng = np.random.default_rng(20210301)
    parts = [("mooring", _mooring(rng)), ("glider", _glider(rng))]
    columns = {name: np.concatenate([p[i] for _, p in parts])
               for i, name in enumerate(("time", T, S, "latitude", "longitude"))}
    platform = np.concatenate([[name] * len(p[0]) for name, p in parts])
    # rows arrive interleaved by time, as a merged feed would deliver them
    order = np.argsort(columns["time"], kind="stable")
    table = pa.table({
        "time": pa.array(columns["time"][order], pa.timestamp("us", tz="UTC")),
        "latitude": columns["latitude"][order], "longitude": columns["longitude"][order],
        "platform_id": platform[order],
        T: columns[T][order], S: columns[S][order]})
    info = (ColumnInfo("time", "coordinate"), ColumnInfo("latitude", "coordinate"),
            ColumnInfo("longitude", "coordinate"), ColumnInfo("platform_id", "id"),
            ColumnInfo(T, "variable"), ColumnInfo(S, "variable"))
    return table, info


def profiles() -> tuple[pa.Table, tuple[ColumnInfo, ...]]:
    rng = np.random.default_rng(7)
    levels = np.concatenate([np.arange(5, 100, 5.0), np.arange(100, 1000, 22.0)])[:60]
    rows = []
    for p, platform in enumerate(("float_a", "float_b")):
        lat0, lon0 = (-1.0 + p, -25.0 + 2 * p)
        for k in range(3):
            time = START + np.timedelta64(10 * k + p, "D")
            temp = 4.0 + 22.0 * np.exp(-levels / 150.0) + rng.normal(0, 0.01, 60)
            sal = 34.6 + 0.8 * np.exp(-levels / 200.0) + rng.normal(0, 0.002, 60)
            if (p, k) == (0, 1):
                temp[20] += 3.0          # a spike
                sal[30] -= 0.15          # a density inversion
            if (p, k) == (1, 2):
                temp[45] = 41.0          # beyond the fail range (and a spike)
            lat = lat0 + 0.4 * k
            lon = lon0 + 0.3 * k
            rows.append((time, platform, k, levels, temp, sal, lat, lon))
    n = len(levels)
    table = pa.table({
        "time": pa.array(np.concatenate([[r[0]] * n for r in rows]),
                         pa.timestamp("us", tz="UTC")),
        "depth": np.concatenate([r[3] for r in rows]),
        "latitude": np.concatenate([[r[6]] * n for r in rows]),
        "longitude": np.concatenate([[r[7]] * n for r in rows]),
        "platform_id": np.concatenate([[r[1]] * n for r in rows]),
        "cycle_number": pa.array(np.concatenate([[r[2]] * n for r in rows]), pa.int32()),
        T: np.concatenate([r[4] for r in rows]), S: np.concatenate([r[5] for r in rows])})
    info = (ColumnInfo("time", "coordinate"), ColumnInfo("depth", "coordinate"),
            ColumnInfo("latitude", "coordinate"), ColumnInfo("longitude", "coordinate"),
            ColumnInfo("platform_id", "id"), ColumnInfo("cycle_number", "id"),
            ColumnInfo(T, "variable"), ColumnInfo(S, "variable"))
    return table, info


# ------------------------------------------------------------------------------- Haina


def config(kind: str) -> QCConfig:
    tests = ["gross_range", "spike", "rate_of_change", "flat_line", "attenuated_signal",
             "density_inversion", "location", "speed", "distance"]
    known = QCConfig.model_fields
    if "distance" not in known:  # the code before attenuated signal and distance existed
        tests = [t for t in tests if t not in ("attenuated_signal", "distance")]
    variables = {v: {t: p for t, p in THRESHOLDS[v].items() if t in tests} for v in VARIABLES}
    settings = {"tests": tests, "variables": variables, "speed": SPEED,
                "density_inversion": DENSITY}
    if "distance" in known:
        settings["distance"] = {"suspect": DISTANCE[kind]}
    return QCConfig.model_validate(settings)


def haina_flags(table: pa.Table, columns, kind: str) -> dict[str, dict[str, np.ndarray]]:
    result = apply_qc(table, plan_qc(columns, config(kind)))
    out: dict[str, dict[str, np.ndarray]] = {}
    for var in VARIABLES:
        prefix = f"{var}_qc_"
        out[var] = {name[len(prefix):]: result.table.column(name).to_numpy()
                    for name in result.table.column_names if name.startswith(prefix)
                    and name != f"{var}_qc_source"}
        out[var]["aggregate"] = result.table.column(f"{var}_qc").to_numpy()
    out[""] = {name[3:]: result.table.column(name).to_numpy()
               for name in result.table.column_names if name.startswith("qc_")}
    return out


# ------------------------------------------------------------------------------- ioos_qc


def _ioos(fn, *args, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(fn(*args, **kwargs)).astype(np.uint8)


def _segments(table: pa.Table, kind: str) -> list[np.ndarray]:
    """Row indices of each platform (and profile), in time (and depth) order."""
    platform = table.column("platform_id").to_numpy(zero_copy_only=False)
    time = table.column("time").to_numpy().astype("datetime64[us]").astype(np.int64)
    if kind == "profiles":
        cycle = table.column("cycle_number").to_numpy()
        depth = table.column("depth").to_numpy()
        order = np.lexsort((depth, time, cycle, platform))
        key = np.char.add(platform[order].astype(str), cycle[order].astype(str))
    else:
        order = np.lexsort((time, platform))
        key = platform[order].astype(str)
    cuts = np.flatnonzero(key[1:] != key[:-1]) + 1
    return np.split(order, cuts)


def _platform_fixes(table: pa.Table) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per platform: (rows in time order, index of the row's fix among distinct times)."""
    platform = table.column("platform_id").to_numpy(zero_copy_only=False)
    time = table.column("time").to_numpy().astype("datetime64[us]").astype(np.int64)
    out = []
    for name in np.unique(platform):
        rows = np.flatnonzero(platform == name)
        rows = rows[np.argsort(time[rows], kind="stable")]
        _, first, inverse = np.unique(time[rows], return_index=True, return_inverse=True)
        out.append((rows, first, inverse))
    return out


def ioos_flags(table: pa.Table, kind: str) -> dict[str, dict[str, np.ndarray]]:
    from ioos_qc import argo, qartod

    n = table.num_rows
    time = table.column("time").to_numpy().astype("datetime64[ns]")
    lat = table.column("latitude").to_numpy()
    lon = table.column("longitude").to_numpy()
    rows: dict[str, np.ndarray] = {"location": np.zeros(n, np.uint8),
                                   "speed": np.zeros(n, np.uint8)}
    # row tests per platform, on its distinct fixes (a profile's levels share one fix)
    for platform_rows, first, inverse in _platform_fixes(table):
        fix = platform_rows[first]
        loc = _ioos(qartod.location_test, lon[fix], lat[fix], range_max=DISTANCE[kind],
                    range_method="wgs84")
        spd = _ioos(argo.speed_test, lon[fix], lat[fix], time[fix], SPEED["suspect"],
                    SPEED["fail"])
        rows["location"][platform_rows] = loc[inverse]
        rows["speed"][platform_rows] = spd[inverse]
    out: dict[str, dict[str, np.ndarray]] = {"": rows}
    depth = table.column("depth").to_numpy() if "depth" in table.column_names else None
    temp = table.column(T).to_numpy()
    sal = table.column(S).to_numpy()
    sigma = seawater.sigma0(temp, sal, depth * 1.01) if depth is not None else None
    for var in VARIABLES:
        x = table.column(var).to_numpy()
        p = THRESHOLDS[var]
        tests = {t: np.zeros(n, np.uint8) for t in IOOS_TESTS[kind]}
        for seg in _segments(table, kind):
            xs, ts = x[seg], time[seg]
            for test in IOOS_TESTS[kind]:
                tests[test][seg] = _ioos_test(qartod, test, xs, ts, p, sigma, depth, seg)
        tests["aggregate"] = np.asarray(qartod.qartod_compare(
            [*tests.values(), rows["location"], rows["speed"]])).astype(np.uint8)
        out[var] = tests
    return out


def _ioos_test(qartod, test, xs, ts, p, sigma, depth, seg) -> np.ndarray:
    if test == "gross_range":
        return _ioos(qartod.gross_range_test, xs, p[test]["fail"], p[test]["suspect"])
    if test == "spike":
        return _ioos(qartod.spike_test, xs, p[test]["suspect"], p[test]["fail"])
    if test == "rate_of_change":
        return _ioos(qartod.rate_of_change_test, xs, ts, p[test]["suspect"], p[test]["fail"])
    if test == "flat_line":
        f = p[test]
        return _ioos(qartod.flat_line_test, xs, ts, f["suspect_seconds"], f["fail_seconds"],
                     f["tolerance"])
    if test == "attenuated_signal":
        a = p[test]
        return _ioos(qartod.attenuated_signal_test, xs, ts, a["suspect"], a["fail"],
                     test_period=a["period"], min_obs=a["min_obs"], check_type="std")
    if test == "density_inversion":
        return _ioos(qartod.density_inversion_test, sigma[seg], depth[seg], DENSITY["suspect"],
                     DENSITY["fail"])
    raise ValueError(test)


# ------------------------------------------------------------------------------- comparing


def agreement(haina: dict, ioos: dict) -> dict[str, float]:
    """Share of equal cells per test (over both variables) and for the aggregate."""
    out: dict[str, float] = {}
    names = sorted({t for v in VARIABLES for t in ioos[v]})
    for test in names:
        pairs = [(haina[v].get(test), ioos[v][test]) for v in VARIABLES]
        if any(h is None for h, _ in pairs):
            continue
        equal = sum(int((h == i).sum()) for h, i in pairs)
        out[test] = equal / sum(i.size for _, i in pairs)
    for test in ("location", "speed"):
        if test in haina[""]:
            ours = haina[""][test]
            if test == "location" and "distance" in haina[""]:
                ours = np.maximum(ours, np.where(haina[""]["distance"] == 3, 3, 0)).astype(
                    np.uint8)
            out[test] = float((ours == ioos[""][test]).mean())
    return out


# ------------------------------------------------------------------------------- differences


def _previous_in_segment(table: pa.Table, kind: str) -> np.ndarray:
    """Row index of each row's predecessor in its platform's (and profile's) order, or -1."""
    previous = np.full(table.num_rows, -1)
    for seg in _segments(table, kind):
        previous[seg[1:]] = seg[:-1]
    return previous


def _uncovered(table: pa.Table, kind: str, seconds: float) -> np.ndarray:
    """Rows whose left-open window (t - seconds, t] the record does not cover (docs/qc.md)."""
    out = np.zeros(table.num_rows, dtype=bool)
    micros_all = table.column("time").to_numpy().astype("datetime64[us]").astype(np.int64)
    duration = int(seconds * 1e6)
    for seg in _segments(table, kind):
        micros = micros_all[seg]
        first = np.searchsorted(micros, micros - duration, side="right")
        gap = micros[first] - micros[np.maximum(first - 1, 0)]
        out[seg] = (micros - micros[0] < duration) | (gap > duration)
    return out


def explain(table: pa.Table, kind: str, var: str, test: str, haina: dict, ioos: dict
            ) -> dict[str, int]:
    """Differing cells of one test (or ``aggregate``), counted by their documented cause
    (docs/qc.md, "Choices where QARTOD manuals and ioos_qc differ"); ``unexplained`` for the
    rest."""
    x = table.column(var).to_numpy() if var else None
    ours = haina[var][test] if var else haina[""][test]
    theirs = ioos[var][test] if var else ioos[""][test]
    if var == "" and test == "location":
        from expectations.qc import flags as fl
        ours = fl.combine(ours, np.where(haina[""]["distance"] == fl.SUSPECT, fl.SUSPECT,
                                         fl.GOOD).astype(np.uint8))
    previous = _previous_in_segment(table, kind)
    before = np.where(previous >= 0, previous, 0)
    lat = table.column("latitude").to_numpy()
    lon = table.column("longitude").to_numpy()
    uncovered = (_uncovered(table, kind, THRESHOLDS[var][test]["period"])
                 if test == "attenuated_signal" else None)
    causes: dict[str, int] = {}
    for row in np.flatnonzero(ours != theirs):
        pair = (int(ours[row]), int(theirs[row]))
        cause = "unexplained"
        if x is not None and np.isnan(x[row]) and pair == (9, 1):
            cause = "aggregate of a missing value is MISSING"
        elif x is not None and np.isinf(x[row]) and pair == (2, 9):
            cause = "an infinite value is NOT_EVALUATED by tests that cannot use it"
        elif (x is not None and previous[row] >= 0 and np.isinf(x[before[row]])
              and pair[0] in (1, 2) and pair[1] in (3, 4)):
            cause = "no rate of change from an infinite value"
        elif test == "rate_of_change" and pair == (2, 1) and (
                previous[row] < 0 or np.isnan(x[before[row]])):
            cause = "rate of change NOT_EVALUATED at a segment start or after a missing value"
        elif test == "attenuated_signal" and pair == (2, 1) and uncovered[row]:
            cause = "attenuated signal: window the record does not cover is NOT_EVALUATED"
        elif test == "speed" and pair == (2, 1) and abs(lat[row]) > 90:
            cause = "an impossible fix is NOT_EVALUATED by speed"
        elif test == "speed" and pair == (1, 9) and previous[row] >= 0 and np.isnan(
                lon[before[row]]):
            cause = "speed after a missing fix is from the last known fix"
        causes[cause] = causes.get(cause, 0) + 1
    return causes
