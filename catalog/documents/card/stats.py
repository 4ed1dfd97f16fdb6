"""What a version's data holds, gathered for its card in one bounded pass over its files.

:func:`scan` reads the version's Parquet files once, a row group at a time, into a
:class:`CardStats`: coverage from the row-group statistics; rows per day, QC flag and split
counts, exact histograms and a deterministic map sample from the columns. Nothing is loaded
whole: memory is one row group plus fixed-size accumulators. The Croissant writer uses the same
scan (coverage and splits only).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from catalog.documents.exceptions import CardError
from catalog.documents.manifest_view import data_files
from catalog.storage import uri as uri_mod
from catalog.storage.manifest import Manifest

#: most points drawn on the map: enough to show a track or a grid's extent, small enough that
#: the self-contained HTML stays a few hundred kB
MAX_MAP_POINTS = 5000
#: display bins per histogram; the exact counts are kept in FINE_BINS bins first, so that the
#: display range can skip the outliers that QC exists to catch without a second read
HIST_BINS = 40
FINE_BINS = 4096
#: share of values left out at each end of a histogram's display range (counted, not hidden)
TAIL = 0.005
_UTC = dt.UTC
_US_PER_DAY = 86_400_000_000
_TICKS_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": _US_PER_DAY, "ns": 86_400_000_000_000}


@dataclasses.dataclass
class Histogram:
    """Exact counts over ``edges``; ``below``/``above`` count values outside the display range."""

    column: str
    edges: np.ndarray
    counts: np.ndarray
    below: int = 0
    above: int = 0
    total: int = 0


@dataclasses.dataclass
class CardStats:
    rows: int = 0
    #: column -> (min, max) from the row-group statistics (datetimes for ``time``)
    ranges: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict)
    nulls: dict[str, int] = dataclasses.field(default_factory=dict)
    #: ISO date -> rows
    per_day: dict[str, int] = dataclasses.field(default_factory=dict)
    histograms: dict[str, Histogram] = dataclasses.field(default_factory=dict)
    #: QC column -> flag value (str; "null" for missing) -> rows
    qc: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    splits: dict[str, int] = dataclasses.field(default_factory=dict)
    sample_lon: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    sample_lat: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))

    def coverage_dict(self) -> dict[str, Any]:
        """time range (ISO), bbox [west, south, east, north] and depth range, where known."""
        out: dict[str, Any] = {}
        if "time" in self.ranges:
            out["time_min"], out["time_max"] = (_iso(v) for v in self.ranges["time"])
        if "longitude" in self.ranges and "latitude" in self.ranges:
            (west, east), (south, north) = self.ranges["longitude"], self.ranges["latitude"]
            out["bbox"] = [float(west), float(south), float(east), float(north)]
        if "depth" in self.ranges:
            out["depth"] = [float(v) for v in self.ranges["depth"]]
        return out


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC).isoformat().replace("+00:00", "Z")
    return str(value)


#: versions whose data files total at most this many bytes are read into memory once: the scan
#: reads every file twice (footers, then rows), and a version of thousands of tiny daily files
#: (a sparse station record) would otherwise pay two opens per file
CACHE_BYTES = 64 * 2**20


class DataFiles:
    """The data files of a version, each opened through Beam's filesystems and closed again."""

    def __init__(self, manifest: Manifest, version_dir: str):
        entries = data_files(manifest)
        self.paths = [uri_mod.join(version_dir, f.path) for f in entries]
        total = sum(int(f.bytes or 0) for f in entries)
        self._cache: dict[str, bytes] | None = {} if total <= CACHE_BYTES else None

    def _read(self, uri: str) -> bytes:
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            return handle.read()

    def read_row_groups(self, uri: str, columns: Sequence[str] | None) -> Iterator[Any]:
        """(metadata, [row group tables]) of one file; tables only when ``columns`` is given."""
        try:
            if self._cache is not None:
                data = self._cache.get(uri) or self._cache.setdefault(uri, self._read(uri))
                yield from _groups(pq.ParquetFile(pa.BufferReader(data)), columns)
                return
            with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                yield from _groups(pq.ParquetFile(handle), columns)
        except (OSError, pa.ArrowInvalid) as err:
            raise CardError(f"cannot read the data file ({err})", where=uri,
                            fix="check that the version folder is complete; re-run the recipe "
                                "if a file is missing or damaged") from err

    def metadata(self) -> Iterator[pq.FileMetaData]:
        for uri in self.paths:
            yield from self.read_row_groups(uri, None)

    def tables(self, columns: Sequence[str]) -> Iterator[pa.Table]:
        for uri in self.paths:
            yield from self.read_row_groups(uri, columns)


