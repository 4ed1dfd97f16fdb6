"""Argo GDAC profile files (``argo``): core single- and multi-profile files and BGC synthetic
(S) profiles, one row per observed level.

Files are NetCDF-3 with fixed-width ``char`` arrays, read with netCDF4 (xarray would join the
``N_LEVELS`` axis of single-char QC arrays into strings). Per profile and parameter the value is
``<PARAM>_ADJUSTED`` where the data mode is ``D`` or ``A`` -- missing if the adjusted value is
fill, never the raw value the delayed-mode operator rejected -- else the raw value;
``<column>_qc_source`` comes from the matching ``*_QC`` (see :func:`select_values`). Data modes
come from ``DATA_MODE`` (core files) or ``PARAMETER_DATA_MODE`` (S-files; the profile's
``data_mode`` column is then the least-processed of its parameters, R < A < D). Values outside
a variable's ``valid_min``/``valid_max`` are kept (QC judges them); only fill is missing.

Accounting: ``rows_in = N_PROF x N_LEVELS`` of the chunk. Fill-padded levels (every parameter of
the file missing, raw and adjusted) are not observations -- the rectangular array pads short
profiles -- so they are ``rows_dropped``, like grid fill cells. Levels that hold values but whose
profile has no valid ``JULD`` are quarantined as ``missing_time``; ``position`` is the 0-based flat
index ``profile * N_LEVELS + level`` in the file.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from netCDF4 import default_fillvals
from pydantic import Field

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
from connectors.exceptions import MissingVariableError, SourceNotFoundError, UnreadableSourceError
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


class ArgoConfig(SourceConfig):
    """Recipe entry of kind ``argo``. ``variables`` (optional) selects and renames parameters
    (``PRES``, ``TEMP``, ``PSAL``, ``DOXY`` ...); by default every parameter of the file is read."""

    kind: Literal["argo"] = "argo"
    prefer_adjusted: bool = Field(
        default=True,
        description="use `*_ADJUSTED` values (and flags) where the data mode is D or A; false: "
                    "raw everywhere")
    pressure_to_depth: bool = Field(
        default=True,
        description="depth from (adjusted) PRES and latitude, UNESCO 1983; false leaves depth "
                    "null")
    profiles_per_chunk: int = Field(
        default=500, ge=1,
        description="profiles read per chunk",
        examples=[100])


@dataclasses.dataclass(frozen=True)
class ArgoLayout:
    """What plan() and read() both derive from a file's metadata."""

    parameters: tuple[str, ...]                  # every parameter on (N_PROF, N_LEVELS)
    selected: tuple[tuple[str, VariableMapping], ...]
    conversions: tuple[cu.Conversion, ...]
    grades: tuple[tuple[str, str], ...]          # (PROFILE_<P>_QC variable, output column)
    columns: tuple[tuple[ColumnInfo, pa.DataType], ...]


@contextlib.contextmanager
def _open(uri: str):
    """The file as a ``netCDF4.Dataset``, used entirely under the process-wide HDF5 lock (this
    connector calls the netCDF4 API directly throughout, so its reads are serialised)."""
    path = local_path(uri)
    with netcdf_files.HDF5_LOCK:
        try:
            ds = netcdf_files.open_netcdf4(path)
        except FileNotFoundError as err:
            raise SourceNotFoundError(f"Argo file {path!r} does not exist", source=uri,
                                      fix="check the recipe uri (relative to the recipe file)"
                                      ) from err
        except OSError as err:
            raise UnreadableSourceError(f"cannot open {path!r} as netCDF: {err}", source=uri,
                                        fix="check the file is an Argo GDAC netCDF file") from err
        try:
            # no automatic masking: netCDF4 would also hide every value outside the file's
            # valid_min/valid_max (TEMP 45 degC, LONGITUDE 400) -- implausible values that QC
            # must see, not delete. Fill values are masked explicitly by _level_values.
            ds.set_auto_mask(False)
            yield ds
        finally:
            ds.close()


def char_rows(var, rows=slice(None)) -> np.ndarray:
    """A ``char`` array (..., STRLEN) -> stripped strings (...), None where blank."""
    arr = np.ascontiguousarray(np.ma.filled(var[rows], b" ").astype("S1"))
    joined = arr.view(f"S{arr.shape[-1]}")[..., 0] if arr.ndim else arr
    return decode_strings(joined)


def _attrs(var) -> dict:
    return {k: var.getncattr(k) for k in var.ncattrs()}


def _parameters(ds) -> tuple[str, ...]:
    """Parameters measured on levels: STATION_PARAMETERS, kept where a (N_PROF, N_LEVELS)
    variable of that name exists, in order of first appearance."""
    names = char_rows(ds["STATION_PARAMETERS"]).ravel()
    seen = dict.fromkeys(n for n in names if n)
    return tuple(n for n in seen if n in ds.variables
                 and ds[n].dimensions == ("N_PROF", "N_LEVELS"))


