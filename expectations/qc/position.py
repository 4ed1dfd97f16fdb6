"""QARTOD tests of positions: impossible coordinates, the region, speed and distance.

Same habits as :mod:`expectations.qc.qartod` (arrays in, a ``uint8`` flag array out, no loop over
samples). Three questions are kept apart, so a flag says which one failed:

- :func:`coordinates` -- can the position exist at all? (``|lat| > 90``, ``|lon| > 180``, one
  coordinate missing, an infinity: FAIL);
- :func:`region` -- is it where the data set is meant to be? (outside: SUSPECT or FAIL, the
  recipe's choice);
- :func:`speed` and :func:`distance` -- is the step from the platform's previous fix plausible?
  Both compare with the previous *usable* fix (``usable``: the pipeline passes "coordinates
  not FAIL"), so the good fix after an impossible one is judged against the last good fix, not
  against the impossible one.

Distances are haversine on a sphere (ioos_qc: the WGS84 geodesic via geographiclib, one Python
call per sample); they differ by less than 0.5 %.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# all_within through its module: the min/max shortcut a test can switch off in one place
from expectations.qc import arrays
from expectations.qc.arrays import as_float, segment_starts, threshold_flags, to_micros
from expectations.qc.flags import FAIL, GOOD, MISSING, NOT_EVALUATED, SUSPECT, combine

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
#: the connectors shift longitudes of the 0-360 convention into [-180, 180) and keep anything
#: else raw (connectors.geo), so a longitude past 180 here is impossible (an AIS 200.2, say)
LON_MIN, LON_MAX = -180.0, 180.0


def haversine(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres on a sphere of radius :data:`EARTH_RADIUS_M`."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


# --------------------------------------------------------------------------- where


def coordinates(latitude, longitude) -> np.ndarray:
    """Impossible coordinates (ioos_qc ``location_test``): both missing -> MISSING; one missing,
    an infinity, ``|lat| > 90`` or ``|lon| > 180`` -> FAIL (as ioos_qc). Longitudes of the 0-360
    convention never reach this test: the connectors shift them (:mod:`connectors.geo`).
    """
    lat, lon = as_float(latitude), as_float(longitude)
    if arrays.all_within(lat, -90.0, 90.0) and arrays.all_within(lon, LON_MIN, LON_MAX):
        return np.full(lat.shape, GOOD, dtype=np.uint8)  # the common chunk: two reductions
    has_lat, has_lon = ~np.isnan(lat), ~np.isnan(lon)
    flags = np.full(lat.shape, GOOD, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        impossible = ((has_lat != has_lon) | (np.abs(lat) > 90) | (lon < LON_MIN)
                      | (lon > LON_MAX) | np.isinf(lat) | np.isinf(lon))
    flags[impossible] = FAIL
    flags[~has_lat & ~has_lon] = MISSING
    return flags


def points_in_polygon(lon, lat, polygon: Sequence[Sequence[float]]) -> np.ndarray:
    """Even-odd ray casting, vectorised over points (the loop runs over polygon edges)."""
    x, y = as_float(lon), as_float(lat)
    vertices = np.asarray(polygon, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[0] < 3 or vertices.shape[1] != 2:
        raise ValueError(f"polygon must be at least 3 (lon, lat) vertices, got {polygon!r}")
    inside = np.zeros(x.shape, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, 1, axis=0), strict=True):
            crosses = (y1 > y) != (y2 > y)
            inside ^= crosses & (x < (x2 - x1) * (y - y1) / (y2 - y1) + x1)
    return inside


def _inside(lat, lon, bbox, polygon) -> np.ndarray:
    # a longitude and its 360-degree twins: a region written in either convention (or across
    # the antimeridian, e.g. bbox 170..190) contains the point in the other
    west = ((lon + 180.0) % 360.0) - 180.0
    inside = np.zeros(lat.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for twin in (west, west + 360.0):
            if bbox is not None:
                lon_min, lat_min, lon_max, lat_max = (float(v) for v in bbox)
                inside |= ((twin >= lon_min) & (twin <= lon_max) & (lat >= lat_min)
                           & (lat <= lat_max))
            if polygon is not None:
                inside |= points_in_polygon(twin, lat, polygon)
    return inside


def region(latitude, longitude, *, bbox=None, polygon=None, outside: int = FAIL) -> np.ndarray:
    """The data set's region (ioos_qc ``location_bounds_test``): GOOD inside, ``outside``
    (SUSPECT or FAIL) outside; MISSING where a coordinate is missing; NOT_EVALUATED where the
    coordinates are impossible (:func:`coordinates` fails those).

    ``bbox`` is ``(lon_min, lat_min, lon_max, lat_max)``, bounds inclusive (ioos_qc's shapely test
    counts the boundary as outside); ``polygon`` is a list of ``(lon, lat)`` vertices; when both
    are given a position inside either is inside.
    """
    if outside not in (SUSPECT, FAIL):
        raise ValueError(f"outside must be SUSPECT ({SUSPECT}) or FAIL ({FAIL}), got {outside!r}")
    lat, lon = as_float(latitude), as_float(longitude)
    if bbox is None and polygon is None:
        raise ValueError("region needs a bbox or a polygon")
    if polygon is None:
        west, south, east, north = (float(v) for v in bbox)
        if arrays.all_within(lat, south, north) and arrays.all_within(lon, west, east):
            return np.full(lat.shape, GOOD, dtype=np.uint8)
    flags = np.where(_inside(lat, lon, bbox, polygon), np.uint8(GOOD), np.uint8(outside))
    flags[coordinates(lat, lon) == FAIL] = NOT_EVALUATED
    flags[np.isnan(lat) | np.isnan(lon)] = MISSING
    return flags


def location(latitude, longitude, *, bbox=None, polygon=None, outside: int = FAIL) -> np.ndarray:
    """:func:`coordinates` and, when a bbox or polygon is given, :func:`region`, combined (the
    worst flag wins): the single verdict the GE location expectation counts."""
    flags = coordinates(latitude, longitude)
    if bbox is None and polygon is None:
        return flags
    return combine(flags, region(latitude, longitude, bbox=bbox, polygon=polygon,
                                 outside=outside))


# --------------------------------------------------------------------------- steps


def previous_fix(latitude, longitude, time=None, *, segment=None, usable=None) -> np.ndarray:
    """For each sample (in platform and time order), the index of the platform's last usable fix
    at an earlier time, or -1.

    Samples sharing a time are one fix (the levels of a profile): they all look back past it.
    A fix is usable when both coordinates are present, its time is valid and ``usable`` allows it.
    """
    lat, lon = as_float(latitude), as_float(longitude)
    n = lat.size
    index = np.arange(n)
    if time is None:
        micros, valid_time = index.astype(np.int64), np.ones(n, dtype=bool)
    else:
        micros, valid_time = to_micros(time)
    starts = segment_starts(segment, n)
    ok = np.isfinite(lat) & np.isfinite(lon) & valid_time
    if usable is not None:
        ok &= np.asarray(usable, dtype=bool).ravel()
    seg_first = np.maximum.accumulate(np.where(starts, index, 0))
    new_time = starts.copy()
    new_time[1:] |= micros[1:] != micros[:-1]
    run_first = np.maximum.accumulate(np.where(new_time, index, 0))
    last_ok = np.maximum.accumulate(np.where(ok, index, -1))
    before = np.where(run_first > 0, last_ok[np.maximum(run_first - 1, 0)], -1)
    return np.where(before >= seg_first, before, -1)


def _step(latitude, longitude, time, segment, usable):
    """(distance in m from the previous usable fix, its index, evaluable mask)."""
    lat, lon = as_float(latitude), as_float(longitude)
    prev = previous_fix(lat, lon, time, segment=segment, usable=usable)
    has = prev >= 0
    p = np.where(has, prev, 0)
    own = np.isfinite(lat) & np.isfinite(lon)
    if time is not None:
        own &= to_micros(time)[1]
    if usable is not None:
        own &= np.asarray(usable, dtype=bool).ravel()
    with np.errstate(invalid="ignore"):
        metres = haversine(lat[p], lon[p], lat, lon) if lat.size else np.empty(0)
    return metres, p, has & own


def _position_flags(flags: np.ndarray, latitude, longitude) -> np.ndarray:
    lat, lon = as_float(latitude), as_float(longitude)
    flags[np.isnan(lat) | np.isnan(lon)] = MISSING
    return flags


def speed(latitude, longitude, time, suspect_threshold=None, fail_threshold=None, *,
          segment=None, usable=None) -> np.ndarray:
    """Implied speed (m/s) from the platform's previous usable fix (ioos_qc argo
    ``speed_test``), flagged on the later sample.

    Not evaluable (no earlier usable fix in the segment, time not advancing, the fix itself not
    usable): NOT_EVALUATED. A missing coordinate is MISSING. Differences from ioos_qc: it
    compares with the previous fix even when that one is impossible or missing (the good fix
    after a bad one is then flagged, or passes unjudged after a missing one); time differences
    are exact (ioos_qc truncates them to whole seconds).
    """
    metres, p, evaluable = _step(latitude, longitude, time, segment, usable)
    micros, _valid = to_micros(time)
    with np.errstate(invalid="ignore", divide="ignore"):
        dt = (micros - micros[p]) / 1e6 if micros.size else np.empty(0)
        rate = metres / dt
        evaluable = evaluable & (dt > 0) & np.isfinite(rate)
    flags = threshold_flags(rate, evaluable, suspect_threshold, fail_threshold)
    return _position_flags(flags, latitude, longitude)


def distance(latitude, longitude, suspect_threshold=None, fail_threshold=None, *, time=None,
             segment=None, usable=None) -> np.ndarray:
    """Distance (m) from the platform's previous usable fix (the ``range_max`` check of ioos_qc's
    ``location_test``, which flags SUSPECT beyond it), flagged on the later sample: a jump of a
    moored or slow platform whatever the time between fixes. With ``time``, samples sharing a
    time are one fix. Not evaluable: NOT_EVALUATED; a missing coordinate: MISSING.
    """
    metres, _p, evaluable = _step(latitude, longitude, time, segment, usable)
    flags = threshold_flags(metres, evaluable, suspect_threshold, fail_threshold)
    return _position_flags(flags, latitude, longitude)
