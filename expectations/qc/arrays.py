"""Array plumbing shared by the QC tests: inputs as float64 or int64 microseconds, segment
boundaries, neighbours, and the threshold-to-flag step every test ends with.

Pure numpy on whole arrays, like the tests themselves (:mod:`expectations.qc.qartod`,
:mod:`expectations.qc.position`), which read their inputs through these so that every test treats
missing times, NaN and infinities alike.
"""
from __future__ import annotations

import math

import numpy as np

from expectations.qc.flags import FAIL, GOOD, MISSING, NOT_EVALUATED, SUSPECT

#: numpy's "not a time" as int64 microseconds
NAT = np.iinfo(np.int64).min


def as_float(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).ravel()


def all_within(x: np.ndarray, low: float, high: float) -> bool:
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


def to_micros(time) -> tuple[np.ndarray, np.ndarray]:
    """datetime64 (any unit) or int64 microseconds -> (int64 µs, valid mask)."""
    arr = np.asarray(time).ravel()
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[us]").view(np.int64)
    arr = arr.astype(np.int64, copy=False)
    return arr, arr != NAT


def to_seconds(time) -> np.ndarray:
    micros, valid = to_micros(time)
    return np.where(valid, micros / 1e6, np.nan)


def span_pair(span, name: str) -> tuple[float, float]:
    """A (min, max) pair; None at either end means unbounded. Sorted like ioos_qc's spans."""
    if span is None or len(span) != 2:
        raise ValueError(f"{name} must be a (min, max) pair, got {span!r}")
    low = -np.inf if span[0] is None else float(span[0])
    high = np.inf if span[1] is None else float(span[1])
    return (low, high) if low <= high else (high, low)


def segment_starts(segment, n: int) -> np.ndarray:
    """True where a segment begins (index 0 and every change of id)."""
    starts = np.zeros(n, dtype=bool)
    if n:
        starts[0] = True
    if segment is not None and n > 1:
        seg = np.asarray(segment).ravel()
        starts[1:] = seg[1:] != seg[:-1]
    return starts


def segment_ends(starts: np.ndarray) -> np.ndarray:
    ends = np.zeros_like(starts)
    if starts.size:
        ends[:-1] = starts[1:]
        ends[-1] = True
    return ends


def previous(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    if values.size:
        out[1:] = values[:-1]
        out[0] = values[0]
    return out


def following(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    if values.size:
        out[:-1] = values[1:]
        out[-1] = values[-1]
    return out


def mark_invalid(flags: np.ndarray, x: np.ndarray) -> np.ndarray:
    """NaN (no value) -> MISSING; +-inf (a value, but not a number a test can use) ->
    NOT_EVALUATED. The range tests judge infinities themselves (FAIL)."""
    flags[np.isinf(x)] = NOT_EVALUATED
    flags[np.isnan(x)] = MISSING
    return flags


def threshold_flags(metric: np.ndarray, evaluable: np.ndarray, suspect, fail) -> np.ndarray:
    """GOOD where evaluable, else NOT_EVALUATED; then SUSPECT, then FAIL where metric > threshold."""
    flags = np.where(evaluable, np.uint8(GOOD), np.uint8(NOT_EVALUATED))
    with np.errstate(invalid="ignore"):
        if suspect is not None:
            flags[evaluable & (metric > suspect)] = SUSPECT
        if fail is not None:
            flags[evaluable & (metric > fail)] = FAIL
    return flags

