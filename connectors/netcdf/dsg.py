"""CF discrete sampling geometries (``netcdf_dsg``): point, timeSeries, trajectory, profile,
timeSeriesProfile and trajectoryProfile netCDF files, flattened to one row per observation.

Two layouts cover every CF DSG representation (CF 1.11 chapter 9):

* **multidim** -- orthogonal or incomplete multidimensional arrays, and flat one-dimensional
  tables (ERDDAP ``row`` tables, OOI ``point`` files). The observation variables share a tuple of
  dimensions; every coordinate (time, lat, lon, depth, ids) lives on a subset of them and is
  broadcast to the observation shape with numpy, then raveled. Chunks slice the first dimension.
* **ragged** -- contiguous (a count variable with ``sample_dimension``) and indexed (an index
  variable with ``instance_dimension``) ragged arrays, and their two-level combinations. Instance
  variables are expanded to observations by composed index maps (``np.repeat`` of counts, and
  ``take`` of parent indices). A ragged file is read as one chunk, since an observation slice would
  need the counts of everything before it.

Coordinates are chosen by CF evidence, not file order (:mod:`connectors.netcdf.cf_coords`): a
per-sample time beats a profile's nominal time, and the plan lists the candidates it saw.

Padding cells of incomplete arrays carry no observation: every variable missing and no time, or
no coordinate that varies per observation (the fill-padded levels of a 2-D depth). They are
dropped and counted in ``rows_dropped`` (:func:`connectors.base.padding`, the rule of every
kind). Observations that have values but no valid time go to quarantine as ``missing_time``;
``position`` is the 0-based flat observation index in the file.

Profile files (profile, timeSeriesProfile, trajectoryProfile) always have a ``profile_id``: the
``cf_role=profile_id`` variable, else the profile's 0-based position in the file, so that two
casts with equal times and depths stay apart.

Times are decoded by the one CF decoder, :mod:`connectors.cf_time`, in every CF calendar.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from connectors import cf_time, geo, integrity
from connectors import units as cu
from connectors.base import (
    ChunkResult,
    ChunkSpec,
    ColumnInfo,
    Connector,
    SourcePlan,
    check_column_names,
    padding,
)
from connectors.config import SourceConfig, VariableMapping
from connectors.exceptions import (
    MissingVariableError,
    SourceNotFoundError,
    UnreadableSourceError,
)
from connectors.netcdf import cf_coords as cf
from connectors.netcdf import files as netcdf_files
from connectors.netcdf.decoding import (
    build_schema,
    coordinate_infos,
    decode_strings,
    local_path,
    masked_int8,
    qc_column_info,
    qc_to_int8,
    to_arrow,
    variable_column,
)
from connectors.pressure import METHOD as PRESSURE_METHOD
from connectors.pressure import pressure_to_depth
from connectors.quarantine import Quarantine

FeatureType = Literal["point", "timeSeries", "trajectory", "profile", "timeSeriesProfile",
                      "trajectoryProfile"]
FEATURE_TYPES: tuple[str, ...] = get_args(FeatureType)
_PROFILE_TYPES = {"profile", "timeSeriesProfile", "trajectoryProfile"}
#: which cf_role names the platform, best first (a profile id is only a fallback)
_PLATFORM_ROLES = ("timeseries_id", "trajectory_id")
#: how a recipe makes a variable one of the coordinate columns (for the column-name clash error)
_COORDINATE_HINTS = {
    "time": "set time_variable: {source}",
    "depth": "set depth_variable: {source} (a pressure: pressure_variable: {source} with "
             "pressure_to_depth: true)",
    "latitude": "set latitude_variable: {source}", "longitude": "set longitude_variable: {source}",
    "platform_id": "set platform_id_variable: {source}",
}


class DsgConfig(SourceConfig):
    """Recipe entry of kind ``netcdf_dsg``; every ``*_variable`` key overrides auto-detection."""

    kind: Literal["netcdf_dsg"] = "netcdf_dsg"
    feature_type: FeatureType | None = Field(
        default=None,
        description="overrides the global featureType (missing, or wrong like OOI's `point` "
                    "mooring)")
    time_variable: str | None = Field(
        default=None,
        description="the time variable (default: found by its CF attributes)",
        examples=["TIME"])
    latitude_variable: str | None = Field(
        default=None,
        description="the latitude variable (default: found by its CF attributes)",
        examples=["LATITUDE"])
    longitude_variable: str | None = Field(
        default=None,
        description="the longitude variable (default: found by its CF attributes)",
        examples=["LONGITUDE"])
    depth_variable: str | None = Field(
        default=None,
        description="the depth variable (default: found by its CF attributes)",
        examples=["DEPTH"])
    pressure_variable: str | None = Field(
        default=None,
        description="the sea pressure variable, used with pressure_to_depth",
        examples=["PRES"])
    pressure_to_depth: bool = Field(
        default=False,
        description="derive depth from pressure and latitude (UNESCO 1983) instead of a depth "
                    "variable")
    platform_id: str | None = Field(
        default=None,
        description="a literal platform id for files that carry none (no cf_role variable)",
        examples=["CE02SHSM"])
    platform_id_variable: str | None = Field(
        default=None,
        description="the variable holding the platform id (default: the cf_role variable)",
        examples=["station_name"])
    max_chunk_rows: int = Field(
        default=1_000_000, ge=1,
        description="multidimensional files are sliced along their first dimension into chunks "
                    "of about this many observations",
        examples=[250000])

    @field_validator("feature_type", mode="before")
    @classmethod
    def _case_insensitive(cls, value):
        if isinstance(value, str):
            return _feature_type(value) or value
        return value


def _feature_type(text: str | None) -> str | None:
    lookup = {f.lower(): f for f in FEATURE_TYPES}
    return lookup.get((text or "").strip().lower())


# ------------------------------------------------------------------ resolving a file


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What a file and its recipe entry resolve to: read by plan() and again by read()."""

    layout: str                 # "multidim" | "ragged"
    obs_dims: tuple[str, ...]
    feature_type: str | None
    time: str
    latitude: str
    longitude: str
    depth: str | None           # depth variable, or pressure variable when from_pressure
    from_pressure: bool
    depth_conversion: cu.Conversion | None
    depth_sign: float
    platform: str | None        # variable holding the platform id
    profile: str | None         # variable holding the profile id
    variables: tuple[tuple[str, str | None, cu.Conversion, str], ...]  # var, qc var, conv, dtype
    columns: tuple[tuple[ColumnInfo, pa.DataType], ...]
    #: profile types without a profile_id variable: profiles are numbered along this dimension
    profile_dim: str | None = None
    #: coordinates with one value per observation: a padded cell has none of them (see _finish)
    sample_coordinates: tuple[str, ...] = ()
    #: (role, ranked candidates) where the file had more than one, and a note for each
    candidates: tuple[tuple[str, tuple[str, ...]], ...] = ()
    notes: tuple[str, ...] = ()


