"""Which variable of a CF file is its time, latitude, longitude, depth or pressure: the one
coordinate finder of the netCDF kinds, for grids (:func:`grid_coordinates`) and discrete
sampling geometries (:func:`choose`), and which dimension holds a DSG file's profiles.

**Grids.** A grid coordinate must span a subset of the variables' dimensions (a scalar fits
too) and show CF evidence for its role (standard_name, axis, units of latitude/longitude or
``<unit> since <epoch>``, a vertical length); dimension coordinates win over auxiliary ones,
then file order; bounds variables never count.

**Discrete sampling geometries.**

Files often have more than one candidate: a profile's nominal time (one per profile) and each
sample's own time; a station's nominal position and a per-sample fix; ``PRES`` and
``PRES_ADJUSTED``. Taking the first in file order stamps every sample of a profile with the
profile's time (453 samples, one distinct time, and no error). The choice follows CF instead:

1. the kind of evidence, best first: ``standard_name``, then ``axis``, then the variable's name,
   then its units. Only the best kind found counts, so a variable that merely says ``axis: X``
   (Argo's ``PRES_ADJUSTED`` in some files) never beats one with ``standard_name: longitude``;
2. among those, one that fits the observations (its dimensions are observation dimensions);
3. one named in the ``coordinates`` attribute of the variables on the observation dimensions
   (CF 1.11 section 5: the attribute designates a variable's coordinates);
4. the one that varies along most observation dimensions (a per-sample time beats the
   per-profile one);
5. file order.

When there is more than one candidate the plan says so (``<role>_candidates``, chosen first, and
a one-line note in ``notes``), so that ``haina check`` can show both; a recipe pins one with
``<role>_variable:``.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import xarray as xr

from connectors import units as cu
from connectors.exceptions import MissingVariableError, UnitConversionError

_LAT_UNITS = {"degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn"}
_LON_UNITS = {"degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese"}
#: standard names of a vertical coordinate that points up
UP_NAMES = ("height", "altitude")


@dataclasses.dataclass(frozen=True)
class Role:
    """One coordinate and how a file shows it."""

    name: str                       # "time", "latitude", ...
    key: str                        # the recipe key that pins it
    standard_names: tuple[str, ...]
    axis: str | None = None
    names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


TIME = Role("time", "time_variable", ("time",), "T", ("time", "TIME"))
LATITUDE = Role("latitude", "latitude_variable", ("latitude",), "Y",
                ("latitude", "LATITUDE", "lat"), ("degrees_north", "degree_north"))
LONGITUDE = Role("longitude", "longitude_variable", ("longitude",), "X",
                 ("longitude", "LONGITUDE", "lon"), ("degrees_east", "degree_east"))
DEPTH = Role("depth", "depth_variable", ("depth", "altitude", "height"), "Z",
             ("depth", "DEPTH", "DEPH", "z"))
PRESSURE = Role("pressure", "pressure_variable", ("sea_water_pressure",), None,
                ("pres", "PRES", "pressure"))


@dataclasses.dataclass(frozen=True)
class Choice:
    """The variable chosen for a role (None: the file has none), and every candidate, ranked
    (chosen first; empty when the recipe named the variable)."""

    variable: str | None
    candidates: tuple[str, ...] = ()


def candidates(ds, role: Role) -> list[str]:
    """The variables showing the best kind of evidence for ``role`` (ids, ``cf_role``, never)."""
    tests = (lambda a, n: a.get("standard_name") in role.standard_names,
             lambda a, n: role.axis is not None and a.get("axis") == role.axis,
             lambda a, n: n in role.names,
             lambda a, n: a.get("units") in role.units)
    for test in tests:
        found = [str(name) for name, var in ds.variables.items()
                 if test(var.attrs, name) and not var.attrs.get("cf_role")]
        if found:
            return found
    return []


def observation_dims_hint(ds, variables) -> tuple[str, ...]:
    """The observation dimensions as far as they are known before the coordinates: the sample
    dimension of a ragged file, else the dims of the first recipe variable, else the widest
    dims of the data variables with a canonical standard name; () when nothing says."""
    for var in ds.variables.values():
        if "sample_dimension" in var.attrs:
            return (str(var.attrs["sample_dimension"]),)
    if variables:
        return tuple(map(str, ds[variables[0]].dims))
    data = [tuple(map(str, v.dims)) for v in ds.data_vars.values()
            if v.dtype.kind == "f" and cu.canonical_name(v.attrs.get("standard_name"))]
    return max(data, key=len) if data else ()


def designated(ds, obs_dims) -> set[str]:
    """Variables named in the ``coordinates`` attribute of the variables on ``obs_dims``."""
    named: set[str] = set()
    for var in ds.variables.values():
        if obs_dims and tuple(var.dims) != tuple(obs_dims):
            continue
        # xarray moves the attribute into .encoding when it decodes coordinates
        text = var.attrs.get("coordinates") or var.encoding.get("coordinates") or ""
        named.update(t for t in re.split(r"\s+", str(text)) if t)
    return named


def span(ds, name: str, obs_dims, ragged: bool) -> int:
    """How many observation dimensions a variable varies along (ragged: 1 if per sample)."""
    dims = tuple(ds[name].dims)
    if ragged:
        return int(dims == tuple(obs_dims))
    if not obs_dims:
        return len(dims)
    return len(set(dims) & set(obs_dims))


def per_sample(ds, name: str | None, obs_dims, ragged: bool) -> bool:
    """Whether a coordinate has one value per observation (rather than per profile/station)."""
    if name is None or not obs_dims:
        return False
    dims = tuple(ds[name].dims)
    return dims == tuple(obs_dims) if ragged else set(dims) == set(obs_dims)


def choose(ds, role: Role, explicit: str | None, obs_dims, ragged: bool, uri: str, *,
           required: bool = True) -> Choice:
    """The variable for ``role``: the recipe's, else the best CF candidate (module docstring)."""
    if explicit is not None:
        if explicit not in ds.variables:
            raise MissingVariableError(
                f"{role.key}: variable {explicit!r} is not in the file (variables: "
                f"{', '.join(sorted(map(str, ds.variables)))})", source=uri,
                fix=f"set {role.key} to one of the file's variables")
        return Choice(explicit)
    found = candidates(ds, role)
    if not found:
        if required:
            raise MissingVariableError(
                f"no {role.name} variable found (looked for standard_name "
                f"{'/'.join(role.standard_names)}, axis {role.axis}, names "
                f"{'/'.join(role.names)})", source=uri,
                fix=f"name it in the recipe with {role.key}: <variable>")
        return Choice(None)
    named = designated(ds, obs_dims)

    def rank(item):
        order, name = item
        fits = ragged or not obs_dims or set(ds[name].dims) <= set(obs_dims)
        return (not fits, name not in named, -span(ds, name, obs_dims, ragged), order)

    ranked = tuple(name for _, name in sorted(enumerate(found), key=rank))
    return Choice(ranked[0], ranked if len(ranked) > 1 else ())


