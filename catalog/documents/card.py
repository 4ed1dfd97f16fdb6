"""The dataset card of a version: what it holds, where it came from, and whether to trust it.

Three steps, each testable alone:

1. :func:`scan` reads the version's Parquet files once, a row group at a time, into a
   :class:`CardStats` (coverage from the row-group statistics; rows per day, QC flag and split
   counts, exact histograms and a deterministic map sample from the columns). Nothing is
   loaded whole: memory is one row group plus fixed-size accumulators.
2. :func:`render_markdown` and :func:`catalog.documents.card_html.render_html` turn the manifest and the
   stats into text: pure functions.
3. :func:`write_card` does the I/O around them for a catalog version.

The card carries every attribution the sources' licences require (the manifest's
``extra.attributions``), the units and CF attributes of every column, and the validation result.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from catalog.documents import croissant
from catalog.documents.croissant import CroissantError, attributions, data_files, licence_url
from catalog.exceptions import CatalogError

MD_NAME = "CARD.md"
HTML_NAME = "card.html"
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


class CardError(CatalogError):
    """A card could not be built: unreadable data files or an unusable manifest."""


# --- stats -----------------------------------------------------------------------------------
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

    def __init__(self, manifest: Mapping[str, Any], version_dir: str):
        entries = data_files(manifest)
        self.paths = [FileSystems.join(version_dir, f["path"]) for f in entries]
        total = sum(int(f.get("bytes") or 0) for f in entries)
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
    for day, count in zip(days.tolist(), counts.tolist()):
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


def histogram_columns(manifest: Mapping[str, Any]) -> list[str]:
    """Measured variables: float columns whose role is ``variable``."""
    return [c["name"] for c in manifest.get("schema", [])
            if (c.get("metadata") or {}).get("haina.role", "variable") == "variable"
            and c["type"] in ("float", "double", "halffloat")]


#: Haina's QARTOD flag columns, and the sources' own flags kept beside them (their own scale)
QC_SUFFIXES = ("_qc", "_qc_source")


def qc_columns(manifest: Mapping[str, Any]) -> list[str]:
    return [c["name"] for c in manifest.get("schema", []) if c["name"].endswith(QC_SUFFIXES)]


def _schema_names(manifest: Mapping[str, Any]) -> set[str]:
    return {c["name"] for c in manifest.get("schema", [])}


def _scan_footers(files: DataFiles) -> tuple[CardStats, set[str]]:
    stats, missing = CardStats(), set()
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


def scan(manifest: Mapping[str, Any], version_dir: str, *, max_points: int = MAX_MAP_POINTS,
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


# --- markdown --------------------------------------------------------------------------------
def _md_cell(value: Any) -> str:
    return ("" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def schema_rows(manifest: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """(column, type, units, standard_name, from, conversion) per column."""
    rows = []
    for c in manifest.get("schema", []):
        m = c.get("metadata") or {}
        source = m.get("haina.source_name") or ""
        if m.get("haina.source_units"):
            source += f" ({m['haina.source_units']})"
        rows.append((c["name"], c["type"], m.get("haina.units", ""),
                     m.get("haina.standard_name", ""), source, m.get("haina.conversion", "")))
    return rows


def qc_label(value: str, column: str = "_qc") -> str:
    """``4 (fail)`` for a QARTOD ``_qc`` column; source flags keep their bare value."""
    from expectations.qc.flags import FLAG_NAMES  # QARTOD names; flags.py is pure numpy

    if not column.endswith("_qc"):
        return value
    try:
        return f"{value} ({FLAG_NAMES[int(value)]})"
    except (ValueError, KeyError):
        return value


def coverage_rows(stats: CardStats) -> list[tuple[str, str]]:
    cov = stats.coverage_dict()
    rows = []
    if "time_min" in cov:
        rows.append(("time (UTC)", f"{cov['time_min']} to {cov['time_max']}"))
    if "bbox" in cov:
        w, s, e, n = cov["bbox"]
        rows.append(("longitude", f"{w:.4f} to {e:.4f} °E"))
        rows.append(("latitude", f"{s:.4f} to {n:.4f} °N"))
    if "depth" in cov:
        lo, hi = (v + 0.0 for v in cov["depth"])  # + 0.0 turns -0.0 into 0.0
        rows.append(("depth", f"{lo:g} to {hi:g} m"))
    elif "depth" in stats.nulls:
        rows.append(("depth", "not reported (null)"))
    rows.append(("rows", f"{stats.rows:,}"))
    if stats.per_day:
        rows.append(("days with data", f"{len(stats.per_day):,}"))
    return rows


def validation_rows(manifest: Mapping[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for suite in (manifest.get("extra") or {}).get("validation") or []:
        notes = "; ".join(f"{u.get('column')}: {u.get('unexpected_count'):,} of "
                          f"{u.get('element_count') or 0:,} unexpected ({u.get('expectation')})"
                          for u in suite.get("unexpected") or [])
        rows.append((suite.get("suite"), "passed" if suite.get("success") else "failed",
                     f"{suite.get('successful')}/{suite.get('evaluated')}", notes or "none"))
    return rows


def version_line(manifest: Mapping[str, Any], release: str | None) -> str:
    v = manifest["version"]
    if release:
        return f"Release {release} (version {v['id']}, created {_seconds(v['created_at'])})"
    return f"Draft version {v['id']} (created {_seconds(v['created_at'])}; not released)"


def _seconds(iso: str | None) -> str:
    """``2026-11-26T20:29:13.665272Z`` -> ``2026-11-26T20:29:13Z``: a card is read by people."""
    return iso.split(".")[0] + "Z" if iso and "." in iso else str(iso)


def render_markdown(manifest: Mapping[str, Any], stats: CardStats, *, release: str | None = None,
                    changelog: Sequence[str] | None = None) -> str:
    """The card as GitHub-flavoured Markdown (no images: the HTML card has the plots)."""
    ds = manifest["dataset"]
    out = [f"# {ds.get('title') or ds['name']}", "", f"`{ds['name']}` · "
           + version_line(manifest, release), ""]
    if ds.get("description"):
        out += [ds["description"].strip(), ""]
    out += _md_licence(manifest)
    out += ["## Coverage", ""] + _md_table(["", ""], coverage_rows(stats))
    out += ["## Schema", ""] + _md_table(
        ["column", "type", "units", "standard_name", "from", "conversion"], schema_rows(manifest))
    out += _md_counts(manifest, stats)
    out += ["## Validation", ""]
    rows = validation_rows(manifest)
    out += _md_table(["suite", "result", "expectations met", "unexpected values"], rows) \
        if rows else ["Validation was not run for this version.", ""]
    out += _md_changelog(changelog, release)
    out += _md_provenance(manifest)
    return "\n".join(out).rstrip() + "\n"


def _md_licence(manifest: Mapping[str, Any]) -> list[str]:
    ds = manifest["dataset"]
    owner = ds.get("owner") or {}
    url = licence_url(ds.get("licence"))
    licence = f"[{ds.get('licence')}]({url})" if url else str(ds.get("licence"))
    out = ["## Licence and attribution", "", f"- Licence: {licence}",
           f"- Owner: {owner.get('name') or 'unknown'}"
           + (f" <{owner['email']}>" if owner.get("email") else "")]
    if ds.get("classification"):
        out.append(f"- Classification: {ds['classification']}")
    notes = attributions(manifest)
    out += [f"- Required attribution: {n}" for n in notes] or ["- Required attribution: none"]
    return out + [""]


def _md_counts(manifest: Mapping[str, Any], stats: CardStats) -> list[str]:
    out: list[str] = []
    rows = manifest.get("rows") or {}
    out += ["## Rows", ""] + _md_table(["in", "written", "dropped (fill)", "quarantined"], [(
        f"{rows.get('in', 0):,}", f"{rows.get('written', 0):,}", f"{rows.get('dropped', 0):,}",
        f"{rows.get('rejected', 0):,}")])
    if stats.splits:
        out += ["## Splits", ""] + _md_table(["split", "rows"], [
            (k, f"{v:,}") for k, v in sorted(stats.splits.items())])
    if stats.qc:
        out += ["## QC flags", ""] + _md_table(["column", "flag", "rows"], [
            (col, qc_label(flag, col), f"{n:,}") for col, counts in stats.qc.items()
            for flag, n in sorted(counts.items())])
    return out


def _md_changelog(changelog: Sequence[str] | None, release: str | None) -> list[str]:
    if changelog is None:
        return []
    title = "## Changes since the previous release"
    return [title, ""] + ([f"- {c}" for c in changelog] or ["- no changes"]) + [""]


def _md_provenance(manifest: Mapping[str, Any]) -> list[str]:
    run = manifest.get("run") or {}
    out = ["## Provenance", "", (f"- Run {run.get('id')} with Haina {run.get('code_version')} "
                                 f"on {run.get('runner')}, recipe sha256 "
                                 f"`{run.get('recipe_sha256')}`")]
    out += [f"- Source `{s['uri']}` ({s['kind']}, {s['size']:,} bytes, sha256 "
            f"`{s['sha256'][:16]}…`)" for s in manifest.get("sources", [])]
    return out + [""]


# --- I/O -------------------------------------------------------------------------------------
def load_manifest(version: Any) -> dict[str, Any]:
    """The manifest of a catalog version, checked against the catalog's checksum."""
    from catalog.storage import manifest as manifest_mod

    return manifest_mod.read_manifest(version.path, expected_sha256=version.manifest_sha256)


