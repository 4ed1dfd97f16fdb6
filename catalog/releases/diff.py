"""The difference between two versions of a dataset: schema, records, files and statistics.

Used by ``haina diff`` and by the release bump proposal (:mod:`catalog.releases.semver`).

Records are compared per partition (``date=...``). Data files carry ``content_sha256``, the hash
of their row groups, so partitions whose files have the same content hashes on both sides hold
the same records and are not read (the fast path). Other partitions are read from both sides and
compared as *multisets of rows* over the columns both versions share, leaving out ``source_file``
(its paths differ between warehouses and re-runs) and columns whose type changed.

Definitions, per partition:

- a row's *key* is its values of the key columns: the coordinates (``time``, ``depth``,
  ``latitude``, ``longitude``) and id columns (``platform_id``, ``station_id``, ``mmsi``...),
  taken from the ``haina.role`` field metadata (``coordinate``/``id``), else by name;
- rows equal in every compared column are *unchanged* (counted with multiplicity);
- of the remaining rows, those whose key occurs on both sides are *changed* (per key, the
  smaller of the two sides' leftover counts); the rest are *removed* (old side) or *added*;
- ``changed_columns[c]`` counts the rows whose key exists on both sides but whose value of ``c``
  differs (same pairing rule), e.g. ``split`` for a changed split assignment.

Rows are compared through 128-bit hashes of their values (pandas' vectorised SipHash over two
keys), so two different rows are taken as equal only with probability ~2**-128. Null and NaN
hash alike. Quarantine files (rejects) are not records of the dataset and are left out.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.exceptions import CatalogError
from catalog.jsonable import jsonable
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.storage.manifest import ColumnEntry, Manifest
from catalog.store import Catalog, FileRecord, VersionRecord

QUARANTINE = "quarantine"
#: provenance, not a record value: the same row read from a moved source has another path
IGNORED_COLUMNS = frozenset({"source_file"})
#: key columns by name when the schema has no ``haina.role`` metadata
KEY_NAMES = ("time", "depth", "latitude", "longitude", "platform_id", "station_id", "mmsi",
             "imo", "wmo_id", "profile_id", "trajectory_id", "port_id", "locode")
KEY_ROLES = frozenset({"coordinate", "id"})
#: two SipHash keys (16 bytes each) make a 128-bit row hash
_HASH_KEYS = ("haina-rowhash-01", "haina-rowhash-02")


class DiffError(CatalogError):
    """Two versions cannot be compared (different datasets, unreadable files)."""


# --- results -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ColumnChange:
    name: str
    old: str | None
    new: str | None


@dataclasses.dataclass(frozen=True)
class SchemaDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[ColumnChange, ...] = ()
    units: tuple[ColumnChange, ...] = ()
    #: columns whose other field metadata differ; old/new list the keys that changed
    metadata: tuple[ColumnChange, ...] = ()


@dataclasses.dataclass(frozen=True)
class PartitionDiff:
    partition: str
    rows_a: int
    rows_b: int
    added: int = 0
    removed: int = 0
    changed: int = 0
    changed_columns: Mapping[str, int] = dataclasses.field(default_factory=dict)
    #: how it was decided: "same-content" (fast path), "compared" (rows read), "added", "removed"
    method: str = "same-content"

    @property
    def unchanged(self) -> int:
        return self.rows_a - self.removed - self.changed


@dataclasses.dataclass(frozen=True)
class ColumnStats:
    rows: int
    nulls: int
    min: Any = None
    max: Any = None
    mean: float | None = None
    #: fraction of rows per flag value, for ``*_qc`` columns
    flags: Mapping[str, float] | None = None

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclasses.dataclass(frozen=True)
class ColumnDrift:
    column: str
    a: ColumnStats | None
    b: ColumnStats | None


@dataclasses.dataclass(frozen=True)
class DatasetDiff:
    dataset: str
    a: str
    b: str
    schema: SchemaDiff
    partitions: tuple[PartitionDiff, ...]
    files_added: tuple[str, ...]
    files_removed: tuple[str, ...]
    drift: tuple[ColumnDrift, ...]
    key_columns: tuple[str, ...]
    #: differences that leave the records as they are (encoding, metadata)
    patch_notes: tuple[str, ...] = ()

    @property
    def totals(self) -> dict[str, int]:
        keys = ("rows_a", "rows_b", "added", "removed", "changed")
        return {k: sum(getattr(p, k) for p in self.partitions) for k in keys}

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for p, raw in zip(self.partitions, out["partitions"], strict=True):
            raw["unchanged"] = p.unchanged
        for d, raw in zip(self.drift, out["drift"], strict=True):
            for side in ("a", "b"):
                if raw[side] is not None:
                    raw[side]["null_fraction"] = getattr(d, side).null_fraction
        out["totals"] = self.totals
        return jsonable(out)


# --- schema ------------------------------------------------------------------------------------
def schema_diff(a: Sequence[ColumnEntry], b: Sequence[ColumnEntry]) -> SchemaDiff:
    """Compare two manifests' schema columns."""
    old, new = {c.name: c for c in a}, {c.name: c for c in b}
    common = [n for n in old if n in new]
    units, metadata = [], []
    for name in common:
        meta_a, meta_b = old[name].metadata, new[name].metadata
        if old[name].units != new[name].units:
            units.append(ColumnChange(name, old[name].units, new[name].units))
        keys = sorted(k for k in set(meta_a) | set(meta_b)
                      if k != "haina.units" and meta_a.get(k) != meta_b.get(k))
        if keys:
            metadata.append(ColumnChange(name, ", ".join(keys), None))
    return SchemaDiff(
        added=tuple(n for n in new if n not in old),
        removed=tuple(n for n in old if n not in new),
        retyped=tuple(ColumnChange(n, old[n].type, new[n].type) for n in common
                      if old[n].type != new[n].type),
        units=tuple(units), metadata=tuple(metadata))