def layout(ds, config: ArgoConfig, uri: str) -> ArgoLayout:
    for required in ("JULD", "LATITUDE", "LONGITUDE", "PLATFORM_NUMBER", "CYCLE_NUMBER",
                     "STATION_PARAMETERS"):
        if required not in ds.variables:
            raise UnreadableSourceError(
                f"variable {required!r} is missing: not an Argo GDAC profile file", source=uri,
                fix="use kind: netcdf_dsg for other CF profile files")
    params = _parameters(ds)
    selected = tuple(config.variables.items()) or tuple((p, VariableMapping()) for p in params)
    infos, flags, grades, convs = [], [], [], []
    for param, mapping in selected:
        if param not in params:
            raise MissingVariableError(
                f"variables: parameter {param!r} is not in the file (parameters: "
                f"{', '.join(params)})", source=uri, fix="fix the name under variables:")
        info, conv = variable_column(param, mapping, _attrs(ds[param]), source=uri)
        infos.append((info, pa.float32() if mapping.dtype == "float32" else pa.float64()))
        convs.append(conv)
        flags.append((qc_column_info(info.name, f"{param}_QC / {param}_ADJUSTED_QC"), pa.int8()))
        if f"PROFILE_{param}_QC" in ds.variables:
            grades.append((f"PROFILE_{param}_QC", f"profile_{info.name}_grade"))
    pres_units = _attrs(ds["PRES"]).get("units") if "PRES" in ds.variables else None
    depth_note = (f"{PRESSURE_METHOD}; from PRES_ADJUSTED where used, else PRES"
                  if config.pressure_to_depth else None)
    coords = coordinate_infos("PRES" if config.pressure_to_depth else None, pres_units,
                              depth_note, "JULD", _attrs(ds["JULD"]).get("units"), "LATITUDE",
                              "LONGITUDE", calendar=_attrs(ds["JULD"]).get("calendar"), uri=uri)
    grade_cols = [(ColumnInfo(col, "flag", source_name=var,
                              long_name="Argo profile grade (A-F, reference table 2a)"),
                   pa.string()) for var, col in grades]
    ids = [
        (ColumnInfo("platform_id", "id", source_name="PLATFORM_NUMBER"), pa.string()),
        (ColumnInfo("cycle_number", "id", source_name="CYCLE_NUMBER"), pa.int32()),
        (ColumnInfo("data_mode", "id", source_name="DATA_MODE",
                    long_name="R real time, A adjusted real time, D delayed mode"), pa.string()),
        (ColumnInfo("profile_index", "id", source_name="N_PROF",
                    long_name="0-based profile index in the file"), pa.int32()),
        (ColumnInfo("source_file", "source"), pa.string()),
    ]
    return ArgoLayout(params, selected, tuple(convs), tuple(grades),
                      tuple(coords + infos + flags + grade_cols + ids))


def parameter_modes(ds, rows: slice, params) -> dict[str, np.ndarray]:
    """Data mode (R/A/D, '' unknown) per profile for each parameter."""
    if "PARAMETER_DATA_MODE" in ds.variables:
        names = char_rows(ds["STATION_PARAMETERS"], rows)              # (n_prof, n_param)
        modes = np.ma.filled(ds["PARAMETER_DATA_MODE"][rows], b" ").astype("S1")
        modes = np.char.decode(modes, "ascii").astype(object)
        return {p: np.where((names == p).any(axis=1),
                            modes[np.arange(len(names)), (names == p).argmax(axis=1)], "")
                for p in params}
    if "DATA_MODE" not in ds.variables:  # no mode at all: treat as real time, raw values
        n = ds["JULD"][rows].size
        return {p: np.full(n, "", dtype=object) for p in params}
    profile = np.char.decode(np.ma.filled(ds["DATA_MODE"][rows], b" ").astype("S1"), "ascii")
    return {p: profile.astype(object) for p in params}


def profile_data_mode(ds, rows: slice, modes: dict[str, np.ndarray]) -> np.ndarray:
    """The profile's data mode: DATA_MODE, else the least processed of its parameters."""
    if "DATA_MODE" in ds.variables:
        return decode_strings(np.ma.filled(ds["DATA_MODE"][rows], b" ").astype("S1"))
    letters = np.array(["R", "A", "D", None], dtype=object)
    ranks = np.stack([np.select([m == "R", m == "A", m == "D"], [0, 1, 2], 3)
                      for m in modes.values()])
    return letters[ranks.min(axis=0)]