@contextlib.contextmanager
def _open(uri: str):
    """The file as an xarray dataset whose netCDF calls run under the process-wide HDF5 lock."""
    path = local_path(uri)
    try:
        ds = netcdf_files.open_xarray(path, decode_times=False, mask_and_scale=True)
    except FileNotFoundError as err:
        raise SourceNotFoundError(f"netCDF file {path!r} does not exist", source=uri,
                                  fix="check the recipe uri (relative to the recipe file)") from err
    except (OSError, ValueError) as err:
        raise UnreadableSourceError(f"cannot open {path!r} as netCDF: {err}", source=uri,
                                    fix="check the file is netCDF-3/4 and not truncated") from err
    try:
        yield ds
    finally:
        netcdf_files.close(ds)


def _cf_role(ds, roles) -> str | None:
    for role in roles:
        for name, var in ds.variables.items():
            if var.attrs.get("cf_role") == role:
                return str(name)
    return None


def _layout(ds) -> str:
    for var in ds.variables.values():
        if "sample_dimension" in var.attrs or "instance_dimension" in var.attrs:
            return "ragged"
    return "multidim"


def _obs_dims(ds, variables, time_var, uri) -> tuple[str, ...]:
    """Observation dimensions: those of the first variable; all others must match."""
    candidates = list(variables) or [time_var]
    dims = tuple(ds[candidates[0]].dims)
    ragged_obs = [v.attrs["sample_dimension"] for v in ds.variables.values()
                  if "sample_dimension" in v.attrs]
    if ragged_obs:
        dims = (ragged_obs[0],)
    for var in candidates:
        if tuple(ds[var].dims) != dims:
            raise UnreadableSourceError(
                f"variable {var!r} has dimensions {tuple(ds[var].dims)} but the observations "
                f"are on {dims}", source=uri,
                fix="list in variables: only variables on the observation dimensions")
    return dims