def _write_text(text: str, uri: str) -> str:
    try:
        croissant.write_whole(text.encode("utf-8"), uri)
    except OSError as err:
        raise CardError(f"could not write ({err})", where=uri,
                        fix="check that the folder exists and is writable") from err
    return uri


def write_card(catalog: Any, version: Any, directory: str | None = None, *,
               release: str | None = None,
               changelog: Sequence[str] | None = None) -> tuple[str, str]:
    """Write ``CARD.md`` and ``card.html`` for ``version`` (a VersionRecord) into ``directory``.

    ``directory`` defaults to the version folder; ``release`` is the semver of a release (None
    for a draft); ``changelog`` the changes since the previous release, from the caller.
    ``catalog`` is accepted for symmetry with the other writers and future lookups.
    """
    from catalog.documents import card_html

    manifest = load_manifest(version)
    stats = scan(manifest, version.path)
    directory = directory or version.path
    croissant._ensure_dir(directory)
    md = render_markdown(manifest, stats, release=release, changelog=changelog)
    html = card_html.render_html(manifest, stats, release=release, changelog=changelog)
    return (_write_text(md, FileSystems.join(directory, MD_NAME)),
            _write_text(html, FileSystems.join(directory, HTML_NAME)))


__all__ = ["CardError", "CardStats", "CroissantError", "Histogram", "display_histogram",
           "load_manifest", "render_markdown", "scan", "write_card"]
