"""Canonical variables and unit conversion.

Conversions are affine (``canonical = value * scale + offset``), computed once per variable with
pint (through cf_xarray's CF-aware unit registry) and applied to whole arrays. A few ocean labels
that pint does not parse, or parses differently from CF, are normalised first: the salinity scale
labels (``PSU``, ``psu``, ``PSS-78``, ``1e-3``, ``0.001``) all mean the same practical-salinity unit,
which Haina writes as ``1e-3`` (the CF canonical units of salinity).
"""
from __future__ import annotations

import dataclasses
import functools
import warnings
from importlib import resources

import numpy as np
import yaml

from connectors.exceptions import UnitConversionError

SALINITY = "1e-3"
_SALINITY_LABELS = {"1e-3", "0.001", "psu", "pss", "pss-78", "pss78", "practical salinity unit",
                    "practical_salinity_unit", "ppt", "‰", "o/oo", "1e-3 psu", "psu (pss-78)"}
_DIMENSIONLESS_LABELS = {"1", "", "none", "unitless", "dimensionless"}
#: labels pint reads differently from ocean usage
_ALIASES = {
    "degrees_c": "degC", "deg_c": "degC", "degrees c": "degC", "celsius": "degC",
    "degree_celsius": "degC", "deg c": "degC", "°c": "degC", "degc": "degC", "ºc": "degC",
    "degrees_k": "K", "kelvin": "K",
    "µatm": "uatm", "μatm": "uatm", "microatm": "uatm",
    "µmol/kg": "umol/kg", "μmol/kg": "umol/kg", "micromole/kg": "umol/kg", "umol kg-1": "umol/kg",
    "mb": "hPa", "mbar": "hPa", "millibar": "hPa", "decibar": "dbar", "db": "dbar",
    "meters": "m", "meter": "m", "metres": "m", "metre": "m",
    "deg": "degree", "degrees": "degree", "degT": "degree", "degrees_true": "degree",
    "knots": "knot", "kts": "knot", "kt": "knot",
}


@dataclasses.dataclass(frozen=True)
class Conversion:
    """``canonical = value * scale + offset``; ``description`` is kept as column lineage."""

    source_units: str
    target_units: str
    scale: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0

    @property
    def description(self) -> str:
        if self.identity:
            return f"none ({self.source_units} is {self.target_units})"
        parts = [f"x * {self.scale:.10g}"] if self.scale != 1.0 else ["x"]
        if self.offset:
            parts.append(f"{'+' if self.offset > 0 else '-'} {abs(self.offset):.10g}")
        return f"{self.source_units} -> {self.target_units}: {' '.join(parts)}"

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Convert in place where the array is a float copy we own; return the result."""
        if self.identity:
            return values
        if self.scale != 1.0:
            values = values * np.asarray(self.scale, dtype=values.dtype)
        if self.offset:
            values = values + np.asarray(self.offset, dtype=values.dtype)
        return values


@functools.cache
def canonical_variables() -> dict[str, dict]:
    text = resources.files("connectors").joinpath("canonical_variables.yaml").read_text()
    return yaml.safe_load(text)


@functools.cache
def _alias_index() -> dict[str, str]:
    index = {}
    for name, spec in canonical_variables().items():
        index[name] = name
        for alias in spec.get("aliases", []):
            index[alias] = name
    return index


def canonical_name(standard_name: str | None) -> str | None:
    """The canonical column for a CF standard name, or None when it is not a known variable."""
    if not standard_name:
        return None
    return _alias_index().get(standard_name.strip())


def canonical_units(name: str) -> str | None:
    spec = canonical_variables().get(name)
    return None if spec is None else spec["units"]


def _normalise(units: str) -> str:
    label = units.strip()
    lower = label.lower()
    if lower in _SALINITY_LABELS:
        return SALINITY
    if lower in _DIMENSIONLESS_LABELS:
        return "1"
    return _ALIASES.get(lower, _ALIASES.get(label, label))


@functools.cache
def _registry():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from cf_xarray.units import units
    return units


def output_units(canonical: str | None, units_to: str | None, *, variable: str = "",
                 source: str | None = None) -> str | None:
    """The units a variable's column is written in: the canonical units of a canonical column,
    else the recipe's ``units_to`` (None: the column keeps the file's units).

    A canonical column always has its canonical units (QC thresholds are written in them), so a
    ``units_to`` naming other units is refused rather than silently ignored.
    """
    if canonical is None or units_to is None:
        return canonical if units_to is None else units_to
    if _normalise(units_to) != _normalise(canonical):
        raise UnitConversionError(
            f"variable {variable!r} is a canonical column, always written in {canonical!r}; "
            f"units_to {units_to!r} would change its units",
            source=source,
            fix=(f"remove units_to from variables.{variable} (or set it to {canonical!r}), or "
                 f"map the variable to a column name that is not canonical (name: ...)"))
    return canonical


def column_conversion(source_units: str | None, canonical: str | None, units_to: str | None, *,
                      variable: str = "", source: str | None = None) -> Conversion:
    """The conversion of one variable's column: to its canonical units, or to the recipe's
    ``units_to`` for a column that is not canonical, or none. Its ``target_units`` are the
    column's units metadata."""
    target = output_units(canonical, units_to, variable=variable, source=source)
    return conversion(source_units, target, variable=variable, source=source,
                      requested=canonical is None and units_to is not None)


