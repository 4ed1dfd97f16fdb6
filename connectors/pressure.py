"""Sea-water pressure to depth, pure numpy.

Haina uses the UNESCO 1983 algorithm (Fofonoff & Millard, "Algorithms for computation of fundamental
properties of seawater", UNESCO Tech. Pap. Mar. Sci. 44, p. 25-28): depth in metres from pressure
in decibar and latitude, for a standard ocean (0 degC, 35 PSU). It needs no extra dependency, and
differs from TEOS-10 ``gsw.z_from_p`` by well under 0.1 % over 0-10 000 dbar, far below what Argo
pressure accuracy (2.4 dbar) resolves. The method string is recorded in the depth column's
``ColumnInfo.conversion`` so a dataset says how its depths were made.
"""
from __future__ import annotations

import numpy as np

METHOD = ("depth from sea_water_pressure (dbar) and latitude by UNESCO 1983 "
          "(Fofonoff & Millard), standard ocean 0 degC 35 PSU")

# Polynomial coefficients of the UNESCO 1983 formula (numerator in p, gravity in latitude and p).
_C1, _C2, _C3, _C4 = 9.72659, -2.2512e-5, 2.279e-10, -1.82e-15
_GAMMA = 2.184e-6  # mean vertical gradient of gravity, halved in the formula as 1.092e-6


def gravity(latitude: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    """Gravity (m s-2) at ``latitude`` (degrees) and ``pressure`` (dbar), UNESCO 1983."""
    x = np.sin(np.deg2rad(latitude)) ** 2
    return 9.780318 * (1.0 + (5.2788e-3 + 2.36e-5 * x) * x) + 0.5 * _GAMMA * pressure


def pressure_to_depth(pressure, latitude) -> np.ndarray:
    """Depth (m, positive down) from sea-water pressure (dbar) and latitude (degrees north).

    Arrays broadcast against each other; NaN in either gives NaN. Computed in float64 whatever the
    input type, because float32 loses centimetres at abyssal depths.
    """
    p = np.asarray(pressure, dtype=np.float64)
    lat = np.asarray(latitude, dtype=np.float64)
    numerator = (((_C4 * p + _C3) * p + _C2) * p + _C1) * p
    return numerator / gravity(lat, p)