def note(ds, role: Role, choice: Choice, obs_dims, ragged: bool) -> str | None:
    """One line saying which candidate was used over which, and how to pick another."""
    if len(choice.candidates) < 2:
        return None

    def describe(name):
        how = "per observation" if per_sample(ds, name, obs_dims, ragged) else \
            f"on {tuple(map(str, ds[name].dims)) or 'no dimension'}"
        return f"{name!r} ({how})"
    chosen, *others = choice.candidates
    named = " (named in the coordinates attribute)" if chosen in designated(ds, obs_dims) else ""
    return (f"{role.name}: used {describe(chosen)}{named} over "
            f"{', '.join(describe(o) for o in others)}; set {role.key}: in the recipe to use "
            "another")


def profile_dimension(ds, obs_dims, ragged: bool) -> str | None:
    """The dimension along which profiles are counted: the instance dimension of a ragged
    file's counts, else the dimension before the innermost (vertical) observation dimension."""
    if ragged:
        for var in ds.variables.values():
            if "sample_dimension" in var.attrs:
                return str(var.dims[0])
        for var in ds.variables.values():
            if "instance_dimension" in var.attrs and tuple(var.dims) == tuple(obs_dims):
                return str(var.attrs["instance_dimension"])
        return None
    return str(obs_dims[-2]) if len(obs_dims) >= 2 else None