def _auto_variables(ds, exclude: set[str]) -> dict[str, VariableMapping]:
    """Float data variables with a canonical standard name, on the observation dimensions (the
    most dimensions any of them has), one per output column.

    When two variables give the same column (``temp`` and ``temp_adjusted``) the shorter name wins;
    recipes pick the other explicitly.
    """
    candidates = [str(n) for n, v in ds.data_vars.items()
                  if str(n) not in exclude and v.dtype.kind == "f"
                  and cu.canonical_name(v.attrs.get("standard_name"))]
    if not candidates:
        return {}
    obs_dims = max((tuple(ds[n].dims) for n in candidates), key=len)
    chosen: dict[str, str] = {}
    for name in sorted(candidates, key=lambda n: (len(n), n)):
        column = cu.canonical_name(ds[name].attrs.get("standard_name"))
        if column is not None and tuple(ds[name].dims) == obs_dims and column not in chosen:
            chosen[column] = name
    return {name: VariableMapping() for name in sorted(chosen.values())}


def _qc_variable(ds, var: str) -> str | None:
    """The 0-9 flag variable of ``var``: from ancillary_variables, else ``<var>_QC``/``_qc``."""
    for token in re.split(r"[\s,]+", str(ds[var].attrs.get("ancillary_variables", ""))):
        if token in ds.variables and token != var:
            attrs = ds[token].attrs
            if "flag_values" in attrs or "flag_meanings" in attrs or token.lower() == \
                    f"{var.lower()}_qc":
                return token
    for name in (f"{var}_QC", f"{var}_qc"):
        if name in ds.variables:
            return name
    return None


