"""Gridded netCDF (kind ``netcdf_grid``): CF grids to long tables of observations.

``plan`` opens a file lazily, finds its coordinates by CF conventions, checks the recipe's
variables and units, and splits the grid into chunks along one dimension. ``read`` loads one
chunk's slab only (so files larger than memory work) and turns it into rows with numpy:

- rows are in the natural C order of ``(time, depth, y, x)``: time outermost;
- coordinate arrays are broadcast to the variable's shape, longitudes by the shared rule of
  :mod:`connectors.geo` (0-360 grids to [-180, 180); impossible values kept raw), depth
  converted to metres positive down, time decoded by :mod:`connectors.cf_time`;
- a cell where every variable is NaN/fill (land, radar gaps) is padding: dropped and counted in
  ``rows_dropped`` (grid axes place a cell but do not observe it, see
  :func:`connectors.base.padding`); in a kept row, a missing variable value is written as null
  and an infinite one is kept as a value (QC FAILs it).

Datasets are opened once per file and worker process (a small LRU cache), because a worker
usually reads many chunks of the same file in a row.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import zlib
from collections.abc import Iterator
from typing import Annotated, Literal

import numpy as np
import pyarrow as pa
import xarray as xr
from pydantic import Field

from connectors import cf_time, geo, integrity, units
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
    ConnectorError,
    DuplicateKeyError,
    IncompatibleSourceError,
    MissingVariableError,
    SourceNotFoundError,
    UnreadableSourceError,
)
from connectors.netcdf import cf_coords as cf
from connectors.netcdf import files as netcdf_files
from connectors.netcdf import h5direct

Role = Literal["time", "depth", "latitude", "longitude"]
TIME_TYPE = pa.timestamp("us", tz="UTC")
LINEAGE_ATTRIBUTES = ("title", "institution", "source", "license", "licence", "credit",
                      "Conventions", "references", "acknowledgement", "acknowledgment")
_UNREADABLE_FIX = "re-download it or remove it from the recipe's uri glob"


class GriddedConfig(SourceConfig):
    kind: Literal["netcdf_grid"]
    chunk_dim: str | None = Field(
        default=None,
        description="the dimension chunks are cut along (default: the time dim if its length > "
                    "1, else the outermost dim longer than 1)",
        examples=["depth"])
    chunk_size: Annotated[int, Field(gt=0)] | Literal["auto"] = Field(
        default="auto",
        description="indices along chunk_dim per chunk; 'auto' keeps a chunk under "
                    "target_chunk_cells cells",
        examples=[1])
    target_chunk_cells: int = Field(
        default=4_000_000, gt=0,
        description="with chunk_size auto, the most grid cells in one chunk",
        examples=[1000000])
    coordinates: dict[Role, str] = Field(
        default_factory=dict,
        description="explicit coordinate variable names where CF attributes can't find them",
        examples=[{"latitude": "nav_lat", "longitude": "nav_lon"}])
    depth_positive: Literal["auto", "down", "up"] = Field(
        default="auto",
        description="which way depth values point; auto: from the depth variable's `positive` "
                    "attribute / standard_name (height -> up)")


@dataclasses.dataclass(frozen=True)
class OutputVariable:
    source: str
    column: str
    dtype: str
    conversion: units.Conversion


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where everything is in one file, for one recipe entry (derived from metadata only)."""

    dims: tuple[str, ...]           # the variables' dims in output order (time, depth, y, x)
    squeeze: tuple[str, ...]        # length-1 dims with no coordinate, dropped
    variables: tuple[OutputVariable, ...]
    latitude: str
    longitude: str
    time: str | None
    depth: str | None
    depth_scale: float              # metres positive down = value * depth_scale + depth_offset
    depth_offset: float
    chunk_dim: str | None
    columns: tuple[ColumnInfo, ...]


# --------------------------------------------------------------------------- opening


