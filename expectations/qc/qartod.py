"""QARTOD quality-control tests as pure numpy functions.

Habits of ``ioos_qc/qartod.py``: arrays and thresholds in, a same-shape ``uint8`` flag array out
(flags from :mod:`expectations.qc.flags`); the same steps in every test -- start GOOD (or
NOT_EVALUATED where a test may not apply), mark invalid input MISSING, then SUSPECT, then FAIL, so a
worse flag is never improved. No Python loop over samples: loops run over thresholds, polygon edges
or sparse-table levels only. ``is None`` checks everywhere, because 0 is a real threshold.

Ordered tests (spike, rate of change, flat line, attenuated signal, density inversion) take data
already in time (or depth) order and an optional ``segment`` array of ids: neighbours in
different segments (platforms, stations, profiles) are never compared. :func:`ordering` builds
that order with a stable sort; :func:`windowed` runs them over bounded-memory overlapping windows
with identical results. Position tests (coordinates, region, speed, distance) live in
:mod:`expectations.qc.position`. Where Haina differs from ioos_qc 3.x, the docstring says so;
``docs/qc.md`` lists them all.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from expectations.qc.flags import FAIL, GOOD, MISSING, NOT_EVALUATED, SUSPECT

_NAT = np.iinfo(np.int64).min


# --------------------------------------------------------------------------- helpers


def _float(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).ravel()


def _all_within(x: np.ndarray, low: float, high: float) -> bool:
    """True when every value is finite and in [low, high] (min and max propagate NaN).

    ``x`` may be in any precision: its extremes are compared as Python floats (exactly, in
    float64), so a float32 column need not be widened to be judged.
    """
    if x.size == 0:
        return False
    with np.errstate(invalid="ignore"):
        smallest, largest = float(x.min()), float(x.max())
    # False for NaN, and for infinities even against open bounds (an infinity is a bad value)
    return (low <= smallest and largest <= high and math.isfinite(smallest)
            and math.isfinite(largest))


def _micros(time) -> tuple[np.ndarray, np.ndarray]:
    """datetime64 (any unit) or int64 microseconds -> (int64 µs, valid mask)."""
    arr = np.asarray(time).ravel()
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[us]").view(np.int64)
    arr = arr.astype(np.int64, copy=False)
    return arr, arr != _NAT


def _seconds(time) -> np.ndarray:
    micros, valid = _micros(time)
    return np.where(valid, micros / 1e6, np.nan)


def _span(span, name: str) -> tuple[float, float]:
    """A (min, max) pair; None at either end means unbounded. Sorted like ioos_qc's spans."""
    if span is None or len(span) != 2:
        raise ValueError(f"{name} must be a (min, max) pair, got {span!r}")
    low = -np.inf if span[0] is None else float(span[0])
    high = np.inf if span[1] is None else float(span[1])
    return (low, high) if low <= high else (high, low)


def _starts(segment, n: int) -> np.ndarray:
    """True where a segment begins (index 0 and every change of id)."""
    starts = np.zeros(n, dtype=bool)
    if n:
        starts[0] = True
    if segment is not None and n > 1:
        seg = np.asarray(segment).ravel()
        starts[1:] = seg[1:] != seg[:-1]
    return starts


def _ends(starts: np.ndarray) -> np.ndarray:
    ends = np.zeros_like(starts)
    if starts.size:
        ends[:-1] = starts[1:]
        ends[-1] = True
    return ends