def resolve(ds, config: DsgConfig, uri: str) -> Resolved:
    """Coordinates, variables, ids and output columns of one file for one recipe entry."""
    for var in config.variables:
        if var not in ds.variables:
            raise MissingVariableError(
                f"variables: {var!r} is not in the file (variables: "
                f"{', '.join(sorted(map(str, ds.data_vars)))})", source=uri,
                fix="fix the name under variables: (names are case-sensitive)")
    ragged = _layout(ds) == "ragged"
    hint = cf.observation_dims_hint(ds, list(config.variables))
    choices = {
        "time": cf.choose(ds, cf.TIME, config.time_variable, hint, ragged, uri),
        "latitude": cf.choose(ds, cf.LATITUDE, config.latitude_variable, hint, ragged, uri),
        "longitude": cf.choose(ds, cf.LONGITUDE, config.longitude_variable, hint, ragged, uri),
    }
    # required roles: chosen, or cf.choose raised
    time, lat, lon = (str(choices[r].variable) for r in ("time", "latitude", "longitude"))
    depth_role, depth_choice = _depth_choice(ds, config, hint, ragged, uri)
    choices[depth_role.name] = depth_choice
    depth = depth_choice.variable
    conv, sign = _depth_transform(ds, depth, config.pressure_to_depth, uri)
    mappings = dict(config.variables) or _auto_variables(ds, {time, lat, lon, depth or ""})
    obs_dims = _obs_dims(ds, list(mappings), time, uri)
    platform = config.platform_id_variable or _cf_role(ds, _PLATFORM_ROLES)
    profile = _cf_role(ds, ("profile_id",))
    if platform is None and profile is not None and config.platform_id is None:
        platform = profile
    ftype = config.feature_type or _feature_type(ds.attrs.get("featureType"))
    profile_dim = None
    if profile is None and ftype in _PROFILE_TYPES:
        profile_dim = cf.profile_dimension(ds, obs_dims, ragged)
    variables, columns = _variable_columns(ds, mappings, uri)
    coords = coordinate_infos(
        depth, None if depth is None else ds[depth].attrs.get("units"),
        _depth_description(config.pressure_to_depth, conv, sign) if depth else None,
        time, ds[time].attrs.get("units"), lat, lon, calendar=ds[time].attrs.get("calendar"),
        uri=uri)
    extras = [(ColumnInfo("platform_id", "id", source_name=platform or None,
                          long_name="platform (station, float, trajectory) identifier"),
               pa.string())]
    if profile is not None:
        extras.append((ColumnInfo("profile_id", "id", source_name=profile), pa.string()))
    elif profile_dim is not None:
        extras.append((ColumnInfo(
            "profile_id", "id", source_name=f"index along {profile_dim}",
            long_name="0-based position of the profile in the file (no cf_role=profile_id "
                      "variable)"), pa.string()))
    extras.append((ColumnInfo("source_file", "source"), pa.string()))
    sample = tuple(c for c in (time, depth, lat, lon)
                   if c is not None and cf.per_sample(ds, c, obs_dims, ragged))
    roles = {"time": cf.TIME, "latitude": cf.LATITUDE, "longitude": cf.LONGITUDE,
             depth_role.name: depth_role}
    notes = tuple(n for r, c in choices.items()
                  if (n := cf.note(ds, roles[r], c, obs_dims, ragged)))
    return Resolved(_layout(ds), obs_dims, ftype, time, lat, lon, depth,
                    config.pressure_to_depth, conv, sign, platform, profile, tuple(variables),
                    tuple(coords + columns + extras), profile_dim, sample,
                    tuple((r, c.candidates) for r, c in choices.items() if c.candidates), notes)


def _depth_choice(ds, config: DsgConfig, hint, ragged, uri) -> tuple[cf.Role, cf.Choice]:
    if config.pressure_to_depth:
        return cf.PRESSURE, cf.choose(ds, cf.PRESSURE, config.pressure_variable, hint, ragged,
                                      uri)
    return cf.DEPTH, cf.choose(ds, cf.DEPTH, config.depth_variable, hint, ragged, uri,
                               required=False)


def _depth_transform(ds, var: str | None, from_pressure: bool, uri: str):
    """The unit conversion to dbar (pressure) or metres, and the sign that makes depth positive
    down; a pressure variable found where a depth was expected is refused."""
    if var is None:
        return None, 1.0
    attrs = ds[var].attrs
    if from_pressure:
        return cu.conversion(attrs.get("units"), "dbar", variable=var, source=uri), 1.0
    if attrs.get("standard_name") == "sea_water_pressure" or \
            cu._normalise(str(attrs.get("units", ""))) in {"dbar", "hPa", "Pa", "bar"}:
        raise UnreadableSourceError(
            f"depth variable {var!r} is a pressure ({attrs.get('units')!r})", source=uri,
            fix="set pressure_to_depth: true (and pressure_variable:) in the recipe")
    up = attrs.get("positive", "down").lower() == "up" or \
        attrs.get("standard_name") in ("altitude", "height")
    return cu.conversion(attrs.get("units"), "m", variable=var, source=uri), \
        -1.0 if up else 1.0


def _depth_description(from_pressure, conv, sign) -> str:
    if from_pressure:
        return f"{PRESSURE_METHOD}; pressure {conv.description}"
    return conv.description + ("; sign flipped (positive up in the file)" if sign < 0 else "")