def _path(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def _file_key(uri: str) -> tuple:
    """Cache key: a rewritten file (new mtime/size) or a forked worker gets a fresh handle."""
    path = _path(uri)
    if "://" in path:
        return (path, None, None, os.getpid())
    try:
        stat = os.stat(path)
    except FileNotFoundError as err:
        raise SourceNotFoundError("file not found", source=uri,
                                  fix="check the recipe's uri glob and that the file was not "
                                      "moved or deleted since planning") from err
    return (path, stat.st_mtime_ns, stat.st_size, os.getpid())


#: Files a worker keeps open between the chunks it reads (closed under the HDF5 lock, never by
#: the garbage collector: see :mod:`connectors.netcdf.files`).
_FILES = netcdf_files.OpenFiles(maxsize=4)


def _open(key: tuple, uri: str) -> xr.Dataset:
    try:
        # cache=False: a cached dataset must not keep every slab it ever served in memory.
        return netcdf_files.open_xarray(key[0], decode_times=False, mask_and_scale=True,
                                        decode_timedelta=False, cache=False)
    except (OSError, ValueError, RuntimeError, TypeError) as err:
        raise UnreadableSourceError(
            f"cannot open as netCDF (not netCDF, truncated or corrupt): {err}",
            source=uri, fix=_UNREADABLE_FIX) from err


@contextlib.contextmanager
def open_dataset(uri: str) -> Iterator[xr.Dataset]:
    """The lazily opened dataset for ``uri``, shared by the chunks a worker's threads read;
    inside the ``with`` block no other thread closes it."""
    key = _file_key(uri)
    with _FILES.use(key, lambda: _open(key, uri)) as ds:
        yield ds


def clear_cache() -> None:
    """Forget cached layouts and close the cached files (those in use close when released)."""
    _layout_cached.cache_clear()
    _FILES.clear()
    h5direct.clear_cache()


# --------------------------------------------------------------------------- variables


def _data_variables(ds: xr.Dataset) -> list[str]:
    return [str(name) for name in ds.data_vars]


def _default_variables(ds: xr.Dataset, uri: str) -> dict[str, VariableMapping]:
    """Every data variable whose standard_name is a canonical variable."""
    chosen = {name: VariableMapping() for name in _data_variables(ds)
              if units.canonical_name(cf.attr(ds.variables[name], "standard_name"))}
    if not chosen:
        listing = ", ".join(f"{n} (standard_name={cf.attr(ds.variables[n], 'standard_name')!r})"
                            for n in _data_variables(ds))
        raise MissingVariableError(
            f"no data variable has a known CF standard_name; data variables: {listing or 'none'}",
            source=uri,
            fix="list the variables in the recipe, e.g. variables: {temp: {name: "
                "sea_water_temperature, standard_name: sea_water_temperature, units: degC}}")
    return chosen


def _check_present(ds: xr.Dataset, names, uri: str) -> None:
    for name in names:
        if name not in ds.variables:
            raise MissingVariableError(
                f"variable {name!r} named in the recipe is not in the file; data variables "
                f"present: {', '.join(_data_variables(ds)) or 'none'}",
                source=uri,
                fix=f"correct the recipe key sources[].variables.{name} to one of the variables "
                    f"present, or remove it")


def _output_variable(ds, name: str, mapping: VariableMapping, uri: str):
    var = ds.variables[name]
    standard_name = mapping.standard_name or cf.attr(var, "standard_name") or None
    canonical = units.canonical_name(standard_name) or units.canonical_name(mapping.name)
    column = mapping.name or canonical or standard_name or name.lower()
    source_units = mapping.units or cf.attr(var, "units") or None
    target = units.canonical_units(canonical) if canonical else None
    conversion = units.column_conversion(source_units, target, mapping.units_to, variable=name,
                                         source=uri)
    info = ColumnInfo(column, "variable", units=conversion.target_units or None,
                      standard_name=standard_name, long_name=cf.attr(var, "long_name") or None,
                      source_name=name, source_units=source_units,
                      conversion=conversion.description)
    return OutputVariable(name, column, mapping.dtype, conversion), info


def _same_grid(ds, names, uri) -> tuple[str, ...]:
    dims = {name: ds.variables[name].dims for name in names}
    first = dims[names[0]]
    odd = {n: d for n, d in dims.items() if d != first}
    if odd:
        raise IncompatibleSourceError(
            f"variables are on different grids: {names[0]} has dims {first}, but "
            + ", ".join(f"{n} has {d}" for n, d in odd.items()),
            source=uri, fix="list variables of one grid per sources[] entry (repeat the entry "
                            "with the same uri for the others)")
    return tuple(map(str, first))


# --------------------------------------------------------------------------- layout


def _output_dims(ds, var_dims, coords, uri) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Order the variable dims time, depth, then horizontal; find droppable length-1 dims."""
    def dim_of(role):
        name = coords[role]
        return ds.variables[name].dims[0] if name and ds.variables[name].ndim == 1 else None
    t_dim, z_dim = dim_of("time"), dim_of("depth")
    horizontal = set(ds.variables[coords["latitude"]].dims) | set(
        ds.variables[coords["longitude"]].dims)
    if t_dim in horizontal or z_dim in horizontal:  # e.g. a trajectory: time shares the x dim
        t_dim = None if t_dim in horizontal else t_dim
        z_dim = None if z_dim in horizontal else z_dim
    known = {t_dim, z_dim} | horizontal
    squeeze = tuple(d for d in var_dims if d not in known and ds.sizes[d] == 1)
    extra = [d for d in var_dims if d not in known and d not in squeeze]
    if extra:
        raise IncompatibleSourceError(
            f"dimension(s) {extra} of the variables have no time, depth, latitude or longitude "
            f"coordinate, so their cells cannot be placed in rows",
            source=uri, fix="select one index of that dimension before ingesting (e.g. "
                            "`ncks -d dim,0`), or name the coordinate in coordinates:")
    rest = [d for d in var_dims if d not in (t_dim, z_dim) and d not in squeeze]
    ordered = [d for d in (t_dim, z_dim) if d is not None and d in var_dims] + rest
    return tuple(ordered), squeeze


def _default_chunk_dim(ds, dims, time_dim) -> str | None:
    if time_dim in dims and ds.sizes[time_dim] > 1:
        return time_dim
    longer = [d for d in dims if ds.sizes[d] > 1]
    return (longer or list(dims) or [None])[0]


def _chunk_dim(ds, config, dims, coords, uri) -> str | None:
    if config.chunk_dim is None:
        time = coords["time"]
        time_dim = ds.variables[time].dims[0] if time and ds.variables[time].ndim == 1 else None
        return _default_chunk_dim(ds, dims, time_dim)
    if config.chunk_dim not in dims:
        raise ConnectorError(f"chunk_dim {config.chunk_dim!r} is not a dimension of the "
                             f"variables {dims}", source=uri,
                             fix=f"set chunk_dim to one of {list(dims)} or remove it")
    return config.chunk_dim


def _depth_transform(ds, name, config, uri) -> tuple[float, float, ColumnInfo]:
    if name is None:
        return 1.0, 0.0, ColumnInfo("depth", "coordinate", units="m", standard_name="depth",
                                    conversion="no depth coordinate in source: null")
    var = ds.variables[name]
    label = cf.attr(var, "units") or None
    conv = units.conversion(label or "m", "m", variable=name, source=uri)
    up = _depth_is_up(var, config.depth_positive)
    sign = -1.0 if up else 1.0
    text = f"{conv.description}; source positive {'up: negated' if up else 'down'}"
    if label is None:
        text += "; no units attribute: assumed m"
    info = ColumnInfo("depth", "coordinate", units="m", standard_name="depth",
                      source_name=name, source_units=label, conversion=text)
    return sign * conv.scale, sign * conv.offset, info


def _depth_is_up(var: xr.Variable, setting: str) -> bool:
    if setting != "auto":
        return setting == "up"
    positive = cf.attr(var, "positive").lower()
    if positive in ("up", "down"):
        return positive == "up"
    name = cf.attr(var, "standard_name")
    return name in cf.UP_NAMES or name.startswith("height_above")


def _time_info(ds, name, uri) -> ColumnInfo:
    if name is None:
        return ColumnInfo("time", "coordinate", standard_name="time",
                          conversion="no time axis in source: null")
    var = ds.variables[name]
    label = cf.attr(var, "units")
    text = cf_time.describe_variable(label, var.attrs.get("calendar"), variable=name, source=uri)
    return ColumnInfo("time", "coordinate", units="UTC", standard_name="time",
                      source_name=name, source_units=label, conversion=text)


def _horizontal_info(name: str, role: str, source_units: str) -> ColumnInfo:
    east = role == "longitude"
    return ColumnInfo(role, "coordinate", units="degrees_east" if east else "degrees_north",
                      standard_name=role, source_name=name, source_units=source_units or None,
                      conversion=geo.LONGITUDE_CONVERSION if east
                      else geo.LATITUDE_CONVERSION)


def build_layout(ds: xr.Dataset, config: GriddedConfig, uri: str) -> Layout:
    """Check the recipe entry against the file's metadata and describe how to read it."""
    mappings = dict(config.variables) or _default_variables(ds, uri)
    names = list(mappings)
    _check_present(ds, names, uri)
    var_dims = _same_grid(ds, names, uri)
    coords = cf.grid_coordinates(ds, config.coordinates, var_dims, uri, names)
    dims, squeeze = _output_dims(ds, var_dims, coords, uri)
    outputs, infos = zip(*(_output_variable(ds, n, mappings[n], uri) for n in names), strict=True)
    scale, offset, depth_info = _depth_transform(ds, coords["depth"], config, uri)
    lat, lon = str(coords["latitude"]), str(coords["longitude"])  # required: found, or raised
    columns = (_time_info(ds, coords["time"], uri), depth_info,
               _horizontal_info(lat, "latitude", cf.attr(ds.variables[lat], "units")),
               _horizontal_info(lon, "longitude", cf.attr(ds.variables[lon], "units")),
               *infos, ColumnInfo("source_file", "source"))
    layout = Layout(dims, squeeze, tuple(outputs), lat, lon,
                    coords["time"], coords["depth"], scale, offset,
                    _chunk_dim(ds, config, dims, coords, uri), columns)
    check_column_names(build_schema(layout), uri, hints={
        role: f"set coordinates: {{{{{role}: {{source}}}}}}" for role in cf.GRID_ROLES})
    return layout


@functools.lru_cache(maxsize=16)
def _layout_cached(key: tuple, config_json: str, uri: str) -> Layout:
    config = GriddedConfig.model_validate_json(config_json)
    with open_dataset(uri) as ds:
        return build_layout(ds, config, uri)


def layout_for(config: GriddedConfig, uri: str) -> Layout:
    """The layout of ``uri`` for ``config``, computed once per file version and worker."""
    return _layout_cached(_file_key(uri), config.model_dump_json(), uri)


# --------------------------------------------------------------------------- schema and chunks


def _field(info: ColumnInfo, dtype: pa.DataType) -> pa.Field:
    return pa.field(info.name, dtype, nullable=True, metadata=info.metadata())


def build_schema(layout: Layout) -> pa.Schema:
    types = [TIME_TYPE, pa.float64(), pa.float64(), pa.float64(),
             *(pa.from_numpy_dtype(np.dtype(v.dtype)) for v in layout.variables), pa.string()]
    return pa.schema([_field(info, t) for info, t in zip(layout.columns, types, strict=True)])


def chunk_ranges(length: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of ``size`` covering ``range(length)``."""
    return [(start, min(start + size, length)) for start in range(0, length, size)]


def _chunk_size(config: GriddedConfig, total_cells: int, length: int) -> int:
    if config.chunk_size != "auto":
        return config.chunk_size
    per_index = max(1, total_cells // max(length, 1))
    return max(1, config.target_chunk_cells // per_index)


def build_chunks(ds, layout, config, uri, sha256) -> tuple[ChunkSpec, ...]:
    dim = layout.chunk_dim
    if dim is None:
        return (ChunkSpec(0, uri, sha256, 0),)
    shape = ds.variables[layout.variables[0].source].shape
    size = _chunk_size(config, math.prod(shape), ds.sizes[dim])
    return tuple(ChunkSpec(0, uri, sha256, i, dim, start, stop)
                 for i, (start, stop) in enumerate(chunk_ranges(ds.sizes[dim], size)))


# --------------------------------------------------------------------------- time steps
# A grid row is one cell of one time step, so (time, depth, latitude, longitude) is unique by
# construction (the grid kind's suite checks no key) -- unless a time step is repeated, in one
# file or in two files of one source. Then every cell of that step would be committed twice, so
# planning stops and names the step and both files.


def time_steps(ds: xr.Dataset, layout: Layout) -> np.ndarray:
    """The decoded time steps of a file (``datetime64[us]``, NaT dropped); empty if no time."""
    if layout.time is None or ds.variables[layout.time].ndim > 1:
        return np.array([], "datetime64[us]")
    var = ds.variables[layout.time]
    values = np.atleast_1d(np.asarray(var.values, dtype=np.float64))
    steps = cf_time.decode(values, var.attrs.get("units") or "", var.attrs.get("calendar"))
    return steps[~np.isnat(steps)]


def check_time_steps(steps: list[tuple[str, np.ndarray]]) -> None:
    """Raise :class:`DuplicateKeyError` for the first time step that occurs twice, naming it and
    where (files, or positions in one file). ``steps``: (uri, time steps) per file."""
    if not steps:
        return
    values = np.concatenate([s for _, s in steps]).astype(np.int64)
    owner = np.repeat(np.arange(len(steps)), [len(s) for _, s in steps])
    order = np.argsort(values, kind="stable")
    repeated = np.flatnonzero(values[order][1:] == values[order][:-1])
    if not repeated.size:
        return
    first, second = order[repeated[0]], order[repeated[0] + 1]
    when = np.datetime_as_string(values[first].astype("datetime64[us]"), unit="s") + "Z"
    (uri_a, _), (uri_b, _) = steps[owner[first]], steps[owner[second]]
    if owner[first] == owner[second]:
        offset = sum(len(s) for _, s in steps[:owner[first]])
        raise DuplicateKeyError(
            f"time step {when} occurs twice (time indices {first - offset} and "
            f"{second - offset}): every grid cell of it would be committed twice", source=uri_a,
            fix="remove the repeated step (e.g. `cdo delete,timestep=N`) or re-download it")
    where = ("matched twice by the source's uri globs" if uri_a == uri_b
             else f"is also in {uri_b}")
    raise DuplicateKeyError(
        f"time step {when} {where}: every grid cell of it would be committed twice",
        source=uri_a, fix="keep one file per time step in the source's uri glob (overlapping "
                          "downloads, or a file listed twice)")


def lineage_attributes(ds: xr.Dataset) -> dict[str, str]:
    return {key: str(ds.attrs[key]) for key in LINEAGE_ATTRIBUTES if key in ds.attrs}


# --------------------------------------------------------------------------- reading


#: the encoding keys xarray's CF decoding reads (moved from attrs to encoding when it decodes)
_CF_ENCODING = ("_FillValue", "missing_value", "scale_factor", "add_offset", "_Unsigned")


def _load_variable(ds, name, layout, chunk, uri) -> np.ndarray:
    """A data variable's slab: decompressed in this thread when :mod:`connectors.netcdf.h5direct` can
    (no HDF5 lock, so worker threads inflate chunks in parallel), else through xarray."""
    var = ds.variables[name]
    reader = h5direct.variable_reader(_path(uri), name, _file_key(uri))
    if reader is None or reader.shape != var.shape:
        return _load(ds, name, layout, chunk, uri)
    selection, squeezed = [], []
    for axis, (dim, size) in enumerate(zip(var.dims, var.shape, strict=True)):
        if dim in layout.squeeze:
            selection.append(slice(0, 1))
            squeezed.append(axis)
        elif dim == chunk.dim:
            selection.append(slice(chunk.start, size if chunk.stop < 0 else min(chunk.stop, size)))
        else:
            selection.append(slice(0, size))
    try:
        stored = reader.read(tuple(selection))
    except (OSError, ValueError, zlib.error) as err:
        raise UnreadableSourceError(f"cannot read variable {name!r} for chunk {chunk.ordinal} "
                                    f"({chunk.dim}[{chunk.start}:{chunk.stop}]): {err}",
                                    source=uri, fix=_UNREADABLE_FIX) from err
    if squeezed:
        stored = stored.squeeze(axis=tuple(squeezed))
    dims = [d for d in var.dims if d not in layout.squeeze]
    encoding = {k: var.encoding[k] for k in _CF_ENCODING if k in var.encoding}
    decoded = xr.conventions.decode_cf_variable(
        name, xr.Variable(dims, stored, attrs={**var.attrs, **encoding}), mask_and_scale=True,
        decode_times=False, decode_timedelta=False)
    order = [d for d in layout.dims if d in dims]
    if dims != order:
        decoded = decoded.transpose(*order)
    return np.asarray(decoded.values)


def _load(ds, name, layout, chunk, uri) -> np.ndarray:
    """Load one variable's part of the chunk (only that slab), with dims in output order."""
    var = ds.variables[name]
    index: dict[str, int | slice] = {d: 0 for d in layout.squeeze if d in var.dims}
    if chunk.dim in var.dims:
        index[chunk.dim] = slice(chunk.start, None if chunk.stop < 0 else chunk.stop)
    if index:
        var = var.isel(index)
    order = [d for d in layout.dims if d in var.dims]
    if list(var.dims) != order:
        var = var.transpose(*order)
    try:
        return np.asarray(var.values)
    except (OSError, RuntimeError, ValueError) as err:
        raise UnreadableSourceError(f"cannot read variable {name!r} for chunk {chunk.ordinal} "
                                    f"({chunk.dim}[{chunk.start}:{chunk.stop}]): {err}",
                                    source=uri, fix=_UNREADABLE_FIX) from err


def _to_grid(values: np.ndarray, var_dims, layout) -> np.ndarray:
    """Reshape a coordinate (dims a subset of the layout's, in its order) to broadcast."""
    shape = [values.shape[var_dims.index(d)] if d in var_dims else 1 for d in layout.dims]
    return values.reshape(shape)


def _coordinate(ds, name, layout, chunk, uri) -> np.ndarray:
    values = _load(ds, name, layout, chunk, uri)
    dims = [d for d in layout.dims if d in ds.variables[name].dims]
    return _to_grid(values, dims, layout)


def _expand(grid: np.ndarray, shape, keep: np.ndarray | None) -> np.ndarray:
    """Broadcast a coordinate to the slab and take kept cells, in C order."""
    full = np.broadcast_to(grid, shape)
    return full.reshape(-1) if keep is None else full[keep]


def _coordinate_column(grid: np.ndarray, shape, keep, arrow_type: pa.DataType) -> pa.Array:
    """Broadcast a small coordinate grid into a column; missing coordinates become null.

    The missing mask is computed on the small grid and only broadcast when needed, and
    times travel as int64 (a zero-copy view), because both are per-row costs otherwise.
    """
    is_time = grid.dtype.kind == "M"
    missing = np.isnat(grid) if is_time else np.isnan(grid)  # inf stays, for QC to FAIL
    values = _expand(grid.view(np.int64) if is_time else grid, shape, keep)
    mask = _expand(missing, shape, keep) if missing.any() else None
    array = pa.array(values, type=pa.int64() if is_time else arrow_type, mask=mask)
    return array.view(arrow_type) if is_time else array


def _time_column(ds, layout, chunk, uri, shape, keep, n) -> pa.Array:
    if layout.time is None:
        return pa.nulls(n, TIME_TYPE)
    var = ds.variables[layout.time]
    raw = _coordinate(ds, layout.time, layout, chunk, uri)
    decoded = cf_time.decode_variable(raw, var.attrs.get("units"), var.attrs.get("calendar"),
                                      variable=layout.time, source=uri)
    return _coordinate_column(decoded, shape, keep, TIME_TYPE)


def _depth_column(ds, layout, chunk, uri, shape, keep, n) -> pa.Array:
    if layout.depth is None:
        return pa.nulls(n, pa.float64())
    raw = _coordinate(ds, layout.depth, layout, chunk, uri).astype(np.float64)
    metres = raw * layout.depth_scale + layout.depth_offset
    return _coordinate_column(metres, shape, keep, pa.float64())


def _horizontal_columns(ds, layout, chunk, uri, shape, keep) -> list[pa.Array]:
    lat = _coordinate(ds, layout.latitude, layout, chunk, uri).astype(np.float64)
    lon = _coordinate(ds, layout.longitude, layout, chunk, uri).astype(np.float64)
    lon = geo.longitude(lon)
    return [_coordinate_column(lat, shape, keep, pa.float64()),
            _coordinate_column(lon, shape, keep, pa.float64())]


def _variable_column(values: np.ndarray, present: np.ndarray, var: OutputVariable,
                     keep: np.ndarray | None, kept: int) -> pa.Array:
    flat = values.reshape(-1) if keep is None else values[keep]
    # Convert in the decoded precision, then cast: float32 inputs stay float32 throughout.
    out = var.conversion.apply(flat).astype(var.dtype, copy=False)
    if np.count_nonzero(present) == kept:  # present in every kept row: no validity bitmap
        return pa.array(out)
    return pa.array(out, mask=~(present.reshape(-1) if keep is None else present[keep]))


def read_chunk(ds: xr.Dataset, layout: Layout, chunk: ChunkSpec, schema: pa.Schema,
               uri: str) -> ChunkResult:
    """Turn one chunk of the grid into rows (see the module docstring for the rules)."""
    slabs = [_load_variable(ds, v.source, layout, chunk, uri) for v in layout.variables]
    shape = slabs[0].shape
    # NaN (decoded fill) is missing; an infinite value is a value, kept for QC to FAIL
    present = [~np.isnan(s) for s in slabs]
    valid = ~padding(functools.reduce(np.logical_or, present), False)  # grid axes: not sampled
    rows_in, kept = int(valid.size), int(np.count_nonzero(valid))
    keep = None if kept == rows_in else valid
    columns = [
        _time_column(ds, layout, chunk, uri, shape, keep, kept),
        _depth_column(ds, layout, chunk, uri, shape, keep, kept),
        *_horizontal_columns(ds, layout, chunk, uri, shape, keep),
        *(_variable_column(s, p, v, keep, kept)
          for s, p, v in zip(slabs, present, layout.variables, strict=True)),
        pa.repeat(pa.scalar(uri, pa.string()), kept),
    ]
    table = pa.Table.from_arrays(columns, schema=schema)
    return ChunkResult(table, rows_in=rows_in, rows_dropped=rows_in - kept)


def _check_schema(layout: Layout, schema: pa.Schema, uri: str) -> None:
    expected = [c.name for c in layout.columns]
    if schema.names != expected:
        raise ConnectorError(f"the file's columns {expected} differ from the planned schema "
                             f"{schema.names}; the file changed since planning", source=uri,
                             fix="re-run the pipeline so that the file is planned again")


class GriddedNetCDF(Connector):
    """CF gridded netCDF files (regular or curvilinear grids) to observation rows."""

    kind = "netcdf_grid"
    config_model = GriddedConfig

    @integrity.guarded_plan
    def plan(self, config: GriddedConfig, uri: str, sha256: str, size: int) -> SourcePlan:
        with open_dataset(uri) as ds:
            layout = layout_for(config, uri)
            check_time_steps([(uri, time_steps(ds, layout))])
            return SourcePlan(uri=uri, sha256=sha256, size=size, schema=build_schema(layout),
                              columns=layout.columns,
                              chunks=build_chunks(ds, layout, config, uri, sha256),
                              attributes=lineage_attributes(ds))

    def check_source(self, config: GriddedConfig, plans) -> None:
        """No time step in two files of one source (each file's own steps: :meth:`plan`)."""
        steps = []
        for plan in plans:
            with open_dataset(plan.uri) as ds:
                steps.append((plan.uri, time_steps(ds, layout_for(config, plan.uri))))
        check_time_steps(steps)

    def release(self) -> None:
        clear_cache()

    @integrity.guarded_read
    def read(self, config: GriddedConfig, chunk: ChunkSpec, plan_schema: pa.Schema) -> ChunkResult:
        layout = layout_for(config, chunk.uri)
        _check_schema(layout, plan_schema, chunk.uri)
        with open_dataset(chunk.uri) as ds:
            return read_chunk(ds, layout, chunk, plan_schema, chunk.uri)
