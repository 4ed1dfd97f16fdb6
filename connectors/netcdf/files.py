"""Thread-safe access to netCDF/HDF5 files: one process-wide lock and a cache of open files.

Why this module exists: netCDF-C and HDF5 (as built in the netCDF4 and h5py wheels) are not
thread-safe, and xarray's own locking leaves two gaps (xarray #4100, #9779; netcdf4-python #844):

* ``xr.open_dataset`` reads every variable's attributes *outside* its lock, so two threads
  opening files at once run netCDF-C concurrently;
* a dataset that falls out of a cache is closed by ``CachingFileManager.__del__`` in whichever
  thread the garbage collector happens to run, possibly while another thread is inside HDF5.

With the DirectRunner's worker threads (the default) both happened: SIGSEGV/SIGBUS, HDF5
tracebacks, and valid files reported as corrupt. Here every netCDF-C/HDF5 call - open, attribute
and data reads, close - runs under :data:`HDF5_LOCK`, files are opened by us (so xarray's file
manager never closes them behind our back), and a cached file is closed explicitly, under the
lock, only once no reader holds it.

What the lock costs: it serialises only the library calls. Decompression of the gridded
connector's chunks happens outside HDF5 (:mod:`connectors.netcdf.h5direct` reads the raw chunks and
inflates them with zlib, which releases the GIL), as does everything downstream (decoding,
QC, Arrow conversion, validation, Parquet writing), so worker threads still overlap; the
figure is in ``bench/thread_bench.py``.
"""
from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: Held around every call into netCDF-C or HDF5 (netCDF4 and h5py), in every thread.
#: Re-entrant: a reader holding it may open or close files.
HDF5_LOCK = threading.RLock()


def open_netcdf4(path: str):
    """``netCDF4.Dataset(path)`` opened under the lock (the caller closes it with :func:`close`)."""
    import netCDF4  # imported lazily: only workers that read netCDF need it

    with HDF5_LOCK:
        return netCDF4.Dataset(path, "r")


def close(handle) -> None:
    """Close a netCDF4 dataset or an xarray dataset opened here, under the lock."""
    with HDF5_LOCK:
        handle.close()


def open_xarray(path: str, **decode) -> Any:
    """An ``xarray.Dataset`` over ``path`` whose every netCDF-C call is made under the lock.

    The netCDF4 handle is opened here and handed to xarray, which then never closes it on its
    own; ``close(ds)`` closes it. ``decode`` are ``xr.open_dataset`` keyword arguments.
    """
    import xarray as xr

    with HDF5_LOCK:  # the attributes of every variable are read during the open
        nc = open_netcdf4(path)
        try:
            store = xr.backends.NetCDF4DataStore(nc, lock=HDF5_LOCK)
            ds = xr.open_dataset(store, **decode)
        except BaseException:
            nc.close()
            raise
    ds.encoding["source"] = path  # as xarray records it when it opens the path itself
    return ds


@dataclass
class _Entry:
    value: Any
    users: int = 0
    evicted: bool = False


@dataclass
class OpenFiles:
    """A small LRU cache of open files shared by a worker's threads.

    ``with files.use(key, opener) as value`` opens (or reuses) a file; entries evicted while a
    reader still uses them are closed when the last reader leaves. Closing always happens under
    :data:`HDF5_LOCK`, in the thread that releases the file - never in the garbage collector.
    """

    maxsize: int = 4
    _entries: collections.OrderedDict = field(default_factory=collections.OrderedDict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def use(self, key: tuple, opener) -> Iterator[Any]:
        entry = self._acquire(key, opener)
        try:
            yield entry.value
        finally:
            self._release(entry)

    def _acquire(self, key: tuple, opener) -> _Entry:
        with self._guard:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.users += 1
                return entry
        # Opened outside the guard so that one slow open does not stall readers of other files;
        # two threads opening the same new file both open it, and the loser's copy is closed.
        value = opener()
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(value)
                extra = None
            else:
                self._entries.move_to_end(key)
                extra = value
            entry.users += 1
            idle = self._evict()
        if extra is not None:
            close(extra)
        for value in idle:
            close(value)
        return entry

    def _evict(self) -> list:
        """Drop the least recently used entries beyond ``maxsize``; return the idle ones' values
        (to close outside the guard). Called with the guard held."""
        idle = []
        while len(self._entries) > self.maxsize:
            _, old = self._entries.popitem(last=False)
            old.evicted = True
            if old.users == 0:
                idle.append(old.value)
        return idle

    def _release(self, entry: _Entry) -> None:
        with self._guard:
            entry.users -= 1
            closing = entry.evicted and entry.users == 0
        if closing:
            close(entry.value)

    def clear(self) -> None:
        """Close every idle file and forget all entries (files in use close on release)."""
        with self._guard:
            entries = list(self._entries.values())
            self._entries.clear()
            for entry in entries:
                entry.evicted = True
            idle = [entry.value for entry in entries if entry.users == 0]
        for value in idle:
            close(value)
