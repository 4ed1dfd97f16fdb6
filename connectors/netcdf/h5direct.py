"""Read netCDF-4 variables chunk by chunk without holding HDF5's global lock.

The HDF5 library is not thread-safe, so netCDF4 and xarray hold one process-wide lock for every
read, decompression included: two worker threads reading a deflate-compressed grid take turns,
and decompression is most of a grid run's read time. For a variable whose chunks are stored
with only the filters Python can undo itself (deflate and byte shuffle, in any order), this
module asks HDF5 (through h5py, once per file and variable) where each chunk's bytes are, then
reads them with ``os.pread`` and inflates them with ``zlib`` -- both release the GIL and take no
lock -- so threads decompress in parallel. The values are the variable's stored (encoded)
values, exactly what ``netCDF4`` returns with auto mask-and-scale off; CF decoding stays
xarray's (see :func:`connectors.netcdf.grid._load`).

Anything else -- a remote URI, a contiguous or compact variable, another filter (szip,
fletcher32, scale-offset, plugins), a non-numeric type, h5py unable to open the file -- returns
``None`` from :func:`variable_reader`, and the caller reads through xarray as before.
"""
from __future__ import annotations

import functools
import itertools
import os
import zlib
from dataclasses import dataclass

import numpy as np

from connectors.netcdf.files import HDF5_LOCK

#: HDF5 filter ids (H5Zpublic.h)
DEFLATE, SHUFFLE = 1, 2
_SUPPORTED_FILTERS = frozenset({DEFLATE, SHUFFLE})


@dataclass(frozen=True)
class StoredChunk:
    offset: int
    size: int
    #: bit i set: filter i of the pipeline was skipped for this chunk
    filter_mask: int


@dataclass(frozen=True)
class VariableReader:
    """Where one variable's chunks are in one file, and how to decode them."""

    path: str
    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    #: the write-side filter pipeline, in order (undone in reverse)
    filters: tuple[int, ...]
    fill_value: object
    index: dict[tuple[int, ...], StoredChunk]

    def read(self, selection: tuple[slice, ...]) -> np.ndarray:
        """The stored values of ``selection`` (one ``slice(start, stop)`` per dimension)."""
        starts = [s.start for s in selection]
        stops = [s.stop for s in selection]
        # native byte order, as netCDF4 (HDF5's memory type) returns it
        out = np.empty([b - a for a, b in zip(starts, stops, strict=True)],
                       dtype=self.dtype.newbyteorder("="))
        if out.size == 0:
            return out
        ranges = [range(a // c, (b - 1) // c + 1) for a, b, c in zip(starts, stops, self.chunks, strict=True)]
        with open(self.path, "rb", buffering=0) as handle:
            fd = handle.fileno()
            for position in itertools.product(*ranges):  # HDF5 chunks, not rows
                origin = tuple(p * c for p, c in zip(position, self.chunks, strict=True))
                src = tuple(slice(max(a, o) - o, min(b, o + c) - o)
                            for a, b, o, c in zip(starts, stops, origin, self.chunks, strict=True))
                dst = tuple(slice(max(a, o) - a, min(b, o + c) - a)
                            for a, b, o, c in zip(starts, stops, origin, self.chunks, strict=True))
                out[dst] = self._chunk(fd, origin)[src]
        return out

    def _chunk(self, fd: int, origin: tuple[int, ...]) -> np.ndarray:
        stored = self.index.get(origin)
        if stored is None:  # never written: HDF5 returns the dataset's fill value
            return np.full(self.chunks, self.fill_value, dtype=self.dtype)
        data: bytes | np.ndarray = os.pread(fd, stored.size, stored.offset)
        if len(data) != stored.size:
            raise OSError(f"short read: chunk at byte {stored.offset} needs {stored.size} bytes, "
                          f"the file has {len(data)} there (truncated?)")
        for position in reversed(range(len(self.filters))):  # undo the write pipeline
            if stored.filter_mask & (1 << position):
                continue
            if self.filters[position] == DEFLATE:
                data = zlib.decompress(data if isinstance(data, bytes) else data.data)
            else:
                data = _unshuffle(data, self.dtype.itemsize)
        values = np.frombuffer(data, dtype=self.dtype)
        count = int(np.prod(self.chunks))
        if values.size != count:
            raise OSError(f"chunk at byte {stored.offset} decodes to {values.size} values, "
                          f"not {count}")
        return values.reshape(self.chunks)


def _unshuffle(data, size: int) -> np.ndarray:
    """Undo HDF5's shuffle filter, which stores byte k of every value together (plane k)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if size == 1 or raw.size % size:
        return raw  # HDF5 leaves such buffers as they are
    planes = raw.reshape(size, -1)
    out = np.empty((planes.shape[1], size), dtype=np.uint8)
    for k in range(size):  # one pass per byte of the type: a few, whatever the chunk size
        out[:, k] = planes[k]
    return out.reshape(-1)


def variable_reader(path: str, name: str, key: tuple) -> VariableReader | None:
    """A direct reader for variable ``name`` of the local file ``path``, or None when the
    variable's storage is not one this module decodes. ``key`` identifies the file version."""
    if "://" in path or not os.path.isfile(path):
        return None
    # Under the process-wide HDF5 lock: h5py's HDF5 calls must not overlap netCDF4's, and one
    # index per file version and variable is built, by the first thread to ask.
    with HDF5_LOCK:
        return _reader(path, name, key)


@functools.lru_cache(maxsize=64)
def _reader(path: str, name: str, key: tuple) -> VariableReader | None:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency; stay correct without it
        return None
    try:
        with h5py.File(path, "r") as handle:
            dataset = handle.get(name)
            if not isinstance(dataset, h5py.Dataset):
                return None
            return _describe(path, dataset)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None  # whatever h5py cannot read, netCDF4 reads (or reports) as before


def _describe(path: str, dataset) -> VariableReader | None:
    dtype = dataset.dtype
    if dataset.chunks is None or dtype.kind not in "iuf" or dataset.shape == ():
        return None
    plist = dataset.id.get_create_plist()
    filters = tuple(plist.get_filter(i)[0] for i in range(plist.get_nfilters()))
    if not set(filters) <= _SUPPORTED_FILTERS:
        return None
    index: dict[tuple[int, ...], StoredChunk] = {}

    def record(info) -> None:
        index[tuple(info.chunk_offset)] = StoredChunk(info.byte_offset, info.size,
                                                      info.filter_mask)

    if hasattr(dataset.id, "chunk_iter"):
        dataset.id.chunk_iter(record)
    else:  # pragma: no cover - HDF5 < 1.12.3
        for i in range(dataset.id.get_num_chunks()):
            record(dataset.id.get_chunk_info(i))
    fill = dataset.fillvalue
    return VariableReader(path=path, dtype=np.dtype(dtype), shape=tuple(dataset.shape),
                          chunks=tuple(dataset.chunks), filters=filters,
                          fill_value=fill if fill is not None else 0, index=index)


def clear_cache() -> None:
    with HDF5_LOCK:
        _reader.cache_clear()
