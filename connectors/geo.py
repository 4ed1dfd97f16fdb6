"""One rule for horizontal positions, shared by every connector.

A connector never invents a position. It may only re-express a valid one:

* a **longitude** in ``[-180, 180)`` is kept; one in ``[180, 360]`` -- a valid position in the
  0-360 convention of many models and ERDDAP servers -- is shifted by -360 (``360`` -> ``0``,
  ``180`` -> ``-180``), so every valid longitude leaves the connector in ``[-180, 180)``;
* anything else (``-999``, ``400``, ``inf``) is not a longitude in any convention and is kept
  **as in the source**: wrapping it would turn a sentinel into a plausible position (``-999`` ->
  ``81``, ``400`` -> ``40``) that QC and validation then pass. QC's location test FAILs it.
* a **latitude** is never changed: beyond +-90 it is kept as in the source (never clipped) and
  QC FAILs it.
* NaN / null stays missing.

Sources whose format defines longitudes only in [-180, 180] (AIS, ITU-R M.1371) call
:func:`longitude` with ``east_convention=False``: there a value in (180, 360] is corrupt, not
0-360, and is kept raw too. Format-specific "not available" codes (AIS 181 / 91) are the
connector's business and become null before this rule runs.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

#: column lineage (``haina.conversion``) of every longitude column
LONGITUDE_CONVERSION = ("valid longitudes as [-180, 180) (180..360 shifted by -360); values "
                        "outside [-180, 360] kept as in the source")
LONGITUDE_CONVERSION_NO_EAST = ("180 written -180; values outside [-180, 180] kept as in the "
                                "source")
LATITUDE_CONVERSION = "none (values beyond +-90 kept as in the source)"


def longitude(values, *, east_convention: bool = True) -> np.ndarray:
    """Valid longitudes in [-180, 180), anything else unchanged (see the module docstring).

    Vectorised; returns a new float64 array (NaN stays NaN).
    """
    lon = np.array(values, dtype=np.float64, copy=True)
    upper = 360.0 if east_convention else 180.0
    with np.errstate(invalid="ignore"):
        east = (lon >= 180.0) & (lon <= upper)
    # subtract only where needed: (x + 180) % 360 - 180 would also perturb the last bit of
    # longitudes that are already in range (151.833333 -> 151.83333300000004)
    lon[east] -= 360.0
    return lon


def longitude_arrow(values: pa.Array | pa.ChunkedArray, *,
                    east_convention: bool = True) -> pa.Array:
    """:func:`longitude` over an Arrow float column; nulls stay null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.float64())
    nulls = values.is_null().to_numpy(zero_copy_only=False)
    array = values.to_numpy(zero_copy_only=False)
    out = longitude(array, east_convention=east_convention)
    return pa.array(out, pa.float64(), mask=np.asarray(nulls, bool) | np.isnan(out))
