"""Sea water's equation of state (EOS-80) for the density inversion test: potential temperature
and potential density anomaly from temperature, salinity and pressure.

Why not a library: ``gsw`` (TEOS-10) is not a dependency and the test needs only sigma0's
differences between neighbouring levels, where EOS-80 and TEOS-10 agree far below any inversion
threshold; these are the UNESCO (1983) formulas, checked against their published values.
"""
from __future__ import annotations

import numpy as np

from expectations.qc.arrays import as_float


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
    s, t90, p = as_float(salinity), as_float(temperature), as_float(pressure)
    t68 = t90 * 1.00024
    theta68 = potential_temperature(s, t68, p)
    return density_at_surface(s, theta68) - 1000.0