def select_values(raw, raw_qc, adjusted, adjusted_qc, mode, prefer_adjusted: bool):
    """The adjusted value and flag where the profile's mode is A/D, else the raw ones.

    All arrays are (n_prof, n_levels) except ``mode`` (n_prof,). Returns values (NaN missing),
    QC codes and QC-missing mask.

    In A/D mode the adjusted value *is* the data, missing or not: when the delayed-mode operator
    finds a value bad beyond correction, ``<PARAM>_ADJUSTED`` is fill with ``_ADJUSTED_QC`` '4'
    (Argo user's manual, delayed-mode procedures). Falling back to the raw value there would
    publish the value the operator rejected, under the raw flag (often 3): a plausible wrong value
    with a better flag. So the value stays missing and the adjusted flag is kept; only where the
    adjusted flag is blank is the raw flag used, so a source flag is never lost or improved.
    """
    raw_codes, raw_missing = qc_to_int8(raw_qc)
    if adjusted is None or not prefer_adjusted:
        return raw, raw_codes, raw_missing
    adj_codes, adj_missing = qc_to_int8(adjusted_qc)
    use = np.broadcast_to(np.isin(mode, ["A", "D"])[:, None], np.shape(raw))
    flag_from_adjusted = use & ~adj_missing
    return (np.where(use, adjusted, raw),
            np.where(flag_from_adjusted, adj_codes, raw_codes),
            np.where(flag_from_adjusted, adj_missing, raw_missing))


def _level_values(ds, name, rows) -> np.ndarray | None:
    """A numeric variable's rows as float64, NaN where the file says "no value" (``_FillValue``,
    else the netCDF default fill of its type, and ``missing_value``); every other value as is."""
    if name not in ds.variables:
        return None
    var = ds[name]
    with integrity.decoding(ds.filepath(), f"variable {name!r}"):
        values = np.asarray(var[rows]).astype(np.float64)
    attrs = var.ncattrs()
    given = [var.getncattr("_FillValue") if "_FillValue" in attrs
             else default_fillvals.get(var.dtype.str[1:])]
    if "missing_value" in attrs:
        given.append(var.getncattr("missing_value"))
    fills = np.concatenate([np.ravel(np.asarray(f, dtype=np.float64)) for f in given
                            if f is not None])
    values[np.isin(values, fills)] = np.nan
    return values


def _required_values(ds: Any, name: str, rows: slice) -> np.ndarray:
    """:func:`_level_values` of a variable every Argo profile file has."""
    values = _level_values(ds, name, rows)
    if values is None:
        raise MissingVariableError(f"Argo variable {name!r} is not in the file",
                                   source=ds.filepath(),
                                   fix="check that this is an Argo GDAC profile file")
    return values


def _qc(ds, name, rows, shape):
    if name in ds.variables:
        return ds[name][rows]
    return np.full(shape, b" ", dtype="S1")


def read_profiles(ds, lay: ArgoLayout, config: ArgoConfig, rows: slice, uri: str) -> ChunkResult:
    start = rows.start or 0
    juld = _required_values(ds, "JULD", rows)
    n_prof, n_lev = juld.size, ds.dimensions["N_LEVELS"].size
    modes = parameter_modes(ds, rows, lay.parameters)
    occupied = np.zeros((n_prof, n_lev), dtype=bool)
    for param in lay.parameters:  # padding = every parameter missing, raw and adjusted
        for name in (param, f"{param}_ADJUSTED"):
            values = _level_values(ds, name, rows)
            if values is not None:
                occupied |= ~np.isnan(values)  # an infinite value is a (bad) value
    juld_attrs = _attrs(ds["JULD"])
    time = cf_time.decode_variable(juld, juld_attrs.get("units"), juld_attrs.get("calendar"),
                                   variable="JULD", source=uri)
    lat = _required_values(ds, "LATITUDE", rows)
    per_level: dict[str, Any] = {"time": np.repeat(time, n_lev),
                 "latitude": np.repeat(lat, n_lev),
                 "longitude": np.repeat(
                     geo.longitude(_level_values(ds, "LONGITUDE", rows)), n_lev)}
    pres = None
    for (param, _), conv, (info, dtype) in zip(lay.selected, lay.conversions,
                                               lay.columns[4:4 + len(lay.selected)], strict=True):
        values, codes, missing = select_values(
            _level_values(ds, param, rows), _qc(ds, f"{param}_QC", rows, (n_prof, n_lev)),
            _level_values(ds, f"{param}_ADJUSTED", rows),
            _qc(ds, f"{param}_ADJUSTED_QC", rows, (n_prof, n_lev)), modes[param],
            config.prefer_adjusted)
        per_level[info.name] = conv.apply(values.astype(dtype.to_pandas_dtype())).ravel()
        per_level[f"{info.name}_qc_source"] = (codes.ravel(), missing.ravel())
        if param == "PRES":
            pres = values
    per_level["depth"] = _depth(ds, config, pres, lat, rows, modes).ravel()
    for var, col in lay.grades:
        per_level[col] = np.repeat(char_rows(ds[var], rows)
                                   if ds[var].ndim > 1 else decode_strings(
                                       np.ma.filled(ds[var][rows], b" ").astype("S1")), n_lev)
    cycle = _required_values(ds, "CYCLE_NUMBER", rows)
    per_level.update(
        platform_id=np.repeat(char_rows(ds["PLATFORM_NUMBER"], rows), n_lev),
        cycle_number=np.repeat(cycle, n_lev),
        data_mode=np.repeat(profile_data_mode(ds, rows, modes), n_lev),
        profile_index=np.repeat(np.arange(start, start + n_prof, dtype=np.int32), n_lev),
        source_file=np.full(n_prof * n_lev, uri, dtype=object))
    return _finish(per_level, lay, occupied.ravel(), start * n_lev, uri)