# --------------------------------------------------------------------------- grids


def attr(var: xr.Variable, name: str) -> str:
    """A variable's attribute as stripped text ('' when absent)."""
    return str(var.attrs.get(name, "")).strip()


def _is_latitude(var: xr.Variable) -> bool:
    return attr(var, "standard_name") == "latitude" or attr(var, "units").lower() in _LAT_UNITS


def _is_longitude(var: xr.Variable) -> bool:
    return (attr(var, "standard_name") == "longitude"
            or attr(var, "units").lower() in _LON_UNITS)


def _is_time(var: xr.Variable) -> bool:
    return (attr(var, "standard_name") == "time" or attr(var, "axis").upper() == "T"
            or " since " in attr(var, "units").lower())


def _is_length(label: str) -> bool:
    try:
        cu.conversion(label, "m")
    except UnitConversionError:
        return False
    return True


def _is_depth(var: xr.Variable) -> bool:
    name = attr(var, "standard_name")
    if name == "depth" or name in UP_NAMES:
        return True
    vertical = "positive" in var.attrs or attr(var, "axis").upper() == "Z"
    return vertical and _is_length(attr(var, "units") or "m")


GRID_ROLES = {"time": _is_time, "depth": _is_depth,
              "latitude": _is_latitude, "longitude": _is_longitude}
_LOOKED_FOR = {
    "latitude": "standard_name 'latitude' or units 'degrees_north'",
    "longitude": "standard_name 'longitude' or units 'degrees_east'",
}


def _bounds_variables(ds: xr.Dataset) -> set[str]:
    return {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}


def grid_coordinate(ds: xr.Dataset, role: str, var_dims: tuple[str, ...],
                    exclude: set[str]) -> str | None:
    """The CF coordinate for ``role`` that fits a variable with ``var_dims``, or None.

    Candidates must span a subset of the variable's dims (a scalar fits too); dimension
    coordinates win over auxiliary ones, then file order.
    """
    skip = exclude | _bounds_variables(ds)
    found = [str(name) for name, var in ds.variables.items()
             if name not in skip and set(var.dims) <= set(var_dims) and GRID_ROLES[role](var)]
    found.sort(key=lambda name: ds.variables[name].dims != (name,))
    return found[0] if found else None


def _explicit_coordinate(ds: xr.Dataset, name: str, role: str, var_dims: tuple[str, ...],
                         uri: str) -> str:
    if name not in ds.variables:
        raise MissingVariableError(
            f"coordinate variable {name!r} (recipe key coordinates.{role}) is not in the file; "
            f"variables present: {', '.join(map(str, ds.variables))}",
            source=uri, fix=f"set coordinates.{role} to one of the variables present")
    if not set(ds.variables[name].dims) <= set(var_dims):
        raise MissingVariableError(
            f"coordinate {name!r} (coordinates.{role}) has dims {ds.variables[name].dims}, "
            f"which are not dims of the variables {var_dims}",
            source=uri, fix=f"set coordinates.{role} to a coordinate on the variables' grid")
    return name


def grid_coordinates(ds: xr.Dataset, explicit: Mapping[Any, str], var_dims: tuple[str, ...],
                     uri: str, data_names: Sequence[str]) -> dict[str, str | None]:
    """The time, depth, latitude and longitude variables of a grid whose variables have
    ``var_dims``: the recipe's ``coordinates:`` first, else :func:`grid_coordinate`; latitude
    and longitude are required."""
    found: dict[str, str | None] = {}
    for role in ("latitude", "longitude", "time", "depth"):
        if role in explicit:
            found[role] = _explicit_coordinate(ds, explicit[role], role, var_dims, uri)
            continue
        taken = set(data_names) | {n for n in found.values() if n}
        found[role] = grid_coordinate(ds, role, var_dims, taken)
        if found[role] is None and role in _LOOKED_FOR:
            raise MissingVariableError(
                f"no {role} coordinate found for variables with dims {var_dims} (looked for "
                f"{_LOOKED_FOR[role]}); variables present: {', '.join(map(str, ds.variables))}",
                source=uri, fix=f"name it in the recipe: coordinates: {{{role}: <variable>}}")
    return found