def _variable_columns(ds, mappings, uri):
    """Value and flag columns; names clashing with each other or a coordinate are refused by
    :func:`connectors.base.check_column_names` in :meth:`DiscreteSamplingNetCDF.plan`."""
    variables, values, flags = [], [], []
    for var, mapping in mappings.items():
        info, conv = variable_column(var, mapping, ds[var].attrs, source=uri)
        qc = _qc_variable(ds, var)
        variables.append((var, qc, conv, mapping.dtype))
        values.append((info, pa.float32() if mapping.dtype == "float32" else pa.float64()))
        flags.append((qc_column_info(info.name, qc), pa.int8()))
    return variables, values + flags


# ------------------------------------------------------------------ reading


def plan_chunks(layout: str, sizes: dict, obs_dims, max_rows: int):
    """``(dim, start, stop)`` slices: multidim files along their first dimension, ragged whole."""
    if layout == "ragged" or not obs_dims:
        return [(None, 0, -1)]
    first, inner = obs_dims[0], math.prod(sizes[d] for d in obs_dims[1:])
    step = max(1, max_rows // max(inner, 1))
    n = sizes[first]
    return [(first, start, min(start + step, n)) for start in range(0, max(n, 1), step)]


def _multidim_expander(ds, obs_dims):
    shape = tuple(ds.sizes[d] for d in obs_dims)

    def expand(name: str) -> np.ndarray:
        var = ds[name]
        extra = [d for d in var.dims if d not in obs_dims]
        if extra:
            raise UnreadableSourceError(
                f"variable {name!r} has dimensions {extra} that observations do not have",
                source=ds.encoding.get("source"), fix="pick another variable in the recipe")
        order = [d for d in obs_dims if d in var.dims]
        with integrity.decoding(ds.encoding.get("source", ""), f"variable {name!r}"):
            arr = np.asarray(var.transpose(*order).values)
        index = tuple(slice(None) if d in var.dims else np.newaxis for d in obs_dims)
        return np.broadcast_to(arr[index] if arr.ndim else arr, shape).ravel()
    return expand, math.prod(shape)


def ragged_maps(ds, obs_dim: str) -> dict[str, np.ndarray]:
    """For every instance dimension, the instance index of each observation (-1 = none)."""
    n_obs = ds.sizes[obs_dim]
    maps: dict[str, np.ndarray] = {}
    for name, var in ds.variables.items():
        if "sample_dimension" in var.attrs:
            counts = np.nan_to_num(np.asarray(var.values, dtype=np.float64)).astype(np.int64)
            if counts.sum() != n_obs:
                raise UnreadableSourceError(
                    f"count variable {name!r} sums to {counts.sum()} but dimension {obs_dim!r} "
                    f"has {n_obs} observations", source=ds.encoding.get("source"),
                    fix="the file is truncated or its counts are wrong")
            maps[var.dims[0]] = np.repeat(np.arange(counts.size), counts)
    for var in ds.variables.values():
        if "instance_dimension" in var.attrs:
            index = np.nan_to_num(np.asarray(var.values, dtype=np.float64), nan=-1).astype(np.int64)
            parent = var.dims[0]
            via = np.arange(n_obs) if parent == obs_dim else maps.get(parent)
            if via is not None:
                maps[var.attrs["instance_dimension"]] = np.where(via >= 0, index[via], -1)
    return maps


def _ragged_expander(ds, obs_dim):
    maps = ragged_maps(ds, obs_dim)
    n = ds.sizes[obs_dim]

    def expand(name: str) -> np.ndarray:
        var = ds[name]
        with integrity.decoding(ds.encoding.get("source", ""), f"variable {name!r}"):
            arr = np.asarray(var.values)
        if var.ndim == 0:
            return np.broadcast_to(arr, (n,))
        if var.dims == (obs_dim,):
            return arr
        if var.ndim == 1 and var.dims[0] in maps:
            index = maps[var.dims[0]]
            out = arr[np.clip(index, 0, None)]
            if (index < 0).any():
                out = out.astype(object if arr.dtype.kind in "OSU" else np.float64)
                out[index < 0] = None if out.dtype == object else np.nan
            return out
        raise UnreadableSourceError(
            f"variable {name!r} on {var.dims} cannot be mapped to observations on {obs_dim!r}",
            source=ds.encoding.get("source"), fix="pick another variable in the recipe")
    return expand, n


def read_observations(ds, res: Resolved, config: DsgConfig, uri: str, offset: int) -> ChunkResult:
    """Flatten one (already sliced) dataset to the canonical table."""
    if res.layout == "ragged":
        expand, n = _ragged_expander(ds, res.obs_dims[0])
    else:
        expand, n = _multidim_expander(ds, res.obs_dims)
    t = ds[res.time]
    time = cf_time.decode_variable(expand(res.time), t.attrs.get("units"), t.attrs.get("calendar"),
                                   variable=res.time, source=uri)
    lat = np.asarray(expand(res.latitude), dtype=np.float64)
    cols: dict[str, Any] = {"time": time, "latitude": lat,
                            "longitude": geo.longitude(expand(res.longitude)),
                            "depth": _depth(expand, res, lat, n)}
    any_value = np.zeros(n, dtype=bool)
    # the value columns follow the 4 coordinates; flag and id columns come after (not zipped)
    for (var, qc, conv, dtype), (info, _) in zip(res.variables, res.columns[4:], strict=False):
        values = conv.apply(np.asarray(expand(var), dtype=dtype))
        any_value |= ~np.isnan(values)  # inf is a (bad) value: kept, QC FAILs it
        cols[info.name] = values
        codes, missing = qc_to_int8(expand(qc)) if qc else (np.zeros(n, np.int8), np.ones(n, bool))
        cols[f"{info.name}_qc_source"] = masked_int8(codes, missing)
    cols["platform_id"] = _ids(expand, res.platform, config.platform_id, ds, n)
    if res.profile is not None:
        cols["profile_id"] = _ids(expand, res.profile, None, ds, n)
    elif res.profile_dim is not None:
        cols["profile_id"] = _profile_numbers(ds, res, n, offset)
    cols["source_file"] = np.full(n, uri, dtype=object)
    located = np.zeros(n, dtype=bool) if res.sample_coordinates else np.ones(n, dtype=bool)
    for name in res.sample_coordinates:
        values = expand(name)
        located |= ~np.isnat(time) if name == res.time else ~pd.isna(values)
    return _finish(cols, res, time, any_value, located, uri, offset)


def _profile_numbers(ds, res: Resolved, n: int, offset: int) -> np.ndarray:
    """The file-wide 0-based profile number of each observation, as text (the profile_id of
    profile files without a cf_role=profile_id variable), so that two casts with equal times
    and depths stay apart."""
    if res.layout == "ragged":
        index = ragged_maps(ds, res.obs_dims[0]).get(res.profile_dim or "")
        if index is None:
            return np.full(n, None, dtype=object)
    else:  # cells are in C order over obs_dims: the profile is the flat index over all but the last
        index = (offset + np.arange(n)) // ds.sizes[res.obs_dims[-1]]
    out = index.astype(str).astype(object)
    out[index < 0] = None
    return out


def _depth(expand, res: Resolved, lat, n) -> np.ndarray:
    if res.depth is None or res.depth_conversion is None:
        return np.full(n, np.nan)
    values = res.depth_conversion.apply(np.asarray(expand(res.depth), dtype=np.float64))
    if res.from_pressure:
        return pressure_to_depth(values, lat)
    return values * res.depth_sign


def _ids(expand, var, literal, ds, n) -> np.ndarray:
    if literal is not None:
        return np.full(n, literal, dtype=object)
    if var is None:
        code = ds.attrs.get("platform_code")
        return np.full(n, str(code).strip() if code else None, dtype=object)
    values = expand(var)
    if values.dtype.kind == "f":  # ids stored as numbers (cycle numbers): print as integers
        out = np.array([None] * n, dtype=object)
        ok = np.isfinite(values)
        out[ok] = values[ok].astype(np.int64).astype(str)
        return out
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    return decode_strings(values)


def _finish(cols, res: Resolved, time, any_value, located, uri, offset) -> ChunkResult:
    """Padding (no value, and neither a time nor any per-observation coordinate: the fill cells
    of incomplete arrays) is dropped and counted; observations with values but no time are
    quarantined; the rest are rows."""
    n = time.size
    no_time = np.isnat(time)
    dropped = padding(any_value, located & ~no_time)
    bad = no_time & any_value
    keep = ~no_time & ~dropped
    table = pa.table([to_arrow(_take(cols[info.name], keep), dtype)
                      for info, dtype in res.columns], schema=build_schema(list(res.columns)))
    quarantine = Quarantine(uri)
    quarantine.add("missing_time", f"time variable {res.time!r} is missing (fill) at an "
                   "observation that has values", np.flatnonzero(bad) + offset)
    if res.layout == "multidim" and res.profile is not None and len(res.obs_dims) == 1 \
            and res.feature_type in _PROFILE_TYPES:
        table = regroup_profiles(table)
    return ChunkResult(table=table, rows_in=n, rows_dropped=int(dropped.sum()),
                       quarantine=quarantine.table())


def _take(values, keep: np.ndarray):
    if isinstance(values, pa.Array):
        return values.filter(pa.array(keep))
    return np.asarray(values)[keep]


def regroup_profiles(table: pa.Table) -> pa.Table:
    """Make each profile's rows contiguous in a flat table (stable, one vectorised sort).

    ERDDAP tables are ordered by whatever the query said (time, pres); profiles are the rows
    sharing ``platform_id`` + ``profile_id``, ordered by their first appearance.
    """
    keys = pc.binary_join_element_wise(table["platform_id"].fill_null(""),
                                       table["profile_id"].fill_null(""), "\x1f")
    first = pc.index_in(keys, value_set=pc.unique(keys))
    order = np.lexsort((np.arange(table.num_rows), first.to_numpy(zero_copy_only=False)))
    return table.take(pa.array(order))


class DiscreteSamplingNetCDF(Connector):
    """CF discrete sampling geometry netCDF (point, timeSeries, profile, trajectory) to rows."""

    kind = "netcdf_dsg"
    config_model = DsgConfig

    @integrity.guarded_plan
    def plan(self, config: DsgConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        with _open(uri) as ds:
            res = resolve(ds, config, uri)
            sizes = dict(ds.sizes)
            attrs = {k: ds.attrs.get(k) for k in ("title", "institution", "license", "featureType",
                                                  "id", "platform_code") if k in ds.attrs}
        chunks = tuple(
            ChunkSpec(source_index=0, uri=uri, sha256=sha256, ordinal=i, dim=dim, start=a, stop=b)
            for i, (dim, a, b) in enumerate(plan_chunks(res.layout, sizes, res.obs_dims,
                                                       config.max_chunk_rows)))
        attrs.update(feature_type=res.feature_type, layout=res.layout,
                     observation_dims=list(res.obs_dims))
        attrs.update({f"{role}_candidates": list(names) for role, names in res.candidates})
        if res.notes:
            attrs["notes"] = list(res.notes)
        schema = build_schema(list(res.columns))
        check_column_names(schema, uri, hints=_COORDINATE_HINTS)
        return SourcePlan(uri=uri, sha256=sha256, size=size, schema=schema,
                          columns=tuple(info for info, _ in res.columns), chunks=chunks,
                          attributes=attrs)

    @integrity.guarded_read
    def read(self, config: DsgConfig, chunk: ChunkSpec, plan_schema: pa.Schema) -> ChunkResult:
        with _open(chunk.uri) as ds:
            res = resolve(ds, config, chunk.uri)
            offset = 0
            if chunk.dim is not None:
                inner = math.prod(ds.sizes[d] for d in res.obs_dims[1:])
                offset = chunk.start * inner
                ds = ds.isel({chunk.dim: slice(chunk.start, chunk.stop)})
            result = read_observations(ds, res, config, chunk.uri, offset)
        result.table = result.table.cast(plan_schema)
        return result