def key_columns(schema: Sequence[ColumnEntry]) -> tuple[str, ...]:
    """Coordinate and id columns (by ``haina.role``), else the conventional names present."""
    by_role = tuple(c.name for c in schema if c.role in KEY_ROLES)
    if by_role:
        return by_role
    names = {c.name for c in schema}
    return tuple(n for n in KEY_NAMES if n in names)


# --- row comparison (pure, vectorised) ---------------------------------------------------------
def _hash(frame: pd.DataFrame, key: str) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy(np.uint64)


def _frame(table: pa.Table, columns: Sequence[str]) -> pd.DataFrame:
    # NaN for nulls everywhere: the hash must not depend on pandas' nullable dtypes
    return table.select(list(columns)).to_pandas(types_mapper=None, ignore_metadata=True)


def _hash_columns(table: pa.Table, keys: Sequence[str], columns: Sequence[str]) -> pa.Table:
    """Per row: 128-bit key hash (k1, k2), 128-bit row hash (h1, h2), one hash per column."""
    frame = _frame(table, columns)
    out = {"h1": _hash(frame, _HASH_KEYS[0]), "h2": _hash(frame, _HASH_KEYS[1])}
    key_frame = frame[list(keys)] if keys else pd.DataFrame(index=frame.index)
    n = len(frame)
    out["k1"] = _hash(key_frame, _HASH_KEYS[0]) if keys else np.zeros(n, np.uint64)
    out["k2"] = _hash(key_frame, _HASH_KEYS[1]) if keys else np.zeros(n, np.uint64)
    for i, name in enumerate(c for c in columns if c not in keys):
        out[f"c{i}"] = _hash(frame[[name]], _HASH_KEYS[0])
    return pa.table(out)


def _counts(table: pa.Table, by: list[str]) -> pa.Table:
    return table.group_by(by).aggregate([([], "count_all")])


