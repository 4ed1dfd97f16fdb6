"""Putting samples in the order the ordered QC tests need, and running them in bounded windows.

:func:`ordering` sorts a chunk by (platform, time) or (platform, profile, time, depth) with one
stable ``lexsort`` and names the segments neighbours must not cross; :func:`windowed` runs a
test over overlapping windows so memory stays bounded; :func:`unpermute` puts the flags back in
the chunk's row order.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from expectations.qc.arrays import as_float, to_micros


def ordering(group, time, *, profile=None, depth=None) -> tuple[np.ndarray, np.ndarray]:
    """Stable order by (group, time), missing times last in their group; returns
    ``(permutation, segment ids in that order)``. Ties keep row order.

    With ``profile`` (profile, cast or segment ids), the order is (group, profile, time, depth)
    and every (group, profile) pair is its own segment: a profile's levels are compared along
    the profile, never with the next profile's. One lexsort and a comparison of neighbours; no
    loop over groups.
    """
    micros, valid = to_micros(time)
    n = micros.size
    groups = np.zeros(n, dtype=np.int64) if group is None else np.asarray(group).ravel()
    key = np.where(valid, micros, np.iinfo(np.int64).max)
    if profile is None:
        perm = np.lexsort((key, groups))  # lexsort is stable
        return perm, groups[perm]
    profiles = np.asarray(profile).ravel()
    z = np.zeros(n) if depth is None else as_float(depth)
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
    :func:`expectations.qc.qartod.time_window_overlap` (the attenuated signal's standard deviation may then differ in
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
