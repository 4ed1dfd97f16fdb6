"""QARTOD flag constants, source-flag scales mapped to them, and flag combination.

Pure numpy, no Arrow and no Beam. Every mapper takes the source flags as integer codes plus a
``missing`` mask (as the connectors store them: ``<var>_qc_source`` int8 with nulls) and returns a
``uint8`` array on the IOOS/QARTOD scale. The mapping decisions are documented in ``docs/qc.md``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

GOOD = 1
NOT_EVALUATED = 2
SUSPECT = 3
FAIL = 4
MISSING = 9

#: the five flag values, as strings (the keys of every count dict in QC stats)
FLAG_VALUES = (GOOD, NOT_EVALUATED, SUSPECT, FAIL, MISSING)
FLAG_NAMES = {GOOD: "good", NOT_EVALUATED: "not_evaluated", SUSPECT: "suspect", FAIL: "fail",
              MISSING: "missing"}

#: Precedence of ioos_qc's ``qartod_compare`` (lowest first): MISSING < NOT_EVALUATED < GOOD <
#: SUSPECT < FAIL. MISSING is "no information", so it never hides another test's verdict.
_RANK = np.zeros(256, dtype=np.uint8)
_RANK[[MISSING, NOT_EVALUATED, GOOD, SUSPECT, FAIL]] = [1, 2, 3, 4, 5]
_UNRANK = np.array([MISSING, MISSING, NOT_EVALUATED, GOOD, SUSPECT, FAIL], dtype=np.uint8)


def combine(*flag_arrays: np.ndarray) -> np.ndarray:
    """The worst flag per element, with ioos_qc's aggregate precedence (see ``_RANK``).

    Values outside the scale count as MISSING. With no input arrays there is nothing to combine.
    An array holding one value throughout (most tests on most chunks pass everything) joins as
    a scalar rank, so only arrays with mixed flags cost a per-element lookup.
    """
    if not flag_arrays:
        raise ValueError("combine() needs at least one flag array")
    arrays = [np.asarray(flags, dtype=np.uint8) for flags in flag_arrays]
    size = arrays[0].size
    ranks = None
    floor = 0
    for flags in arrays:
        if size and (low := flags.min()) == flags.max():
            floor = max(floor, int(_RANK[low]))
            continue
        rank = _RANK[flags]
        ranks = rank if ranks is None else np.maximum(ranks, rank, out=ranks)
    if ranks is None:
        return np.full(arrays[0].shape, _UNRANK[floor], dtype=np.uint8)
    if floor:
        np.maximum(ranks, np.uint8(floor), out=ranks)
    return _UNRANK[ranks]


def counts(flags: np.ndarray) -> dict[str, int]:
    """``{"1": n, ...}`` of the QARTOD values present (keys as strings: JSON-able stats)."""
    flags = np.asarray(flags, dtype=np.uint8)
    if flags.size == 0:
        return {}
    low, high = int(flags.min()), int(flags.max())
    if low == high:
        return {str(low): int(flags.size)} if low in FLAG_VALUES else {}
    return {str(v): n for v in FLAG_VALUES
            if low <= v <= high and (n := int(np.count_nonzero(flags == v)))}


def _table(mapping: dict[int, int]) -> np.ndarray:
    lookup = np.full(10, NOT_EVALUATED, dtype=np.uint8)
    for code, flag in mapping.items():
        lookup[code] = flag
    return lookup


#: Argo QC manual, reference table 2 (measurement flags). 2 "probably good" is usable data ->
#: GOOD; 5 "value changed" is an operator-corrected value that passed delayed-mode review -> GOOD;
#: 8 "estimated" (interpolated/extrapolated, not measured) -> SUSPECT; 6 and 7 are unused ->
#: NOT_EVALUATED.
ARGO = _table({0: NOT_EVALUATED, 1: GOOD, 2: GOOD, 3: SUSPECT, 4: FAIL, 5: GOOD,
               6: NOT_EVALUATED, 7: NOT_EVALUATED, 8: SUSPECT, 9: MISSING})

#: Copernicus Marine In Situ / OceanSITES reference table: like Argo, plus 6 "value below
#: detection" and 7 "nominal value" (neither is a measured value in range) -> SUSPECT, and 8
#: "interpolated value" -> SUSPECT.
OCEANSITES = _table({0: NOT_EVALUATED, 1: GOOD, 2: GOOD, 3: SUSPECT, 4: FAIL, 5: GOOD,
                     6: SUSPECT, 7: SUSPECT, 8: SUSPECT, 9: MISSING})


def map_scale(codes: np.ndarray, missing: np.ndarray | None, table: np.ndarray) -> np.ndarray:
    """Source codes 0-9 -> IOOS flags through ``table``; absent flags (null, out of 0-9) -> MISSING.

    An absent source flag says nothing about the value, so it is MISSING, the lowest precedence in
    :func:`combine`: the aggregate then rests on Haina's own tests.
    """
    codes = np.asarray(codes)
    bad = ~((codes >= 0) & (codes <= 9))
    if missing is not None:
        bad |= np.asarray(missing, dtype=bool)
    out = table[np.where(bad, 0, codes).astype(np.intp)]
    return np.where(bad, np.uint8(MISSING), out).astype(np.uint8)


def from_argo(codes: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    return map_scale(codes, missing, ARGO)


def from_oceansites(codes: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    return map_scale(codes, missing, OCEANSITES)


def from_coops(flag_columns: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """CO-OPS tolerance flags (``coops_flag_f``/``_r``/``_l_or_t`` ...: 0 or 1) -> IOOS flags.

    A 1 means CO-OPS' own flat/rate/limit tolerance was exceeded on preliminary data, which
    CO-OPS publishes anyway: SUSPECT, never FAIL. All flags 0 -> GOOD; any flag absent and none
    set -> MISSING. ``flag_columns`` holds ``(values, missing)`` pairs.
    """
    if not flag_columns:
        raise ValueError("from_coops() needs at least one flag column")
    n = len(flag_columns[0][0])
    raised = np.zeros(n, dtype=bool)
    absent = np.zeros(n, dtype=bool)
    for values, missing in flag_columns:  # a handful of flag columns, each vectorised
        missing = np.asarray(missing, dtype=bool)
        raised |= ~missing & (np.asarray(values) != 0)
        absent |= missing
    out = np.where(absent, np.uint8(MISSING), np.uint8(GOOD))
    return np.where(raised, np.uint8(SUSPECT), out).astype(np.uint8)


#: source scale name -> mapper of ``(codes, missing)``; NDBC realtime files carry no flags.
SOURCE_SCALES: dict[str, Callable[[np.ndarray, np.ndarray | None], np.ndarray]] = {
    "argo": from_argo,
    "oceansites": from_oceansites,
    "copernicus": from_oceansites,
}
#: CO-OPS flag columns that judge the product's value (the first water-level flag, a count of
#: samples outside 3 sigma, is information about the 6-minute average, not a verdict).
COOPS_VERDICT_COLUMNS = ("coops_flag_f", "coops_flag_r", "coops_flag_l_or_t", "coops_flag_l",
                         "coops_flag_x", "coops_flag_n")