def _groups(pf: pq.ParquetFile, columns: Sequence[str] | None) -> Iterator[Any]:
    if columns is None:
        yield pf.metadata
        return
    names = set(pf.schema_arrow.names)  # schema_arrow rebuilds the schema on every access
    present = [c for c in columns if c in names]
    for g in range(pf.metadata.num_row_groups):
        yield pf.read_row_group(g, columns=present)


def _merge_range(ranges: dict, name: str, lo: Any, hi: Any) -> None:
    if name in ranges:
        lo, hi = min(ranges[name][0], lo), max(ranges[name][1], hi)
    ranges[name] = (lo, hi)


def _statistics_ranges(meta: pq.FileMetaData, stats: CardStats, missing: set[str]) -> None:
    """min/max per column from the footer; columns without statistics go into ``missing``."""
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            col = group.column(c)
            name = col.path_in_schema
            st = col.statistics
            if st is None:
                missing.add(name)
                continue
            stats.nulls[name] = stats.nulls.get(name, 0) + (st.null_count or 0)
            if st.has_min_max:
                _merge_range(stats.ranges, name, st.min, st.max)
            elif st.null_count != group.num_rows:  # values present but no min/max written
                missing.add(name)


def _data_range(table: pa.Table, name: str, stats: CardStats) -> None:
    column = table.column(name)
    if pa.types.is_floating(column.type):
        column = pc.drop_null(pc.if_else(pc.is_nan(column), None, column))
    mm = pc.min_max(column).as_py()
    if mm["min"] is not None:
        _merge_range(stats.ranges, name, mm["min"], mm["max"])


def _value_counts(column: pa.ChunkedArray, into: dict[str, int]) -> None:
    # one entry per distinct value, so the Python loop is over flags, never over rows
    for item in pc.value_counts(column).to_pylist():
        key = "null" if item["values"] is None else str(item["values"])
        into[key] = into.get(key, 0) + item["counts"]


def _day_counts(column: pa.ChunkedArray, into: dict[str, int]) -> None:
    unit = column.type.unit
    ticks = pc.drop_null(column.cast(pa.int64())).to_numpy()
    days, counts = np.unique(np.floor_divide(ticks, _TICKS_PER_DAY[unit]), return_counts=True)
    for day, count in zip(days.tolist(), counts.tolist(), strict=True):
        key = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
        into[key] = into.get(key, 0) + count


def _finite(column: pa.ChunkedArray) -> np.ndarray:
    values = column.to_numpy() if column.null_count == 0 else \
        pc.fill_null(column, np.nan).to_numpy()
    values = np.asarray(values, dtype="f8")
    return values[np.isfinite(values)]


def _numeric_range(value: Any) -> tuple[float, float] | None:
    lo, hi = (float(v) for v in value)
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _fine_edges(lo: float, hi: float) -> np.ndarray:
    if hi <= lo:  # a constant column: one bin around the value
        pad = abs(lo) * 1e-6 or 0.5
        lo, hi = lo - pad, hi + pad
    return np.linspace(lo, hi, FINE_BINS + 1)


def _sample_indices(offset: int, n: int, stride: int) -> np.ndarray:
    """Every ``stride``-th row of the whole version, whatever file or row group it is in."""
    return np.arange((-offset) % stride, n, stride)


@dataclasses.dataclass(frozen=True)
class _Plan:
    hist_columns: tuple[str, ...]
    qc_columns: tuple[str, ...]
    has_split: bool
    has_time: bool
    stride: int

    @property
    def columns(self) -> list[str]:
        cols = list(self.hist_columns) + list(self.qc_columns)
        cols += ["split"] if self.has_split else []
        cols += ["time"] if self.has_time else []
        cols += ["longitude", "latitude"] if self.stride else []
        return cols


def histogram_columns(manifest: Manifest) -> list[str]:
    """Measured variables: float columns whose role is ``variable``."""
    return [c.name for c in manifest.schema
            if c.metadata.get("haina.role", "variable") == "variable"
            and c.type in ("float", "double", "halffloat")]


#: Haina's QARTOD flag columns, and the sources' own flags kept beside them (their own scale)
QC_SUFFIXES = ("_qc", "_qc_source")


def qc_columns(manifest: Manifest) -> list[str]:
    return [c.name for c in manifest.schema if c.name.endswith(QC_SUFFIXES)]


def _schema_names(manifest: Manifest) -> set[str]:
    return {c.name for c in manifest.schema}


def _scan_footers(files: DataFiles) -> tuple[CardStats, set[str]]:
    stats, missing = CardStats(), set[str]()
    for meta in files.metadata():
        stats.rows += meta.num_rows
        _statistics_ranges(meta, stats, missing)
    return stats, missing