def _excess_by_key(a: pa.Table, b: pa.Table, by: list[str]) -> pa.Table:
    """Per key (k1, k2): how many rows of each side have no equal partner (on columns ``by``).

    Both sides are grouped by ``by`` and joined; for each group the surplus of one side over the
    other is that side's excess. Summed per key, so that a key's leftover old and new rows can be
    paired as "changed".
    """
    ca = _counts(a, by).rename_columns([*by, "n_a"])
    cb = _counts(b, by).rename_columns([*by, "n_b"])
    joined = ca.join(cb, keys=by, join_type="full outer")
    n_a = pc.fill_null(joined["n_a"], 0)
    n_b = pc.fill_null(joined["n_b"], 0)
    joined = pa.table({"k1": joined["k1"], "k2": joined["k2"],
                       "e_a": pc.max_element_wise(pc.subtract(n_a, n_b), 0),
                       "e_b": pc.max_element_wise(pc.subtract(n_b, n_a), 0)})
    joined = joined.filter(pc.or_(pc.greater(joined["e_a"], 0), pc.greater(joined["e_b"], 0)))
    return joined.group_by(["k1", "k2"]).aggregate([("e_a", "sum"), ("e_b", "sum")])


def _paired(excess: pa.Table) -> int:
    """Rows whose key has leftovers on both sides: the smaller side's count, per key."""
    if excess.num_rows == 0:
        return 0
    both = pc.min_element_wise(excess["e_a_sum"], excess["e_b_sum"])
    return int(pc.sum(both).as_py() or 0)


def compare_rows(a: pa.Table, b: pa.Table, keys: Sequence[str],
                 columns: Sequence[str]) -> tuple[int, int, int, dict[str, int]]:
    """(added, removed, changed, changed_columns) from ``a`` to ``b`` over ``columns``.

    See the module docstring for the definitions. ``keys`` must be a subset of ``columns``.
    """
    keys = [k for k in keys if k in columns]
    ha, hb = _hash_columns(a, keys, columns), _hash_columns(b, keys, columns)
    rows = _excess_by_key(ha, hb, ["k1", "k2", "h1", "h2"])
    changed = _paired(rows)
    total_a = int(pc.sum(rows["e_a_sum"]).as_py() or 0) if rows.num_rows else 0
    total_b = int(pc.sum(rows["e_b_sum"]).as_py() or 0) if rows.num_rows else 0
    per_column = {}
    if changed and keys:
        for i, name in enumerate(c for c in columns if c not in keys):
            n = _paired(_excess_by_key(ha, hb, ["k1", "k2", f"c{i}"]))
            if n:
                per_column[name] = n
    return total_b - changed, total_a - changed, changed, per_column


# --- statistics (pure) -------------------------------------------------------------------------
def _is_measure(field: pa.Field) -> bool:
    t = field.type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_timestamp(t)