def _depth(ds, config, pres, lat, rows, modes) -> np.ndarray:
    """Depth from the selected pressure (adjusted where used); PRES read even if not selected."""
    if not config.pressure_to_depth or "PRES" not in ds.variables:
        return np.full(lat.size * ds.dimensions["N_LEVELS"].size, np.nan)
    if pres is None:
        n = (lat.size, ds.dimensions["N_LEVELS"].size)
        pres, _, _ = select_values(
            _level_values(ds, "PRES", rows), _qc(ds, "PRES_QC", rows, n),
            _level_values(ds, "PRES_ADJUSTED", rows), _qc(ds, "PRES_ADJUSTED_QC", rows, n),
            modes.get("PRES", np.full(lat.size, "")), config.prefer_adjusted)
    return pressure_to_depth(pres, lat[:, None])


def _finish(per_level, lay: ArgoLayout, occupied, offset, uri) -> ChunkResult:
    # PRES, the level's coordinate, is a parameter itself: "occupied" covers both halves of the
    # padding rule (no value, no sampled coordinate)
    dropped = padding(occupied, False)
    no_time = np.isnat(per_level["time"])
    keep = occupied & ~no_time
    bad = occupied & no_time
    arrays = []
    for info, dtype in lay.columns:
        values = per_level[info.name]
        if isinstance(values, tuple):  # (int8 codes, missing mask)
            arrays.append(masked_int8(values[0][keep], values[1][keep]))
        elif info.name == "cycle_number":
            arrays.append(pa.array(values[keep], type=pa.float64(), from_pandas=True)
                          .cast(pa.int32()))
        else:
            arrays.append(to_arrow(np.asarray(values)[keep], dtype))
    table = pa.table(arrays, schema=build_schema(list(lay.columns)))
    quarantine = Quarantine(uri)
    quarantine.add("missing_time", "JULD is missing (fill) for a profile level that has values",
                   np.flatnonzero(bad) + offset)
    return ChunkResult(table=table, rows_in=occupied.size,
                       rows_dropped=int(dropped.sum()), quarantine=quarantine.table())


class ArgoNetCDF(Connector):
    """Argo GDAC profile files (netCDF) to one row per profile level, adjusted values preferred."""

    kind = "argo"
    config_model = ArgoConfig

    @integrity.guarded_plan
    def plan(self, config: ArgoConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        with _open(uri) as ds:
            lay = layout(ds, config, uri)
            n_prof = ds.dimensions["N_PROF"].size
            attrs = {k: ds.getncattr(k) for k in ("title", "institution", "featureType",
                                                  "Conventions") if k in ds.ncattrs()}
        step = config.profiles_per_chunk
        chunks = tuple(ChunkSpec(source_index=0, uri=uri, sha256=sha256, ordinal=i, dim="N_PROF",
                                 start=a, stop=min(a + step, n_prof))
                       for i, a in enumerate(range(0, n_prof, step)))
        attrs.update(parameters=list(lay.parameters), n_prof=n_prof)
        schema = build_schema(list(lay.columns))
        check_column_names(schema, uri)
        return SourcePlan(uri=uri, sha256=sha256, size=size, schema=schema,
                          columns=tuple(info for info, _ in lay.columns), chunks=chunks,
                          attributes=attrs)

    @integrity.guarded_read
    def read(self, config: ArgoConfig, chunk: ChunkSpec, plan_schema: pa.Schema) -> ChunkResult:
        with _open(chunk.uri) as ds:
            lay = layout(ds, config, chunk.uri)
            stop = ds.dimensions["N_PROF"].size if chunk.stop < 0 else chunk.stop
            result = read_profiles(ds, lay, config, slice(chunk.start, stop), chunk.uri)
        result.table = result.table.cast(plan_schema)
        return result