def _fill_missing_ranges(files: DataFiles, names: set[str], stats: CardStats) -> None:
    if not names:
        return
    for table in files.tables(sorted(names)):
        for name in table.column_names:
            _data_range(table, name, stats)


def scan(manifest: Manifest, version_dir: str, *, max_points: int = MAX_MAP_POINTS,
         bins: int = HIST_BINS) -> CardStats:
    """Read the version's data files and gather everything the card shows.

    Two passes: footers (row-group statistics give coverage and histogram ranges), then the
    needed columns a row group at a time. ``max_points=0`` skips the map sample and ``bins=0``
    the histograms (the Croissant writer needs only coverage and splits).
    """
    files = DataFiles(manifest, version_dir)
    stats, missing = _scan_footers(files)
    names = _schema_names(manifest)
    hist_cols = tuple(histogram_columns(manifest)) if bins else ()
    wanted = {"time", "longitude", "latitude", "depth", *hist_cols} & names
    _fill_missing_ranges(files, wanted & missing, stats)
    plan = _Plan(hist_columns=hist_cols, qc_columns=tuple(qc_columns(manifest)),
                 has_split="split" in names, has_time="time" in names,
                 stride=(max(1, math.ceil(stats.rows / max_points))
                         if max_points and {"longitude", "latitude"} <= names else 0))
    _scan_rows(files, plan, stats, bins)
    return stats


def _scan_rows(files: DataFiles, plan: _Plan, stats: CardStats, bins: int) -> None:
    fine = {c: _fine_edges(*r) for c in plan.hist_columns
            if c in stats.ranges and (r := _numeric_range(stats.ranges[c])) is not None}
    counts = {c: np.zeros(FINE_BINS, dtype=np.int64) for c in fine}
    lons, lats, offset = [], [], 0
    for table in files.tables(plan.columns):
        for c, edges in fine.items():
            counts[c] += np.histogram(_finite(table.column(c)), bins=edges)[0]
        for c in plan.qc_columns:
            _value_counts(table.column(c), stats.qc.setdefault(c, {}))
        if plan.has_split:
            _value_counts(table.column("split"), stats.splits)
        if plan.has_time and pa.types.is_timestamp(table.schema.field("time").type):
            _day_counts(table.column("time"), stats.per_day)
        if plan.stride:
            take = pa.array(_sample_indices(offset, table.num_rows, plan.stride))
            lons.append(_as_float(table.column("longitude").take(take)))
            lats.append(_as_float(table.column("latitude").take(take)))
        offset += table.num_rows
    if lons:
        stats.sample_lon, stats.sample_lat = np.concatenate(lons), np.concatenate(lats)
    stats.histograms = {c: display_histogram(c, fine[c], counts[c], bins) for c in fine}


def _as_float(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(column, np.nan).to_numpy(), dtype="f8")


def display_histogram(column: str, edges: np.ndarray, counts: np.ndarray,
                      bins: int = HIST_BINS, tail: float = TAIL) -> Histogram:
    """Merge fine bins into about ``bins`` display bins over the central 1 - 2*tail of values.

    Values beyond the display range are counted in ``below``/``above``, so a few implausible
    values (which QC flags) neither vanish nor squash the histogram into one bar. A tail is cut
    only when it reaches far beyond the central values; otherwise the axis spans every value.
    """
    total = int(counts.sum())
    if total == 0:
        return Histogram(column, edges[[0, -1]], np.zeros(1, dtype=np.int64))
    first, last = _display_bins(counts, tail)
    group = max(1, math.ceil((last - first + 1) / bins))
    starts = np.arange(0, last - first + 1, group)
    # reduceat sums each run of ``group`` fine bins (the last run may be shorter): exact counts
    merged = np.add.reduceat(counts[first:last + 1], starts)
    display_edges = np.append(edges[first + starts], edges[last + 1])
    return Histogram(column, display_edges, merged, below=int(counts[:first].sum()),
                     above=int(counts[last + 1:].sum()), total=total)


def _display_bins(counts: np.ndarray, tail: float) -> tuple[int, int]:
    """First and last fine bin to show: the data's extent, less any far-reaching thin tail."""
    nonzero = np.flatnonzero(counts)
    lo, hi = int(nonzero[0]), int(nonzero[-1])
    cum = np.cumsum(counts)
    q_lo = int(np.searchsorted(cum, tail * cum[-1], side="right"))
    q_hi = max(q_lo, int(np.searchsorted(cum, (1 - tail) * cum[-1], side="left")))
    # a tail is "far" when it spans more than half the central range (outliers, not shape)
    reach = max(q_hi - q_lo, 1) * 0.5
    return (q_lo if q_lo - lo > reach else lo), (q_hi if hi - q_hi > reach else hi)