def partial_stats(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per column: rows, nulls, min, max, sum, count (and flag counts for ``*_qc``): mergeable."""
    out = {}
    for field in table.schema:
        if field.name in IGNORED_COLUMNS:
            continue
        col = table[field.name]
        part: dict[str, Any] = {"rows": len(col), "nulls": col.null_count}
        if field.name.endswith("_qc"):
            counts = pc.value_counts(col.drop_null())
            part["flags"] = {str(v): int(n) for v, n in zip(counts.field("values").to_pylist(),
                                                             counts.field("counts").to_pylist(),
                                                             strict=True)}
        if _is_measure(field):
            mm = pc.min_max(col)
            part.update(min=mm["min"].as_py(), max=mm["max"].as_py())
            if not pa.types.is_timestamp(field.type):
                part.update(sum=pc.sum(col, min_count=0).as_py(),
                            count=pc.count(col, mode="only_valid").as_py())
        out[field.name] = part
    return out


def _merge_part(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    out = {"rows": x["rows"] + y["rows"], "nulls": x["nulls"] + y["nulls"]}
    for name, pick in (("min", min), ("max", max)):
        values = [v for v in (x.get(name), y.get(name)) if v is not None]
        if name in x or name in y:
            out[name] = pick(values) if values else None
    if "sum" in x or "sum" in y:
        out["sum"] = (x.get("sum") or 0) + (y.get("sum") or 0)
        out["count"] = x.get("count", 0) + y.get("count", 0)
    if "flags" in x or "flags" in y:
        flags = dict(x.get("flags", {}))
        for k, n in y.get("flags", {}).items():
            flags[k] = flags.get(k, 0) + n
        out["flags"] = flags
    return out


def merge_stats(parts: Iterable[Mapping[str, dict[str, Any]]]) -> dict[str, ColumnStats]:
    """Combine per-file partial statistics into one :class:`ColumnStats` per column."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, values in part.items():
            merged[name] = _merge_part(merged[name], values) if name in merged else dict(values)
    return {name: _finish(m) for name, m in merged.items()}


def _finish(m: dict[str, Any]) -> ColumnStats:
    mean = m["sum"] / m["count"] if m.get("count") else None
    flags = None
    if "flags" in m:
        flags = {k: n / m["rows"] for k, n in sorted(m["flags"].items())} if m["rows"] else {}
    return ColumnStats(rows=m["rows"], nulls=m["nulls"], min=m.get("min"), max=m.get("max"),
                       mean=mean, flags=flags)


# --- I/O: reading a version's files ------------------------------------------------------------
def _uri(version: VersionRecord, f: FileRecord) -> str:
    return uri_mod.join(version.path, f.path)


def read_files(version: VersionRecord, files: Sequence[FileRecord],
               columns: Sequence[str] | None = None) -> pa.Table:
    """The rows of ``files`` of ``version`` (all columns, or ``columns``), concatenated."""
    tables = []
    for f in files:
        uri = _uri(version, f)
        try:
            if uri_mod.is_remote(uri):
                with files_mod.open_binary(uri) as handle:
                    tables.append(pq.read_table(handle, columns=columns))
            else:
                tables.append(pq.read_table(uri_mod.local_path(uri), columns=columns))
        except (OSError, pa.ArrowException) as err:
            raise DiffError(f"cannot read data file ({err})", where=uri,
                            fix="run `haina verify` on the version; restore the file from a "
                                "backup if it is missing or damaged") from err
    return pa.concat_tables(tables, promote_options="default")


def _content_id(f: FileRecord) -> str:
    return f.content_sha256 or f.sha256


def data_files(catalog: Catalog, version: VersionRecord) -> list[FileRecord]:
    return [f for f in catalog.files(version.version_id) if f.partition != QUARANTINE]


def _by_partition(files: Sequence[FileRecord]) -> dict[str, list[FileRecord]]:
    out: dict[str, list[FileRecord]] = {}
    for f in files:
        out.setdefault(f.partition, []).append(f)
    return out


# --- orchestration -----------------------------------------------------------------------------
def diff_versions(catalog: Catalog, a: VersionRecord, b: VersionRecord, *,
                  stats: bool = True) -> DatasetDiff:
    """Everything that differs from version ``a`` (older) to ``b`` (newer)."""
    if a.dataset != b.dataset:
        raise DiffError(f"versions belong to different datasets ({a.dataset!r}, {b.dataset!r})",
                        where=f"diff {a.version_id} {b.version_id}",
                        fix="compare two versions of one dataset: NAME@A NAME@B")
    man_a = Manifest.read(a.path, expected_sha256=a.manifest_sha256 or None)
    man_b = Manifest.read(b.path, expected_sha256=b.manifest_sha256 or None)
    schema = schema_diff(man_a.schema, man_b.schema)
    keys = key_columns(man_b.schema)
    files_a, files_b = data_files(catalog, a), data_files(catalog, b)
    columns = _compared_columns(man_a.schema, man_b.schema, schema)
    parts_a, parts_b = _by_partition(files_a), _by_partition(files_b)
    partitions = tuple(_partition_diff(a, b, p, parts_a.get(p, []), parts_b.get(p, []), keys,
                                       columns) for p in sorted(set(parts_a) | set(parts_b)))
    paths_a, paths_b = {f.path for f in files_a}, {f.path for f in files_b}
    return DatasetDiff(
        dataset=a.dataset, a=a.version_id, b=b.version_id, schema=schema, partitions=partitions,
        files_added=tuple(sorted(paths_b - paths_a)), files_removed=tuple(sorted(paths_a - paths_b)),
        drift=_drift(a, files_a, b, files_b) if stats else (),
        key_columns=tuple(k for k in keys if k in columns),
        patch_notes=tuple(_patch_notes(man_a, man_b, schema, files_a, files_b, partitions)))


def _compared_columns(a: Sequence[ColumnEntry], b: Sequence[ColumnEntry],
                      schema: SchemaDiff) -> list[str]:
    retyped = {c.name for c in schema.retyped}
    names_b = {c.name for c in b}
    return [c.name for c in a if c.name in names_b and c.name not in retyped
            and c.name not in IGNORED_COLUMNS]


def _partition_diff(a: VersionRecord, b: VersionRecord, partition: str,
                    files_a: list[FileRecord], files_b: list[FileRecord],
                    keys: Sequence[str], columns: Sequence[str]) -> PartitionDiff:
    rows_a, rows_b = sum(f.rows for f in files_a), sum(f.rows for f in files_b)
    if not files_a:
        return PartitionDiff(partition, 0, rows_b, added=rows_b, method="added")
    if not files_b:
        return PartitionDiff(partition, rows_a, 0, removed=rows_a, method="removed")
    if sorted(map(_content_id, files_a)) == sorted(map(_content_id, files_b)):
        return PartitionDiff(partition, rows_a, rows_b)  # same row groups: same records
    added, removed, changed, per_column = compare_rows(
        read_files(a, files_a, columns), read_files(b, files_b, columns), keys, columns)
    return PartitionDiff(partition, rows_a, rows_b, added, removed, changed, per_column,
                         method="compared")


def _drift(a: VersionRecord, files_a: list[FileRecord], b: VersionRecord,
           files_b: list[FileRecord]) -> tuple[ColumnDrift, ...]:
    # statistics are per file and cached by content hash: files both versions share are read once
    cache: dict[str, dict] = {}

    def parts(version: VersionRecord, files: list[FileRecord]) -> list[dict]:
        for f in files:
            if _content_id(f) not in cache:
                cache[_content_id(f)] = partial_stats(read_files(version, [f]))
        return [cache[_content_id(f)] for f in files]

    stats_a, stats_b = merge_stats(parts(a, files_a)), merge_stats(parts(b, files_b))
    names = list(stats_a) + [n for n in stats_b if n not in stats_a]
    return tuple(ColumnDrift(n, stats_a.get(n), stats_b.get(n)) for n in names)


def _patch_notes(man_a: Manifest, man_b: Manifest, schema: SchemaDiff, files_a: list[FileRecord],
                 files_b: list[FileRecord], partitions: Sequence[PartitionDiff]) -> list[str]:
    notes = []
    shas_a = {f.sha256 for f in files_a}
    footer_only = sum(1 for f in files_b if f.sha256 not in shas_a
                      and f.content_sha256 in {g.content_sha256 for g in files_a})
    if footer_only:
        notes.append(f"{footer_only} file(s) differ only in footer metadata (version, run ids)")
    recoded = [p.partition for p in partitions
               if p.method == "compared" and not (p.added or p.removed or p.changed)]
    if recoded:
        notes.append(f"same records, different encoding in partition(s) {', '.join(recoded)}")
    notes += [f"column {c.name!r} metadata changed ({c.old})" for c in schema.metadata]
    # compared as written (JSON keys): a key one manifest lacks differs from any value
    ds_a, ds_b = man_a.dataset.to_json(), man_b.dataset.to_json()
    changed = sorted(k for k in set(ds_a) | set(ds_b) if ds_a.get(k) != ds_b.get(k))
    if changed:
        notes.append(f"dataset metadata changed ({', '.join(changed)})")
    return notes
