"""QARTOD quality-control tests as pure numpy functions.

Habits of ``ioos_qc/qartod.py``: arrays and thresholds in, a same-shape ``uint8`` flag array out
(flags from :mod:`expectations.qc.flags`); the same steps in every test -- start GOOD (or
NOT_EVALUATED where a test may not apply), mark invalid input MISSING, then SUSPECT, then FAIL, so a
worse flag is never improved. No Python loop over samples: loops run over thresholds, polygon edges
or sparse-table levels only. ``is None`` checks everywhere, because 0 is a real threshold.

Ordered tests (spike, rate of change, flat line, attenuated signal, density inversion) take data
already in time (or depth) order and an optional ``segment`` array of ids: neighbours in
different segments (platforms, stations, profiles) are never compared.
:func:`expectations.qc.ordering.ordering` builds that order with a stable sort;
:func:`expectations.qc.ordering.windowed` runs them over bounded-memory overlapping windows with
identical results. Position tests (coordinates, region, speed, distance) live in
:mod:`expectations.qc.position`; the density the inversion test compares, in
:mod:`expectations.qc.seawater`; the array plumbing every test shares, in
:mod:`expectations.qc.arrays`. Where Haina differs from ioos_qc 3.x, the docstring says so;
``docs/qc.md`` lists them all.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

# all_within through its module: the min/max shortcut a test can switch off in one place
from expectations.qc import arrays
from expectations.qc.arrays import (
    as_float,
    following,
    mark_invalid,
    previous,
    segment_ends,
    segment_starts,
    span_pair,
    threshold_flags,
    to_micros,
    to_seconds,
)
from expectations.qc.flags import FAIL, GOOD, MISSING, NOT_EVALUATED, SUSPECT

# --------------------------------------------------------------------------- range tests


def gross_range(values, fail_span, suspect_span=None) -> np.ndarray:
    """FAIL outside ``fail_span``, SUSPECT outside ``suspect_span``; NaN MISSING.

    Bounds are inclusive (a value equal to a bound passes), as in ioos_qc. +-inf is a value no
    sensor can report: FAIL, as in ioos_qc (which masks it, but compares the masked data), and
    also against an open span.
    """
    fmin, fmax = span_pair(fail_span, "fail_span")
    smin, smax = fmin, fmax
    if suspect_span is not None:
        smin, smax = span_pair(suspect_span, "suspect_span")
        if smin < fmin or smax > fmax:
            raise ValueError(f"suspect_span {suspect_span!r} must lie within fail_span "
                             f"{fail_span!r}")
    native = np.asarray(values).ravel()
    if native.dtype.kind in "iuf" and arrays.all_within(native, smin, smax):
        # the common chunk: two reductions in the values' own precision, no float64 copy
        return np.full(native.shape, GOOD, dtype=np.uint8)
    x = as_float(native)
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
    x = as_float(values)
    micros, valid_time = to_micros(time)
    z = as_float(depth) if depth is not None else np.full(x.shape, np.nan)
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
    x = as_float(values)
    starts = segment_starts(segment, x.size)
    ends = segment_ends(starts)
    prev, nxt = previous(x), following(x)
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
    flags = threshold_flags(metric, evaluable, suspect_threshold, fail_threshold)
    mark_invalid(flags, x)
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
    x = as_float(values)
    t = to_seconds(time)
    starts = segment_starts(segment, x.size)
    dt = t - previous(t)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.abs(x - previous(x)) / dt
        evaluable = ~starts & np.isfinite(rate) & (dt > 0)
    flags = threshold_flags(rate, evaluable, suspect_threshold, fail_threshold)
    mark_invalid(flags, x)
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
    x = as_float(values)
    micros, valid_time = to_micros(time)
    flags = np.full(x.shape, NOT_EVALUATED, dtype=np.uint8)
    seg = None if segment is None else np.asarray(segment).ravel()[valid_time]
    flags[valid_time] = _flat_line_timed(x[valid_time], micros[valid_time], tolerance,
                                         suspect_seconds, fail_seconds, seg)
    mark_invalid(flags, x)
    return flags


def _flat_line_timed(x, micros, tolerance, suspect_seconds, fail_seconds, segment):
    flags = np.full(x.shape, GOOD, dtype=np.uint8)
    if x.size == 0:
        return flags
    starts = segment_starts(segment, x.size)
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
    x = as_float(values)
    micros, valid_time = to_micros(time)
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
    return mark_invalid(flags, x)


def _attenuation(x, micros, period_us, check, min_count, segment):
    """(variation of each sample's window, whether the window may be judged)."""
    if x.size == 0:
        return np.empty(0), np.zeros(0, dtype=bool)
    starts = segment_starts(segment, x.size)
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
    s, z = as_float(sigma), as_float(depth)
    flags = np.full(s.shape, NOT_EVALUATED, dtype=np.uint8)
    if s.size == 0:
        return flags
    ok = np.isfinite(s) & np.isfinite(z)
    pair = ok[:-1] & ok[1:] & ~segment_starts(segment, s.size)[1:]
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
    micros, valid = to_micros(time)
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
    limit = to_micros(np.datetime64("now") if now is None else np.asarray(now))[0][0]
    late = valid & (micros > limit)
    if not_before is not None:
        late |= valid & (micros < to_micros(np.asarray(not_before))[0][0])
    flags[late] = FAIL
    return flags


def _duplicates(groups, micros, valid, depth) -> np.ndarray:
    z = np.zeros(micros.size) if depth is None else as_float(depth)
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


def time_window_overlap(time, duration_seconds: float, segment=None) -> int:
    """The overlap :func:`windowed` needs for :func:`flat_line` and :func:`attenuated_signal`
    with windows of ``duration_seconds`` on these (sorted) times."""
    micros, valid = to_micros(time)
    micros = micros[valid]
    if micros.size == 0:
        return 1
    starts = segment_starts(None if segment is None else np.asarray(segment).ravel()[valid],
                     micros.size)
    first = _window_first(micros, starts, round(duration_seconds * 1e6))
    # +2: the sample before the window (its gap is checked); samples with a missing time sit
    # inside the window span too: count them generously
    return int((np.arange(micros.size) - first).max()) + 2 + int((~valid).sum())


flat_line_overlap = time_window_overlap