def conversion(source_units: str | None, target_units: str | None, *, variable: str = "",
               source: str | None = None, requested: bool = False) -> Conversion:
    """The affine conversion from ``source_units`` to ``target_units``.

    ``requested`` says the target is the recipe's ``units_to`` rather than canonical units (it
    only changes the wording of errors). Raises :class:`UnitConversionError` naming the variable
    and both units when they are not commensurable (e.g. ``m`` to ``degC``) or a label cannot be
    parsed.
    """
    if target_units is None:
        return Conversion(source_units or "", source_units or "")
    target_label = f"units_to {target_units!r}" if requested else \
        f"canonical units are {target_units!r}"
    if source_units is None or not str(source_units).strip():
        raise UnitConversionError(
            f"variable {variable!r} has no units attribute; {target_label}",
            source=source,
            fix=f"declare them in the recipe: variables: {{{variable}: {{units: ...}}}}",
        )
    src, dst = _normalise(str(source_units)), _normalise(target_units)
    if src == dst:
        return Conversion(str(source_units), target_units)
    if SALINITY in (src, dst) or "1" in (src, dst):
        raise _incompatible(variable, source_units, target_units, source, requested)
    return _pint_conversion(str(source_units), target_units, src, dst, variable, source,
                            requested)


def _pint_conversion(label, target, src, dst, variable, source, requested) -> Conversion:
    registry = _registry()
    try:
        zero = registry.Quantity(0.0, src).to(dst).magnitude
        one = registry.Quantity(1.0, src).to(dst).magnitude
    except Exception as err:  # pint raises several unrelated types for parse and dimension errors
        raise _incompatible(variable, label, target, source, requested) from err
    return Conversion(label, target, scale=float(one - zero), offset=float(zero))


def _incompatible(variable, source_units, target_units, source,
                  requested=False) -> UnitConversionError:
    if requested:
        return UnitConversionError(
            f"cannot convert variable {variable!r} from units {source_units!r} to units_to "
            f"{target_units!r}",
            source=source,
            fix=(f"set variables.{variable}.units_to to units of the same kind as "
                 f"{source_units!r} (udunits spelling, e.g. 'S m-1', 'm', 'degree_Celsius'), "
                 f"or remove it; if the file's units label is wrong, override it with "
                 f"variables.{variable}.units"))
    return UnitConversionError(
        f"cannot convert variable {variable!r} from units {source_units!r} to the canonical "
        f"{target_units!r}",
        source=source,
        fix=("if the file's units label is wrong, override it in the recipe "
             f"(variables: {{{variable}: {{units: <correct units>}}}}); if the variable is not "
             f"{target_units!r}-like, map it to another column name"),
    )