def _previous(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    if values.size:
        out[1:] = values[:-1]
        out[0] = values[0]
    return out


def _next(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    if values.size:
        out[:-1] = values[1:]
        out[-1] = values[-1]
    return out


def _mark_invalid(flags: np.ndarray, x: np.ndarray) -> np.ndarray:
    """NaN (no value) -> MISSING; +-inf (a value, but not a number a test can use) ->
    NOT_EVALUATED. The range tests judge infinities themselves (FAIL)."""
    flags[np.isinf(x)] = NOT_EVALUATED
    flags[np.isnan(x)] = MISSING
    return flags


def _threshold_flags(metric: np.ndarray, evaluable: np.ndarray, suspect, fail) -> np.ndarray:
    """GOOD where evaluable, else NOT_EVALUATED; then SUSPECT, then FAIL where metric > threshold."""
    flags = np.where(evaluable, np.uint8(GOOD), np.uint8(NOT_EVALUATED))
    with np.errstate(invalid="ignore"):
        if suspect is not None:
            flags[evaluable & (metric > suspect)] = SUSPECT
        if fail is not None:
            flags[evaluable & (metric > fail)] = FAIL
    return flags


# --------------------------------------------------------------------------- range tests


def gross_range(values, fail_span, suspect_span=None) -> np.ndarray:
    """FAIL outside ``fail_span``, SUSPECT outside ``suspect_span``; NaN MISSING.

    Bounds are inclusive (a value equal to a bound passes), as in ioos_qc. +-inf is a value no
    sensor can report: FAIL, as in ioos_qc (which masks it, but compares the masked data), and
    also against an open span.
    """
    fmin, fmax = _span(fail_span, "fail_span")
    smin, smax = fmin, fmax
    if suspect_span is not None:
        smin, smax = _span(suspect_span, "suspect_span")
        if smin < fmin or smax > fmax:
            raise ValueError(f"suspect_span {suspect_span!r} must lie within fail_span "
                             f"{fail_span!r}")
    native = np.asarray(values).ravel()
    if native.dtype.kind in "iuf" and _all_within(native, smin, smax):
        # the common chunk: two reductions in the values' own precision, no float64 copy
        return np.full(native.shape, GOOD, dtype=np.uint8)
    x = _float(native)
    flags = np.full(x.shape, GOOD, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        if suspect_span is not None:
            flags[(x < smin) | (x > smax)] = SUSPECT
        flags[(x < fmin) | (x > fmax) | np.isinf(x)] = FAIL
    flags[np.isnan(x)] = MISSING
    return flags


@dataclasses.dataclass(frozen=True)
class ClimatologyMember:
    """One row of a climatology table: a season (and optional depth band) and its spans.

    ``start``/``end`` are inclusive month numbers (1-12) or days of year (1-366); ``start > end``
    wraps around the new year (e.g. 12..2 is December to February). Depth bounds are inclusive.
    """

    period: str  # "month" | "dayofyear"
    start: int
    end: int
    suspect_span: tuple[float | None, float | None]
    fail_span: tuple[float | None, float | None] | None = None
    depth_min: float | None = None
    depth_max: float | None = None


def _season_key(micros: np.ndarray, period: str) -> np.ndarray:
    stamps = micros.view("datetime64[us]")
    if period == "month":
        return stamps.astype("datetime64[M]").astype(np.int64) % 12 + 1
    if period == "dayofyear":
        days = stamps.astype("datetime64[D]") - stamps.astype("datetime64[Y]")
        return days.astype(np.int64) + 1
    raise ValueError(f"climatology period must be 'month' or 'dayofyear', got {period!r}")


def _member_rows(member: ClimatologyMember, micros, valid_time, depth) -> np.ndarray:
    key = _season_key(np.where(valid_time, micros, 0), member.period)
    if member.start <= member.end:
        rows = (key >= member.start) & (key <= member.end)
    else:
        rows = (key >= member.start) | (key <= member.end)
    rows &= valid_time
    if member.depth_min is not None or member.depth_max is not None:
        low = -np.inf if member.depth_min is None else member.depth_min
        high = np.inf if member.depth_max is None else member.depth_max
        with np.errstate(invalid="ignore"):
            rows &= np.isfinite(depth) & (depth >= low) & (depth <= high)
    return rows


def climatology(values, time, depth, members: Sequence[ClimatologyMember]) -> np.ndarray:
    """Seasonal (and depth-banded) ranges: SUSPECT outside the member's suspect span, FAIL outside
    its fail span; NOT_EVALUATED where no member applies.

    Difference from ioos_qc: where several members match a sample, ioos_qc keeps the last one's
    verdict; Haina keeps the worst, so a later table row can never improve a flag.
    """
    x = _float(values)
    micros, valid_time = _micros(time)
    z = _float(depth) if depth is not None else np.full(x.shape, np.nan)
    flags = np.full(x.shape, NOT_EVALUATED, dtype=np.uint8)
    valid = ~np.isnan(x)  # an infinity is judged: outside every span, so FAIL
    for member in members:  # loop over table rows, each vectorised over samples
        rows = valid & _member_rows(member, micros, valid_time, z)
        verdict = gross_range(x[rows], member.fail_span or (None, None), member.suspect_span)
        flags[rows] = np.where(_worse(verdict, flags[rows]), verdict, flags[rows])
    flags[~valid] = MISSING
    return flags


def _worse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where flag ``a`` is worse than ``b`` (NOT_EVALUATED < GOOD < SUSPECT < FAIL)."""
    rank = np.zeros(256, dtype=np.uint8)
    rank[[MISSING, NOT_EVALUATED, GOOD, SUSPECT, FAIL]] = [0, 1, 2, 3, 4]
    return rank[a] > rank[b]


# --------------------------------------------------------------------------- ordered tests


def spike(values, suspect_threshold=None, fail_threshold=None, *, method: str = "average",
          segment=None) -> np.ndarray:
    """Spike test on ordered samples (ioos_qc ``spike_test``).

    ``average``: ``|x[n] - (x[n-1] + x[n+1]) / 2|``; ``differential``: the smaller of the two
    neighbour differences where they have opposite signs, else 0. A value strictly above a
    threshold is flagged. First/last sample of a segment and samples with a missing neighbour are
    NOT_EVALUATED. Difference from ioos_qc: a threshold of 0 is a threshold (ioos_qc's ``if
    threshold:`` ignores it).
    """
    x = _float(values)
    starts = _starts(segment, x.size)
    ends = _ends(starts)
    prev, nxt = _previous(x), _next(x)
    with np.errstate(invalid="ignore"):
        if method == "average":
            metric = np.abs(x - (prev + nxt) / 2.0)
        elif method == "differential":
            before, after = x - prev, nxt - x
            metric = np.minimum(np.abs(before), np.abs(after))
            metric = np.where(before * after >= 0, 0.0, metric)
        else:
            raise ValueError(f"spike method must be 'average' or 'differential', got {method!r}")
    evaluable = ~starts & ~ends & np.isfinite(metric)
    flags = _threshold_flags(metric, evaluable, suspect_threshold, fail_threshold)
    _mark_invalid(flags, x)
    return flags


def rate_of_change(values, time, suspect_threshold=None, fail_threshold=None, *,
                   segment=None) -> np.ndarray:
    """``|x[n] - x[n-1]| / (t[n] - t[n-1])`` in units per second, flagged on the later sample.

    Time differences are exact (microseconds; ioos_qc truncates them to whole seconds). Not
    evaluable, so NOT_EVALUATED (ioos_qc says GOOD): the first sample of a segment, a sample after
    a missing value or time, and a sample whose time does not advance (the time test flags those,
    and the levels of a profile share a time). A sample next to an infinite value is not
    evaluable either (ioos_qc computes an infinite rate: FAIL); gross range fails the infinity.
    """
    x = _float(values)
    t = _seconds(time)
    starts = _starts(segment, x.size)
    dt = t - _previous(t)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.abs(x - _previous(x)) / dt
        evaluable = ~starts & np.isfinite(rate) & (dt > 0)
    flags = _threshold_flags(rate, evaluable, suspect_threshold, fail_threshold)
    _mark_invalid(flags, x)
    return flags


def _sparse_tables(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Levels k of running min/max over ``2**k`` samples (NaN ignored): O(n log n), vectorised."""
    n = x.size
    levels = max(1, int(np.floor(np.log2(max(n, 1)))) + 1)
    lo = np.full((levels, n), np.nan)
    hi = np.full((levels, n), np.nan)
    lo[0], hi[0] = x, x
    for k in range(1, levels):  # log2(n) levels, each vectorised
        half = 1 << (k - 1)
        width = n - (1 << k) + 1
        lo[k, :width] = np.fmin(lo[k - 1, :width], lo[k - 1, half:half + width])
        hi[k, :width] = np.fmax(hi[k - 1, :width], hi[k - 1, half:half + width])
    return lo, hi


def window_range(x: np.ndarray, first: np.ndarray, last: np.ndarray,
                 tables: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``nanmax - nanmin`` of ``x[first[i]:last[i] + 1]`` for every i (NaN when all NaN).

    ``tables`` are ``_sparse_tables(x)`` when the caller asks several windows of the same x.
    """
    if x.size == 0:
        return np.empty(0)
    lo, hi = _sparse_tables(x) if tables is None else tables
    length = last - first + 1
    k = np.floor(np.log2(length)).astype(np.intp)
    other = last - (1 << k) + 1
    return np.fmax(hi[k, first], hi[k, other]) - np.fmin(lo[k, first], lo[k, other])


def _segment_first(starts: np.ndarray) -> np.ndarray:
    """Index of the first sample of each sample's segment."""
    return np.maximum.accumulate(np.where(starts, np.arange(starts.size), 0))


def _window_first(micros: np.ndarray, starts: np.ndarray, duration_us: int, *,
                  closed: bool = True) -> np.ndarray:
    """Index of the first sample with ``t >= t[i] - duration`` (``closed``) or ``t > t[i] -
    duration`` (left-open, pandas' rolling time window) in i's segment (sorted times)."""
    seg_first = _segment_first(starts)
    # a globally sorted key: each segment shifted past the previous one, so one searchsorted
    # serves all segments without comparing across them
    local = micros - micros[seg_first]
    seg_span = np.maximum.reduceat(local, np.flatnonzero(starts))
    offsets = np.concatenate([[0], np.cumsum(seg_span[:-1] + duration_us + 1)])
    key = local + offsets[np.cumsum(starts) - 1]
    first = np.searchsorted(key, key - duration_us, side="left" if closed else "right")
    return np.maximum(first, seg_first)


def _covered(micros: np.ndarray, starts: np.ndarray, first: np.ndarray,
             duration_us: int) -> np.ndarray:
    """True where the record covers the time window that ends at each sample.

    The segment's record must reach back to the window's start (``t[n] - t[segment start] >=
    duration``), and the gap that spans the window's start (from the last sample before the
    window to its first sample) must not be longer than the window. After a longer gap the
    window holds only the few samples since the gap, which say nothing about the span the window
    stands for: ioos_qc's sample-count window then reaches back across the gap instead.
    """
    seg_first = _segment_first(starts)
    reaches = micros - micros[seg_first] >= duration_us
    before = np.maximum(first - 1, 0)
    gap = micros[first] - micros[before]
    # a sample right on the window's start leaves nothing uncovered, whatever came before it
    on_start = micros[first] == micros - duration_us
    return reaches & (on_start | (first == seg_first) | (gap <= duration_us))


def _finite_counts(x: np.ndarray) -> np.ndarray:
    """``counts[j]`` = number of finite values in ``x[:j]`` (window counts by subtraction)."""
    return np.concatenate([[0], np.cumsum(np.isfinite(x))])


def flat_line(values, time, tolerance, suspect_seconds=None, fail_seconds=None, *,
              segment=None) -> np.ndarray:
    """Flat line over time windows (ioos_qc ``flat_line_test``, made local in time).

    Sample n is flagged when the range (max - min, missing values ignored) of the values with
    ``t[n] - duration <= t <= t[n]`` is below ``tolerance`` (strictly, as ioos_qc: a tolerance of
    0 flags nothing), the record covers the window (:func:`_covered`: the segment reaches back to
    ``t[n] - duration`` and no gap longer than the duration spans the window's start) and the
    window holds at least two values at different times (ioos_qc flags a one-sample window, e.g.
    monthly bottle samples, as flat). ioos_qc turns durations into a sample count with the
    series' median interval; on regular series whose interval divides the duration the two
    agree. Times must be non-decreasing within segments; samples with a missing time are
    NOT_EVALUATED and take no part, nor do infinite values.
    """
    x = _float(values)
    micros, valid_time = _micros(time)
    flags = np.full(x.shape, NOT_EVALUATED, dtype=np.uint8)
    seg = None if segment is None else np.asarray(segment).ravel()[valid_time]
    flags[valid_time] = _flat_line_timed(x[valid_time], micros[valid_time], tolerance,
                                         suspect_seconds, fail_seconds, seg)
    _mark_invalid(flags, x)
    return flags


def _flat_line_timed(x, micros, tolerance, suspect_seconds, fail_seconds, segment):
    flags = np.full(x.shape, GOOD, dtype=np.uint8)
    if x.size == 0:
        return flags
    starts = _starts(segment, x.size)
    _check_sorted(micros, starts)
    index = np.arange(x.size)
    values = np.where(np.isfinite(x), x, np.nan)
    counts = _finite_counts(x)
    tables = _sparse_tables(values)  # once for both durations: its n log n memory dominates
    for seconds, flag in ((suspect_seconds, SUSPECT), (fail_seconds, FAIL)):
        if seconds is None:
            continue
        duration = round(float(seconds) * 1e6)
        first = _window_first(micros, starts, duration)
        with np.errstate(invalid="ignore"):
            flat = window_range(values, first, index, tables) < tolerance
        # a flat line needs two values at different times: one sample is not a line
        two = (counts[index + 1] - counts[first]) >= 2
        flagged = flat & two & (micros > micros[first]) & _covered(micros, starts, first,
                                                                     duration)
        flags[flagged] = flag
    return flags


ATTENUATION_CHECKS = ("std", "range")


def attenuated_signal(values, time, suspect_threshold=None, fail_threshold=None, *,
                      period_seconds: float, check: str = "std", min_obs: int | None = None,
                      segment=None) -> np.ndarray:
    """Attenuated signal (ioos_qc ``attenuated_signal_test`` with a ``test_period``): the
    variation of the values in the time window ``(t[n] - period, t[n]]`` -- their population
    standard deviation (``check="std"``) or their range max - min (``"range"``), missing values
    ignored -- below ``suspect_threshold`` is SUSPECT, below ``fail_threshold`` FAIL (strictly,
    as ioos_qc: a variation equal to a threshold passes). It finds a fouled or wrapped sensor
    whose signal is damped without being flat.

    The window is pandas' rolling time window, as in ioos_qc. It is judged when it holds at least
    ``max(2, min_obs)`` values and the record covers it (:func:`_covered`, as for flat line);
    otherwise NOT_EVALUATED. Differences from ioos_qc: ioos_qc also judges a partial window at
    the start of a series or after a gap once it holds ``min_obs`` values (default 1, and one
    value has a deviation of 0, so FAIL) -- Haina does not, because QC sees one chunk at a time
    and every chunk edge would start such a partial window; ioos_qc's range check is NaN, so
    UNKNOWN, as soon as its window holds one missing value, where Haina ignores missing values
    as ioos_qc's std does. ioos_qc without ``test_period`` judges the whole series at once:
    Haina always uses a window (a chunk is not a series).
    """
    if check not in ATTENUATION_CHECKS:
        raise ValueError(f"attenuated signal check must be 'std' or 'range', got {check!r}")
    x = _float(values)
    micros, valid_time = _micros(time)
    flags = np.full(x.shape, NOT_EVALUATED, dtype=np.uint8)
    seg = None if segment is None else np.asarray(segment).ravel()[valid_time]
    period = round(float(period_seconds) * 1e6)
    metric, evaluable = _attenuation(x[valid_time], micros[valid_time], period, check,
                                     max(2, min_obs or 0), seg)
    judged = np.zeros(x.shape, dtype=bool)
    judged[valid_time] = evaluable
    variation = np.full(x.shape, np.nan)
    variation[valid_time] = metric
    flags[judged] = GOOD
    with np.errstate(invalid="ignore"):
        if suspect_threshold is not None:
            flags[judged & (variation < suspect_threshold)] = SUSPECT
        if fail_threshold is not None:
            flags[judged & (variation < fail_threshold)] = FAIL
    return _mark_invalid(flags, x)


def _attenuation(x, micros, period_us, check, min_count, segment):
    """(variation of each sample's window, whether the window may be judged)."""
    if x.size == 0:
        return np.empty(0), np.zeros(0, dtype=bool)
    starts = _starts(segment, x.size)
    _check_sorted(micros, starts)
    index = np.arange(x.size)
    first = _window_first(micros, starts, period_us, closed=False)
    finite = np.isfinite(x)
    counts = _finite_counts(x)
    count = counts[index + 1] - counts[first]
    values = np.where(finite, x, np.nan)
    if check == "range":
        metric = window_range(values, first, index)
    else:
        metric = _window_std(values, finite, starts, first, index, count)
    evaluable = (count >= min_count) & np.isfinite(metric) & _covered(micros, starts, first,
                                                                     period_us)
    return metric, evaluable


def _window_std(x, finite, starts, first, last, count) -> np.ndarray:
    """Population standard deviation of ``x[first:last + 1]`` (missing values ignored).

    From cumulative sums of the values centred on their segment's mean, so the sums stay small
    and their differences keep their precision over long series.
    """
    seg_id = np.cumsum(starts) - 1
    seg_starts = np.flatnonzero(starts)
    totals = np.add.reduceat(np.where(finite, x, 0.0), seg_starts)
    sizes = np.add.reduceat(finite.astype(np.int64), seg_starts)
    mean = totals / np.maximum(sizes, 1)
    centred = np.where(finite, x - mean[seg_id], 0.0)
    s1 = np.concatenate([[0.0], np.cumsum(centred)])
    s2 = np.concatenate([[0.0], np.cumsum(centred * centred)])
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = (s1[last + 1] - s1[first]) / count
        variance = (s2[last + 1] - s2[first]) / count - m1 * m1
    return np.sqrt(np.maximum(variance, 0.0))


def _check_sorted(micros: np.ndarray, starts: np.ndarray) -> None:
    backwards = (np.diff(micros) < 0) & ~starts[1:]
    if backwards.any():
        at = int(np.flatnonzero(backwards)[0]) + 1
        raise ValueError(f"times must be non-decreasing within a segment; sample {at} goes back "
                         f"in time (sort with expectations.qc.qartod.ordering first)")


def density_inversion(sigma, depth, suspect_threshold=None, fail_threshold=None, *,
                      segment=None) -> np.ndarray:
    """Density inversion on profiles (ioos_qc ``density_inversion_test``).

    For consecutive levels of a segment (profile), ``delta = sign(dz) * dsigma``; both records of a
    pair with ``delta < threshold`` are flagged (thresholds are negative, kg m-3, e.g. -0.03).
    Difference from ioos_qc: a record whose neighbours are missing is NOT_EVALUATED (ioos_qc
    marks the record after a missing one MISSING although its value is present).
    """
    s, z = _float(sigma), _float(depth)
    flags = np.full(s.shape, NOT_EVALUATED, dtype=np.uint8)
    if s.size == 0:
        return flags
    ok = np.isfinite(s) & np.isfinite(z)
    pair = ok[:-1] & ok[1:] & ~_starts(segment, s.size)[1:]
    with np.errstate(invalid="ignore"):
        delta = np.sign(np.diff(z)) * np.diff(s)
    in_pair = np.zeros(s.size, dtype=bool)
    in_pair[:-1] |= pair
    in_pair[1:] |= pair
    flags[in_pair] = GOOD
    for threshold, flag in ((suspect_threshold, SUSPECT), (fail_threshold, FAIL)):
        if threshold is None:
            continue
        hit = pair & (delta < threshold)
        flags[:-1][hit] = flag
        flags[1:][hit] = flag
    flags[~ok] = NOT_EVALUATED  # an infinite density (from an infinite value)
    flags[np.isnan(s) | np.isnan(z)] = MISSING
    return flags


# --------------------------------------------------------------------------- time


def time_check(time, *, group=None, depth=None, now=None, not_before=None,
               series: bool = True) -> np.ndarray:
    """Timestamps: missing -> MISSING; going back in time within a group (in row order) or
    duplicated within a group -> SUSPECT; in the future or before ``not_before`` -> FAIL.

    A duplicate is the same (group, time, depth): the levels of one profile share a time and are
    distinct observations. ``series=False`` (rows are grid cells, not samples of a series: every
    cell of a time step shares its time) checks only missing, future and too-early times. ``now``/``not_before`` are datetime64 or µs; ``now`` defaults to the
    clock (ioos_qc ``impossible_date_test``).
    """
    micros, valid = _micros(time)
    n = micros.size
    flags = np.where(valid, np.uint8(GOOD), np.uint8(MISSING))
    if series:  # rows are samples of series (per group): order and duplicates mean something
        groups = np.zeros(n, dtype=np.int64) if group is None else np.asarray(group).ravel()
        order = np.argsort(groups, kind="stable")  # row order kept within each group
        g, t, ok = groups[order], micros[order], valid[order]
        back = np.zeros(n, dtype=bool)
        back[1:] = (g[1:] == g[:-1]) & ok[1:] & ok[:-1] & (t[1:] < t[:-1])
        flags[order[back]] = SUSPECT
        flags[_duplicates(groups, micros, valid, depth)] = SUSPECT
    limit = _micros(np.datetime64("now") if now is None else np.asarray(now))[0][0]
    late = valid & (micros > limit)
    if not_before is not None:
        late |= valid & (micros < _micros(np.asarray(not_before))[0][0])
    flags[late] = FAIL
    return flags


def _duplicates(groups, micros, valid, depth) -> np.ndarray:
    z = np.zeros(micros.size) if depth is None else _float(depth)
    z = np.where(np.isfinite(z), z, np.inf)  # missing depths are equal to each other
    order = np.lexsort((z, micros, groups))
    g, t, zz = groups[order], micros[order], z[order]
    same = (g[1:] == g[:-1]) & (t[1:] == t[:-1]) & (zz[1:] == zz[:-1])
    dup = np.zeros(micros.size, dtype=bool)
    dup[:-1] |= same
    dup[1:] |= same
    out = np.zeros(micros.size, dtype=bool)
    out[order] = dup
    return out & valid


# --------------------------------------------------------------------------- density


def _atg(s, t, p):
    """EOS-80 adiabatic temperature gradient (degC/dbar), Bryden 1973 (UNESCO 1983)."""
    ds = s - 35.0
    return ((((-2.1687e-16 * t + 1.8676e-14) * t - 4.6206e-13) * p
             + ((2.7759e-12 * t - 1.1351e-10) * ds
                + ((-5.4481e-14 * t + 8.733e-12) * t - 6.7795e-10) * t + 1.8741e-8)) * p
            + (-4.2393e-8 * t + 1.8932e-6) * ds
            + ((6.6228e-10 * t - 6.836e-8) * t + 8.5258e-6) * t + 3.5803e-5)


def potential_temperature(s, t, p, p_ref: float = 0.0):
    """EOS-80 potential temperature (Fofonoff & Millard 1983, 4th-order Runge-Kutta), IPTS-68."""
    h = p_ref - p
    xk = h * _atg(s, t, p)
    t = t + 0.5 * xk
    q = xk
    p = p + 0.5 * h
    xk = h * _atg(s, t, p)
    t = t + 0.29289322 * (xk - q)
    q = 0.58578644 * xk + 0.121320344 * q
    xk = h * _atg(s, t, p)
    t = t + 1.707106781 * (xk - q)
    q = 3.414213562 * xk - 4.121320344 * q
    p = p + 0.5 * h
    xk = h * _atg(s, t, p)
    return t + (xk - 2.0 * q) / 6.0


def density_at_surface(s, t68):
    """EOS-80 (UNESCO 1981) density at p = 0 in kg m-3, temperature on IPTS-68."""
    t = t68
    smow = (999.842594 + 6.793952e-2 * t - 9.095290e-3 * t ** 2 + 1.001685e-4 * t ** 3
            - 1.120083e-6 * t ** 4 + 6.536332e-9 * t ** 5)
    b = 8.24493e-1 - 4.0899e-3 * t + 7.6438e-5 * t ** 2 - 8.2467e-7 * t ** 3 + 5.3875e-9 * t ** 4
    c = -5.72466e-3 + 1.0227e-4 * t - 1.6546e-6 * t ** 2
    with np.errstate(invalid="ignore"):
        return smow + b * s + c * np.power(s, 1.5) + 4.8314e-4 * s ** 2


def sigma0(temperature, salinity, pressure) -> np.ndarray:
    """Potential density anomaly sigma0 (kg m-3) from in-situ temperature (ITS-90, degC),
    practical salinity and pressure (dbar), with EOS-80 (``gsw``/TEOS-10 is not installed; the
    difference from TEOS-10 sigma0 is ~0.01 kg m-3, far below inversion thresholds' resolution
    concerns since the test uses differences between neighbouring levels)."""
    s, t90, p = _float(salinity), _float(temperature), _float(pressure)
    t68 = t90 * 1.00024
    theta68 = potential_temperature(s, t68, p)
    return density_at_surface(s, theta68) - 1000.0


# --------------------------------------------------------------------------- grouping, windows


def ordering(group, time, *, profile=None, depth=None) -> tuple[np.ndarray, np.ndarray]:
    """Stable order by (group, time), missing times last in their group; returns
    ``(permutation, segment ids in that order)``. Ties keep row order.

    With ``profile`` (profile, cast or segment ids), the order is (group, profile, time, depth)
    and every (group, profile) pair is its own segment: a profile's levels are compared along
    the profile, never with the next profile's. One lexsort and a comparison of neighbours; no
    loop over groups.
    """
    micros, valid = _micros(time)
    n = micros.size
    groups = np.zeros(n, dtype=np.int64) if group is None else np.asarray(group).ravel()
    key = np.where(valid, micros, np.iinfo(np.int64).max)
    if profile is None:
        perm = np.lexsort((key, groups))  # lexsort is stable
        return perm, groups[perm]
    profiles = np.asarray(profile).ravel()
    z = np.zeros(n) if depth is None else _float(depth)
    z = np.where(np.isnan(z), np.inf, z)  # missing depths last in their profile
    perm = np.lexsort((z, key, profiles, groups))
    starts = np.zeros(n, dtype=bool)
    starts[1:] = ((groups[perm][1:] != groups[perm][:-1])
                  | (profiles[perm][1:] != profiles[perm][:-1]))
    return perm, np.cumsum(starts)


def unpermute(flags: np.ndarray, perm: np.ndarray) -> np.ndarray:
    out = np.empty_like(flags)
    out[perm] = flags
    return out


def windowed(fn: Callable[..., np.ndarray], *arrays, window: int, overlap: int,
             **kwargs) -> np.ndarray:
    """``fn(*arrays, **kwargs)`` computed over windows of ``window`` samples, each read with
    ``overlap`` samples of context on both sides, so memory stays bounded by
    ``window + 2 * overlap``. Keyword arrays of the same length (``segment``) are sliced too.

    Results equal the unwindowed ones when ``overlap`` covers the test's reach: 1 for spike, rate
    of change and density inversion; for flat line and attenuated signal,
    :func:`time_window_overlap` (the attenuated signal's standard deviation may then differ in
    its last bits, which matters only for a deviation equal to a threshold). Speed and distance
    look back to the last usable fix, however far: they run unwindowed (their memory is linear).
    """
    if window < 1 or overlap < 0:
        raise ValueError(f"window must be >= 1 and overlap >= 0, got {window}, {overlap}")
    n = len(arrays[0])
    if n <= window:
        return fn(*arrays, **kwargs)
    sliced = {k for k, v in kwargs.items() if isinstance(v, np.ndarray) and v.shape == (n,)}
    out = np.empty(n, dtype=np.uint8)
    for start in range(0, n, window):  # loop over windows, not samples
        stop = min(n, start + window)
        lo, hi = max(0, start - overlap), min(n, stop + overlap)
        args = [np.asarray(a)[lo:hi] for a in arrays]
        kw = {k: (v[lo:hi] if k in sliced else v) for k, v in kwargs.items()}
        out[start:stop] = fn(*args, **kw)[start - lo:stop - lo]
    return out


def time_window_overlap(time, duration_seconds: float, segment=None) -> int:
    """The overlap :func:`windowed` needs for :func:`flat_line` and :func:`attenuated_signal`
    with windows of ``duration_seconds`` on these (sorted) times."""
    micros, valid = _micros(time)
    micros = micros[valid]
    if micros.size == 0:
        return 1
    starts = _starts(None if segment is None else np.asarray(segment).ravel()[valid],
                     micros.size)
    first = _window_first(micros, starts, round(duration_seconds * 1e6))
    # +2: the sample before the window (its gap is checked); samples with a missing time sit
    # inside the window span too: count them generously
    return int((np.arange(micros.size) - first).max()) + 2 + int((~valid).sum())


flat_line_overlap = time_window_overlap
